/**
 * Load client for the HTTP scenarios, run as a second process so the server
 * under test does not share its event loop. Talks JSON lines with the parent
 * (bench/lib/common.ts `spawnNode`): it prepares its requests, says `ready`,
 * and for every `{type:"start", url}` runs the load against `url` and answers
 * `done` with its figures; `{type:"exit"}` ends it.
 *
 * Modes (argv[2], a JSON object):
 * - `ingest`: POST /v1/events NDJSON batches of the first `events` lines of
 *   `file`, `concurrency` requests in flight (closed loop).
 * - `rate-post`: POST /v1/events?wait=true batches at a fixed event rate (open
 *   loop), each answered once its events are visible in stored profiles;
 *   latency from each request's scheduled send time. Each batch carries one
 *   probe event of a new key whose `buy_count_total` tag is then read back
 *   with a GET, to check (and time) visibility through the read path.
 * - `rate-decide`: POST one event (a transfer or a failed login of one of
 *   `users` users, alternating) to `path` (`/v1/decide`, or `/v1/events` for
 *   the baseline) at a fixed request rate (open loop); latency from each
 *   request's scheduled send time.
 * - `rate-get`: GET /v1/profiles/:id at a fixed request rate (open loop) over
 *   the ids in `idsFile`; latency from each request's scheduled send time.
 *   Then, for `maxS` seconds, as fast as `maxConcurrency` requests in flight
 *   allow (closed loop): the capacity the fixed rate is a share of.
 */
import { Agent, request } from 'node:http';
import { readFileSync } from 'node:fs';
import { taobaoStyleEvents, readLines } from '../../src/ingest/index.js';
import { epochMs, messagesFromParent, percentiles, sendToParent } from './common.js';
import { priceOf } from './dataset.js';

type Mode =
  | { mode: 'ingest'; file: string; events: number; batch: number; concurrency: number }
  | { mode: 'rate-post'; rate: number; batch: number; durationS: number; warmupS: number; users: number; seed: number; probeTag: string }
  | { mode: 'rate-get'; rate: number; durationS: number; warmupS: number; idsFile: string; maxS: number; maxConcurrency: number }
  | { mode: 'rate-decide'; rate: number; durationS: number; warmupS: number; users: number; path: string };

interface Reply {
  status: number;
  body: string;
}

const agent = new Agent({ keepAlive: true, maxSockets: 256 });

function send(base: URL, method: string, path: string, body?: string | Buffer, contentType?: string): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string | number> = {};
    if (body !== undefined) {
      headers['content-type'] = contentType ?? 'application/x-ndjson';
      headers['content-length'] = Buffer.byteLength(body);
    }
    const req = request({ host: base.hostname, port: base.port, method, path, agent, headers, timeout: 60_000 }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.on('timeout', () => req.destroy(new Error('client timeout')));
    if (body !== undefined) req.write(body);
    req.end();
  });
}

function us(values: number[] | Float64Array): { p50_us: number; p99_us: number; max_us: number } {
  if (values.length === 0) return { p50_us: NaN, p99_us: NaN, max_us: NaN };
  const [p50, p99, max] = percentiles(Float64Array.from(values), [50, 99, 100]);
  return { p50_us: p50! * 1000, p99_us: p99! * 1000, max_us: max! * 1000 };
}

function count(map: Record<string, number>, key: string): void {
  map[key] = (map[key] ?? 0) + 1;
}

// ------------------------------------------------------------------ ingest

async function prepareIngest(m: Extract<Mode, { mode: 'ingest' }>): Promise<Buffer[]> {
  const bodies: Buffer[] = [];
  let batch: string[] = [];
  let n = 0;
  outer: for await (const lines of readLines(m.file)) {
    for (const line of lines) {
      if (line.length === 0) continue;
      batch.push(line);
      if (++n >= m.events) {
        break outer;
      }
      if (batch.length === m.batch) {
        bodies.push(Buffer.from(`${batch.join('\n')}\n`));
        batch = [];
      }
    }
  }
  if (batch.length > 0) bodies.push(Buffer.from(`${batch.join('\n')}\n`));
  return bodies;
}

async function runIngest(base: URL, m: Extract<Mode, { mode: 'ingest' }>, bodies: Buffer[]): Promise<Record<string, unknown>> {
  const latencies: number[] = [];
  const statuses: Record<string, number> = {};
  let accepted = 0;
  let next = 0;
  const startedAt = epochMs();
  const worker = async (): Promise<void> => {
    while (next < bodies.length) {
      const body = bodies[next++]!;
      const t = performance.now();
      let reply = await send(base, 'POST', '/v1/events', body);
      // The engine may fall behind the log: the server refuses with 503 and the client retries, as a real one would.
      while (reply.status === 503) {
        count(statuses, '503');
        await new Promise((r) => setTimeout(r, 50));
        reply = await send(base, 'POST', '/v1/events', body);
      }
      latencies.push(performance.now() - t);
      count(statuses, String(reply.status));
      if (reply.status === 200) accepted += (JSON.parse(reply.body) as { accepted: number }).accepted;
    }
  };
  await Promise.all(Array.from({ length: m.concurrency }, worker));
  const finishedAt = epochMs();
  return { startedAt, finishedAt, requests: bodies.length, accepted, statuses, ...us(latencies) };
}

// ------------------------------------------------------------------ rate-post

interface PostPlan {
  /** Per request: event line prefixes, each completed with `<time>}`. */
  parts: string[][];
  probes: string[];
}

function preparePost(m: Extract<Mode, { mode: 'rate-post' }>, run: string): PostPlan {
  const interval = (1000 * m.batch) / m.rate;
  const requests = Math.ceil((m.durationS * 1000) / interval);
  const parts: string[][] = [];
  const probes: string[] = [];
  const events = taobaoStyleEvents({ seed: m.seed, users: m.users, startTime: Date.now(), count: requests * (m.batch - 1), eventsPerSecond: m.rate });
  for (let r = 0; r < requests; r++) {
    const lines: string[] = [];
    for (let i = 0; i < m.batch - 1; i++) {
      const e = events.next().value!;
      const item = e.attrs.item_id as string;
      lines.push(`{"type":"${e.type}","user_id":"${e.key}","item_id":"${item}","category_id":"${e.attrs.category_id as string}","price":${priceOf(item)},"time":`);
    }
    const probe = `probe-${run}-${r}`;
    probes.push(probe);
    lines.push(`{"type":"buy","user_id":"${probe}","item_id":"1","category_id":"1","price":10,"time":`);
    parts.push(lines);
  }
  return { parts, probes };
}

async function runRatePost(base: URL, m: Extract<Mode, { mode: 'rate-post' }>, plan: PostPlan): Promise<Record<string, unknown>> {
  const interval = (1000 * m.batch) / m.rate;
  const total = plan.parts.length;
  const warmup = Math.floor((m.warmupS * 1000) / interval);
  const latency = new Float64Array(total).fill(NaN);
  const probeLatency = new Float64Array(total).fill(NaN);
  const service = new Float64Array(total).fill(NaN);
  const statuses: Record<string, number> = {};
  let notVisible = 0;
  let probeMissing = 0;
  let probeChecked = 0;
  let okEvents = 0;
  let lastDone = 0;
  const t0 = performance.now() + 20;
  const pending: Array<Promise<void>> = [];
  const fire = (i: number, scheduled: number): Promise<void> => {
    const now = Date.now();
    const body = plan.parts[i]!.map((p) => `${p}${now}}`).join('\n');
    const sentAt = performance.now();
    return send(base, 'POST', '/v1/events?wait=true', body).then(
      async (reply) => {
        const done = performance.now();
        count(statuses, String(reply.status));
        if (reply.status !== 200) return;
        latency[i] = done - scheduled;
        service[i] = done - sentAt;
        if (i >= warmup) okEvents += m.batch;
        lastDone = done;
        const visible = (JSON.parse(reply.body) as { visible?: boolean }).visible === true;
        if (!visible) {
          notVisible++;
          return;
        }
        const probe = await send(base, 'GET', `/v1/profiles/${plan.probes[i]!}?tags=${m.probeTag}`);
        probeChecked++;
        const value = probe.status === 200 ? (JSON.parse(probe.body) as { tags: Record<string, { value: unknown }> }).tags[m.probeTag]?.value : undefined;
        if (value === 1) probeLatency[i] = performance.now() - scheduled;
        else probeMissing++;
      },
      () => {
        count(statuses, 'error');
      },
    );
  };
  await new Promise<void>((resolve) => {
    let i = 0;
    const tick = (): void => {
      const now = performance.now();
      while (i < total && t0 + i * interval <= now) {
        pending.push(fire(i, t0 + i * interval));
        i++;
      }
      if (i < total) setTimeout(tick, Math.max(0, Math.min(1, t0 + i * interval - performance.now())));
      else resolve();
    };
    setTimeout(tick, Math.max(0, t0 - performance.now()));
  });
  const sentAll = performance.now();
  await Promise.all(pending);
  const measured = Array.from(latency.subarray(warmup)).filter((v) => !Number.isNaN(v));
  const probes = Array.from(probeLatency.subarray(warmup)).filter((v) => !Number.isNaN(v));
  const windowMs = Math.max(lastDone, sentAll) - (t0 + warmup * interval);
  const p = us(measured);
  const q = us(probes);
  const sv = us(Array.from(service.subarray(warmup)).filter((v) => !Number.isNaN(v)));
  return {
    service_p50_us: sv.p50_us,
    service_p99_us: sv.p99_us,
    offered_events_per_s: m.rate,
    achieved_events_per_s: okEvents / (windowMs / 1000),
    requests: total,
    measured_requests: total - warmup,
    answered: measured.length,
    statuses,
    not_visible: notVisible,
    probe_checked: probeChecked,
    probe_missing: probeMissing,
    ...p,
    probe_p50_us: q.p50_us,
    probe_p99_us: q.p99_us,
  };
}

// ------------------------------------------------------------------ rate-get

async function runRateGet(base: URL, m: Extract<Mode, { mode: 'rate-get' }>, ids: string[]): Promise<Record<string, unknown>> {
  const interval = 1000 / m.rate;
  const total = Math.ceil(m.durationS * m.rate);
  const warmup = Math.floor(m.warmupS * m.rate);
  const latency = new Float64Array(total).fill(NaN);
  const service = new Float64Array(total).fill(NaN);
  const statuses: Record<string, number> = {};
  let bytes = 0;
  let lastDone = 0;
  const pending: Array<Promise<void>> = [];
  const t0 = performance.now() + 20;
  let seed = 12345;
  const fire = (i: number, scheduled: number): Promise<void> => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    const id = ids[seed % ids.length]!;
    const sentAt = performance.now();
    return send(base, 'GET', `/v1/profiles/${encodeURIComponent(id)}`).then(
      (reply) => {
        const done = performance.now();
        count(statuses, String(reply.status));
        latency[i] = done - scheduled;
        service[i] = done - sentAt;
        bytes += reply.body.length;
        lastDone = done;
      },
      () => count(statuses, 'error'),
    );
  };
  await new Promise<void>((resolve) => {
    let i = 0;
    const tick = (): void => {
      const now = performance.now();
      while (i < total && t0 + i * interval <= now) {
        pending.push(fire(i, t0 + i * interval));
        i++;
      }
      if (i < total) setTimeout(tick, Math.max(0, Math.min(1, t0 + i * interval - performance.now())));
      else resolve();
    };
    setTimeout(tick, Math.max(0, t0 - performance.now()));
  });
  await Promise.all(pending);
  const measured = Array.from(latency.subarray(warmup)).filter((v) => !Number.isNaN(v));
  const windowMs = lastDone - (t0 + warmup * interval);
  const capacity = m.maxS > 0 ? await closedLoopGets(base, ids, m.maxS, m.maxConcurrency) : null;
  const sv = us(Array.from(service.subarray(warmup)).filter((v) => !Number.isNaN(v)));
  return {
    service_p50_us: sv.p50_us,
    service_p99_us: sv.p99_us,
    offered_per_s: m.rate,
    achieved_per_s: measured.length / (windowMs / 1000),
    requests: total,
    measured_requests: total - warmup,
    statuses,
    mean_body_bytes: Math.round(bytes / Math.max(1, total)),
    max_closed_loop_per_s: capacity,
    ...us(measured),
  };
}

/** Requests per second with `concurrency` GETs always in flight, for `seconds`. */
async function closedLoopGets(base: URL, ids: string[], seconds: number, concurrency: number): Promise<number> {
  const end = performance.now() + seconds * 1000;
  let done = 0;
  let i = 0;
  const started = performance.now();
  const worker = async (): Promise<void> => {
    while (performance.now() < end) {
      const id = ids[(i++ * 7919) % ids.length]!;
      await send(base, 'GET', `/v1/profiles/${encodeURIComponent(id)}`);
      done++;
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return done / ((performance.now() - started) / 1000);
}

// ------------------------------------------------------------------ rate-decide

async function runRateDecide(base: URL, m: Extract<Mode, { mode: 'rate-decide' }>): Promise<Record<string, unknown>> {
  const interval = 1000 / m.rate;
  const total = Math.ceil(m.durationS * m.rate);
  const warmup = Math.floor(m.warmupS * m.rate);
  const latency = new Float64Array(total).fill(NaN);
  const statuses: Record<string, number> = {};
  let decisions = 0;
  let lastDone = 0;
  const pending: Array<Promise<void>> = [];
  const t0 = performance.now() + 20;
  const fire = (i: number, scheduled: number): Promise<void> => {
    const user = `decide-u${(i * 7919) % m.users}`;
    const body =
      i % 2 === 0
        ? `{"type":"transfer","user_id":"${user}","to_account":"acct${i % 1000}","amount":${(i % 50) * 100},"device_id":"dev${i % 5000}"}`
        : `{"type":"login","user_id":"${user}","success":false,"device_id":"dev${i % 5000}"}`;
    return send(base, 'POST', m.path, body, 'application/json').then(
      (reply) => {
        const done = performance.now();
        count(statuses, String(reply.status));
        if (reply.status !== 200) return;
        latency[i] = done - scheduled;
        lastDone = done;
        const answer = JSON.parse(reply.body) as { decisions?: unknown[] };
        if (i >= warmup) decisions += answer.decisions?.length ?? 0;
      },
      () => count(statuses, 'error'),
    );
  };
  await new Promise<void>((resolve) => {
    let i = 0;
    const tick = (): void => {
      const now = performance.now();
      while (i < total && t0 + i * interval <= now) {
        pending.push(fire(i, t0 + i * interval));
        i++;
      }
      if (i < total) setTimeout(tick, Math.max(0, Math.min(1, t0 + i * interval - performance.now())));
      else resolve();
    };
    setTimeout(tick, Math.max(0, t0 - performance.now()));
  });
  await Promise.all(pending);
  const measured = Array.from(latency.subarray(warmup)).filter((v) => !Number.isNaN(v));
  const windowMs = lastDone - (t0 + warmup * interval);
  // Where in the run the slow calls were: per second of scheduled send time, the calls over 10 ms.
  const slowBySecond = new Array<number>(Math.ceil(m.durationS)).fill(0);
  for (let i = warmup; i < total; i++) if (latency[i]! > 10) slowBySecond[Math.floor((i * interval) / 1000)]!++;
  return { offered_per_s: m.rate, achieved_per_s: measured.length / (windowMs / 1000), requests: total, measured_requests: total - warmup, statuses, decisions, slow_by_second: slowBySecond, ...us(measured) };
}

// ------------------------------------------------------------------ main

async function main(): Promise<void> {
  const m = JSON.parse(process.argv[2] ?? '{}') as Mode;
  let ingestBodies: Buffer[] = [];
  let ids: string[] = [];
  if (m.mode === 'ingest') ingestBodies = await prepareIngest(m);
  if (m.mode === 'rate-get') ids = JSON.parse(readFileSync(m.idsFile, 'utf8')) as string[];
  sendToParent({ type: 'ready', requests: m.mode === 'ingest' ? ingestBodies.length : undefined });
  let runs = 0;
  for await (const message of messagesFromParent()) {
    if (message.type === 'exit') break;
    if (message.type !== 'start') continue;
    const base = new URL(String(message.url));
    runs++;
    let result: Record<string, unknown>;
    if (m.mode === 'ingest') result = await runIngest(base, m, ingestBodies);
    else if (m.mode === 'rate-post') result = await runRatePost(base, m, preparePost(m, `${process.pid}-${runs}`));
    else if (m.mode === 'rate-decide') result = await runRateDecide(base, m);
    else result = await runRateGet(base, m, ids);
    sendToParent({ type: 'done', ...result });
  }
  agent.destroy();
  process.exit(0);
}

main().catch((err: unknown) => {
  process.stderr.write(`http-client: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
