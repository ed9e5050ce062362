import { afterEach, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import type { StatisticTagDocument } from '../../src/definitions/index.js';
import { ControlType, type AttrValue, type Event, type LogRecord } from '../../src/engine/index.js';
import type { EmbeddedSystem } from '../../src/runtime/embedded-system.js';
import { cleanup, openTestApp, testConfig } from '../helpers/system.js';
import { byKey, expectedValue, isAdditive, type RefTag } from './reference.js';

afterEach(cleanup);

// Aligned to every window size used here, so bucket starts are easy to reason about.
const BASE = Date.UTC(2024, 0, 1);
const S = 1_000;

const WINDOWS = {
  lt: { type: 'lifetime' },
  tu: { type: 'tumbling', size: 10 * S },
  sl: { type: 'sliding', size: 10 * S, slide: 2 * S },
  sw: { type: 'sliding', size: 9 * S, slide: 3 * S },
} as const satisfies Record<string, StatisticTagDocument['window']>;

interface AggregateCase {
  name: string;
  aggregate: StatisticTagDocument['aggregate'];
  field?: string;
  filter?: [cel: string, js: (e: Event) => boolean];
}

// One tag per aggregate (and per variant: filter, field or none) and per window.
const AGGREGATES: AggregateCase[] = [
  { name: 'cnt', aggregate: 'count' },
  { name: 'cnt_ok', aggregate: 'count', filter: ['attrs.success == true', (e) => e.attrs.success === true] },
  {
    name: 'cnt_card',
    aggregate: 'count',
    // Events without a method make CEL throw ("no such key"): counted as filter errors, event skipped.
    filter: ['attrs.method == "card"', (e) => { if (!('method' in e.attrs)) throw new Error('no such key'); return e.attrs.method === 'card'; }],
  },
  { name: 'sum', aggregate: 'sum', field: 'amount' },
  { name: 'avg', aggregate: 'avg', field: 'amount' },
  { name: 'min', aggregate: 'min', field: 'amount' },
  { name: 'max', aggregate: 'max', field: 'amount' },
  { name: 'dst', aggregate: 'distinct', field: 'shop_id' },
  { name: 'fst', aggregate: 'first' },
  { name: 'fst_m', aggregate: 'first', field: 'method' },
  { name: 'lst', aggregate: 'last' },
  { name: 'lst_m', aggregate: 'last', field: 'method' },
  { name: 'ltst', aggregate: 'latest', field: 'method' },
  // `score` is not declared for payments; strings in it are type mismatches for a sum.
  { name: 'score', aggregate: 'sum', field: 'score' },
];

function allTags(): RefTag[] {
  const tags: RefTag[] = [];
  for (const [w, window] of Object.entries(WINDOWS)) {
    for (const a of AGGREGATES) {
      const doc: StatisticTagDocument = { id: `${a.name}_${w}`, kind: 'statistic', eventTypes: ['payment'], aggregate: a.aggregate, window };
      if (a.field !== undefined) doc.field = a.field;
      if (a.filter !== undefined) doc.filter = a.filter[0];
      tags.push(a.filter === undefined ? { doc } : { doc, filter: a.filter[1] });
    }
  }
  return tags;
}

async function putOnline(system: EmbeddedSystem, docs: ReadonlyArray<StatisticTagDocument>): Promise<void> {
  for (const doc of docs) {
    await system.definitions.createTag(doc);
    await system.definitions.setTagStatus(doc.id, 'online');
  }
}

/** Opens a system whose log receives only what the test sends (no idle marks), with the tags online. */
async function open(docs: ReadonlyArray<StatisticTagDocument>): Promise<{ system: EmbeddedSystem; app: FastifyInstance }> {
  const opened = await openTestApp(await testConfig(), { start: false });
  opened.system.engine.start();
  await putOnline(opened.system, docs);
  return opened;
}

interface PaymentInput {
  key: string;
  t: number;
  amount: number;
  success: boolean;
  method?: string;
  shop?: string;
  score?: AttrValue;
}

function payment(p: PaymentInput): Event {
  const attrs: Record<string, AttrValue> = { order_id: `o${p.t}`, amount: p.amount, success: p.success };
  if (p.method !== undefined) attrs.method = p.method;
  if (p.shop !== undefined) attrs.shop_id = p.shop;
  if (p.score !== undefined) attrs.score = p.score;
  return { type: 'payment', time: p.t, key: p.key, attrs };
}

/** Sends events through the HTTP API (validation, then the log). */
async function send(app: FastifyInstance, events: ReadonlyArray<Event>): Promise<void> {
  const body = events.map((e) => ({ type: e.type, user_id: e.key, time: e.time, ...e.attrs }));
  const res = await app.inject({ method: 'POST', url: '/v1/events', payload: body });
  expect(res.statusCode).toBe(200);
  expect(res.json()).toMatchObject({ accepted: events.length, rejected: 0 });
}

/** Moves every partition's stream time to `time` with a `$mark`, and waits until processed. */
async function markAt(system: EmbeddedSystem, time: number): Promise<void> {
  const mark: LogRecord = { type: ControlType.Mark, time, key: '', attrs: { now: Date.now() } };
  await system.ingestor.appendGroups(Array.from({ length: system.ingestor.partitionCount }, () => [mark]));
  await system.engine.drain();
}

/** Tag values as the API shows them, per id. */
async function shown(app: FastifyInstance, ids: string[]): Promise<Map<string, Record<string, unknown> | undefined>> {
  const res = await app.inject({ method: 'POST', url: '/v1/profiles:batchGet', payload: { ids } });
  expect(res.statusCode).toBe(200);
  const body = res.json() as { profiles: Array<{ id: string; tags: Record<string, { value: unknown }> }>; missing: string[] };
  const out = new Map<string, Record<string, unknown> | undefined>();
  for (const p of body.profiles) out.set(p.id, Object.fromEntries(Object.entries(p.tags).map(([id, t]) => [id, t.value])));
  for (const id of body.missing) out.set(id, undefined);
  return out;
}

/** What the API must show for one entity per the reference: the value, 0 for additive tags without one, nothing otherwise. */
function expectedView(tags: ReadonlyArray<RefTag>, events: ReadonlyArray<Event>, now: number): Record<string, unknown> {
  const view: Record<string, unknown> = {};
  for (const tag of tags) {
    const v = expectedValue(tag, events, now);
    if (v !== undefined) view[tag.doc.id] = v;
    else if (isAdditive(tag.doc)) view[tag.doc.id] = 0;
  }
  return view;
}

/** A small deterministic PRNG (mulberry32). */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('statistic windows', () => {
  it('shows, for every aggregate and window, the values of the documented semantics as time and events advance', async () => {
    const tags = allTags();
    const { system, app } = await open(tags.map((t) => t.doc));
    const keys = ['a', 'b', 'c'];
    const rnd = prng(7);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
    // 240 payments over ~60 s of event time, up to 4 s out of order (inside the 5 s out-of-orderness).
    const events: Event[] = [];
    let clock = BASE + 500;
    for (let i = 0; i < 240; i++) {
      clock += Math.floor(rnd() * 500);
      const t = rnd() < 0.2 ? clock - Math.floor(rnd() * 4_000) : clock;
      events.push(
        payment({
          key: pick(keys),
          t,
          amount: 1 + Math.floor(rnd() * 50),
          success: rnd() < 0.6,
          ...(rnd() < 0.8 ? { method: pick(['card', 'cash', 'wallet']) } : {}),
          ...(rnd() < 0.9 ? { shop: pick(['s1', 's2', 's3', 's4', 's5', 's6']) } : {}),
          ...(rnd() < 0.7 ? { score: pick<AttrValue>([1, 2, 5, 'high', 'low']) } : {}),
        }),
      );
    }
    const sent: Event[] = [];
    let streamTime = -Infinity;
    const check = async (now: number): Promise<void> => {
      const views = await shown(app, keys);
      const grouped = byKey(sent);
      for (const key of keys) {
        const own = grouped.get(key) ?? [];
        expect({ key, now, tags: views.get(key) }).toEqual({ key, now, tags: expectedView(tags, own, now) });
      }
    };
    for (let i = 0; i < events.length; i += 30) {
      const batch = events.slice(i, i + 30);
      await send(app, batch);
      sent.push(...batch);
      for (const e of batch) streamTime = Math.max(streamTime, e.time);
      await markAt(system, streamTime);
      await check(streamTime);
    }
    // No more events: time alone moves the windows until they are empty.
    for (const ahead of [1 * S, 2 * S, 3 * S, 5 * S, 8 * S, 9 * S, 10 * S, 11 * S, 60 * S]) {
      await markAt(system, streamTime + ahead);
      await check(streamTime + ahead);
    }
    const last = await shown(app, keys);
    for (const key of keys) {
      const view = last.get(key)!;
      expect(view[`cnt_sl`]).toBe(0);
      expect(view[`sum_tu`]).toBe(0);
      expect(view[`dst_sw`]).toBe(0);
      expect(view).not.toHaveProperty('avg_sl');
      expect(view).not.toHaveProperty('ltst_tu');
      expect(view[`cnt_lt`]).toBe(sent.filter((e) => e.key === key).length);
    }

    // Errors: filter errors and type mismatches are counted per tag, the events skipped.
    const errors = new Map(system.engine.stats().tagErrors.map((e) => [e.id, e]));
    const withoutMethod = sent.filter((e) => !('method' in e.attrs)).length;
    const stringScores = sent.filter((e) => typeof e.attrs.score === 'string').length;
    expect(withoutMethod).toBeGreaterThan(10);
    expect(stringScores).toBeGreaterThan(10);
    for (const w of Object.keys(WINDOWS)) {
      expect(errors.get(`cnt_card_${w}`)).toMatchObject({ filterErrors: withoutMethod, typeMismatches: 0 });
      expect(errors.get(`score_${w}`)).toMatchObject({ filterErrors: 0, typeMismatches: stringScores });
      expect(errors.get(`sum_${w}`)).toMatchObject({ filterErrors: 0, typeMismatches: 0 });
    }
  });

  it('gives the hand-computed values of a short script', async () => {
    const docs: StatisticTagDocument[] = [
      { id: 'cnt_sl', kind: 'statistic', eventTypes: ['payment'], aggregate: 'count', window: { type: 'sliding', size: '10s', slide: '2s' } },
      { id: 'sum_tu', kind: 'statistic', eventTypes: ['payment'], aggregate: 'sum', field: 'amount', window: { type: 'tumbling', size: '10s' } },
      { id: 'max_sl', kind: 'statistic', eventTypes: ['payment'], aggregate: 'max', field: 'amount', window: { type: 'sliding', size: '10s', slide: '2s' } },
      { id: 'avg_lt', kind: 'statistic', eventTypes: ['payment'], aggregate: 'avg', field: 'amount', window: { type: 'lifetime' } },
      { id: 'ok_lt', kind: 'statistic', eventTypes: ['payment'], filter: 'attrs.success == true', aggregate: 'count', window: { type: 'lifetime' } },
      { id: 'first_sl', kind: 'statistic', eventTypes: ['payment'], aggregate: 'first', window: { type: 'sliding', size: '10s', slide: '2s' } },
      { id: 'latest_tu', kind: 'statistic', eventTypes: ['payment'], aggregate: 'latest', field: 'method', window: { type: 'tumbling', size: '10s' } },
    ];
    const { system, app } = await open(docs);
    const at = (s: number) => BASE + s * S;
    const value = async (id: string): Promise<unknown> => (await shown(app, ['u'])).get('u')?.[id];
    // t = 1 s, 3 s, 11.5 s
    await send(app, [
      payment({ key: 'u', t: at(1), amount: 40, success: true, method: 'card' }),
      payment({ key: 'u', t: at(3), amount: 10, success: false, method: 'cash' }),
      payment({ key: 'u', t: at(11.5), amount: 5, success: true, method: 'wallet' }),
    ]);
    await markAt(system, at(11.5));
    // Sliding view at 11.5 s: buckets of 2 s starting at >= 10 + 2 - 10 = 2 s, so 3 s and 11.5 s.
    expect(await value('cnt_sl')).toBe(2);
    expect(await value('max_sl')).toBe(10);
    expect(await value('first_sl')).toBe(at(3));
    // Tumbling view at 11.5 s: [10 s, 20 s).
    expect(await value('sum_tu')).toBe(5);
    expect(await value('latest_tu')).toBe('wallet');
    expect(await value('avg_lt')).toBeCloseTo(55 / 3, 12);
    expect(await value('ok_lt')).toBe(2);

    // 2.5 s late (inside the 5 s out-of-orderness) and into a bucket still in view: counted.
    await send(app, [payment({ key: 'u', t: at(9), amount: 70, success: true, method: 'card' })]);
    await system.engine.drain();
    expect(await value('cnt_sl')).toBe(3);
    expect(await value('max_sl')).toBe(70);
    expect(await value('sum_tu')).toBe(5); // 9 s belongs to the previous tumbling window
    expect(await value('latest_tu')).toBe('wallet');

    // Into a bucket that left the sliding view (0 s < 2 s): lifetime counts it, the window does not.
    await send(app, [payment({ key: 'u', t: at(0.5), amount: 99, success: true, method: 'card' })]);
    await system.engine.drain();
    expect(await value('cnt_sl')).toBe(3);
    expect(await value('max_sl')).toBe(70);
    expect(await value('first_sl')).toBe(at(3));
    expect(await value('ok_lt')).toBe(4);
    expect(await value('avg_lt')).toBeCloseTo(224 / 5, 12);

    // Time alone: at 13 s the 3 s event leaves (view from 4 s).
    await markAt(system, at(13));
    expect(await value('cnt_sl')).toBe(2);
    expect(await value('first_sl')).toBe(at(9));
    // At 17.9 s the view starts at 16 + 2 - 10 = 8 s: the 9 s event is still in it.
    await markAt(system, at(17.9));
    expect(await value('cnt_sl')).toBe(2);
    expect(await value('max_sl')).toBe(70);
    // At 18 s the view starts at 10 s: the 9 s event (bucket 8 s) left.
    await markAt(system, at(18));
    expect(await value('cnt_sl')).toBe(1);
    expect(await value('max_sl')).toBe(5);
    expect(await value('first_sl')).toBe(at(11.5));
    await markAt(system, at(19.9));
    expect(await value('sum_tu')).toBe(5);
    expect(await value('latest_tu')).toBe('wallet');
    // At 20 s: the tumbling window [20 s, 30 s) is empty, and the 11.5 s event (bucket 10 s) left the sliding view.
    await markAt(system, at(20));
    expect(await value('sum_tu')).toBe(0);
    expect(await value('latest_tu')).toBeUndefined();
    expect(await value('cnt_sl')).toBe(0);
    expect(await value('max_sl')).toBeUndefined();
    expect(await value('first_sl')).toBeUndefined();
    expect(await value('ok_lt')).toBe(4);
  });

  it('removes the profile of an entity whose only state is windows that emptied', async () => {
    const docs: StatisticTagDocument[] = [
      { id: 'cnt_sl', kind: 'statistic', eventTypes: ['payment'], aggregate: 'count', window: { type: 'sliding', size: '10s', slide: '5s' } },
      { id: 'dst_tu', kind: 'statistic', eventTypes: ['payment'], aggregate: 'distinct', field: 'shop_id', window: { type: 'tumbling', size: '10s' } },
    ];
    const { system, app } = await open(docs);
    await send(app, [
      payment({ key: 'gone', t: BASE + 1_000, amount: 1, success: true, shop: 's1' }),
      payment({ key: 'gone', t: BASE + 2_000, amount: 1, success: true, shop: 's2' }),
      payment({ key: 'stays', t: BASE + 14_000, amount: 1, success: true, shop: 's1' }),
    ]);
    await markAt(system, BASE + 14_000);
    expect(await shown(app, ['gone', 'stays'])).toEqual(
      new Map<string, Record<string, unknown> | undefined>([
        ['gone', undefined],
        ['stays', { cnt_sl: 1, dst_tu: 1 }],
      ]),
    );
    // The view at 14 s starts at 10 + 5 - 10 = 5 s: gone's events left, so gone has no state and no profile.
    expect(system.store.profiles.getProfile('gone')).toBeUndefined();
    expect(system.store.profiles.getProfile('stays')).toBeDefined();
    await markAt(system, BASE + 25_000);
    expect(system.store.profiles.getProfile('stays')).toBeUndefined();
    const res = await app.inject({ method: 'GET', url: '/v1/profiles/stays' });
    expect(res.statusCode).toBe(404);
    expect(res.json().code).toBe('PRT_PROFILE_NOT_FOUND');
    expect(system.engine.stats().partitions.reduce((n, p) => n + p.entities, 0)).toBe(0);
  });
});
