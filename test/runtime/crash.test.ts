import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { EventGenerator } from '../../src/ingest/index.js';

// The real thing: the compiled CLI serving over HTTP, killed with SIGKILL in the
// middle of a stream and restarted on its data folder, must end with exactly the
// profiles (values, times of change, versions) of a run that was never killed.

const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
const cli = join(repoRoot, 'dist/src/cli/main.js');
const DATA = resolve(repoRoot, '../shared/data/UserBehavior.csv');

/** Rows sent: the first ones of the public file, in time order. */
const ROWS = 24_000;
/** Rows per request. */
const PER_REQUEST = 300;

const TAGS = [
  ...['pv', 'cart', 'fav', 'buy'].map((b) => ({ id: `${b}_count`, kind: 'statistic', eventTypes: [b], aggregate: 'count', window: { type: 'lifetime' } })),
  { id: 'items', kind: 'statistic', eventTypes: ['pv', 'cart', 'fav', 'buy'], aggregate: 'distinct', field: 'item_id', window: { type: 'lifetime' } },
  { id: 'categories_10m', kind: 'statistic', eventTypes: ['pv', 'cart', 'fav', 'buy'], aggregate: 'distinct', field: 'category_id', window: { type: 'sliding', size: '10m', slide: '1m' } },
  { id: 'pv_5m', kind: 'statistic', eventTypes: ['pv'], aggregate: 'count', window: { type: 'sliding', size: '5m', slide: '1m' } },
  { id: 'carts_30m', kind: 'statistic', eventTypes: ['cart'], aggregate: 'count', window: { type: 'tumbling', size: '30m' } },
  { id: 'last_item', kind: 'statistic', eventTypes: ['pv'], aggregate: 'latest', field: 'item_id', window: { type: 'lifetime' } },
  { id: 'first_seen', kind: 'statistic', eventTypes: ['pv', 'cart', 'fav', 'buy'], aggregate: 'first', window: { type: 'lifetime' } },
  { id: 'engaged', kind: 'rule', condition: 'tags.pv_5m >= 3 || tags.buy_count >= 1' },
  { id: 'shopper', kind: 'rule', condition: "tags.cart_count + tags.buy_count >= 2 ? 'shopper' : 'browser'" },
];

/** Events of the generated scenario. */
const GENERATED = 20_000;

/** Tags over the generator's demo events: numeric windows, distinct, first/latest, rules. */
const GENERATED_TAGS = [
  { id: 'views_1m', kind: 'statistic', eventTypes: ['page_view'], aggregate: 'count', window: { type: 'sliding', size: '1m', slide: '5s' } },
  { id: 'clicks_2m', kind: 'statistic', eventTypes: ['click'], aggregate: 'count', window: { type: 'sliding', size: '2m', slide: '10s' } },
  { id: 'categories_2m', kind: 'statistic', eventTypes: ['page_view', 'click'], aggregate: 'distinct', field: 'category_id', window: { type: 'sliding', size: '2m', slide: '10s' } },
  { id: 'cart_qty_1m', kind: 'statistic', eventTypes: ['add_to_cart'], aggregate: 'sum', field: 'quantity', window: { type: 'tumbling', size: '1m' } },
  { id: 'avg_quantity', kind: 'statistic', eventTypes: ['add_to_cart'], aggregate: 'avg', field: 'quantity', window: { type: 'lifetime' } },
  { id: 'max_transfer_2m', kind: 'statistic', eventTypes: ['transfer'], aggregate: 'max', field: 'amount', window: { type: 'sliding', size: '2m', slide: '10s' } },
  { id: 'spend', kind: 'statistic', eventTypes: ['payment'], filter: 'attrs.success == true', aggregate: 'sum', field: 'amount', window: { type: 'lifetime' } },
  { id: 'min_order_5m', kind: 'statistic', eventTypes: ['order_created'], aggregate: 'min', field: 'amount', window: { type: 'sliding', size: '5m', slide: '30s' } },
  { id: 'devices_5m', kind: 'statistic', eventTypes: ['login'], aggregate: 'distinct', field: 'device_id', window: { type: 'sliding', size: '5m', slide: '30s' } },
  { id: 'last_channel', kind: 'statistic', eventTypes: ['login'], aggregate: 'latest', field: 'channel', window: { type: 'lifetime' } },
  { id: 'first_order_at', kind: 'statistic', eventTypes: ['order_created'], aggregate: 'first', window: { type: 'lifetime' } },
  { id: 'busy', kind: 'rule', condition: 'tags.views_1m + tags.clicks_2m >= 5' },
  { id: 'big_mover', kind: 'rule', condition: 'has(tags.max_transfer_2m) && tags.max_transfer_2m > 1000.0' },
  { id: 'segment', kind: 'rule', condition: "tags.busy ? (tags.spend > 100.0 ? 'vip' : 'active') : 'casual'" },
];

interface Server {
  child: ChildProcess;
  url: string;
  output: () => string;
}

const dirs: string[] = [];

async function tempDir(prefix: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  dirs.push(dir);
  return dir;
}
const children: ChildProcess[] = [];

afterEach(async () => {
  for (const child of children.splice(0)) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  await Promise.all(dirs.splice(0).map((d) => rm(d, { recursive: true, force: true })));
});

beforeAll(() => {
  const build = spawnSync('npm', ['run', 'build'], { cwd: repoRoot, encoding: 'utf8' });
  if (build.status !== 0) throw new Error(`npm run build failed:\n${build.stdout}\n${build.stderr}`);
}, 180_000);

async function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address !== null ? resolvePort(address.port) : reject(new Error('no port'))));
    });
  });
}

/** Starts `portrait serve` on a data folder and waits until it answers. */
async function serve(dataDir: string, extraEnv: Record<string, string> = {}): Promise<Server> {
  const port = await freePort();
  const child = spawn(process.execPath, [cli, 'serve'], {
    cwd: repoRoot,
    env: {
      ...process.env,
      PORT: String(port),
      HOST: '127.0.0.1',
      PORTRAIT_DATA_DIR: dataDir,
      PORTRAIT_CHECKPOINT_INTERVAL_MS: '300',
      PORTRAIT_LOG_LEVEL: 'warn',
      PORTRAIT_DEMO: 'false',
      ...extraEnv,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  let out = '';
  child.stdout!.on('data', (b: Buffer) => (out += b.toString()));
  child.stderr!.on('data', (b: Buffer) => (out += b.toString()));
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`portrait serve exited with ${child.exitCode}:\n${out}`);
    try {
      const res = await fetch(`${url}/healthz`);
      if (res.ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`portrait serve did not answer within 60 s:\n${out}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return { child, url, output: () => out };
}

async function call(server: Server, method: string, path: string, body?: string | object, contentType = 'application/json'): Promise<{ status: number; json: any }> {
  const res = await fetch(`${server.url}${path}`, {
    method,
    ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body), headers: { 'content-type': contentType } }),
  });
  const text = await res.text();
  // any: a JSON document from the server under test, checked field by field below
  return { status: res.status, json: text === '' ? undefined : (JSON.parse(text) as any) };
}

async function stats(server: Server): Promise<any> {
  return (await call(server, 'GET', '/v1/stats')).json;
}

/**
 * Waits until the engine processed the whole log and an idle mark brought every
 * partition to `maxTime`, then until the profiles that produced are stored: a
 * last event no tag reads, sent with `?wait=true`, is answered only once
 * everything before it in the log is reflected in stored profiles.
 */
async function settled(server: Server, maxTime: number): Promise<void> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const s = await stats(server);
    const partitions = s.engine.partitions as Array<{ lag: number; streamTime: number | null }>;
    if (partitions.every((p) => p.lag === 0 && p.streamTime === maxTime)) break;
    if (Date.now() > deadline) throw new Error(`engine did not settle: ${JSON.stringify(partitions)}\n${server.output()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  const flush = await call(server, 'POST', '/v1/events?wait=true', { type: 'ad_click', user_id: 'settle', ad_id: 'a', time: maxTime });
  expect(flush.json).toMatchObject({ accepted: 1, visible: true });
}

/** Every stored profile as the API shows it, by id. */
async function allProfiles(server: Server): Promise<Map<string, unknown>> {
  const out = new Map<string, unknown>();
  let after: string | undefined;
  for (;;) {
    const page = await call(server, 'GET', `/v1/profiles?limit=1000${after === undefined ? '' : `&after=${encodeURIComponent(after)}`}`);
    expect(page.status).toBe(200);
    const ids = page.json.ids as string[];
    if (ids.length === 0) return out;
    const batch = await call(server, 'POST', '/v1/profiles:batchGet', { ids });
    expect(batch.status).toBe(200);
    expect(batch.json.missing).toEqual([]);
    for (const p of batch.json.profiles as Array<{ id: string }>) out.set(p.id, p);
    after = ids[ids.length - 1];
  }
}

async function stop(server: Server, signal: NodeJS.Signals): Promise<void> {
  const exited = new Promise<void>((r) => server.child.once('exit', () => r()));
  if (server.child.exitCode === null && server.child.signalCode === null) server.child.kill(signal);
  await exited;
}

/**
 * Runs a stream of request bodies twice: once uninterrupted, once with a
 * SIGKILL between two acknowledged requests (after at least two checkpoints
 * and with requests after the last one), then a restart on the same folder
 * that receives only the requests not acknowledged before the kill. Returns
 * both runs' profiles.
 */
async function crashAndCompare(scenario: {
  tags: ReadonlyArray<object>;
  requests: ReadonlyArray<{ body: string | object; contentType: string; count: number }>;
  maxTime: number;
  killAt: number;
  config?: object;
}): Promise<{ expected: Map<string, unknown>; actual: Map<string, unknown> }> {
  const env = async (): Promise<Record<string, string>> => {
    if (scenario.config === undefined) return {};
    const file = join(await tempDir('portrait-crash-config-'), 'config.json');
    await writeFile(file, JSON.stringify(scenario.config));
    return { PORTRAIT_CONFIG: file };
  };
  const extraEnv = await env();
  const send = async (server: Server, request: (typeof scenario.requests)[number]): Promise<void> => {
    const res = await call(server, 'POST', `/v1/events${request.contentType === 'text/csv' ? '?schema=taobao-user-behavior' : ''}`, request.body, request.contentType);
    expect(res.status).toBe(200);
    expect(res.json).toMatchObject({ accepted: request.count, rejected: 0 });
  };
  const createTags = async (server: Server): Promise<void> => {
    for (const doc of scenario.tags) {
      expect((await call(server, 'POST', '/v1/tags', doc)).status).toBe(201);
      expect((await call(server, 'POST', `/v1/tags/${(doc as { id: string }).id}/online`)).status).toBe(200);
    }
  };

  // Uninterrupted.
  const clean = await serve(await tempDir('portrait-crash-a-'), extraEnv);
  await createTags(clean);
  for (const request of scenario.requests) await send(clean, request);
  await settled(clean, scenario.maxTime);
  const expected = await allProfiles(clean);
  await stop(clean, 'SIGTERM');

  // Killed between two acknowledged requests, after at least two checkpoints, with requests after the last one.
  const dir = await tempDir('portrait-crash-b-');
  let server = await serve(dir, extraEnv);
  await createTags(server);
  let sent = 0;
  for (; sent < scenario.killAt; sent++) await send(server, scenario.requests[sent]!);
  const deadline = Date.now() + 30_000;
  while ((await stats(server)).engine.checkpoints < 2) {
    if (Date.now() > deadline) throw new Error('no checkpoint was taken');
    await new Promise((r) => setTimeout(r, 50));
  }
  for (const end = sent + 5; sent < end; sent++) await send(server, scenario.requests[sent]!);
  await stop(server, 'SIGKILL');
  expect(server.child.signalCode).toBe('SIGKILL');

  // Restart and send only what was not acknowledged before the kill.
  server = await serve(dir, extraEnv);
  expect((await stats(server)).ingest.accepted).toBe(0); // a new process: nothing sent to it yet
  for (; sent < scenario.requests.length; sent++) await send(server, scenario.requests[sent]!);
  await settled(server, scenario.maxTime);
  const actual = await allProfiles(server);
  await stop(server, 'SIGTERM');
  return { expected, actual };
}

/** Profiles that differ between the two runs (none is the goal), the first few. */
function differences(expected: Map<string, unknown>, actual: Map<string, unknown>): Array<{ id: string; expected: unknown; actual: unknown }> {
  const out: Array<{ id: string; expected: unknown; actual: unknown }> = [];
  for (const id of new Set([...expected.keys(), ...actual.keys()])) {
    if (JSON.stringify(actual.get(id)) !== JSON.stringify(expected.get(id))) out.push({ id, expected: expected.get(id), actual: actual.get(id) });
  }
  return out;
}

const haveData = existsSync(DATA);

describe('portrait serve killed with SIGKILL mid-stream, restarted on its data folder', () => {
  it.skipIf(!haveData)('ends with exactly the profiles of an uninterrupted run: UserBehavior.csv rows', async () => {
    const lines = readFileSync(DATA, 'utf8').split('\n').slice(0, ROWS);
    const requests = [];
    for (let i = 0; i < lines.length; i += PER_REQUEST) {
      const rows = lines.slice(i, i + PER_REQUEST);
      requests.push({ body: `${rows.join('\n')}\n`, contentType: 'text/csv', count: rows.length });
    }
    const maxTime = Math.max(...lines.map((l) => Number(l.split(',')[4]) * 1000));
    const { expected, actual } = await crashAndCompare({ tags: TAGS, requests, maxTime, killAt: Math.floor(requests.length * 0.8) });
    expect(expected.size).toBeGreaterThan(10_000);
    expect(differences(expected, actual).slice(0, 3)).toEqual([]);
    // Nothing lost, nothing counted twice.
    const total = (m: Map<string, unknown>, tag: string) => [...m.values()].reduce((n: number, p: any) => n + (p.tags[tag]?.value ?? 0), 0);
    expect(['pv_count', 'cart_count', 'fav_count', 'buy_count'].map((t) => total(actual, t)).reduce((a, b) => a + b, 0)).toBe(ROWS);
  }, 300_000);

  it('ends with exactly the profiles of an uninterrupted run: generated stream with numeric windows, rules and a state TTL', async () => {
    // In time order (marks fall elsewhere in the two runs; in-order streams must not care).
    const events = new EventGenerator({ seed: 7, users: 400, eventsPerSecond: 40, outOfOrderFraction: 0 }).take(GENERATED);
    const requests = [];
    for (let i = 0; i < events.length; i += PER_REQUEST) {
      const batch = events.slice(i, i + PER_REQUEST).map((e) => ({ type: e.type, user_id: e.key, time: e.time, ...e.attrs }));
      requests.push({ body: batch, contentType: 'application/json', count: batch.length });
    }
    const maxTime = Math.max(...events.map((e) => e.time));
    const { expected, actual } = await crashAndCompare({
      tags: GENERATED_TAGS,
      requests,
      maxTime,
      killAt: Math.floor(requests.length * 0.8),
      config: { engine: { stateTtlMs: 90_000 } },
    });
    expect(expected.size).toBeGreaterThan(100);
    expect(differences(expected, actual).slice(0, 3)).toEqual([]);
    const total = (m: Map<string, unknown>, tag: string) => [...m.values()].reduce((n: number, p: any) => n + (p.tags[tag]?.value ?? 0), 0);
    expect(total(actual, 'views_1m')).toBeGreaterThan(0);
  }, 300_000);
});
