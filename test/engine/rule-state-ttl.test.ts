import { describe, expect, it } from 'vitest';
import { compileRule } from '../../src/definitions/index.js';
import { SnapshotBatch, type Decision, type Event } from '../../src/engine/index.js';
import { RuleRuntime, type RuleRuntimeOptions } from '../../src/engine/internal/rule-runtime.js';
import { defaultCatalog } from '../../src/runtime/default-catalog.js';
import { feed, ruleRuntime, type TestRuleHost } from './rule-host.js';

const SECOND = 1_000;
const MINUTE = 60_000;

const transfer = (user: string, time: number, amount: number): Event => ({ type: 'transfer', time, key: user, attrs: { user_id: user, to_account: 'a', amount, device_id: 'd', channel: 'app' } });

/**
 * A transfer bigger than an earlier one by more than `by`, with a skip strategy: a
 * completed match is held back while a partial match that started before it is alive.
 */
const bigger = (id: string, stateTtl: string, by = 100) => ({
  id,
  key: ['user_id'],
  ordering: 'arrival',
  limits: { stateTtl },
  condition: {
    sequence: {
      pattern: [{ name: 'first', eventTypes: ['transfer'] }, { name: 'bigger', eventTypes: ['transfer'], where: `event.attrs.amount > matched.first[0].attrs.amount + ${by}` }],
      skip: 'skipPastLastEvent',
    },
  },
});

/** {@link ruleRuntime} with `options`; with `alone`, each rule runs its sequences on its own NFA (never shared). */
function runtime(docs: object[], alone: boolean, options: RuleRuntimeOptions = {}): ReturnType<typeof ruleRuntime> {
  const r = ruleRuntime([]);
  const host: TestRuleHost = r.host;
  const rt = new RuleRuntime(host, options);
  rt.apply(
    docs.map((doc) => {
      const spec = compileRule(doc, 1, defaultCatalog);
      return alone ? { ...spec, sequences: spec.sequences.map((s) => ({ ...s, share: null })) } : spec;
    }),
  );
  return { rt, host, decisions: r.decisions };
}


const shape = (d: Decision) => ({ rule: d.ruleId, trigger: d.trigger, time: d.time, first: d.matched!.first!.map((e) => e.attrs.amount), bigger: d.matched!.bigger!.map((e) => e.attrs.amount) });
const counters = (r: ReturnType<typeof ruleRuntime>) => Object.fromEntries(r.rt.counters().map((c) => [c.id, { keys: c.keys, expired: c.expiredPartialMatches, decisions: c.decisions }]));

// 500 starts a partial match that never completes; 10 then 200 complete one that started
// after it, held back behind it; 200 starts another.
const held = [transfer('u1', 0, 500), transfer('u1', 1 * SECOND, 10), transfer('u1', 2 * SECOND, 200)];

describe.each([
  ['shared', false],
  ['alone', true],
])('rule state TTL in the rule runtime, sequences %s', (_mode, alone) => {
  it('a completed match held back behind partial matches that expire is decided as of the expiry', () => {
    const r = runtime([bigger('held', '10m')], alone);
    feed(r, held, 5 * MINUTE);
    expect(r.decisions).toEqual([]);
    expect(counters(r)).toEqual({ held: { keys: 1, expired: 0, decisions: 0 } });
    // The watermark passes the expiry (10 minutes after the latest event) well after it.
    feed(r, [], 30 * MINUTE);
    expect(r.decisions.map(shape)).toEqual([{ rule: 'held', trigger: 'timer', time: 2 * SECOND + 10 * MINUTE, first: [10], bigger: [200] }]);
    expect(counters(r)).toEqual({ held: { keys: 0, expired: 2, decisions: 1 } });
  });

  it('rules with one sequence and different state TTLs release the held match each at its own expiry', () => {
    const r = runtime([bigger('short', '10m'), bigger('long', '20m')], alone);
    expect(r.rt.counters().map((c) => c.sharedWith)).toEqual(alone ? [1, 1] : [2, 2]);
    feed(r, held, 15 * MINUTE);
    expect(r.decisions.map(shape)).toEqual([{ rule: 'short', trigger: 'timer', time: 2 * SECOND + 10 * MINUTE, first: [10], bigger: [200] }]);
    expect(counters(r)).toEqual({ short: { keys: 1, expired: 2, decisions: 1 }, long: { keys: 1, expired: 0, decisions: 0 } });
    feed(r, [], 60 * MINUTE);
    expect(r.decisions.map(shape).map((d) => [d.rule, d.time])).toEqual([
      ['short', 2 * SECOND + 10 * MINUTE],
      ['long', 2 * SECOND + 20 * MINUTE],
    ]);
    expect(counters(r)).toEqual({ short: { keys: 0, expired: 2, decisions: 1 }, long: { keys: 0, expired: 2, decisions: 1 } });
  });

  it('what is due by the expiry is decided first; a stateTtl shorter than `within` cuts partial matches before their timeout', () => {
    const unpaid = (id: string, limits: object) => ({
      id,
      key: ['user_id'],
      ordering: 'arrival',
      limits,
      condition: { sequence: { pattern: [{ name: 'first', eventTypes: ['transfer'] }, { name: 'bigger', eventTypes: ['transfer'], where: 'event.attrs.amount > 1000.0' }], within: '10m' }, on: 'timeout' },
    });
    // The first rule's TTL defaults to its `within`: its expiry and its timeout fall on one instant.
    const r = runtime([unpaid('same', {}), unpaid('cut', { stateTtl: '5m' }), unpaid('longer', { stateTtl: '20m' })], alone);
    feed(r, [transfer('u1', 0, 5)], 60 * MINUTE);
    expect(r.decisions.map((d) => [d.ruleId, d.outcome, d.time])).toEqual([
      ['same', 'timeout', 10 * MINUTE],
      ['longer', 'timeout', 10 * MINUTE],
    ]);
    expect(counters(r)).toEqual({ same: { keys: 0, expired: 0, decisions: 1 }, cut: { keys: 0, expired: 1, decisions: 0 }, longer: { keys: 0, expired: 0, decisions: 1 } });
  });

  it('partial matches restored from a checkpoint expire when they would have without the restart', () => {
    const docs = [bigger('held', '10m')];
    const original = runtime(docs, alone);
    feed(original, held, 5 * MINUTE);
    const upserts = new SnapshotBatch();
    original.rt.beginCheckpoint(upserts, []);
    expect(original.rt.encodePending(Infinity)).toBe(true);

    const restored = runtime(docs, alone);
    restored.host.watermark = 5 * MINUTE;
    for (const [key, data] of upserts) restored.rt.restore(key, data);
    restored.rt.restored();
    expect(counters(restored)).toEqual({ held: { keys: 1, expired: 0, decisions: 0 } });
    feed(restored, [], 30 * MINUTE);
    feed(original, [], 30 * MINUTE);
    expect(restored.decisions.map(shape)).toEqual(original.decisions.map(shape));
    expect(counters(restored)).toEqual({ held: { keys: 0, expired: 2, decisions: 1 } });
  });

  it('a shorter default TTL after a restart expires restored partial matches whose TTL has already run out', () => {
    const docs = [{ ...bigger('held', '10m'), limits: {} }];
    const original = runtime(docs, alone);
    feed(original, held, 5 * MINUTE);
    const upserts = new SnapshotBatch();
    original.rt.beginCheckpoint(upserts, []);
    expect(original.rt.encodePending(Infinity)).toBe(true);

    const restored = runtime(docs, alone, { defaultStateTtlMs: 1 * MINUTE });
    restored.host.watermark = 5 * MINUTE;
    for (const [key, data] of upserts) restored.rt.restore(key, data);
    restored.rt.restored();
    restored.rt.advance();
    expect(restored.decisions.map(shape)).toEqual([{ rule: 'held', trigger: 'timer', time: 2 * SECOND + 1 * MINUTE, first: [10], bigger: [200] }]);
    expect(counters(restored)).toEqual({ held: { keys: 0, expired: 2, decisions: 1 } });
  });
});
