import { once } from 'node:events';
import { createWriteStream, existsSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { RuleDocument } from '../../src/definitions/index.js';
import { EventGenerator } from '../../src/ingest/index.js';
import { cachePath } from './common.js';

/** A rule-benchmark input: demo events (logins, payments, transfers, orders, carts, coupons…) of many users. */
export interface RuleDataset {
  file: string;
  events: number;
  users: number;
  distinctUsers: number;
  firstTime: number;
  lastTime: number;
}

/**
 * The NDJSON file of `events` events of the seeded demo generator over
 * `users` users (Zipf exponent 0.4, so most of the key space is touched),
 * 200 events per second of event time, 2 % out of order by up to 5 s.
 * Generated once into `.cache/bench/data`.
 */
export async function ensureRuleDataset(users: number, events: number): Promise<RuleDataset> {
  const dir = cachePath('data');
  const base = `rules-demo-u${users}-e${events}`;
  const file = join(dir, `${base}.ndjson`);
  const manifest = join(dir, `${base}.json`);
  if (existsSync(manifest) && existsSync(file)) {
    const m = JSON.parse(readFileSync(manifest, 'utf8')) as RuleDataset & { bytes: number };
    // The file is where it was found: the checkout (and its cache) may have moved since it was made.
    if (statSync(file).size === m.bytes) return { ...m, file };
  }
  const gen = new EventGenerator({ seed: 7, users, devices: Math.round(users * 0.8), eventsPerSecond: 200, skew: 0.4, startTime: Date.UTC(2024, 0, 1), maxActiveSessions: 50_000 });
  const tmp = `${file}.tmp`;
  const out = createWriteStream(tmp, { highWaterMark: 1 << 20 });
  const seen = new Set<string>();
  let bytes = 0;
  let firstTime = Infinity;
  let lastTime = -Infinity;
  let chunk: string[] = [];
  for (let i = 0; i < events; i++) {
    const e = gen.next();
    seen.add(e.key);
    if (e.time < firstTime) firstTime = e.time;
    if (e.time > lastTime) lastTime = e.time;
    chunk.push(JSON.stringify({ type: e.type, time: e.time, user_id: e.key, ...e.attrs }));
    if (chunk.length === 8192 || i === events - 1) {
      const text = `${chunk.join('\n')}\n`;
      bytes += Buffer.byteLength(text);
      chunk = [];
      if (!out.write(text)) await once(out, 'drain');
    }
  }
  out.end();
  await once(out, 'finish');
  renameSync(tmp, file);
  const result: RuleDataset & { bytes: number } = { file, events, users, distinctUsers: seen.size, firstTime, lastTime, bytes };
  writeFileSync(manifest, JSON.stringify(result, null, 2));
  return result;
}

/**
 * `n` rules of mixed kinds, as operators would write them: aggregates over
 * sliding and tumbling windows (some keyed by `{user_id, shop_id}` or by
 * `device_id`), sequences with `within` and timed-out or absent steps (decided
 * by timers), repetitions and plain predicates; event-time and arrival order.
 * Rules differ in their thresholds, so they are all distinct computations.
 */
export function benchRules(n: number): RuleDocument[] {
  const out: RuleDocument[] = [];
  for (let i = 0; i < n; i++) {
    const id = `r${i}`;
    const v = i % 97;
    const ordering = i % 3 === 0 ? 'arrival' : 'event-time';
    switch (i % 8) {
      case 0:
        out.push({ id, key: ['user_id'], ordering, condition: { aggregate: { fn: 'sum', field: 'amount', eventTypes: ['payment'], filter: 'attrs.success == true', window: { type: 'sliding', size: '10m', slide: '1m' } }, op: '>=', value: 500 + v * 50 } });
        break;
      case 1:
        out.push({ id, key: ['user_id'], ordering, condition: { sequence: { pattern: [{ name: 'fail', eventTypes: ['login'], where: 'event.attrs.success == false', times: 3 + (v % 3) }], within: '2m', skip: 'skipPastLastEvent' } } });
        break;
      case 2:
        out.push({
          id,
          key: ['user_id'],
          ordering,
          condition: {
            sequence: {
              pattern: [
                { name: 'order', eventTypes: ['order_created'], where: `event.attrs.amount >= ${v * 5}` },
                { name: 'paid', eventTypes: ['payment'], where: 'event.attrs.order_id == matched.order[0].attrs.order_id' },
              ],
              within: `${10 + (v % 10)}m`,
            },
            on: 'timeout',
          },
        });
        break;
      case 3:
        out.push({
          id,
          key: ['user_id'],
          ordering,
          condition: {
            sequence: {
              pattern: [
                { name: 'cart', eventTypes: ['add_to_cart'], where: `event.attrs.price >= ${v}` },
                { name: 'order', eventTypes: ['order_created'], contiguity: 'notFollowedBy' },
              ],
              within: `${20 + (v % 20)}m`,
            },
          },
        });
        break;
      case 4:
        out.push({ id, key: ['user_id', 'shop_id'], ordering, condition: { aggregate: { fn: 'sum', field: 'amount', eventTypes: ['payment', 'order_created'], window: { type: 'sliding', size: '10m', slide: '1m' } }, op: '>=', value: 1000 + v * 100 } });
        break;
      case 5:
        out.push({ id, key: ['device_id'], ordering, condition: { aggregate: { fn: 'count', eventTypes: ['coupon_claim', 'login'], window: { type: 'tumbling', size: '1h' } }, op: '>=', value: 5 + (v % 10) } });
        break;
      case 6:
        out.push({ id, key: ['user_id'], ordering, condition: { all: [{ expr: `event.attrs.amount > ${2000 + v * 100}` }, { aggregate: { fn: 'count', eventTypes: ['transfer'], window: { type: 'sliding', size: '1h', slide: '5m' } }, op: '>=', value: 2 }] } });
        break;
      default:
        out.push({
          id,
          key: ['user_id'],
          ordering,
          condition: {
            sequence: {
              pattern: [
                { name: 'first', eventTypes: ['transfer'] },
                { name: 'bigger', eventTypes: ['transfer'], where: `event.attrs.amount > matched.first[0].attrs.amount + ${v}` },
              ],
              within: '30m',
            },
          },
        });
    }
  }
  return out;
}

/** An import document (`POST /v1/definitions:import`) putting rules online. */
export function importDocument(rules: ReadonlyArray<RuleDocument>): Record<string, unknown> {
  return {
    format: 'portrait-definitions',
    formatVersion: 1,
    definitions: rules.map((r) => ({ kind: 'rule', id: r.id, status: 'online', versions: [{ version: 1, document: r }] })),
  };
}
