import { describe, expect, it } from 'vitest';
import type { Decision, EntitySnapshots, Event } from '../../src/engine/index.js';
import { SnapshotBatch } from '../../src/engine/index.js';
import { decodeRuleKeyState, encodeRuleKeyState } from '../../src/engine/internal/rule-snapshot.js';
import { compileRule } from '../../src/definitions/index.js';
import { defaultCatalog } from '../../src/runtime/default-catalog.js';
import { feed, ruleRuntime } from './rule-host.js';

const MINUTE = 60_000;

/** A rule runtime alone, on a host whose time the test moves. */
function runtime(): ReturnType<typeof ruleRuntime> {
  return ruleRuntime([
    // Arrival order: each event changes the key's NFA state at once.
    { id: 'fail_then_move', key: ['user_id'], ordering: 'arrival', condition: { sequence: { pattern: [{ name: 'fail', eventTypes: ['login'], where: 'event.attrs.success == false' }, { name: 'move', eventTypes: ['transfer'] }], within: '30m' } } },
    // Event-time order: events wait in the key's buffer until the watermark passes them.
    { id: 'two_fails', key: ['user_id'], condition: { sequence: { pattern: [{ name: 'fail', eventTypes: ['login'], where: 'event.attrs.success == false', times: 2 }], within: '10m' } } },
    { id: 'many_logins', key: ['user_id'], ordering: 'arrival', condition: { aggregate: { fn: 'count', eventTypes: ['login'], window: { type: 'sliding', size: '10m', slide: '1m' } }, op: '>=', value: 3 } },
  ]);
}

const login = (user: string, time: number, success = false): Event => ({ type: 'login', time, key: user, attrs: { user_id: user, success, device_id: 'd', channel: 'app' } });
const transfer = (user: string, time: number): Event => ({ type: 'transfer', time, key: user, attrs: { user_id: user, to_account: 'a', amount: 5, device_id: 'd', channel: 'app' } });


const users = Array.from({ length: 300 }, (_, i) => `u${i}`);
/** Before the checkpoint: every user starts partial matches (some of them event-time, still buffered). */
const before = users.flatMap((u, i) => [login(u, i), login(u, MINUTE + i)]);
/** After it: every user's state changes, half complete a match (their keys' NFA state empties). */
const after = users.flatMap((u, i) => (i % 2 === 0 ? [transfer(u, 2 * MINUTE + i)] : [login(u, 2 * MINUTE + i, true)]));

function sorted(upserts: EntitySnapshots): Array<[string, string]> {
  return [...upserts].map(([k, v]) => [k, Buffer.from(v).toString('hex')] as [string, string]).sort((a, b) => a[0].localeCompare(b[0]));
}

describe('rule state checkpoints are encoded in slices while events go on', () => {
  it('keys changed before their turn are written as they were when the checkpoint began, byte for byte', () => {
    const stopTheWorld = runtime();
    feed(stopTheWorld, before, 30_000);
    const expected = new SnapshotBatch();
    const expectedDeletes: string[] = [];
    stopTheWorld.rt.beginCheckpoint(expected, expectedDeletes);
    expect(stopTheWorld.rt.encodePending(Infinity)).toBe(true);

    const sliced = runtime();
    feed(sliced, before, 30_000);
    const upserts = new SnapshotBatch();
    const deletes: string[] = [];
    sliced.rt.beginCheckpoint(upserts, deletes);
    // A deadline already passed: one small slice of keys is written, the rest is owed.
    expect(sliced.rt.encodePending(0)).toBe(false);
    const firstSlice = upserts.length;
    expect(firstSlice).toBeGreaterThan(0);
    expect(firstSlice).toBeLessThan(expected.length);
    // Events and time go on before the rest is written: every owed key changes first.
    feed(sliced, after, 3 * MINUTE);
    expect(sliced.decisions.length).toBeGreaterThan(0);
    expect(sliced.rt.encodePending(Infinity)).toBe(true);

    // Two key spaces (arrival, event-time) per user, and each space's member table of its shared sequences.
    expect(expected.length).toBe(users.length * 2 + 2);
    expect(sorted(upserts)).toEqual(sorted(expected));
    expect(deletes).toEqual(expectedDeletes);
  });

  it('a runtime restored from the sliced checkpoint decides the events after it exactly as the original did', () => {
    const original = runtime();
    feed(original, before, 30_000);
    const upserts = new SnapshotBatch();
    original.rt.beginCheckpoint(upserts, []);
    original.rt.encodePending(0);
    const decidedBefore = original.decisions.length;
    feed(original, after, 3 * MINUTE);
    feed(original, [], 20 * MINUTE); // timeouts and window ends
    original.rt.encodePending(Infinity);
    const originalAfter = original.decisions.slice(decidedBefore);
    expect(originalAfter.length).toBeGreaterThan(users.length / 2);

    const restored = runtime();
    restored.host.watermark = 30_000;
    for (const [key, bytes] of upserts) restored.rt.restore(key, bytes);
    restored.rt.restored();
    restored.host.currentOffset = original.host.currentOffset - after.length;
    feed(restored, after, 3 * MINUTE);
    feed(restored, [], 20 * MINUTE);
    const strip = (d: Decision) => ({ rule: d.ruleId, key: d.key, outcome: d.outcome, time: d.time, matched: d.matched, aggregates: d.aggregates });
    expect(restored.decisions.map(strip)).toEqual(originalAfter.map(strip));
  });
});

describe('rule-state snapshot format', () => {
  it('an event held by several partial matches is written once and comes back as one object', () => {
    const shared = login('u', 5);
    const state = { v: 1 as const, seq: 2, pm: [{ n: 1, st: 5, ss: 0, ev: [shared], k: [0, 0, 5] }], done: [] };
    const bytes = encodeRuleKeyState({
      slot: 0,
      lastTime: 5,
      buffer: [shared],
      aggs: [],
      rules: [
        { stateId: 'a', states: [state] },
        { stateId: 'b', states: [undefined, { ...state, pm: [{ ...state.pm[0]!, ev: [shared], k: [0, 0, 5] }] }] },
      ],
      // A shared sequence's partial match with its member bits (bit 31 of a word included).
      seqs: [{ key: 'q', state: { ...state, pm: [{ ...state.pm[0]!, ev: [shared], k: [0, 0, 5], m: [0b101, 1 << 31] }] } }],
    });
    // The event's type name appears once although two partial matches and the buffer hold the event.
    expect(Buffer.from(bytes).toString('latin1').split('login').length - 1).toBe(1);
    const back = decodeRuleKeyState(bytes);
    expect(back.lastTime).toBe(5);
    expect(back.buffer).toEqual([shared]);
    const a = back.rules[0]![1][0]!;
    const b = back.rules[1]![1][1]!;
    expect(back.rules[1]![1][0]).toBeNull();
    expect(a.pm[0]!.ev[0]).toEqual(shared);
    expect(a.pm[0]!.ev[0]).toBe(b.pm[0]!.ev[0]);
    expect(back.seqs).toHaveLength(1);
    expect(back.seqs[0]![0]).toBe('q');
    expect(back.seqs[0]![1].pm[0]!.m).toEqual([0b101, 1 << 31]);
    expect(back.seqs[0]![1].pm[0]!.ev[0]).toBe(a.pm[0]!.ev[0]);
    expect(a.pm[0]!.m).toBeUndefined();
    expect(a.pm[0]!.ev[0]).toBe(back.buffer![0]);
    expect(b.pm[0]!.k).toEqual([0, 0, 5]);
  });
});

describe('a rule change costs the keys it touches', () => {
  const seq = { id: 'fail_timeout', key: ['user_id'], ordering: 'arrival', condition: { sequence: { pattern: [{ name: 'fail', eventTypes: ['login'], where: 'event.attrs.success == false' }, { name: 'move', eventTypes: ['transfer'] }], within: '5m' }, on: 'timeout' } };
  const plain = { id: 'big_transfer', key: ['user_id'], ordering: 'arrival', trigger: { eventTypes: ['transfer'] }, condition: { expr: 'event.attrs.amount > 1000' } };
  const other = { id: 'other', key: ['user_id'], ordering: 'arrival', trigger: { eventTypes: ['transfer'] }, condition: { expr: 'event.attrs.amount > 5000' } };
  const compile = (docs: object[]) => docs.map((d) => compileRule(d, 1, defaultCatalog));

  it('timers armed before an unrelated change still fire: partial matches time out on time', () => {
    const r = runtime();
    r.rt.apply(compile([seq, plain]));
    feed(r, users.map((u, i) => login(u, i)), 0);
    r.rt.apply(compile([seq, plain, other]));
    feed(r, [], 10 * MINUTE);
    const timeouts = r.decisions.filter((d) => d.ruleId === 'fail_timeout' && d.outcome === 'timeout');
    expect(timeouts.map((d) => d.key['user_id']).sort()).toEqual([...users].sort());
    for (const d of timeouts) expect(d.time).toBe(5 * MINUTE + users.indexOf(String(d.key['user_id'])));
  });

  it('keys left with nothing when a rule leaves are released at once', () => {
    const r = runtime();
    r.rt.apply(compile([seq, plain]));
    feed(r, users.map((u, i) => login(u, i)), 0);
    expect(r.rt.counters().find((c) => c.id === 'big_transfer')!.keys).toBe(users.length);
    r.rt.apply(compile([plain]));
    expect(r.rt.counters().find((c) => c.id === 'big_transfer')!.keys).toBe(0);
    feed(r, [], 10 * MINUTE);
    expect(r.decisions.filter((d) => d.ruleId === 'fail_timeout')).toEqual([]);
  });
});
