import { startServer } from '../src/runtime/server.js';
import { duration, epochMs, human, resultLine, round, spawnLoadClient, type BenchContext, type Scenario } from './lib/common.js';
import { ensureDataset, replayDatasetSpec } from './lib/dataset.js';
import { startBareServer } from './lib/bare-server.js';
import { benchConfig, freshDataDir, removeDataDir } from './lib/system.js';
import { installBenchTags } from './lib/tags.js';

interface IngestReport {
  startedAt: number;
  finishedAt: number;
  requests: number;
  accepted: number;
  statuses: Record<string, number>;
  p50_us: number;
  p99_us: number;
  max_us: number;
}

/**
 * Events/s over HTTP: a client process POSTs the first events of the replay
 * dataset as NDJSON batches (closed loop, a few requests in flight) to a fresh
 * server with the 50 tags; the figure runs from the first request to the engine
 * having processed and stored every event. Baseline: the same client against
 * a bare node:http server that parses each line and counts it in a Map.
 */
export const scenario: Scenario = {
  name: 'serving-ingest-http',
  description: 'events/s through POST /v1/events (NDJSON batches from a second process) with 50 tags, vs. a bare node:http parse+count server',
  async run(ctx: BenchContext) {
    const dataset = await ensureDataset(replayDatasetSpec(ctx.quick), ctx.log);
    const events = Math.min(dataset.events, ctx.quick ? 20_000 : 300_000);
    const batch = 1_000;
    const concurrency = 4;
    const client = spawnLoadClient({ mode: 'ingest', file: dataset.file, events, batch, concurrency });
    await client.next('ready');

    const bare = await startBareServer();
    client.send({ type: 'start', url: bare.url });
    const base = await client.next<IngestReport>('done');
    await bare.close();
    const baseEps = base.accepted / ((base.finishedAt - base.startedAt) / 1000);
    ctx.log(`bare server: ${human(baseEps)} events/s`);

    const dir = freshDataDir('ingest-http');
    const server = await startServer(benchConfig(dir));
    await installBenchTags(server.system);
    await server.system.engine.drain();
    ctx.log(`posting ${events} events to ${server.url}`);
    client.send({ type: 'start', url: server.url });
    const run = await client.next<IngestReport>('done');
    await server.system.ingestor.mark();
    await server.system.engine.drain();
    const drainedAt = epochMs();
    client.send({ type: 'exit' });
    await client.exited;
    const entities = server.system.engine.stats().partitions.reduce((n, p) => n + p.entities, 0);
    await server.close();
    removeDataDir(dir);

    const eps = run.accepted / ((drainedAt - run.startedAt) / 1000);
    const ackedEps = run.accepted / ((run.finishedAt - run.startedAt) / 1000);
    ctx.log(`portrait: ${human(eps)} events/s processed, ${human(ackedEps)} events/s acknowledged`);
    const common = { events, batch_events: batch, concurrency, tags: 50 };
    ctx.emit(
      resultLine('serving-ingest-http/bare-node-http', { ops_per_s: baseEps, p50_us: base.p50_us, p99_us: base.p99_us }, {
        ...common,
        role: 'baseline',
        statuses: base.statuses,
        description: 'same client; node:http server that JSON-parses each line and counts it in a Map',
      }),
    );
    ctx.emit(
      resultLine('serving-ingest-http', { ops_per_s: eps, p50_us: run.p50_us, p99_us: run.p99_us }, {
        ...common,
        baseline: 'serving-ingest-http/bare-node-http',
        baseline_ops_per_s: round(baseEps, 1),
        ratio_to_baseline: round(eps / baseEps, 4),
        acknowledged_events_per_s: round(ackedEps, 1),
        accepted: run.accepted,
        statuses: run.statuses,
        entities,
        seconds_to_processed: round((drainedAt - run.startedAt) / 1000, 2),
        seconds_to_acknowledged: round((run.finishedAt - run.startedAt) / 1000, 2),
        request_max_us: round(run.max_us),
        table: {
          figure: `HTTP ingest events/s (NDJSON x${batch}, ${concurrency} in flight)`,
          value: `${human(eps)} /s processed (${human(ackedEps)} /s acked; req p99 ${duration(run.p99_us)})`,
          baseline: `bare node:http ${human(baseEps)} /s`,
          ratio: `${((eps / baseEps) * 100).toFixed(1)} %`,
          target: '—',
          met: null,
        },
      }),
    );
  },
};
