import type { Profile } from '../src/engine/index.js';
import { openEmbeddedSystem, type EmbeddedSystem } from '../src/runtime/embedded-system.js';
import { duration, human, resultLine, round, type BenchContext, type Scenario } from './lib/common.js';
import { ensureDataset, replayDatasetSpec, tailDatasetSpec } from './lib/dataset.js';
import { benchConfig, dropState, ensureState, replayAndDrain } from './lib/system.js';

/** No periodic checkpoint while the un-checkpointed tail is written, so exactly the tail is replayed. */
const NO_PERIODIC_CHECKPOINT = { 'engine.checkpointIntervalMs': 3_600_000 };

/**
 * Restart recovery: on the replayed state left by engine-replay, appends and
 * processes a tail of further events with no checkpoint after it, stops
 * without the final checkpoint (as a crash would leave it, less the torn
 * tail), then times reopening the data dir until the engine has restored its
 * checkpoint and replayed the log after it. Baseline: reopening the same
 * state after a clean stop (restore only, no log to replay). Consumes the
 * state (it then holds the tail).
 */
export const scenario: Scenario = {
  name: 'engine-recovery',
  description: 'restart time after a stop without final checkpoint (restore + log replay), vs. a clean reopen of the same state',
  async run(ctx: BenchContext) {
    const dataset = await ensureDataset(replayDatasetSpec(ctx.quick), ctx.log);
    const tail = await ensureDataset(tailDatasetSpec(dataset, ctx.quick), ctx.log);
    const state = await ensureState(dataset, ctx);
    const config = benchConfig(state.dir, NO_PERIODIC_CHECKPOINT);

    // The tail: processed and stored, but not covered by any checkpoint.
    ctx.log(`appending ${tail.events} tail events to ${state.dir}, then stopping without a checkpoint`);
    let system = await openEmbeddedSystem(config);
    await system.engine.drain();
    await replayAndDrain(system, tail.file);
    const sample = sampleKeys(dataset.spec.users, 2_000);
    const before = readProfiles(system, sample);
    system.ingestor.stop();
    const replayRecords = backlog(system);
    await system.close({ checkpoint: false });

    // Recovery: reopen, restore the last checkpoint, replay the log after it (the engine
    // may do the replay while opening or once started: both are timed).
    ctx.log('reopening after the stop without checkpoint');
    let t = performance.now();
    system = await openEmbeddedSystem(config, { start: false });
    const openMs = performance.now() - t;
    const restored = entities(system);
    const t2 = performance.now();
    system.engine.start();
    system.ingestor.start();
    await system.engine.drain();
    const replayMs = performance.now() - t2;
    const recoveryMs = performance.now() - t;
    const after = readProfiles(system, sample);
    const mismatches = compareProfiles(before, after);
    ctx.log(`recovered in ${duration(recoveryMs * 1000)}: open ${duration(openMs * 1000)} + after start ${duration(replayMs * 1000)}; ${replayRecords} log records after the checkpoint`);
    await system.close();

    // Baseline: reopen the same state after a clean stop (final checkpoint, no log to replay).
    t = performance.now();
    system = await openEmbeddedSystem(config, { start: false });
    const cleanOpenMs = performance.now() - t;
    const restoredClean = entities(system);
    const cleanBacklog = backlog(system);
    t = performance.now();
    system.engine.start();
    system.ingestor.start();
    await system.engine.drain();
    const cleanDrainMs = performance.now() - t;
    await system.close({ checkpoint: false });
    dropState(dataset);

    const cleanMs = cleanOpenMs + cleanDrainMs;
    const common = { entities_in_checkpoint: restored, profiles_sampled: sample.length };
    ctx.emit(
      resultLine('engine-recovery/clean-reopen', { ops_per_s: null, p50_us: null, p99_us: null }, {
        ...common,
        role: 'baseline',
        reopen_ms: round(cleanMs),
        open_ms: round(cleanOpenMs),
        log_records_replayed: cleanBacklog,
        entities_restored: restoredClean,
        description: 'reopen of the same state after a clean stop (final checkpoint): restore only',
      }),
    );
    ctx.emit(
      // ops/s: log records replayed per second of recovery beyond the clean reopen.
      resultLine('engine-recovery', { ops_per_s: recoveryMs > cleanMs ? replayRecords / ((recoveryMs - cleanMs) / 1000) : null, p50_us: null, p99_us: null }, {
        ...common,
        baseline: 'engine-recovery/clean-reopen',
        recovery_ms: round(recoveryMs),
        open_ms: round(openMs),
        drain_after_start_ms: round(replayMs),
        log_records_replayed: replayRecords,
        tail_events: tail.events,
        baseline_reopen_ms: round(cleanMs),
        sampled_profiles_differing_after_recovery: mismatches,
        table: {
          figure: `restart after stop without checkpoint (${human(restored)} entities)`,
          value: `${duration(recoveryMs * 1000)} with ${human(replayRecords)} log records after the checkpoint`,
          baseline: `clean reopen (no log) ${duration(cleanMs * 1000)}`,
          ratio: `${(recoveryMs / cleanMs).toFixed(1)}x`,
          target: '—',
          met: mismatches === 0 ? null : false,
        },
      }),
    );
  },
};

function entities(system: EmbeddedSystem): number {
  return system.engine.stats().partitions.reduce((n, p) => n + p.entities, 0);
}

/**
 * Log records after the last checkpoint: what a reopen has to replay (whether
 * the engine replays them while opening or once started).
 */
function backlog(system: EmbeddedSystem): number {
  let n = 0;
  for (let p = 0; p < system.log.partitionCount; p++) {
    const meta = system.store.checkpoints.loadMeta(p);
    n += system.log.endOffset(p) - (meta?.offset ?? system.log.startOffset(p));
  }
  return n;
}

function sampleKeys(users: number, n: number): string[] {
  const keys: string[] = [];
  const stride = Math.max(1, Math.floor(users / n));
  for (let i = 0; i < users && keys.length < n; i += stride) keys.push(`u${i}`);
  return keys;
}

function readProfiles(system: EmbeddedSystem, keys: string[]): Array<Profile | undefined> {
  return system.store.profiles.getProfiles(keys);
}

/** Profiles whose tag values differ between two reads (an uninterrupted run and a recovered one must agree). */
function compareProfiles(a: Array<Profile | undefined>, b: Array<Profile | undefined>): number {
  let differ = 0;
  for (let i = 0; i < a.length; i++) {
    const x = a[i];
    const y = b[i];
    if (x === undefined && y === undefined) continue;
    if (x === undefined || y === undefined) {
      differ++;
      continue;
    }
    const values = (p: Profile): string => JSON.stringify(Object.keys(p.tags).sort().map((k) => [k, p.tags[k]!.value, p.tags[k]!.updatedAt]));
    if (values(x) !== values(y)) differ++;
  }
  return differ;
}
