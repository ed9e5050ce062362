import type { Decision } from '../src/engine/index.js';
import { openEmbeddedSystem, type EmbeddedSystem } from '../src/runtime/embedded-system.js';
import { fullGc, human, mib, percentiles, resultLine, round, type BenchContext, type Scenario } from './lib/common.js';
import { benchRules, ensureRuleDataset, importDocument, type RuleDataset } from './lib/rules.js';
import { benchConfig, budgetSignal, freshDataDir, removeDataDir, replayAndDrain } from './lib/system.js';

/** Target of the issue: with 1,000 rules at least this share of the rate with 10 rules. */
const SHARE_TARGET = 0.5;
/** Runs of 10 and of 1,000 rules (alternating), each rate the median of its runs. */
const TARGET_RUNS = 3;
/** Target of the issue: a rule change takes effect within this. */
const UPDATE_TARGET_MS = 1_000;
/** An update with no effect after this fails the scenario. */
const NO_EFFECT_MS = 30_000;

interface RunFigures {
  rules: number;
  eventsPerSecond: number;
  events: number;
  complete: boolean;
  seconds: number;
  decisions: number;
  ruleKeys: number;
  heapMiB: number;
  rssMiB: number;
  importS: number;
  /** events/s of each run of this rule count, in run order, when it ran more than once. */
  samples?: number[];
}

/**
 * File replay through the engine with 10, 100, 1,000 and 10,000 online rules
 * of mixed kinds (aggregates, sequences with timers, repetitions, predicates,
 * keys by user, by user and shop and by device) over a demo stream of 400k
 * events in which ~50k users appear (each user's sessions repeat); events/s
 * and memory per rule count, beside the same replay with no rule. Then the
 * same rule counts over a stream of 9M events in which ~1M users appear (full
 * size only). Then, with 1,000 rules running, the time from a rule update to
 * its first decision.
 */
export const scenario: Scenario = {
  name: 'engine-rules',
  description: 'events/s and memory with 10, 100, 1,000, 10,000 rules of mixed kinds over ~50k and ~1M users, vs. no rules; rule update -> first effect',
  async run(ctx: BenchContext) {
    const users = ctx.quick ? 20_000 : 1_000_000;
    const events = ctx.quick ? 40_000 : 400_000;
    const counts = ctx.quick ? [0, 10, 100, 1_000] : [0, 10, 100, 1_000, 10_000];
    const budgetS = ctx.quick ? 20 : 120;
    const data = await ensureRuleDataset(users, events);
    ctx.log(`dataset: ${data.events} demo events, ${data.distinctUsers} users`);
    const figures: RunFigures[] = [];
    const run = async (n: number): Promise<RunFigures> => {
      const f = await replayWithRules(ctx, data, n, budgetS);
      ctx.log(`${n} rules: ${human(f.eventsPerSecond)} events/s${f.complete ? '' : ` (${human(f.events)} events in the ${budgetS} s budget)`}, ${f.decisions} decisions, heap ${f.heapMiB} MiB`);
      return f;
    };
    for (const n of counts) figures.push(await run(n));
    // The target is a ratio of two replays of a few seconds each: the machine's speed drifts by a
    // tenth within minutes, so 10 and 1,000 rules run again, alternately, and each keeps its median run.
    const samples = new Map<number, RunFigures[]>([10, 1_000].map((n) => [n, [figures.find((f) => f.rules === n)!]]));
    for (let k = 1; k < TARGET_RUNS; k++) for (const n of [10, 1_000]) samples.get(n)!.push(await run(n));
    for (const [n, runs] of samples) {
      const sorted = [...runs].sort((a, b) => a.eventsPerSecond - b.eventsPerSecond);
      figures[figures.findIndex((f) => f.rules === n)] = { ...sorted[sorted.length >> 1]!, samples: runs.map((r) => round(r.eventsPerSecond, 1)) };
    }
    const none = figures[0]!;
    const ten = figures.find((f) => f.rules === 10)!;
    for (const f of figures) {
      if (f.rules === 0) {
        ctx.emit(
          resultLine('engine-rules/none', { ops_per_s: f.eventsPerSecond, p50_us: null, p99_us: null }, {
            role: 'baseline',
            rules: 0,
            events: f.events,
            seconds: round(f.seconds, 2),
            heap_mib: f.heapMiB,
            rss_mib: f.rssMiB,
            description: 'the same replay with no rule online (log, engine, stores)',
          }),
        );
        continue;
      }
      const share = f.eventsPerSecond / ten.eventsPerSecond;
      const isTarget = f.rules === 1_000;
      ctx.emit(
        resultLine(`engine-rules/${f.rules}`, { ops_per_s: f.eventsPerSecond, p50_us: null, p99_us: null }, {
          baseline: 'engine-rules/none',
          baseline_ops_per_s: round(none.eventsPerSecond, 1),
          ratio_to_none: round(f.eventsPerSecond / none.eventsPerSecond, 4),
          ratio_to_10_rules: round(share, 4),
          rules: f.rules,
          events: f.events,
          complete: f.complete,
          budget_s: budgetS,
          max_lag_records: lagLimit(f.rules),
          dataset_events: data.events,
          dataset_users: data.distinctUsers,
          seconds: round(f.seconds, 2),
          decisions: f.decisions,
          rule_keys_with_state: f.ruleKeys,
          heap_mib: f.heapMiB,
          rss_mib: f.rssMiB,
          heap_mib_over_no_rules: round(f.heapMiB - none.heapMiB, 1),
          import_s: round(f.importS, 2),
          ...(f.samples === undefined ? {} : { runs_events_per_s: f.samples, figure_of: 'median run' }),
          ...(isTarget ? { target: `>= ${SHARE_TARGET * 100}% of the rate with 10 rules`, target_met: share >= SHARE_TARGET } : {}),
          table: {
            figure: `events/s with ${human(f.rules)} rules (${human(f.events)} events${f.complete ? '' : ` in ${budgetS} s`}, ${human(data.distinctUsers)} users)`,
            value: `${human(f.eventsPerSecond)} /s, heap ${f.heapMiB} MiB`,
            baseline: `no rules ${human(none.eventsPerSecond)} /s, heap ${none.heapMiB} MiB`,
            ratio: `${(100 * f.eventsPerSecond / none.eventsPerSecond).toFixed(1)} % (${(share * 100).toFixed(1)} % of 10 rules)`,
            target: isTarget ? '>= 50 % of 10 rules' : '—',
            met: isTarget ? share >= SHARE_TARGET : null,
          },
        }),
      );
    }
    if (!ctx.quick) await wideKeys(ctx, budgetS);
    await ruleUpdateLatency(ctx, data);
  },
};

/**
 * Generator users and events of the wide-key replay: the demo generator's
 * sessions (about nine events each) over a key space of 20M users, so about a
 * million distinct users appear.
 */
const WIDE_USERS = 20_000_000;
const WIDE_EVENTS = 9_000_000;

/**
 * 10, 100, 1,000 and 10,000 rules over a stream in which about a million
 * distinct users appear: events/s and memory when rule state spreads over a
 * million keys, and the 1,000-rule target on that stream too.
 */
async function wideKeys(ctx: BenchContext, budgetS: number): Promise<void> {
  const data = await ensureRuleDataset(WIDE_USERS, WIDE_EVENTS);
  ctx.log(`wide-key dataset: ${data.events} demo events, ${data.distinctUsers} users`);
  const none = await replayWithRules(ctx, data, 0, budgetS);
  ctx.log(`no rules over ${human(data.distinctUsers)} users: ${human(none.eventsPerSecond)} events/s, heap ${none.heapMiB} MiB, RSS ${none.rssMiB} MiB`);
  let ten: RunFigures | undefined;
  for (const n of [10, 100, 1_000, 10_000]) {
    const f = await replayWithRules(ctx, data, n, budgetS);
    ten ??= f;
    ctx.log(`${n} rules over ${human(data.distinctUsers)} users: ${human(f.eventsPerSecond)} events/s${f.complete ? '' : ` (${human(f.events)} events in the ${budgetS} s budget)`}, ${f.decisions} decisions, heap ${f.heapMiB} MiB, RSS ${f.rssMiB} MiB`);
    const share = f.eventsPerSecond / ten.eventsPerSecond;
    const isTarget = n === 1_000;
    ctx.emit(
      resultLine(`engine-rules/1M-keys/${n}`, { ops_per_s: f.eventsPerSecond, p50_us: null, p99_us: null }, {
        baseline_ops_per_s: round(none.eventsPerSecond, 1),
        baseline_heap_mib: none.heapMiB,
        ratio_to_none: round(f.eventsPerSecond / none.eventsPerSecond, 4),
        ratio_to_10_rules: round(share, 4),
        rules: n,
        events: f.events,
        complete: f.complete,
        budget_s: budgetS,
        max_lag_records: lagLimit(n),
        dataset_events: data.events,
        dataset_users: data.distinctUsers,
        seconds: round(f.seconds, 2),
        decisions: f.decisions,
        heap_mib: f.heapMiB,
        rss_mib: f.rssMiB,
        heap_mib_over_no_rules: round(f.heapMiB - none.heapMiB, 1),
        import_s: round(f.importS, 2),
        ...(isTarget ? { target: `>= ${SHARE_TARGET * 100}% of the rate with 10 rules`, target_met: share >= SHARE_TARGET } : {}),
        table: {
          figure: `events/s with ${human(n)} rules over ${human(data.distinctUsers)} users (${human(f.events)} events${f.complete ? '' : ` in ${budgetS} s`})`,
          value: `${human(f.eventsPerSecond)} /s, heap ${f.heapMiB} MiB, RSS ${f.rssMiB} MiB`,
          baseline: `no rules ${human(none.eventsPerSecond)} /s, heap ${none.heapMiB} MiB`,
          ratio: `${(100 * f.eventsPerSecond / none.eventsPerSecond).toFixed(1)} % (${(share * 100).toFixed(1)} % of 10 rules)`,
          target: isTarget ? '>= 50 % of 10 rules' : '—',
          met: isTarget ? share >= SHARE_TARGET : null,
        },
      }),
    );
  }
}

/**
 * The replay may run this far ahead of the engine: the time budget then
 * bounds the run (the records appended when it ends are still processed and
 * counted) instead of appending the whole file for a slow engine to drain.
 */
function lagLimit(rules: number): number {
  return rules >= 10_000 ? 2_000 : 20_000;
}

async function replayWithRules(ctx: BenchContext, data: RuleDataset, n: number, budgetS: number): Promise<RunFigures> {
  const dir = freshDataDir(`rules-${n}`);
  const system = await openEmbeddedSystem(benchConfig(dir, { 'ingest.maxLagRecords': lagLimit(n) }));
  let importS = 0;
  try {
    if (n > 0) {
      const started = performance.now();
      await system.definitions.importAll(importDocument(benchRules(n)));
      await system.engine.drain();
      importS = (performance.now() - started) / 1000;
    }
    let decisions = 0;
    const stop = system.decisions.subscribe((batch) => (decisions += batch.length));
    fullGc();
    const budget = budgetSignal(budgetS);
    const started = performance.now();
    const { progress } = await replayAndDrain(system, data.file, { signal: budget.signal });
    const seconds = (performance.now() - started) / 1000;
    budget.cancel();
    stop();
    fullGc();
    const mem = process.memoryUsage();
    let ruleKeys = 0;
    for (const c of system.engine.ruleCounters().values()) ruleKeys += c.keys;
    return {
      rules: n,
      eventsPerSecond: progress.appended / seconds,
      events: progress.appended,
      complete: progress.appended === data.events,
      seconds,
      decisions,
      ruleKeys,
      heapMiB: round(mib(mem.heapUsed), 1),
      rssMiB: round(mib(mem.rss), 1),
      importS,
    };
  } finally {
    await system.close();
    removeDataDir(dir);
    void ctx;
  }
}

/**
 * With 1,000 rules online and events flowing, updates a probe rule
 * (`transfer` amount above a threshold, arrival order) between a threshold no
 * event reaches and one every transfer reaches, and times the update call to
 * the first decision of the new version.
 */
async function ruleUpdateLatency(ctx: BenchContext, data: RuleDataset): Promise<void> {
  const dir = freshDataDir('rules-update');
  const system = await openEmbeddedSystem(benchConfig(dir, { 'ingest.maxLagRecords': lagLimit(1_000) }));
  const rounds = ctx.quick ? 5 : 20;
  const latencies: number[] = [];
  try {
    await system.definitions.importAll(importDocument(benchRules(1_000)));
    const probe = (threshold: number, version?: number) => ({ id: 'probe', key: ['user_id'], ordering: 'arrival', trigger: { eventTypes: ['transfer'] }, condition: { expr: `event.attrs.amount > ${threshold}` }, ...(version === undefined ? {} : { version }) });
    await system.definitions.createRule(probe(1e12));
    await system.definitions.setRuleStatus('probe', 'online');
    await replayAndDrain(system, data.file, { signal: budgetSignal(ctx.quick ? 5 : 20).signal });
    let t = system.engine.streamTime();
    let sent = 0;
    // A steady trickle of transfers (one every 5 ms) while the rule changes.
    const trickle = setInterval(() => {
      t += 10;
      sent++;
      void system.ingestor.appendEvents([{ type: 'transfer', time: t, key: `probe-user-${sent % 100}`, attrs: { to_account: 'x', amount: 10, device_id: 'd', channel: 'app' } }]);
    }, 5);
    try {
      for (let round = 0; round < rounds; round++) {
        const current = (await system.definitions.getRule('probe')).version;
        const decided = new Promise<number>((resolve, reject) => {
          const timer = setTimeout(() => {
            stop();
            reject(new Error(`no decision of probe version ${current + 1} within ${NO_EFFECT_MS} ms of its update`));
          }, NO_EFFECT_MS);
          const stop = system.decisions.subscribe((batch: ReadonlyArray<Decision>) => {
            if (batch.some((d) => d.ruleId === 'probe' && d.version === current + 1)) {
              stop();
              clearTimeout(timer);
              resolve(performance.now());
            }
          });
        });
        const started = performance.now();
        await system.definitions.updateRule('probe', probe(0, current));
        latencies.push((await decided) - started);
        // Back to a threshold no event reaches, so the next round starts from silence.
        await system.definitions.updateRule('probe', probe(1e12, current + 1));
      }
    } finally {
      clearInterval(trickle);
    }
  } finally {
    await system.close();
    removeDataDir(dir);
  }
  const [p50, p99, max] = percentiles(Float64Array.from(latencies), [50, 99, 100]);
  ctx.log(`rule update -> first decision: p50 ${p50!.toFixed(1)} ms, max ${max!.toFixed(1)} ms over ${latencies.length} updates`);
  const met = max! <= UPDATE_TARGET_MS;
  ctx.emit(
    resultLine('engine-rules/update-to-effect', { ops_per_s: null, p50_us: p50! * 1000, p99_us: p99! * 1000 }, {
      rules_online: 1_001,
      updates: latencies.length,
      max_us: round(max! * 1000),
      description: 'time from DefinitionService.updateRule (stored in PGlite, new revision in the log) to the first decision of the new version, with events flowing every 5 ms',
      target: `<= ${UPDATE_TARGET_MS} ms`,
      target_met: met,
      table: {
        figure: 'rule update -> first effect (1,001 rules online, events every 5 ms)',
        value: `p50 ${p50!.toFixed(1)} ms, max ${max!.toFixed(1)} ms (${latencies.length} updates)`,
        baseline: 'event spacing 5 ms',
        ratio: '—',
        target: '<= 1 s',
        met,
      },
    }),
  );
}
