import { afterEach, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import type { StatisticTagDocument, TagDocument } from '../../src/definitions/index.js';
import { ControlType, type AttrValue, type Event, type LogRecord } from '../../src/engine/index.js';
import type { EmbeddedSystem } from '../../src/runtime/embedded-system.js';
import { cleanup, openTestApp, testConfig } from '../helpers/system.js';
import { cleanupHarnesses, openHarness, type EngineHarness } from './harness.js';

afterEach(async () => {
  await cleanupHarnesses();
  await cleanup();
});

const BASE = Date.UTC(2024, 0, 1);
const s = (seconds: number) => BASE + seconds * 1_000;

const count = (id: string, window: StatisticTagDocument['window'], extra: Partial<StatisticTagDocument> = {}): StatisticTagDocument => ({
  id,
  kind: 'statistic',
  eventTypes: ['click'],
  aggregate: 'count',
  window,
  ...extra,
});

const click = (key: string, time: number): Event => ({ type: 'click', time, key, attrs: { item_id: `i${time % 7}` } });

function tagsOf(h: EngineHarness, key: string): Record<string, AttrValue> | undefined {
  const p = h.store.profiles.getProfile(key);
  return p === undefined ? undefined : Object.fromEntries(Object.entries(p.tags).map(([id, t]) => [id, t.value]));
}

describe('state TTL', () => {
  it('removes an entity and its profile once the watermark passes its last activity plus the TTL, and not before', async () => {
    // TTL 10 s, watermark = stream time − 1 s.
    const h = await openHarness({ revisions: [[count('c', { type: 'lifetime' })]], engine: { stateTtlMs: 10_000, outOfOrdernessMs: 1_000 } });
    await h.append([click('a', s(10)), click('b', s(10)), click('b', s(15))]);
    await h.attributes('c', { tier: 'gold' }, s(12)); // attributes only: lives from its attribute time
    await h.mark(s(20.999)); // watermark 19.999 s: nobody expired yet
    await h.drain();
    expect([tagsOf(h, 'a'), tagsOf(h, 'b'), h.store.profiles.getProfile('c')?.attributes.tier?.value]).toEqual([{ c: 1 }, { c: 2 }, 'gold']);

    await h.mark(s(21)); // watermark 20 s = 10 + 10: a expires
    await h.drain();
    expect(h.store.profiles.getProfile('a')).toBeUndefined();
    expect(tagsOf(h, 'b')).toEqual({ c: 2 });
    expect(h.store.profiles.getProfile('c')).toBeDefined();

    await h.append([click('b', s(22))]); // b active again: its expiry moves to 32 s
    await h.mark(s(26)); // watermark 25 s: c (12 + 10) expires; b would have at 25 s without its last event
    await h.drain();
    expect(h.store.profiles.getProfile('c')).toBeUndefined();
    expect(tagsOf(h, 'b')).toEqual({ c: 3 });

    await h.mark(s(33));
    await h.drain();
    expect(h.store.profiles.getProfile('b')).toBeUndefined();
    const stats = h.engine.stats().partitions;
    expect(stats.reduce((n, p) => n + p.entitiesExpired, 0)).toBe(3);
    expect(stats.reduce((n, p) => n + p.entities, 0)).toBe(0);

    // An expired entity starts again from nothing.
    await h.append([click('a', s(34))]);
    await h.drain();
    expect(tagsOf(h, 'a')).toEqual({ c: 1 });
  });

  it('counts from the event time for an entity whose first event is late, not from the stream time', async () => {
    const h = await openHarness({ revisions: [[count('c', { type: 'lifetime' })]], engine: { stateTtlMs: 10_000, outOfOrdernessMs: 1_000, allowedLatenessMs: 60_000 } });
    await h.append([click('x', s(50))]);
    await h.append([click('late', s(40))]); // 9 s behind the watermark, inside the lateness: applied
    await h.drain();
    expect(tagsOf(h, 'late')).toEqual({ c: 1 });
    await h.mark(s(51)); // watermark 50 s = 40 + 10
    await h.drain();
    expect(h.store.profiles.getProfile('late')).toBeUndefined();
    expect(tagsOf(h, 'x')).toEqual({ c: 1 });
  });

  it('through the embedded system and the API: expired profiles answer 404', async () => {
    const { system, app } = await openTestApp(await testConfig({ 'engine.stateTtlMs': 60_000, 'engine.outOfOrdernessMs': 0 }), { start: false });
    system.engine.start();
    await system.definitions.createTag(count('clicks', { type: 'lifetime' }));
    await system.definitions.setTagStatus('clicks', 'online');
    await send(app, [click('old', s(0)), click('new', s(100))]);
    await markAt(system, s(100));
    expect((await app.inject({ method: 'GET', url: '/v1/profiles/old' })).statusCode).toBe(404);
    const fresh = await app.inject({ method: 'GET', url: '/v1/profiles/new' });
    expect(fresh.json().tags.clicks.value).toBe(1);
    await markAt(system, s(160));
    expect((await app.inject({ method: 'GET', url: '/v1/profiles/new' })).statusCode).toBe(404);
    expect(system.store.profiles.countProfiles()).toBe(0);
  });
});

// ------------------------------------------------------------------ rule tags

async function send(app: FastifyInstance, events: ReadonlyArray<Event>): Promise<void> {
  const res = await app.inject({ method: 'POST', url: '/v1/events?wait=true', payload: events.map((e) => ({ type: e.type, user_id: e.key, time: e.time, ...e.attrs })) });
  expect(res.statusCode).toBe(200);
  expect(res.json()).toMatchObject({ accepted: events.length, rejected: 0, visible: true });
}

async function markAt(system: EmbeddedSystem, time: number): Promise<void> {
  const mark: LogRecord = { type: ControlType.Mark, time, key: '', attrs: { now: Date.now() } };
  await system.ingestor.appendGroups(Array.from({ length: system.ingestor.partitionCount }, () => [mark]));
  await system.engine.drain();
}

async function createOnline(app: FastifyInstance, doc: TagDocument): Promise<void> {
  expect((await app.inject({ method: 'POST', url: '/v1/tags', payload: doc })).statusCode).toBe(201);
  expect((await app.inject({ method: 'POST', url: `/v1/tags/${doc.id}/online` })).statusCode).toBe(200);
}

interface TagView {
  value: unknown;
  updatedAt: string | null;
}

async function profile(app: FastifyInstance, id: string): Promise<{ tags: Record<string, TagView>; attributes: Record<string, TagView> }> {
  const res = await app.inject({ method: 'GET', url: `/v1/profiles/${id}` });
  expect(res.statusCode).toBe(200);
  return res.json();
}

const iso = (t: number) => new Date(t).toISOString();

describe('rule tags', () => {
  it('re-evaluate when an input tag changes, when an attribute changes, and when a window moves with no event', async () => {
    const { system, app } = await openTestApp(await testConfig({ 'engine.outOfOrdernessMs': 0 }), { start: false });
    system.engine.start();
    await createOnline(app, { id: 'spend', kind: 'statistic', eventTypes: ['payment'], filter: 'attrs.success == true', aggregate: 'sum', field: 'amount', window: { type: 'lifetime' } });
    await createOnline(app, { id: 'clicks_10s', kind: 'statistic', eventTypes: ['click'], aggregate: 'count', window: { type: 'sliding', size: '10s', slide: '2s' } });
    await createOnline(app, { id: 'high_value', kind: 'rule', condition: 'tags.spend >= 100.0 && has(attrs.age) && attrs.age >= 25' });
    await createOnline(app, { id: 'active', kind: 'rule', condition: 'tags.clicks_10s >= 2' });
    await createOnline(app, { id: 'segment', kind: 'rule', condition: "tags.high_value ? 'vip' : (tags.active ? 'active' : 'casual')" });

    const pay = (t: number, amount: number, success = true): Event => ({ type: 'payment', time: t, key: 'u', attrs: { order_id: `o${t}`, amount, success } });

    // An input tag changes: spend 60 → 110; no age yet, so high_value stays false.
    await send(app, [pay(s(1), 60)]);
    let p = await profile(app, 'u');
    expect([p.tags.spend?.value, p.tags.high_value?.value, p.tags.active?.value, p.tags.segment?.value]).toEqual([60, false, false, 'casual']);
    expect(p.tags.high_value?.updatedAt).toBe(iso(s(1)));
    await send(app, [pay(s(2), 500, false)]); // filtered out: no input changes, nothing re-evaluated
    await send(app, [pay(s(3), 50)]);
    p = await profile(app, 'u');
    expect([p.tags.spend?.value, p.tags.high_value?.value, p.tags.segment?.value]).toEqual([110, false, 'casual']);

    // An attribute changes (HTTP PATCH): age 30 makes high_value true, and segment (a rule over it) follows.
    const patch = await app.inject({ method: 'PATCH', url: '/v1/profiles/u/attributes?wait=true', payload: { age: 30 } });
    expect(patch.statusCode).toBe(200);
    expect(patch.json()).toMatchObject({ updated: ['age'], visible: true });
    p = await profile(app, 'u');
    expect([p.tags.high_value?.value, p.tags.segment?.value]).toEqual([true, 'vip']);
    expect(p.tags.high_value?.updatedAt).toBe(p.attributes.age?.updatedAt);
    // And back (through the ingestor), then removed: has(attrs.age) is false again.
    await system.ingestor.appendAttributes('u', { age: 20 }, s(4));
    await system.engine.drain();
    p = await profile(app, 'u');
    expect([p.tags.high_value?.value, p.tags.segment?.value]).toEqual([false, 'casual']);
    expect(p.tags.segment?.updatedAt).toBe(iso(s(4)));
    await system.ingestor.appendAttributes('u', { age: 40 }, s(4.5));
    await system.engine.drain();
    expect((await profile(app, 'u')).tags.segment?.value).toBe('vip');
    await system.ingestor.appendAttributes('u', { age: null }, s(4.6));
    await system.engine.drain();
    p = await profile(app, 'u');
    expect(p.attributes).toEqual({});
    expect([p.tags.high_value?.value, p.tags.segment?.value]).toEqual([false, 'casual']);

    // Clicks at 5 s and 6 s: active (two in the last 10 s).
    await send(app, [click('u', s(5)), click('u', s(6))]);
    p = await profile(app, 'u');
    expect([p.tags.clicks_10s?.value, p.tags.active?.value, p.tags.segment?.value]).toEqual([2, true, 'active']);
    expect(p.tags.active?.updatedAt).toBe(iso(s(6)));

    // Time passes with no event. At 13.9 s the view (from 4 s) still holds both clicks.
    await markAt(system, s(13.9));
    expect((await profile(app, 'u')).tags.active?.value).toBe(true);
    // At 14 s the view starts at 6 s: the 5 s click left; active turns false at that instant, and segment with it.
    await markAt(system, s(14));
    p = await profile(app, 'u');
    expect([p.tags.clicks_10s?.value, p.tags.active?.value, p.tags.segment?.value]).toEqual([1, false, 'casual']);
    expect(p.tags.active?.updatedAt).toBe(iso(s(14)));
    expect(p.tags.segment?.updatedAt).toBe(iso(s(14)));
    // A jump far ahead empties the window: the count shows 0 and active stays false.
    await markAt(system, s(100));
    p = await profile(app, 'u');
    expect([p.tags.clicks_10s?.value, p.tags.active?.value]).toEqual([0, false]);
    expect(p.tags.spend?.value).toBe(110);
  });

  it('every entity has a value for every rule, whether it was known when the rule went online or came later', async () => {
    const { system, app } = await openTestApp(await testConfig(), { start: false });
    system.engine.start();
    await createOnline(app, { id: 'clicks', kind: 'statistic', eventTypes: ['click'], aggregate: 'count', window: { type: 'lifetime' } });
    await createOnline(app, { id: 'spend', kind: 'statistic', eventTypes: ['payment'], aggregate: 'sum', field: 'amount', window: { type: 'lifetime' } });
    const buy = (key: string, t: number): Event => ({ type: 'payment', time: t, key, attrs: { order_id: `o${key}`, amount: 10, success: true } });
    await send(app, [click('one', s(1)), click('two', s(1)), click('two', s(2)), buy('early_buyer', s(2))]);
    await createOnline(app, { id: 'repeat', kind: 'rule', condition: 'tags.clicks >= 2' });
    await system.engine.drain();
    // Known when the rule went online: evaluated at once (stream time as the time of the change).
    expect((await profile(app, 'one')).tags.repeat?.value).toBe(false);
    expect((await profile(app, 'two')).tags.repeat?.value).toBe(true);
    expect((await profile(app, 'early_buyer')).tags.repeat?.value).toBe(false);
    // Came later, through a tag the rule does not read: evaluated with its first state too.
    await send(app, [buy('late_buyer', s(3))]);
    const late = await profile(app, 'late_buyer');
    expect(late.tags.repeat).toEqual({ value: false, updatedAt: iso(s(3)), version: 1 });
    // An attribute alone makes an entity as well.
    const patch = await app.inject({ method: 'PATCH', url: '/v1/profiles/attr_only/attributes?wait=true', payload: { city: 'Hangzhou' } });
    expect(patch.statusCode).toBe(200);
    expect((await profile(app, 'attr_only')).tags.repeat?.value).toBe(false);
  });

  it('a rule that fails at run time has no value and is counted', async () => {
    const { system, app } = await openTestApp(await testConfig(), { start: false });
    system.engine.start();
    await createOnline(app, { id: 'clicks', kind: 'statistic', eventTypes: ['click'], aggregate: 'count', window: { type: 'lifetime' } });
    await createOnline(app, { id: 'old_clicker', kind: 'rule', condition: 'attrs.age > 60 && tags.clicks > 0' });
    await send(app, [click('noage', s(1))]);
    expect((await profile(app, 'noage')).tags.old_clicker).toBeUndefined();
    const errors = system.engine.stats().tagErrors.find((e) => e.id === 'old_clicker');
    expect(errors?.ruleErrors).toBe(1);
    expect(errors?.lastError).toMatch(/age/);
    const patch = await app.inject({ method: 'PATCH', url: '/v1/profiles/noage/attributes?wait=true', payload: { age: 70 } });
    expect(patch.statusCode).toBe(200);
    expect((await profile(app, 'noage')).tags.old_clicker?.value).toBe(true);
  });
});
