import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { open, type Database } from 'lmdb';
import { afterEach, describe, expect, it } from 'vitest';
import type { Decision } from '../../src/engine/index.js';
import { openLmdbDecisionStore } from '../../src/stores/lmdb/index.js';
import { decodeDecision, encodeDecision } from '../../src/stores/lmdb/decision-codec.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function decision(n: number, over: Partial<Decision> = {}): Decision {
  const login = { type: 'login', time: 1_000 + n, key: `u${n}`, attrs: { success: false, device_id: 'd1', ip: null, score: 0.5 } };
  return {
    id: `r1:1:0:${n}:0`,
    ruleId: 'r1',
    version: 1,
    key: { user_id: `u${n}`, shop_id: 's1' },
    entity: `u${n}`,
    outcome: 'match',
    trigger: 'event',
    time: 1_000 + n,
    processingTime: 2_000 + n,
    event: login,
    matched: { fail: [login, { ...login, time: 900 }] },
    aggregates: [3, null, 12.5],
    partition: 0,
    offset: n,
    ...over,
  };
}

describe('the decision record codec', () => {
  it('gives back every field: absent parts, timeouts on timers, odd names and text', () => {
    const cases: Decision[] = [
      decision(1),
      decision(2, { entity: null, outcome: 'timeout', trigger: 'timer', event: null, matched: null, aggregates: [] }),
      decision(3, { key: { device_id: 'Gerät-µ-设备' }, matched: { order: [] }, event: { type: 'pay', time: 5, key: 'ü', attrs: { ['__proto__']: 'x', constructor: 1 } } }),
    ];
    for (const d of cases) {
      const back = decodeDecision(encodeDecision(d));
      expect(back).toEqual(d);
      expect(Object.keys(back.event?.attrs ?? {})).toEqual(Object.keys(d.event?.attrs ?? {}));
    }
    // Decisions sharing an event's attributes and a match's events (the rules of a shared
    // sequence) encode them once and copy the bytes: each still decodes to itself.
    const shared = decision(4);
    const others = [decision(5, { event: shared.event, matched: shared.matched }), decision(6, { event: { ...shared.event!, time: 7 }, matched: shared.matched, key: { user_id: 'z' } })];
    for (const d of [shared, ...others]) expect(decodeDecision(encodeDecision(d))).toEqual(d);
    // An attribute named __proto__ stays data, not the object's prototype.
    const odd = decodeDecision(encodeDecision(cases[2]!));
    expect(Object.getPrototypeOf(odd.event!.attrs)).toBe(Object.prototype);
    expect(Object.getOwnPropertyDescriptor(odd.event!.attrs, '__proto__')?.value).toBe('x');
  });
});

describe('the LMDB decision store', () => {
  it('moves decisions stored as msgpack maps by an earlier version into binary records, same positions, once', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'portrait-decisions-'));
    dirs.push(dir);
    let root = open({ path: dir, maxDbs: 16, compression: false });
    const legacy: Database<Decision, number> = root.openDB({ name: 'decisions', encoding: 'msgpack' });
    const ids: Database<number, string> = root.openDB({ name: 'decision-ids', encoding: 'msgpack' });
    for (let n = 1; n <= 5; n++) {
      await legacy.put(n, decision(n));
      await ids.put(decision(n).id, n);
    }
    let store = openLmdbDecisionStore(root, { maxDecisions: 100 });
    expect(store.count()).toBe(5);
    expect(legacy.getCount()).toBe(0);
    expect(store.list({ limit: 10 }).map((d) => [d.cursor, d.id])).toEqual([5, 4, 3, 2, 1].map((n) => [n, decision(n).id]));
    expect(store.get(decision(3).id)).toEqual(decision(3));
    // A replayed decision is not stored twice; a new one goes after the migrated ones.
    expect(store.addNew([decision(2), decision(6)]).map((d) => d.id)).toEqual([decision(6).id]);
    await store.flushed();
    await root.close();
    root = open({ path: dir, maxDbs: 16, compression: false });
    store = openLmdbDecisionStore(root, { maxDecisions: 100 });
    expect(store.list({ limit: 10 }).map((d) => d.cursor)).toEqual([6, 5, 4, 3, 2, 1]);
    expect(store.get(decision(6).id)).toEqual(decision(6));
    await root.close();
  });

  it('stores each decision once across a replay, looking ids up only at or below the offsets already decided', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'portrait-decisions-'));
    dirs.push(dir);
    let root = open({ path: dir, maxDbs: 16, compression: false });
    let store = openLmdbDecisionStore(root, { maxDecisions: 100 });
    expect(store.addNew([decision(1), decision(2), decision(3, { partition: 1 })]).length).toBe(3);
    await store.flushed();
    await root.close();
    // After a restart the log replays from a checkpoint: offsets 1-3 again, then new ones.
    root = open({ path: dir, maxDbs: 16, compression: false });
    store = openLmdbDecisionStore(root, { maxDecisions: 100 });
    const replay = [decision(1), decision(2), decision(3, { partition: 1 }), decision(3), decision(2, { partition: 1, id: 'r1:1:1:2:0' }), decision(4)];
    // Partition 0 decided up to 2, partition 1 up to 3: offset 3 of partition 0 is new, offset 2 of partition 1 is looked up (new: another id).
    expect(store.addNew(replay).map((d) => [d.partition, d.offset])).toEqual([[0, 3], [1, 2], [0, 4]]);
    expect(store.get('\u0000offset:0')).toBeUndefined();
    await store.flushed();
    expect(store.count()).toBe(6);
    await root.close();
  });

  it('takes the offsets already decided from the records of a store written without them', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'portrait-decisions-'));
    dirs.push(dir);
    let root = open({ path: dir, maxDbs: 16, compression: false });
    const legacy: Database<Decision, number> = root.openDB({ name: 'decisions', encoding: 'msgpack' });
    const ids: Database<number, string> = root.openDB({ name: 'decision-ids', encoding: 'msgpack' });
    await legacy.put(1, decision(7));
    await ids.put(decision(7).id, 1);
    await root.close();
    root = open({ path: dir, maxDbs: 16, compression: false });
    const store = openLmdbDecisionStore(root, { maxDecisions: 100 });
    expect(store.addNew([decision(7), decision(8)]).map((d) => d.offset)).toEqual([8]);
    await root.close();
  });

  it('keeps at most maxDecisions, dropping the oldest and their ids', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'portrait-decisions-'));
    dirs.push(dir);
    const root = open({ path: dir, maxDbs: 16, compression: false });
    const store = openLmdbDecisionStore(root, { maxDecisions: 3 });
    store.addNew([1, 2, 3, 4, 5].map((n) => decision(n)));
    await store.flushed();
    // The oldest go at the next write, once the earlier ones are committed.
    store.addNew([decision(6)]);
    await store.flushed();
    expect(store.count()).toBe(3);
    expect(store.list({ limit: 10 }).map((d) => d.offset)).toEqual([6, 5, 4]);
    expect(store.get(decision(1).id)).toBeUndefined();
    await root.close();
  });
});
