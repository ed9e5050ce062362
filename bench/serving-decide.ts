import { startServer } from '../src/runtime/server.js';
import { duration, human, resultLine, round, spawnLoadClient, type BenchContext, type Scenario } from './lib/common.js';
import { benchRules, importDocument } from './lib/rules.js';
import { benchConfig, freshDataDir, removeDataDir } from './lib/system.js';

interface RateDecideReport {
  offered_per_s: number;
  achieved_per_s: number;
  requests: number;
  measured_requests: number;
  statuses: Record<string, number>;
  decisions: number;
  p50_us: number;
  p99_us: number;
  max_us: number;
}

const RATE = 1_000;
const P99_TARGET_US = 10_000;

/**
 * `POST /v1/decide` at a fixed 1,000 requests/s from a second process, with
 * 100 rules online (a third of them in arrival order, so they answer in the
 * call): each call appends the event durably, waits for the engine to process
 * it and answers the decisions it caused. Baseline: the same client posting
 * the same events to `POST /v1/events` (answered once durable, not processed).
 * Beside each, the server's durable log writes in the same stretch
 * (`portrait_log_write_duration_seconds`), which both calls wait for, and for
 * decide where its calls waited (`portrait_decide_wait_seconds`).
 */
export const scenario: Scenario = {
  name: 'serving-decide',
  description: 'POST /v1/decide p50/p99 at a fixed 1k req/s from a second process with 100 rules online, vs. plain POST /v1/events',
  async run(ctx: BenchContext) {
    const durationS = ctx.quick ? 5 : 30;
    const warmupS = ctx.quick ? 1 : 5;
    const dir = freshDataDir('decide');
    const server = await startServer(benchConfig(dir));
    try {
      await server.system.definitions.importAll(importDocument(benchRules(100)));
      const before = await serverHistograms(server.url);
      const client = spawnLoadClient({ mode: 'rate-decide', rate: RATE, durationS, warmupS, users: 10_000, path: '/v1/decide' });
      await client.next('ready');
      client.send({ type: 'start', url: server.url });
      const run = await client.next<RateDecideReport>('done');
      client.send({ type: 'exit' });
      await client.exited;
      const afterDecide = await serverHistograms(server.url);
      const decideServer = serverView(before.decide, afterDecide.decide);
      const decideWrites = serverView(before.writes, afterDecide.writes);
      const waitAppend = serverView(before.append, afterDecide.append);
      const waitEngine = serverView(before.engine, afterDecide.engine);
      const baseClient = spawnLoadClient({ mode: 'rate-decide', rate: RATE, durationS, warmupS, users: 10_000, path: '/v1/events' });
      await baseClient.next('ready');
      baseClient.send({ type: 'start', url: server.url });
      const base = await baseClient.next<RateDecideReport>('done');
      baseClient.send({ type: 'exit' });
      await baseClient.exited;
      const baseWrites = serverView(afterDecide.writes, (await serverHistograms(server.url)).writes);
      ctx.log(
        `decide p50 ${duration(run.p50_us)} p99 ${duration(run.p99_us)} (${run.decisions} decisions; in the server: ${shareText(decideServer)}; waiting for the append: ${shareText(waitAppend)}, for the engine: ${shareText(waitEngine)}; durable log writes: ${shareText(decideWrites)}); ` +
          `ingest p50 ${duration(base.p50_us)} p99 ${duration(base.p99_us)} (durable log writes: ${shareText(baseWrites)})`,
      );
      const ok = run.statuses['200'] ?? 0;
      const met = run.p99_us <= P99_TARGET_US && ok === run.requests && run.achieved_per_s >= RATE * 0.95;
      ctx.emit(
        resultLine('serving-decide/ingest', { ops_per_s: base.achieved_per_s, p50_us: base.p50_us, p99_us: base.p99_us }, {
          role: 'baseline',
          offered_per_s: RATE,
          statuses: base.statuses,
          max_us: round(base.max_us),
          description: 'same client and events, POST /v1/events (answered once durable)',
          log_writes: baseWrites.count,
          log_writes_over_10ms_share: baseWrites.over10msShare,
          log_write_p99_at_most_ms: baseWrites.p99AtMostMs,
        }),
      );
      ctx.emit(
        resultLine('serving-decide', { ops_per_s: run.achieved_per_s, p50_us: run.p50_us, p99_us: run.p99_us }, {
          baseline: 'serving-decide/ingest',
          baseline_p50_us: round(base.p50_us),
          baseline_p99_us: round(base.p99_us),
          offered_per_s: RATE,
          duration_s: durationS,
          rules_online: 100,
          statuses: run.statuses,
          decisions: run.decisions,
          max_us: round(run.max_us),
          server_requests: decideServer.count,
          server_over_10ms_share: decideServer.over10msShare,
          server_p99_at_most_ms: decideServer.p99AtMostMs,
          wait_append_over_10ms_share: waitAppend.over10msShare,
          wait_append_p99_at_most_ms: waitAppend.p99AtMostMs,
          wait_engine_over_10ms_share: waitEngine.over10msShare,
          wait_engine_p99_at_most_ms: waitEngine.p99AtMostMs,
          log_writes: decideWrites.count,
          log_writes_over_10ms_share: decideWrites.over10msShare,
          log_write_p99_at_most_ms: decideWrites.p99AtMostMs,
          target: `p99 <= ${P99_TARGET_US / 1000} ms at ${RATE} req/s`,
          target_met: met,
          table: {
            figure: `POST /v1/decide at ${human(RATE)} req/s, 100 rules online`,
            value: `p50 ${duration(run.p50_us)}, p99 ${duration(run.p99_us)} at ${human(run.achieved_per_s)} /s achieved`,
            baseline: `POST /v1/events p50 ${duration(base.p50_us)}, p99 ${duration(base.p99_us)}; durable log writes during decide: ${shareText(decideWrites)}`,
            ratio: `p99 ${(run.p99_us / base.p99_us).toFixed(1)}x`,
            target: 'p99 <= 10 ms',
            met,
          },
        }),
      );
    } finally {
      await server.close();
      removeDataDir(dir);
    }
  },
};

/** Cumulative counts of a histogram by bucket bound in seconds, summed over the series it was read from. */
type Buckets = Map<number, number>;

/**
 * One scrape of the server's `/metrics`: the request-duration histogram of
 * `/v1/decide` (all statuses), the durable log writes
 * (`portrait_log_write_duration_seconds`) and where decide calls waited
 * (`portrait_decide_wait_seconds`, by phase).
 */
async function serverHistograms(url: string): Promise<{ decide: Buckets; writes: Buckets; append: Buckets; engine: Buckets }> {
  const res = await fetch(`${url}/metrics`, { signal: AbortSignal.timeout(10_000) });
  const lines = (await res.text()).split('\n');
  return {
    decide: histogramBuckets(lines, 'portrait_http_request_duration_seconds', 'route="/v1/decide"'),
    writes: histogramBuckets(lines, 'portrait_log_write_duration_seconds', ''),
    append: histogramBuckets(lines, 'portrait_decide_wait_seconds', 'phase="append"'),
    engine: histogramBuckets(lines, 'portrait_decide_wait_seconds', 'phase="engine"'),
  };
}

/** A histogram of a `/metrics` text, summed over the series whose labels contain `having`. */
function histogramBuckets(lines: ReadonlyArray<string>, metric: string, having: string): Buckets {
  const buckets: Buckets = new Map();
  for (const line of lines) {
    if (!line.startsWith(`${metric}_bucket{`) || !line.includes(having)) continue;
    const le = /le="([^"]+)"/.exec(line)?.[1];
    if (le === undefined) continue;
    const bound = le === '+Inf' ? Infinity : Number(le);
    buckets.set(bound, (buckets.get(bound) ?? 0) + Number(line.slice(line.lastIndexOf(' ') + 1)));
  }
  return buckets;
}

/** `x % over 10 ms, p99 <= y ms` of a {@link serverView}. */
function shareText(v: ReturnType<typeof serverView>): string {
  if (v.over10msShare === null) return '—';
  return `${(v.over10msShare * 100).toFixed(2)} % over 10 ms, p99 <= ${v.p99AtMostMs === null ? '>2.5 s' : `${v.p99AtMostMs} ms`}`;
}

/**
 * What a server histogram recorded during one run (warm-up included), from its
 * growth: the share over 10 ms and the smallest bucket bound that holds 99 %.
 * For requests: latency seen by the client adds the client's own scheduling on
 * the same two cores. For durable log writes: every call waits for one, so a
 * disk that stalls shows here before it shows in the calls.
 */
function serverView(before: Buckets, after: Buckets): { count: number; over10msShare: number | null; p99AtMostMs: number | null } {
  const bounds = [...after.keys()].sort((a, b) => a - b);
  const grown = (b: number): number => (after.get(b) ?? 0) - (before.get(b) ?? 0);
  const count = grown(Infinity);
  if (count <= 0) return { count: 0, over10msShare: null, p99AtMostMs: null };
  const within10 = grown(0.01);
  const p99 = bounds.find((b) => grown(b) >= 0.99 * count) ?? Infinity;
  return { count, over10msShare: round((count - within10) / count, 4), p99AtMostMs: p99 === Infinity ? null : p99 * 1000 };
}
