import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { open, type Database } from 'lmdb';
import { afterEach, describe, expect, it } from 'vitest';
import type { Decision } from '../../src/engine/index.js';
import { openLmdbDecisionStore } from '../../src/stores/lmdb/index.js';
import { BLOCK_RECORDS, DecisionBlock, DecisionBlockEncoder, decodeDecision, encodeDecision } from '../../src/stores/lmdb/decision-codec.js';

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

function roundTrip(ds: Decision[]): Decision[] {
  const encoder = new DecisionBlockEncoder();
  for (const d of ds) encoder.add(d);
  const block = new DecisionBlock(encoder.finish());
  return Array.from({ length: block.count }, (_, i) => block.decision(i));
}

describe('the decision codecs', () => {
  const cases: Decision[] = [
    decision(1),
    decision(2, { entity: null, outcome: 'timeout', trigger: 'timer', event: null, matched: null, aggregates: [] }),
    decision(3, { key: { device_id: 'Gerät-µ-设备' }, matched: { order: [] }, entity: 'other', event: { type: 'pay', time: 5, key: 'ü', attrs: { ['__proto__']: 'x', constructor: 1 } } }),
    decision(4, { entity: 'device-only', event: null }),
  ];

  it('a block gives back every field of every decision: absent parts, timeouts on timers, odd names and text', () => {
    const back = roundTrip(cases);
    expect(back).toEqual(cases);
    for (let i = 0; i < cases.length; i++) expect(Object.keys(back[i]!.event?.attrs ?? {})).toEqual(Object.keys(cases[i]!.event?.attrs ?? {}));
    // An attribute named __proto__ stays data, not the object's prototype.
    const odd = back[2]!;
    expect(Object.getPrototypeOf(odd.event!.attrs)).toBe(Object.prototype);
    expect(Object.getOwnPropertyDescriptor(odd.event!.attrs, '__proto__')?.value).toBe('x');
  });

  it('writes an event and a match once for the decisions sharing them, and tells apart events sharing attributes', () => {
    const shared = decision(4);
    const sameAttrs = { ...shared.event!, time: 7 };
    const ds = [shared, decision(5, { event: shared.event, matched: shared.matched }), decision(6, { event: sameAttrs, matched: shared.matched, key: { user_id: 'z' } }), decision(7, { version: 2 })];
    expect(roundTrip(ds)).toEqual(ds);
    const single = new DecisionBlockEncoder();
    single.add(shared);
    const many = new DecisionBlockEncoder();
    for (let i = 0; i < 50; i++) many.add({ ...shared, id: `r1:1:0:4:${i}` });
    // 50 decisions of one event and match take half the bytes of 50 blocks of one (each writing them).
    expect(many.finish().length).toBeLessThan(single.finish().length * 25);
    // Two versions of one rule in a block keep their own versions.
    expect(roundTrip([decision(1), decision(2, { version: 2 }), decision(3)]).map((d) => d.version)).toEqual([1, 2, 1]);
  });

  it('the record format of earlier versions still decodes', () => {
    for (const d of cases) expect(decodeDecision(encodeDecision(d))).toEqual(d);
  });
});

describe('the LMDB decision store', () => {
  it('moves decisions stored one per value by earlier versions (msgpack maps, then binary records) into blocks, in order, once', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'portrait-decisions-'));
    dirs.push(dir);
    let root = open({ path: dir, maxDbs: 16, compression: false });
    const legacy: Database<Decision, number> = root.openDB({ name: 'decisions', encoding: 'msgpack' });
    const records: Database<Uint8Array, number> = root.openDB({ name: 'decision-records', encoding: 'binary' });
    const ids: Database<number, string> = root.openDB({ name: 'decision-ids', encoding: 'msgpack' });
    for (let n = 1; n <= 3; n++) {
      await legacy.put(n, decision(n));
      await ids.put(decision(n).id, n);
    }
    for (let n = 4; n <= 5; n++) {
      await records.put(n, encodeDecision(decision(n)));
      await ids.put(decision(n).id, n);
    }
    await ids.put('\u0000offset:0', 5);
    let store = openLmdbDecisionStore(root, { maxDecisions: 100 });
    expect(store.count()).toBe(5);
    expect([legacy.getCount(), records.getCount(), ids.getCount()]).toEqual([0, 0, 0]);
    const listed = store.list({ limit: 10 });
    expect(listed.map((d) => d.id)).toEqual([5, 4, 3, 2, 1].map((n) => decision(n).id));
    expect(listed.map((d) => d.cursor)).toEqual([...listed.map((d) => d.cursor)].sort((a, b) => b - a));
    expect(store.get(decision(3).id)).toEqual(decision(3));
    expect(store.get(decision(5).id)).toEqual(decision(5));
    // A replayed decision is not stored twice; a new one goes after the migrated ones.
    expect(store.addNew([decision(2), decision(6)]).map((d) => d.id)).toEqual([decision(6).id]);
    await store.flushed();
    await root.close();
    root = open({ path: dir, maxDbs: 16, compression: false });
    store = openLmdbDecisionStore(root, { maxDecisions: 100 });
    expect(store.list({ limit: 10 }).map((d) => d.offset)).toEqual([6, 5, 4, 3, 2, 1]);
    expect(store.get(decision(6).id)).toEqual(decision(6));
    expect(store.count()).toBe(6);
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
    // Stored below its partition's mark (out of log order), it is still found by id, and not stored again.
    expect(store.get('r1:1:1:2:0')).toEqual(decision(2, { partition: 1, id: 'r1:1:1:2:0' }));
    expect(store.addNew([decision(2, { partition: 1, id: 'r1:1:1:2:0' })])).toEqual([]);
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
    store.close();
    await root.close();
    root = open({ path: dir, maxDbs: 16, compression: false });
    expect(openLmdbDecisionStore(root, { maxDecisions: 100 }).list({ limit: 10 }).map((d) => d.offset)).toEqual([8, 7]);
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

  it('pages through blocks newest first, filtered by rule and entity, and keeps at most maxDecisions across a restart', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'portrait-decisions-'));
    dirs.push(dir);
    let root = open({ path: dir, maxDbs: 16, compression: false });
    let store = openLmdbDecisionStore(root, { maxDecisions: BLOCK_RECORDS * 2 });
    const total = BLOCK_RECORDS + 300;
    const all = Array.from({ length: total }, (_, i) => decision(i + 1, { ruleId: i % 3 === 0 ? 'r3' : 'r1', id: `${i % 3 === 0 ? 'r3' : 'r1'}:1:0:${i + 1}:0`, entity: `u${i % 7}` }));
    // One engine flush larger than a block, then small ones.
    expect(store.addNew(all.slice(0, total - 100)).length).toBe(total - 100);
    for (let i = total - 100; i < total; i += 10) store.addNew(all.slice(i, i + 10));
    await store.flushed();
    const pages: string[] = [];
    let before: number | undefined;
    for (;;) {
      const page = store.list({ limit: 1000, ...(before === undefined ? {} : { before }) });
      if (page.length === 0) break;
      pages.push(...page.map((d) => d.id));
      before = page.at(-1)!.cursor;
    }
    expect(pages).toEqual(all.map((d) => d.id).reverse());
    expect(store.list({ limit: 5, ruleId: 'r3' }).map((d) => d.offset)).toEqual(all.filter((d) => d.ruleId === 'r3').slice(-5).reverse().map((d) => d.offset));
    expect(store.list({ limit: 3, entity: 'u2', ruleId: 'r1' }).map((d) => d.id)).toEqual(all.filter((d) => d.entity === 'u2' && d.ruleId === 'r1').slice(-3).reverse().map((d) => d.id));
    expect(store.list({ limit: 3, ruleId: 'nope' })).toEqual([]);
    for (const d of [all[0]!, all[BLOCK_RECORDS]!, all.at(-1)!]) expect(store.get(d.id)).toEqual(d);
    await root.close();
    // Reopened with a lower limit: the oldest go (a whole block, then part of the next), and stay gone.
    root = open({ path: dir, maxDbs: 16, compression: false });
    store = openLmdbDecisionStore(root, { maxDecisions: 200 });
    store.addNew([decision(total + 1)]);
    await store.flushed();
    expect(store.count()).toBe(200);
    await root.close();
    root = open({ path: dir, maxDbs: 16, compression: false });
    store = openLmdbDecisionStore(root, { maxDecisions: 200 });
    const kept = store.list({ limit: 1000 });
    expect(kept.map((d) => d.offset)).toEqual([total + 1, ...all.slice(-199).reverse().map((d) => d.offset)]);
    expect(store.get(all[0]!.id)).toBeUndefined();
    expect(store.get(all.at(-199)!.id)).toEqual(all.at(-199));
    expect(store.get(all.at(-200)!.id)).toBeUndefined();
    await root.close();
  });
  it('holds new decisions and writes those of many calls as one block in one commit: at its delay, at flushed(), at a full block and at close', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'portrait-decisions-'));
    dirs.push(dir);
    const root = open({ path: dir, maxDbs: 16, compression: false });
    const blocks: Database<Uint8Array, number> = root.openDB({ name: 'decision-blocks', encoding: 'binary' });
    const held = openLmdbDecisionStore(root, { maxDecisions: 100_000, writeDelayMs: 60_000 });
    for (const n of [1, 2, 3]) expect(held.addNew([decision(n)]).length).toBe(1);
    // Counted at once, delivered to the caller at once, not yet written.
    expect(held.count()).toBe(3);
    await root.flushed;
    expect(blocks.getCount()).toBe(0);
    await held.flushed();
    expect(blocks.getCount()).toBe(1);
    expect(held.list({ limit: 10 }).map((d) => d.offset)).toEqual([3, 2, 1]);
    // A full block does not wait.
    held.addNew(Array.from({ length: BLOCK_RECORDS }, (_, i) => decision(10 + i)));
    await root.flushed;
    expect(blocks.getCount()).toBe(2);
    // Neither does a get, nor a close.
    held.addNew([decision(10 + BLOCK_RECORDS)]);
    expect(held.get(decision(10 + BLOCK_RECORDS).id)).toBeUndefined(); // handed to LMDB, visible once committed
    await root.flushed;
    expect(held.get(decision(10 + BLOCK_RECORDS).id)).toEqual(decision(10 + BLOCK_RECORDS));
    held.addNew([decision(20 + BLOCK_RECORDS)]);
    held.close();
    await root.flushed;
    expect(blocks.getCount()).toBe(4);
    // With a short delay the timer writes them.
    const timed = openLmdbDecisionStore(root, { maxDecisions: 100_000, writeDelayMs: 20 });
    timed.addNew([decision(30 + BLOCK_RECORDS)]);
    timed.addNew([decision(31 + BLOCK_RECORDS)]);
    await new Promise((r) => setTimeout(r, 100));
    await root.flushed;
    expect(blocks.getCount()).toBe(5);
    expect(timed.count()).toBe(BLOCK_RECORDS + 7);
    timed.close();
    await root.close();
  });
});
