import type { Clock, Decision, EngineStats, Event, AttrValue } from '../engine/index.js';
import type { DecisionOutputStats } from '../decisions/index.js';
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
    /** Run-time counters of each rule, summed over partitions, by rule id. */
    ruleCounters(): ReadonlyMap<string, RuleCountersView>;
  };
  /** Stored decisions and the live feed of new ones. */
  decisions: {
    list(query: { limit: number; ruleId?: string; entity?: string; before?: number }): Array<Decision & { cursor: number }>;
    get(id: string): Decision | undefined;
    count(): number;
    /** Resolves once every decision made so far is visible to `list` and `get`. */
    flushed(): Promise<void>;
    /** Calls `listener` with each batch of new decisions; returns a function that stops it. */
    subscribe(listener: (decisions: ReadonlyArray<Decision>) => void): () => void;
    /** Delivery counters of every decision output (the NDJSON file, the webhook), since start. */
    outputStats(): ReadonlyArray<DecisionOutputStats>;
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

/** A rule's run-time counters as the API shows them. */
export interface RuleCountersView {
  version: number;
  evaluations: number;
  decisions: number;
  errors: number;
  lastError: string | undefined;
  /** Processing time of the latest error, epoch ms (0 when none). */
  lastErrorAt: number;
  late: number;
  missingKey: number;
  droppedPartialMatches: number;
  /** Partial matches dropped because their key had no event for the rule's state TTL. */
  expiredPartialMatches: number;
  keys: number;
  /** Rules (this one included) computed together with it; 1 when it runs alone. */
  sharedWith: number;
}

export type { AppendResult, Event, AttrValue };
