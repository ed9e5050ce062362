import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startServer } from '../src/runtime/server.js';
import { cachePath, duration, human, resultLine, round, spawnLoadClient, type BenchContext, type Scenario } from './lib/common.js';
import { ensureDataset, replayDatasetSpec } from './lib/dataset.js';
import { startBareServer } from './lib/bare-server.js';
import { benchConfig, ensureState } from './lib/system.js';

interface RateGetReport {
  offered_per_s: number;
  achieved_per_s: number;
  requests: number;
  measured_requests: number;
  statuses: Record<string, number>;
  mean_body_bytes: number;
  max_closed_loop_per_s: number | null;
  p50_us: number;
  p99_us: number;
  max_us: number;
  service_p50_us: number;
  service_p99_us: number;
}

const RATE_TARGET = 5_000;
const P99_TARGET_US = 5_000;
/** Ids the client picks from (uniformly), all with a stored profile. */
const SAMPLE_IDS = 10_000;

/**
 * Profile GET latency at a fixed request rate: a client process sends
 * GET /v1/profiles/:id at 5k requests/s (open loop; latency from each
 * request's scheduled time) for random users of the replayed state left by
 * engine-replay (the server holds all of its profiles), then as fast as 32
 * requests in flight allow (the capacity). Baseline: the same
 * client and ids against a bare node:http server answering the same JSON
 * bodies from a Map.
 */
export const scenario: Scenario = {
  name: 'serving-profile-get',
  description: 'GET /v1/profiles/:id p50/p99 at a fixed 5k req/s from a second process against the replayed state, vs. a bare node:http Map server',
  async run(ctx: BenchContext) {
    const dataset = await ensureDataset(replayDatasetSpec(ctx.quick), ctx.log);
    const state = await ensureState(dataset, ctx);
    const durationS = ctx.quick ? 4 : 30;
    const warmupS = ctx.quick ? 1 : 5;

    const opened = performance.now();
    const server = await startServer(benchConfig(state.dir));
    const openMs = performance.now() - opened;
    const profiles = server.system.store.profiles.countProfiles();
    ctx.log(`server on ${state.dir}: ${profiles} profiles, opened in ${duration(openMs * 1000)}`);

    // Random users that have a profile, and the exact bodies the API returns for them (for the baseline).
    const ids: string[] = [];
    let x = 2463534242;
    while (ids.length < Math.min(SAMPLE_IDS, profiles)) {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      const id = `u${(x >>> 0) % dataset.spec.users}`;
      if (server.system.store.profiles.getProfile(id) !== undefined) ids.push(id);
    }
    const bodies = new Map<string, Buffer>();
    for (const id of ids) {
      const res = await server.app.inject({ method: 'GET', url: `/v1/profiles/${id}` });
      bodies.set(id, Buffer.from(res.body));
    }
    const idsFile = join(cachePath('runs'), 'profile-get-ids.json');
    writeFileSync(idsFile, JSON.stringify(ids));

    const client = spawnLoadClient({ mode: 'rate-get', rate: RATE_TARGET, durationS, warmupS, idsFile, maxS: ctx.quick ? 2 : 10, maxConcurrency: 32 });
    await client.next('ready');
    ctx.log(`GET at ${RATE_TARGET}/s for ${durationS} s`);
    client.send({ type: 'start', url: server.url });
    const run = await client.next<RateGetReport>('done');
    await server.close();

    const bare = await startBareServer(bodies);
    client.send({ type: 'start', url: bare.url });
    const base = await client.next<RateGetReport>('done');
    client.send({ type: 'exit' });
    await client.exited;
    await bare.close();
    ctx.log(`portrait p50 ${duration(run.p50_us)} p99 ${duration(run.p99_us)}; bare p50 ${duration(base.p50_us)} p99 ${duration(base.p99_us)}`);

    const ok = run.statuses['200'] ?? 0;
    const met = run.p99_us <= P99_TARGET_US && run.achieved_per_s >= RATE_TARGET * 0.95 && ok === run.requests;
    const common = { offered_per_s: RATE_TARGET, duration_s: durationS, warmup_s: warmupS, profiles_stored: profiles, sample_ids: ids.length, mean_body_bytes: run.mean_body_bytes };
    ctx.emit(
      resultLine('serving-profile-get/bare-node-http', { ops_per_s: base.achieved_per_s, p50_us: base.p50_us, p99_us: base.p99_us }, {
        ...common,
        role: 'baseline',
        statuses: base.statuses,
        max_closed_loop_per_s: base.max_closed_loop_per_s === null ? null : round(base.max_closed_loop_per_s),
        max_us: round(base.max_us),
        service_p50_us: round(base.service_p50_us),
        service_p99_us: round(base.service_p99_us),
        description: 'same client and ids; node:http server answering the same JSON bodies from a Map',
      }),
    );
    ctx.emit(
      resultLine('serving-profile-get', { ops_per_s: run.achieved_per_s, p50_us: run.p50_us, p99_us: run.p99_us }, {
        ...common,
        baseline: 'serving-profile-get/bare-node-http',
        baseline_p50_us: round(base.p50_us),
        baseline_p99_us: round(base.p99_us),
        statuses: run.statuses,
        max_closed_loop_per_s: run.max_closed_loop_per_s === null ? null : round(run.max_closed_loop_per_s),
        max_us: round(run.max_us),
        service_p50_us: round(run.service_p50_us),
        service_p99_us: round(run.service_p99_us),
        server_open_s: round(openMs / 1000, 2),
        target: `p99 <= ${P99_TARGET_US / 1000} ms at ${RATE_TARGET} req/s`,
        target_met: met,
        table: {
          figure: `profile GET at ${human(RATE_TARGET)} req/s (${human(profiles)} profiles stored)`,
          value: `p50 ${duration(run.p50_us)}, p99 ${duration(run.p99_us)} at ${human(run.achieved_per_s)} /s achieved (capacity ${human(run.max_closed_loop_per_s ?? NaN)} /s)`,
          baseline: `bare node:http p50 ${duration(base.p50_us)}, p99 ${duration(base.p99_us)} (capacity ${human(base.max_closed_loop_per_s ?? NaN)} /s)`,
          ratio: `p99 ${(run.p99_us / base.p99_us).toFixed(1)}x`,
          target: 'p99 <= 5 ms at 5 k/s',
          met,
        },
      }),
    );
  },
};
