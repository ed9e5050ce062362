import { describe, expect, it } from 'vitest';
import { compileRule } from '../../src/definitions/index.js';
import { SnapshotBatch, type Decision, type Event } from '../../src/engine/index.js';
import type { RuleRuntime } from '../../src/engine/internal/rule-runtime.js';
import { EventGenerator } from '../../src/ingest/index.js';
import { defaultCatalog } from '../../src/runtime/default-catalog.js';
import { ruleRuntime, type TestRuleHost } from './rule-host.js';

// Rules whose sequences differ only in one number share one computation per key space. These
// tests hold the shared runs to what each rule computes alone: the same rules written so that
// no two share (an extra `n == n` term makes each shape unique) must decide exactly the same.

const MINUTE = 60_000;

/** Rule documents of the shapes operators repeat with other numbers; `alone` makes every one its own shape. */
function family(n: number, alone: boolean): object[] {
  const own = (i: number) => (alone ? ` && ${i} == ${i}` : '');
  const out: object[] = [];
  for (let i = 0; i < n; i++) {
    const ordering = i % 2 === 0 ? 'arrival' : 'event-time';
    // Unpaid order: the threshold is in the first stage, and the rule fires on the timeout.
    out.push({
      id: `unpaid${i}`,
      key: ['user_id'],
      ordering,
      condition: {
        sequence: {
          pattern: [
            { name: 'order', eventTypes: ['order_created'], where: `event.attrs.amount >= ${(i % 7) * 40}${own(i)}` },
            { name: 'paid', eventTypes: ['payment'], where: `event.attrs.order_id == matched.order[0].attrs.order_id${own(i)}` },
          ],
          // Rules may differ in their window too: each partial match times out per rule.
          within: `${10 + (i % 3) * 5}m`,
        },
        on: 'timeout',
      },
    });
    // Cart without order: the threshold in the first stage, an absence decided by a timer.
    out.push({
      id: `cart${i}`,
      key: ['user_id'],
      ordering,
      condition: { sequence: { pattern: [{ name: 'cart', eventTypes: ['add_to_cart'], where: `event.attrs.price >= ${(i % 5) * 30}${own(i)}` }, { name: 'order', eventTypes: ['order_created'], contiguity: 'notFollowedBy' }], within: `${20 + (i % 4) * 5}m` } },
    });
    // Failed logins with an after-match skip strategy; rules differ in their window.
    out.push({
      id: `fails${i}`,
      key: ['user_id'],
      ordering,
      condition: { sequence: { pattern: [{ name: 'fail', eventTypes: ['login'], where: `event.attrs.success == false${own(i)}`, times: 2 }], within: `${1 + (i % 3)}m`, skip: 'skipPastLastEvent' } },
    });
    // A bigger transfer after a first one: the number is in a condition that reads the earlier event.
    out.push({
      id: `bigger${i}`,
      key: ['user_id'],
      ordering,
      condition: { sequence: { pattern: [{ name: 'first', eventTypes: ['transfer'] }, { name: 'bigger', eventTypes: ['transfer'], where: `event.attrs.amount > matched.first[0].attrs.amount + ${(i % 9) * 25}${own(i)}` }], within: '30m' } },
    });
  }
  return out;
}

function stream(count: number, seed: number): Event[] {
  const gen = new EventGenerator({ seed, users: 300, devices: 200, eventsPerSecond: 2, skew: 0.3, startTime: Date.UTC(2024, 0, 1), maxActiveSessions: 200 });
  const events: Event[] = [];
  for (let i = 0; i < count; i++) {
    const e = gen.next();
    events.push({ type: e.type, time: e.time, key: e.key, attrs: { ...e.attrs, user_id: e.key } });
  }
  return events;
}

function feed(r: { rt: RuleRuntime; host: TestRuleHost }, events: Event[], from: number, to: number): void {
  for (let i = from; i < to; i++) {
    const e = events[i]!;
    r.host.currentOffset++;
    r.rt.onEvent(e);
    // A watermark 5 s behind the stream, and processing time with it.
    if (i % 20 === 0) {
      r.host.watermark = Math.max(r.host.watermark, e.time - 5_000);
      r.rt.advance();
    }
  }
}

function finish(r: { rt: RuleRuntime; host: TestRuleHost }, events: Event[]): void {
  r.host.watermark = events[events.length - 1]!.time + 60 * MINUTE;
  r.rt.advance();
}

const strip = (d: Decision) => JSON.stringify({ rule: d.ruleId, key: d.key, outcome: d.outcome, time: d.time, matched: d.matched });
const sortedOf = (ds: Decision[]) => ds.map(strip).sort();

/** Rules without sequences of the shapes operators repeat with other thresholds; `alone` makes every one its own shape. */
function thresholds(n: number, alone: boolean): object[] {
  const own = (c: object, i: number) => (alone ? { all: [c, { expr: `${i} == ${i}` }] } : c);
  const out: object[] = [];
  for (let i = 0; i < n; i++) {
    const ordering = i % 2 === 0 ? 'arrival' : 'event-time';
    out.push({ id: `spend${i}`, key: ['user_id'], ordering, condition: own({ aggregate: { fn: 'sum', field: 'amount', eventTypes: ['payment'], window: { type: 'sliding', size: '10m', slide: '1m' } }, op: '>=', value: 100 + (i % 6) * 150 }, i) });
    out.push({ id: `claims${i}`, key: ['device_id'], ordering, condition: own({ aggregate: { fn: 'count', eventTypes: ['coupon_claim', 'login'], window: { type: 'tumbling', size: '1h' } }, op: '>=', value: 2 + (i % 4) }, i) });
    out.push({ id: `big${i}`, key: ['user_id'], ordering, condition: own({ all: [{ expr: `event.attrs.amount > ${100 + (i % 5) * 200}` }, { aggregate: { fn: 'count', eventTypes: ['transfer'], window: { type: 'sliding', size: '1h', slide: '5m' } }, op: '>=', value: 2 }] }, i) });
    // The threshold under `not`, read on another event type than the aggregate's.
    out.push({ id: `quiet${i}`, key: ['user_id'], ordering, trigger: { eventTypes: ['login'] }, condition: own({ not: { aggregate: { fn: 'count', eventTypes: ['page_view', 'add_to_cart'], window: { type: 'sliding', size: '30m', slide: '1m' } }, op: '>', value: i % 7 } }, i) });
    // An attribute only some events have: a run-time error on the others, for every threshold.
    out.push({ id: `coupon${i}`, key: ['user_id'], ordering, trigger: { eventTypes: ['coupon_claim', 'payment'] }, condition: own({ expr: `event.attrs.amount >= ${(i % 3) * 100}` }, i) });
  }
  return out;
}

describe('rules evaluated together', () => {
  it('decide and count exactly as the same rules evaluated alone', () => {
    const events = stream(30_000, 21);
    const shared = ruleRuntime(thresholds(8, false));
    const alone = ruleRuntime(thresholds(8, true));
    for (const r of [shared, alone]) {
      feed(r, events, 0, events.length);
      finish(r, events);
    }
    for (const prefix of ['spend', 'claims', 'big', 'quiet', 'coupon']) expect(shared.decisions.some((d) => d.ruleId.startsWith(prefix)), prefix).toBe(true);
    // Every shape is evaluated as one per ordering (4 rules each), `big` (two numbers) by the one that differs.
    expect(new Set(shared.rt.counters().map((c) => c.sharedWith))).toEqual(new Set([4]));
    expect(new Set(alone.rt.counters().map((c) => c.sharedWith))).toEqual(new Set([1]));
    expect(sortedOf(shared.decisions)).toEqual(sortedOf(alone.decisions));
    const counters = (r: typeof shared) => r.rt.counters().map((c) => ({ id: c.id, evaluations: c.evaluations, decisions: c.decisions, errors: c.errors, late: c.late })).sort((a, b) => a.id.localeCompare(b.id));
    expect(counters(shared)).toEqual(counters(alone));
    // `amount` is missing on coupon claims: every coupon rule counted its errors.
    expect(shared.rt.counters().filter((c) => c.id.startsWith('coupon')).every((c) => c.errors > 0)).toBe(true);
  });
});

describe('rules sharing one sequence computation', () => {
  it('decide exactly as the same rules computed alone', () => {
    const events = stream(30_000, 11);
    const shared = ruleRuntime(family(12, false));
    const alone = ruleRuntime(family(12, true));
    for (const r of [shared, alone]) {
      feed(r, events, 0, events.length);
      finish(r, events);
    }
    expect(shared.decisions.length).toBeGreaterThan(1_000);
    // Every shape decided something.
    for (const prefix of ['unpaid', 'cart', 'bigger', 'fails']) expect(shared.decisions.some((d) => d.ruleId.startsWith(prefix))).toBe(true);
    expect(sortedOf(shared.decisions)).toEqual(sortedOf(alone.decisions));
    const counters = (r: typeof shared) => r.rt.counters().map((c) => ({ id: c.id, evaluations: c.evaluations, decisions: c.decisions, errors: c.errors, late: c.late, dropped: c.droppedPartialMatches })).sort((a, b) => a.id.localeCompare(b.id));
    expect(counters(shared)).toEqual(counters(alone));
    // Each shape is one computation per ordering (6 rules each); alone, each rule is its own.
    const sharedWith = (r: typeof shared) => new Set(r.rt.counters().map((c) => c.sharedWith));
    expect(sharedWith(shared)).toEqual(new Set([6]));
    expect(sharedWith(alone)).toEqual(new Set([1]));
  });

  it('a rule changed mid-stream starts afresh while the rules sharing with it keep their partial matches', () => {
    const events = stream(12_000, 12);
    const docs = family(6, false);
    const shared = ruleRuntime(docs);
    const alone = ruleRuntime(family(6, true));
    // The change: bigger3 gets a new number (a new computation: it starts with no partial match),
    // cart1 goes offline, a new rule of the unpaid shape comes online.
    const change = (r: typeof shared, isAlone: boolean) => {
      const next = (isAlone ? family(6, true) : docs).filter((d) => (d as { id: string }).id !== 'cart1');
      const own = isAlone ? ' && 99 == 99' : '';
      const i = next.findIndex((d) => (d as { id: string }).id === 'bigger3');
      next[i] = { id: 'bigger3', key: ['user_id'], ordering: 'event-time', condition: { sequence: { pattern: [{ name: 'first', eventTypes: ['transfer'] }, { name: 'bigger', eventTypes: ['transfer'], where: `event.attrs.amount > matched.first[0].attrs.amount + 10${own}` }], within: '30m' } } };
      next.push({ id: 'unpaid_new', key: ['user_id'], ordering: 'arrival', condition: { sequence: { pattern: [{ name: 'order', eventTypes: ['order_created'], where: `event.attrs.amount >= 55${own}` }, { name: 'paid', eventTypes: ['payment'], where: `event.attrs.order_id == matched.order[0].attrs.order_id${own}` }], within: '15m' }, on: 'timeout' } });
      r.rt.apply(next.map((doc) => compileRule(doc, 2, defaultCatalog)));
    };
    for (const [r, isAlone] of [[shared, false], [alone, true]] as const) {
      feed(r, events, 0, 6_000);
      change(r, isAlone);
      feed(r, events, 6_000, events.length);
      finish(r, events);
    }
    expect(shared.decisions.some((d) => d.ruleId === 'unpaid_new')).toBe(true);
    expect(shared.decisions.some((d) => d.ruleId === 'bigger3' && d.version === 2)).toBe(true);
    expect(sortedOf(shared.decisions)).toEqual(sortedOf(alone.decisions));
  });

  it('restored from a checkpoint into rules listed in another order, with one gone and one new, decides as the original', () => {
    const events = stream(12_000, 13);
    const docs = family(6, false);
    const original = ruleRuntime(docs);
    feed(original, events, 0, 6_000);
    const upserts = new SnapshotBatch();
    original.rt.beginCheckpoint(upserts, []);
    original.rt.encodePending(Infinity);
    // Member numbering differs after the restart: rules come back reversed, without cart2 and
    // with a new rule of the cart shape, which must not inherit anyone's partial matches.
    const extra = { id: 'cart_new', key: ['user_id'], ordering: 'arrival', condition: { sequence: { pattern: [{ name: 'cart', eventTypes: ['add_to_cart'], where: 'event.attrs.price >= 45' }, { name: 'order', eventTypes: ['order_created'], contiguity: 'notFollowedBy' }], within: '20m' } } };
    const after = [extra, ...docs.filter((d) => (d as { id: string }).id !== 'cart2').reverse()];
    original.rt.apply(after.map((doc) => compileRule(doc, 1, defaultCatalog)));
    const decidedBefore = original.decisions.length;
    const restored = ruleRuntime(after);
    restored.host.watermark = original.host.watermark;
    restored.host.currentOffset = original.host.currentOffset;
    for (const [key, bytes] of upserts) restored.rt.restore(key, bytes);
    restored.rt.restored();
    for (const r of [original, restored]) {
      feed(r, events, 6_000, events.length);
      finish(r, events);
    }
    const originalAfter = original.decisions.slice(decidedBefore);
    expect(originalAfter.some((d) => d.ruleId === 'cart_new')).toBe(true);
    expect(sortedOf(restored.decisions)).toEqual(sortedOf(originalAfter));
  });
});
