import { startServer } from '../src/runtime/server.js';
import { duration, human, resultLine, round, spawnLoadClient, type BenchContext, type Scenario } from './lib/common.js';
import { startBareServer } from './lib/bare-server.js';
import { benchConfig, freshDataDir, removeDataDir } from './lib/system.js';
import { installBenchTags } from './lib/tags.js';

interface RatePostReport {
  offered_events_per_s: number;
  achieved_events_per_s: number;
  requests: number;
  measured_requests: number;
  answered: number;
  statuses: Record<string, number>;
  not_visible: number;
  probe_checked: number;
  probe_missing: number;
  p50_us: number;
  p99_us: number;
  max_us: number;
  service_p50_us: number;
  service_p99_us: number;
  probe_p50_us: number;
  probe_p99_us: number;
}

/** Targets of the issue. */
const RATE_TARGET = 20_000;
const P99_TARGET_US = 100_000;

/**
 * Event-to-visible-tag latency at a fixed rate: a client process POSTs
 * batches of 100 events every 5 ms (20k events/s, open loop) with
 * `?wait=true`, which answers once the batch is processed and the profiles are
 * stored; latency runs from each batch's scheduled send time to the answer.
 * Every batch carries a probe event of a new user whose `buy_count_total` the
 * client then reads back with a GET (the probe figures include that GET).
 * Baseline: the same client against a bare node:http server that parses and
 * counts the events and answers at once.
 */
export const scenario: Scenario = {
  name: 'serving-event-latency',
  description: 'event -> visible tag latency p50/p99 at a fixed 20k events/s (and at 2k/s) from a second process, vs. a bare node:http server',
  async run(ctx: BenchContext) {
    // The target rate, then a tenth of it: tells saturation apart from the latency of the path itself.
    // A --quick run (a smoke test) measures only the target rate, briefly.
    await measure(ctx, RATE_TARGET, ctx.quick ? 4 : 30, ctx.quick ? 1 : 5, true);
    if (!ctx.quick) await measure(ctx, RATE_TARGET / 10, 20, 5, false);
  },
};

async function measure(ctx: BenchContext, rate: number, durationS: number, warmupS: number, primary: boolean): Promise<void> {
  // One request every 5 ms, as many producers with small batches would send.
  const batch = Math.max(2, Math.round(rate / 200));
  const client = spawnLoadClient({ mode: 'rate-post', rate, batch, durationS, warmupS, users: 1_100_000, seed: 7, probeTag: 'buy_count_total' });
  await client.next('ready');

  const bare = await startBareServer();
  client.send({ type: 'start', url: bare.url });
  const base = await client.next<RatePostReport>('done');
  await bare.close();
  ctx.log(`bare server: p50 ${duration(base.p50_us)}, p99 ${duration(base.p99_us)} at ${human(base.achieved_events_per_s)} events/s`);

  const dir = freshDataDir('event-latency');
  const server = await startServer(benchConfig(dir));
  await installBenchTags(server.system);
  await server.system.engine.drain();
  ctx.log(`sending ${rate} events/s for ${durationS} s to ${server.url}`);
  client.send({ type: 'start', url: server.url });
  const run = await client.next<RatePostReport>('done');
  client.send({ type: 'exit' });
  await client.exited;
  const stats = server.system.engine.stats();
  const lag = stats.partitions.reduce((n, p) => n + p.lag, 0);
  const entities = stats.partitions.reduce((n, p) => n + p.entities, 0);
  // Whatever the engine has not caught up with is dropped with the data dir.
  await server.app.close();
  await server.system.close({ checkpoint: false });
  removeDataDir(dir);
  ctx.log(`portrait: p50 ${duration(run.p50_us)}, p99 ${duration(run.p99_us)} at ${human(run.achieved_events_per_s)} events/s (not visible in time: ${run.not_visible})`);

  const name = primary ? 'serving-event-latency' : `serving-event-latency@${rate / 1000}k`;
  const met = run.p99_us <= P99_TARGET_US && run.achieved_events_per_s >= rate * 0.95 && run.not_visible === 0 && run.probe_missing === 0;
  const common = { offered_events_per_s: rate, batch_events: batch, duration_s: durationS, warmup_s: warmupS, tags: 50 };
  ctx.emit(
    resultLine(`${name}/bare-node-http`, { ops_per_s: base.achieved_events_per_s, p50_us: base.p50_us, p99_us: base.p99_us }, {
      ...common,
      role: 'baseline',
      statuses: base.statuses,
      service_p50_us: round(base.service_p50_us),
      service_p99_us: round(base.service_p99_us),
      probe_p50_us: round(base.probe_p50_us),
      probe_p99_us: round(base.probe_p99_us),
      description: 'same client; node:http server that parses and counts the events and answers at once',
    }),
  );
  ctx.emit(
    resultLine(name, { ops_per_s: run.achieved_events_per_s, p50_us: run.p50_us, p99_us: run.p99_us }, {
      ...common,
      baseline: `${name}/bare-node-http`,
      baseline_p50_us: round(base.p50_us),
      baseline_p99_us: round(base.p99_us),
      max_us: round(run.max_us),
      service_p50_us: round(run.service_p50_us),
      service_p99_us: round(run.service_p99_us),
      statuses: run.statuses,
      answered: run.answered,
      measured_requests: run.measured_requests,
      not_visible_within_wait_timeout: run.not_visible,
      probe_checked: run.probe_checked,
      probe_missing: run.probe_missing,
      probe_p50_us: round(run.probe_p50_us),
      probe_p99_us: round(run.probe_p99_us),
      engine_lag_at_end: lag,
      entities,
      target: primary ? `p99 <= ${P99_TARGET_US / 1000} ms at ${RATE_TARGET} events/s` : null,
      target_met: primary ? met : null,
      table: {
        figure: `event -> visible tag at ${human(rate)} events/s${primary ? '' : ' (a tenth of the target rate)'}`,
        value: `p50 ${duration(run.p50_us)}, p99 ${duration(run.p99_us)} at ${human(run.achieved_events_per_s)} /s achieved${run.not_visible > 0 ? `, ${run.not_visible} batches not visible within 10 s` : ''}`,
        baseline: `bare node:http p50 ${duration(base.p50_us)}, p99 ${duration(base.p99_us)}`,
        ratio: `p99 ${(run.p99_us / base.p99_us).toFixed(1)}x`,
        target: primary ? 'p99 <= 100 ms at 20 k/s' : '—',
        met: primary ? met : null,
      },
    }),
  );
}
