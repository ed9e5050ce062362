import { PerformanceObserver, constants as perfConstants } from 'node:perf_hooks';
import { getHeapStatistics } from 'node:v8';
import { partitionOf } from '../src/engine/index.js';
import type { EmbeddedSystem } from '../src/runtime/embedded-system.js';
import { BATCH_NODE_FLAGS } from '../src/runtime/node-flags.js';
import { benchScript, fullGc, human, mib, resultLine, round, spawnNode, type BenchContext, type Scenario } from './lib/common.js';
import { ensureDataset, replayDatasetSpec } from './lib/dataset.js';
import { budgetSignal, closeAsState, dropState, openWithTags, replayAndDrain, replayBudgetS, stateDir } from './lib/system.js';

interface FloorReport {
  events: number;
  lines: number;
  keys: number;
  floorMs: number;
  readMs: number;
  heapUsed: number;
  heapBefore: number;
  rss: number;
  rssBefore: number;
}

/** Target of the issue: the engine at least this share of the floor. */
const FLOOR_SHARE_TARGET = 0.25;
/** Target of the issue: 1M users × 50 tags within 4 GiB. */
const MEMORY_TARGET_BYTES = 4 * 2 ** 30;


/**
 * File replay through the engine with 50 statistic tags on ~1M users, from
 * replay start until the engine has processed and stored everything, beside
 * the floor (read + parse + one Map counter per event, same file, own
 * process). Also reports heap and RSS per million users once drained, and
 * leaves the state (closed with a final checkpoint) for the scenarios that
 * need loaded state.
 */
export const scenario: Scenario = {
  name: 'engine-replay',
  description: 'events/s of file replay through the engine with 50 tags on 1M users, vs. a read+parse+Map floor; heap/RSS per 1M users',
  async run(ctx: BenchContext) {
    const dataset = await ensureDataset(replayDatasetSpec(ctx.quick), ctx.log);
    ctx.log(`floor: reading ${dataset.file}`);
    const floorChild = spawnNode(benchScript('lib/floor.js'), [dataset.file], ['--expose-gc', ...BATCH_NODE_FLAGS]);
    const floor = await floorChild.next<FloorReport>('floor');
    await floorChild.exited;
    const floorEps = floor.events / (floor.floorMs / 1000);
    ctx.log(`floor: ${human(floorEps)} events/s (${floor.keys} keys)`);

    dropState(dataset);
    const dir = stateDir(dataset);
    const system = await openWithTags(dir);
    fullGc();
    const idle = process.memoryUsage();

    const gc = observeGc();
    const timeline: number[] = [];
    let lastEvents = processedEvents(system);
    const sampler = setInterval(() => {
      const now = processedEvents(system);
      timeline.push(Math.round((now - lastEvents) / 5));
      lastEvents = now;
    }, 5_000);
    const budgetS = replayBudgetS(ctx);
    ctx.log(`replaying ${dataset.events} events through the engine${Number.isFinite(budgetS) ? ` (budget ${budgetS} s)` : ''}`);
    const budget = budgetSignal(budgetS);
    const started = performance.now();
    const { progress, appendedAtMs } = await replayAndDrain(system, dataset.file, { signal: budget.signal });
    const elapsedMs = performance.now() - started;
    budget.cancel();
    clearInterval(sampler);
    const complete = progress.appended === dataset.events;
    const gcStats = gc.stop();
    const stats = system.engine.stats();
    const entities = stats.partitions.reduce((n, p) => n + p.entities, 0);
    const processed = stats.partitions.reduce((n, p) => n + p.events, 0);
    const eps = progress.appended / (elapsedMs / 1000);
    const ratio = eps / floorEps;
    ctx.log(`replay: ${human(eps)} events/s, ${entities} entities, ratio ${(ratio * 100).toFixed(1)} % of floor`);

    // Memory once drained: live data only.
    const gcOk = fullGc();
    const mem = process.memoryUsage();
    const heap = getHeapStatistics();
    const tagStates = sampleTagStates(system, dataset.spec.users, 20_000);
    const profiles = system.store.profiles.countProfiles();

    const closeStarted = performance.now();
    await closeAsState(system, dataset, dir);
    const closeMs = performance.now() - closeStarted;

    const common = { dataset_events: dataset.events, dataset_users: dataset.distinctUsers, complete, budget_s: Number.isFinite(budgetS) ? budgetS : null, tags: 50 };
    const reached = complete ? `${human(entities)} users` : `${human(entities)} of ${human(dataset.distinctUsers)} users, ${human(progress.appended)} of ${human(dataset.events)} events in the ${budgetS} s budget`;
    ctx.emit(
      resultLine('engine-replay/floor', { ops_per_s: floorEps, p50_us: null, p99_us: null }, {
        ...common,
        role: 'baseline',
        events: floor.events,
        seconds: round(floor.floorMs / 1000, 2),
        read_split_only_eps: round(floor.lines / (floor.readMs / 1000)),
        description: 'bare loop: 1 MiB reads, split lines, JSON.parse, Map counter per user_id (own process)',
      }),
    );
    ctx.emit(
      resultLine('engine-replay', { ops_per_s: eps, p50_us: null, p99_us: null }, {
        ...common,
        baseline: 'engine-replay/floor',
        baseline_ops_per_s: round(floorEps, 1),
        ratio_to_floor: round(ratio, 4),
        target: `>= ${FLOOR_SHARE_TARGET * 100}% of floor`,
        target_met: ratio >= FLOOR_SHARE_TARGET,
        events_appended: progress.appended,
        events_processed: processed,
        rejected: progress.rejected,
        entities,
        profiles,
        seconds: round(elapsedMs / 1000, 2),
        append_done_s: round(appendedAtMs / 1000, 2),
        checkpoints: stats.checkpoints,
        late_dropped: stats.partitions.reduce((n, p) => n + p.lateDropped, 0),
        timers_fired: stats.partitions.reduce((n, p) => n + p.timersFired, 0),
        gc_pause_ms: round(gcStats.totalMs),
        gc_major_pause_ms: round(gcStats.majorMs),
        gc_max_pause_ms: round(gcStats.maxMs, 1),
        eps_every_5s: timeline,
        final_checkpoint_close_s: round(closeMs / 1000, 2),
        table: {
          figure: `file replay events/s, 50 tags (${reached})`,
          value: `${human(eps)} /s`,
          baseline: `floor ${human(floorEps)} /s`,
          ratio: `${(ratio * 100).toFixed(1)} %`,
          target: `>= ${FLOOR_SHARE_TARGET * 100} % of floor`,
          met: ratio >= FLOOR_SHARE_TARGET,
        },
      }),
    );
    // Fixed cost (the idle system) plus the per-user cost measured, projected to 1M users;
    // equal to the measurement when the run reached ~1M users.
    const perMillion = (bytes: number, idleBytes: number): number => idleBytes + ((bytes - idleBytes) / entities) * 1e6;
    const heapAt1M = perMillion(mem.heapUsed, idle.heapUsed);
    const rssAt1M = perMillion(mem.rss, idle.rss);
    const floorAt1M = (bytes: number, before: number): number => before + ((bytes - before) / floor.keys) * 1e6;
    const floorHeapAt1M = floorAt1M(floor.heapUsed, floor.heapBefore);
    const floorRssAt1M = floorAt1M(floor.rss, floor.rssBefore);
    const memMet = rssAt1M <= MEMORY_TARGET_BYTES;
    ctx.emit(
      resultLine('engine-memory', { ops_per_s: null, p50_us: null, p99_us: null }, {
        ...common,
        baseline: 'engine-replay/floor (Map of the same user keys, own process)',
        gc_forced: gcOk,
        entities,
        heap_used_mib: mib(mem.heapUsed),
        rss_mib: mib(mem.rss),
        external_mib: mib(mem.external),
        array_buffers_mib: mib(mem.arrayBuffers),
        heap_limit_mib: mib(heap.heap_size_limit),
        idle_heap_used_mib: mib(idle.heapUsed),
        idle_rss_mib: mib(idle.rss),
        heap_bytes_per_user: Math.round((mem.heapUsed - idle.heapUsed) / entities),
        rss_bytes_per_user: Math.round((mem.rss - idle.rss) / entities),
        heap_at_1m_users_mib: mib(heapAt1M),
        rss_at_1m_users_mib: mib(rssAt1M),
        projected: entities < 0.95e6,
        tag_values_per_user: tagStates,
        baseline_heap_at_1m_keys_mib: mib(floorHeapAt1M),
        baseline_rss_at_1m_keys_mib: mib(floorRssAt1M),
        target: '1M users x 50 tags within 4 GiB (RSS)',
        target_met: memMet,
        table: {
          figure: `memory at 1M users, 50 tags (${entities < 0.95e6 ? `projected from ${human(entities)} users` : `${human(entities)} users`}, ${tagStates} tag values/user)`,
          value: `heap ${mib(heapAt1M)} MiB, RSS ${mib(rssAt1M)} MiB`,
          baseline: `Map of 1M keys: heap ${mib(floorHeapAt1M)} MiB, RSS ${mib(floorRssAt1M)} MiB`,
          ratio: `${(heapAt1M / floorHeapAt1M).toFixed(1)}x heap`,
          target: 'RSS <= 4 GiB',
          met: memMet,
        },
      }),
    );
  },
};

function processedEvents(system: EmbeddedSystem): number {
  let n = 0;
  for (const p of system.engine.stats().partitions) n += p.events;
  return n;
}

/** Mean number of tags holding a value per user, over a sample of users that have state. */
function sampleTagStates(system: EmbeddedSystem, users: number, sample: number): number {
  const partitions = system.config.partitions;
  let seen = 0;
  let tags = 0;
  // Deterministic stride over the generator's id space `u0 … u<users-1>`.
  const stride = Math.max(1, Math.floor(users / sample));
  for (let i = 0; i < users; i += stride) {
    const key = `u${i}`;
    const profile = system.engine.liveProfile(partitionOf(key, partitions), key);
    if (profile !== undefined) {
      seen++;
      tags += Object.keys(profile.tags).length;
    }
  }
  return seen === 0 ? 0 : round(tags / seen, 1);
}

function observeGc(): { stop(): { totalMs: number; majorMs: number; maxMs: number } } {
  let totalMs = 0;
  let majorMs = 0;
  let maxMs = 0;
  const observer = new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) {
      totalMs += entry.duration;
      if (entry.duration > maxMs) maxMs = entry.duration;
      const kind = (entry as unknown as { detail?: { kind?: number } }).detail?.kind;
      if (kind === perfConstants.NODE_PERFORMANCE_GC_MAJOR) majorMs += entry.duration;
    }
  });
  observer.observe({ entryTypes: ['gc'] });
  return {
    stop() {
      observer.disconnect();
      return { totalMs, majorMs, maxMs };
    },
  };
}
