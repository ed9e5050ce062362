import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { PortraitConfig } from '../config/index.js';
import { DefinitionService, type DefinitionStore } from '../definitions/index.js';
import { Engine, systemClock, type Clock, type EngineOptions } from '../engine/index.js';
import { Ingestor, type EventCatalog, type EventLimits, type InputSchema, taobaoSchema, adClickSchema } from '../ingest/index.js';
import { createMetrics, type Metrics } from '../observability/index.js';
import { DecisionHub, createNdjsonFileOutput, createWebhookOutput, type DecisionOutput } from '../decisions/index.js';
import { createFileRecordLog, type FileRecordLog } from '../stores/filelog/index.js';
import { createLmdbStore, type LmdbStore } from '../stores/lmdb/index.js';
import { createPgliteDefinitionStore } from '../stores/pglite/index.js';
import { createPostgresDefinitionStore } from '../stores/postgres/index.js';
import { defaultCatalog } from './default-catalog.js';

/** The whole embedded system, wired: log, engine, stores, definitions, ingest, metrics. */
export interface EmbeddedSystem {
  readonly config: PortraitConfig;
  readonly clock: Clock;
  readonly catalog: EventCatalog;
  readonly limits: EventLimits;
  /** Input schemas by name. */
  readonly schemas: ReadonlyMap<string, InputSchema>;
  readonly log: FileRecordLog;
  readonly store: LmdbStore;
  readonly definitionStore: DefinitionStore;
  readonly definitions: DefinitionService;
  readonly engine: Engine;
  readonly ingestor: Ingestor;
  readonly metrics: Metrics;
  /** Decisions of rules: stored once each, streamed to subscribers and outputs. */
  readonly decisions: DecisionHub;
  /** Wall-clock time the system finished opening, epoch ms. */
  readonly startedAt: number;
  /** Stops ingest and the engine (with a final checkpoint) and closes every store. */
  close(options?: { checkpoint?: boolean }): Promise<void>;
}

/** Options of {@link openEmbeddedSystem} beyond the configuration. */
export interface EmbeddedSystemOptions {
  clock?: Clock;
  /** Event catalog; defaults to the built-in demo and public-data catalog. */
  catalog?: EventCatalog;
  /** Extra input schemas (the built-in ones stay available). */
  schemas?: ReadonlyArray<InputSchema>;
  /** Start consuming the log and writing time marks at once. @defaultValue true */
  start?: boolean;
  /** Engine settings that are not in the configuration (tests, benchmarks). */
  engine?: Partial<Pick<EngineOptions, 'liveFeedMaxRecords' | 'truncateLog'>>;
}

/**
 * Opens the embedded system in `config.dataDir`: restores the engine from its
 * last checkpoint, replays the log after it, and (by default) starts it.
 */
export async function openEmbeddedSystem(config: PortraitConfig, options: EmbeddedSystemOptions = {}): Promise<EmbeddedSystem> {
  const clock = options.clock ?? systemClock;
  const dataDir = resolve(config.dataDir);
  mkdirSync(dataDir, { recursive: true });
  const baseCatalog = options.catalog ?? defaultCatalog;
  const catalog: EventCatalog = { ...baseCatalog, additionalFields: config.ingest.additionalFields };
  const limits: EventLimits = { maxFutureMs: config.ingest.maxFutureMs, maxKeyLength: 256, maxStringLength: 4096 };
  const schemas = new Map<string, InputSchema>();
  for (const schema of [taobaoSchema, adClickSchema, ...(options.schemas ?? [])]) schemas.set(schema.name, schema);

  // The metrics are made once the engine they read exists; log writes before that are not recorded.
  let metrics: Metrics | undefined;
  const log = await createFileRecordLog(
    { dir: join(dataDir, 'log'), partitionCount: config.partitions, segmentBytes: config.log.segmentBytes, fsync: config.log.fsync },
    { onWrite: (_partition, seconds, bytes) => metrics?.recordLogWrite(seconds, bytes) },
  );
  const opened: Array<() => Promise<void>> = [() => log.close()];
  try {
    const store = createLmdbStore({ path: join(dataDir, 'lmdb') });
    opened.push(() => store.close());
    const definitionStore =
      config.definitions.store === 'postgres'
        ? await createPostgresDefinitionStore({ connectionString: config.definitions.postgresUrl })
        : await createPgliteDefinitionStore({ dataDir: join(dataDir, 'definitions') });
    opened.push(() => definitionStore.close());
    const definitions = await DefinitionService.open(definitionStore, catalog, clock);

    const outputs: DecisionOutput[] = [];
    if (config.decisions.file !== '') outputs.push(createNdjsonFileOutput({ path: resolve(config.decisions.file) }));
    if (config.decisions.webhookUrl !== '') outputs.push(createWebhookOutput({ url: config.decisions.webhookUrl, timeoutMs: config.decisions.webhookTimeoutMs }));
    const decisions = new DecisionHub(store.decisions, outputs);
    opened.push(() => decisions.close());
    const engine = await Engine.open(
      {
        outOfOrdernessMs: config.engine.outOfOrdernessMs,
        allowedLatenessMs: config.engine.allowedLatenessMs,
        latePolicy: config.engine.latePolicy,
        stateTtlMs: config.engine.stateTtlMs,
        defaultRuleStateTtlMs: config.engine.defaultRuleStateTtlMs,
        checkpointIntervalMs: config.engine.checkpointIntervalMs,
        maxBatchRecords: config.engine.maxBatchRecords,
        profileFlushIntervalMs: config.engine.profileFlushIntervalMs,
        liveFeedMaxRecords: options.engine?.liveFeedMaxRecords ?? 200_000,
        truncateLog: options.engine?.truncateLog ?? true,
      },
      {
        log,
        checkpoints: store.checkpoints,
        profiles: store.profiles,
        deadLetters: store.deadLetters,
        decisions,
        definitions,
        clock,
        onCheckpoint: (info) => metrics?.recordCheckpoint(info),
        onFatal: (err) => {
          process.emitWarning(`engine stopped: ${(err as Error).stack ?? String(err)}`);
        },
      },
    );
    const ingestor = new Ingestor(
      log,
      { offer: (p, first, records) => engine.offer(p, first, records), lag: () => engine.lag(), streamTime: () => engine.streamTime() },
      store.deadLetters,
      clock,
      {
        markIntervalMs: config.ingest.markIntervalMs,
        idleAdvanceMs: config.ingest.idleAdvanceMs,
        maxLagRecords: config.ingest.maxLagRecords,
        // A late event written to the dead letters is written whole.
        projectAttributes: config.engine.latePolicy !== 'deadletter',
      },
    );
    metrics = createMetrics({
      engineStats: () => engine.stats(),
      ingestCounters: () => ingestor.counters,
      deadLetterCount: () => store.deadLetters.countDeadLetters(),
      profileCount: () => store.profiles.countProfiles(),
      invalidDefinitions: () => definitions.invalidDefinitions(),
      decisionOutputs: () => decisions.outputStats(),
      now: () => clock.now(),
    });
    // Every change of what is online reaches the engine through the log, at one position in every partition.
    // Events are routed by the rules online at the log's end; later changes switch routing at their log record.
    ingestor.setRouting(definitions.currentSet());
    definitions.onOnlineChange((revision) => ingestor.appendDefinitions(revision, definitions.currentSet()).then(() => undefined));
    // A change stored just before a crash may never have reached the log.
    const logged = await latestLoggedRevision(engine);
    if (definitions.revision > logged) await ingestor.appendDefinitions(definitions.revision, definitions.currentSet());

    // Changes other writers make to the store (another process, SQL by hand) are followed too.
    const unfollow = await definitions.follow({
      pollIntervalMs: config.definitions.pollIntervalMs,
      onError: (err) => process.emitWarning(`following definition changes failed: ${(err as Error).message}`),
    });
    opened.push(unfollow);
    if (options.start ?? true) {
      engine.start();
      ingestor.start();
    }
    const system: EmbeddedSystem = {
      config,
      clock,
      catalog,
      limits,
      schemas,
      log,
      store,
      definitionStore,
      definitions,
      engine,
      ingestor,
      metrics,
      decisions,
      startedAt: clock.now(),
      async close(closeOptions = {}) {
        await unfollow();
        ingestor.stop();
        await engine.stop({ checkpoint: closeOptions.checkpoint ?? true });
        await decisions.close();
        await definitionStore.close();
        await store.close();
        await log.close();
      },
    };
    return system;
  } catch (err: unknown) {
    for (const close of opened.reverse()) await close().catch(() => undefined);
    throw err;
  }
}

/** The newest definition revision the engine has or will see in the log. */
async function latestLoggedRevision(engine: Engine): Promise<number> {
  // Revisions already applied come from checkpoints; ones still in the log are applied on replay.
  // Appending an equal revision again is harmless, so the applied one is a safe lower bound.
  return engine.revision();
}
