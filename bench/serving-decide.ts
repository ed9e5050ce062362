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
      const decideBefore = await serverBuckets(server.url, '/v1/decide');
      const client = spawnLoadClient({ mode: 'rate-decide', rate: RATE, durationS, warmupS, users: 10_000, path: '/v1/decide' });
      await client.next('ready');
      client.send({ type: 'start', url: server.url });
      const run = await client.next<RateDecideReport>('done');
      client.send({ type: 'exit' });
      await client.exited;
      const decideServer = serverView(decideBefore, await serverBuckets(server.url, '/v1/decide'));
      const baseClient = spawnLoadClient({ mode: 'rate-decide', rate: RATE, durationS, warmupS, users: 10_000, path: '/v1/events' });
      await baseClient.next('ready');
      baseClient.send({ type: 'start', url: server.url });
      const base = await baseClient.next<RateDecideReport>('done');
      baseClient.send({ type: 'exit' });
      await baseClient.exited;
      ctx.log(`decide p50 ${duration(run.p50_us)} p99 ${duration(run.p99_us)} (${run.decisions} decisions; in the server: ${decideServer.over10msShare === null ? '—' : `${(decideServer.over10msShare * 100).toFixed(2)} % over 10 ms, p99 <= ${decideServer.p99AtMostMs} ms`}); ingest p50 ${duration(base.p50_us)} p99 ${duration(base.p99_us)}`);
      const ok = run.statuses['200'] ?? 0;
      const met = run.p99_us <= P99_TARGET_US && ok === run.requests && run.achieved_per_s >= RATE * 0.95;
      ctx.emit(
        resultLine('serving-decide/ingest', { ops_per_s: base.achieved_per_s, p50_us: base.p50_us, p99_us: base.p99_us }, {
          role: 'baseline',
          offered_per_s: RATE,
          statuses: base.statuses,
          max_us: round(base.max_us),
          description: 'same client and events, POST /v1/events (answered once durable)',
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
          target: `p99 <= ${P99_TARGET_US / 1000} ms at ${RATE} req/s`,
          target_met: met,
          table: {
            figure: `POST /v1/decide at ${human(RATE)} req/s, 100 rules online`,
            value: `p50 ${duration(run.p50_us)}, p99 ${duration(run.p99_us)} at ${human(run.achieved_per_s)} /s achieved`,
            baseline: `POST /v1/events p50 ${duration(base.p50_us)}, p99 ${duration(base.p99_us)}`,
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

/** Cumulative counts of the server's request-duration histogram for one route (all statuses), by bucket bound in seconds. */
async function serverBuckets(url: string, route: string): Promise<Map<number, number>> {
  const res = await fetch(`${url}/metrics`, { signal: AbortSignal.timeout(10_000) });
  const text = await res.text();
  const buckets = new Map<number, number>();
  for (const line of text.split('\n')) {
    if (!line.startsWith('portrait_http_request_duration_seconds_bucket{') || !line.includes(`route="${route}"`)) continue;
    const le = /le="([^"]+)"/.exec(line)?.[1];
    if (le === undefined) continue;
    const bound = le === '+Inf' ? Infinity : Number(le);
    buckets.set(bound, (buckets.get(bound) ?? 0) + Number(line.slice(line.lastIndexOf(' ') + 1)));
  }
  return buckets;
}

/**
 * What the server measured for the requests of one run (warm-up included),
 * from the histogram's growth: the share over 10 ms and the smallest bucket
 * bound that holds 99 % of them. Latency seen by the client adds the client's
 * own scheduling on the same two cores.
 */
function serverView(before: Map<number, number>, after: Map<number, number>): { count: number; over10msShare: number | null; p99AtMostMs: number | null } {
  const bounds = [...after.keys()].sort((a, b) => a - b);
  const grown = (b: number): number => (after.get(b) ?? 0) - (before.get(b) ?? 0);
  const count = grown(Infinity);
  if (count <= 0) return { count: 0, over10msShare: null, p99AtMostMs: null };
  const within10 = grown(0.01);
  const p99 = bounds.find((b) => grown(b) >= 0.99 * count) ?? Infinity;
  return { count, over10msShare: round((count - within10) / count, 4), p99AtMostMs: p99 === Infinity ? null : p99 * 1000 };
}
