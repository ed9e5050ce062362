import type { Clock, EngineStats, Event, AttrValue } from '../engine/index.js';
import type { DefinitionService } from '../definitions/index.js';
import type { AppendResult, EventCatalog, EventLimits, Ingestor, InputSchema } from '../ingest/index.js';
import type { Metrics } from '../observability/index.js';
import type { DeadLetterReader, ProfileReader } from './ports.js';

/** Everything the HTTP API serves from. */
export interface ServingContext {
  clock: Clock;
  profiles: ProfileReader;
  deadLetters: DeadLetterReader;
  definitions: DefinitionService;
  catalog: EventCatalog;
  limits: EventLimits;
  schemas: ReadonlyMap<string, InputSchema>;
  ingestor: Ingestor;
  engine: {
    stats(): EngineStats;
    /** Resolves once the engine processed up to these offsets and stored the profiles. */
    waitForOffsets(offsets: ReadonlyArray<number>): Promise<void>;
  };
  metrics: Metrics;
  /** Partition of an entity key. */
  partitionOf(key: string): number;
  limitsHttp: {
    maxBodyBytes: number;
    maxBatchKeys: number;
    /** Longest wait of a `?wait=true` request for its events to become visible, ms. */
    waitTimeoutMs: number;
  };
}

export type { AppendResult, Event, AttrValue };
