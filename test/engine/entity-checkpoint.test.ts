import { describe, expect, it } from 'vitest';
import type { TagDocument } from '../../src/definitions/index.js';
import { ControlType, type EntitySnapshots, type Event, type LogRecord } from '../../src/engine/index.js';
import { PartitionTask, type TimePolicy } from '../../src/engine/internal/partition-task.js';
import { demoCatalog } from '../../src/ingest/index.js';
import { compileRevisions } from './harness.js';

// Entity snapshots of a checkpoint are encoded in slices by the running loop:
// an entity still owed to the checkpoint is encoded before anything changes
// it. Each case starts a checkpoint, lets one slice through, changes every
// entity in one way, and checks that the finished checkpoint holds exactly
// what a checkpoint encoded all at once, before the change, holds. Profiles
// are written in rounds encoded in slices the same way (last describe).

const BASE = Date.UTC(2024, 0, 1);
const s = (seconds: number): number => BASE + seconds * 1_000;

const DOCS: TagDocument[] = [
  { id: 'cnt', kind: 'statistic', eventTypes: ['payment'], aggregate: 'count', window: { type: 'sliding', size: '4s', slide: '1s' } },
  { id: 'total', kind: 'statistic', eventTypes: ['payment'], aggregate: 'sum', field: 'amount', window: { type: 'lifetime' } },
  { id: 'many', kind: 'rule', condition: 'has(tags.cnt) && tags.cnt >= 2' },
];
const [FIRST, WITHOUT_TOTAL] = compileRevisions([DOCS, DOCS.filter((d) => d.id !== 'total')], demoCatalog);
const POLICY: TimePolicy = { outOfOrdernessMs: 0, allowedLatenessMs: 60_000, latePolicy: 'count', stateTtlMs: 20_000 };

const USERS = Array.from({ length: 200 }, (_, i) => `u${i}`);

const pay = (key: string, time: number, amount: number): Event => ({ type: 'payment', time, key, attrs: { order_id: `o${time}`, amount, success: true } });
const attrs = (key: string, values: Record<string, string | null>, time: number): LogRecord => ({ type: ControlType.Attributes, time, key, attrs: values });
const mark = (time: number): LogRecord => ({ type: ControlType.Mark, time, key: '', attrs: { now: time } });

/** Every user has two payments in the window, half of them attributes too. */
function loaded(until?: number): { task: PartitionTask; offset: number } {
  const task = new PartitionTask(0, POLICY);
  task.applyDefinitions(FIRST!);
  let offset = 0;
  USERS.forEach((u, i) => {
    task.process(pay(u, s(10) + i, 2), offset++);
    task.process(pay(u, s(12) + i, 3), offset++);
    if (i % 2 === 0) task.process(attrs(u, { tier: 'gold' }, s(12) + i), offset++);
  });
  if (until !== undefined) task.process(mark(until), offset++);
  return { task, offset };
}

function sorted(upserts: EntitySnapshots): Array<[string, string]> {
  return [...upserts].map(([k, v]) => [k, Buffer.from(v).toString('hex')] as [string, string]).sort((a, b) => a[0].localeCompare(b[0]));
}

/** The finished sliced checkpoint and the one encoded at once, with how many entities the first slice wrote. */
function compare(change: (task: PartitionTask, offset: number) => void, until?: number): { sliced: Array<[string, string]>; whole: Array<[string, string]>; firstSlice: number; deletes: [ReadonlyArray<string>, ReadonlyArray<string>] } {
  const reference = loaded(until).task;
  const whole = reference.checkpointChange(1);
  expect(reference.encodeCheckpoint(Infinity)).toBe(true);

  const { task, offset } = loaded(until);
  const sliced = task.checkpointChange(1);
  // A deadline already passed: one small slice is written, the rest is owed.
  expect(task.encodeCheckpoint(0)).toBe(false);
  const firstSlice = sliced.upserts.length;
  change(task, offset);
  expect(task.encodeCheckpoint(Infinity)).toBe(true);
  // Restored from the sliced checkpoint, a task has the profiles the reference had when it was taken.
  const restored = new PartitionTask(0, POLICY);
  restored.applyDefinitions(FIRST!);
  restored.restoreMeta(sliced.meta);
  for (const [key, bytes] of sliced.upserts) restored.restoreEntity(key, bytes);
  restored.finishRestore();
  for (const u of USERS) expect(restored.profileOf(restored.slotOf(u)!)).toEqual(reference.profileOf(reference.slotOf(u)!));
  return { sliced: sorted(sliced.upserts), whole: sorted(whole.upserts), firstSlice, deletes: [sliced.deletes, whole.deletes] };
}

describe('entity snapshots are encoded in slices while records go on', () => {
  it('the first slice writes only some of the entities owed', () => {
    const { sliced, whole, firstSlice } = compare(() => undefined);
    expect(whole.length).toBe(USERS.length);
    expect(firstSlice).toBeGreaterThan(0);
    expect(firstSlice).toBeLessThan(USERS.length);
    expect(sliced).toEqual(whole);
  });

  it('entities an event changes are written as they were when the checkpoint began', () => {
    const { sliced, whole } = compare((task, offset) => USERS.forEach((u, i) => task.process(pay(u, s(13) + i, 7), offset + i)));
    expect(sliced).toEqual(whole);
  });

  it('entities an attribute upsert changes or empties are written as they were', () => {
    const { sliced, whole } = compare((task, offset) =>
      USERS.forEach((u, i) => task.process(attrs(u, i % 2 === 0 ? { tier: null } : { tier: 'silver' }, s(13) + i), offset + i)),
    );
    expect(sliced).toEqual(whole);
  });

  it('entities whose windows slide are written as they were before the slide', () => {
    // At 14.5 s the 10 s buckets leave the 4 s windows: every count drops from 2 to 1.
    const { task, offset } = loaded();
    task.process(mark(s(14.5)), offset);
    expect(task.profileOf(task.slotOf('u0')!).tags.cnt?.value).toBe(1);
    const { sliced, whole } = compare((t, o) => t.process(mark(s(14.5)), o));
    expect(sliced).toEqual(whole);
  });

  it('entities that expire (state TTL) are written as they were, and deleted only by the next checkpoint', () => {
    // Loaded up to 20 s: every window has emptied (no slide is due), the lifetime sums remain.
    let next: ReturnType<PartitionTask['checkpointChange']> | undefined;
    const { sliced, whole, deletes } = compare((task, offset) => {
      task.process(mark(s(60)), offset);
      expect(task.entityCount).toBe(0);
      expect(task.encodeCheckpoint(Infinity)).toBe(true);
      next = task.checkpointChange(2);
    }, s(20));
    expect(sliced).toEqual(whole);
    expect(deletes[0]).toEqual(deletes[1]);
    expect([...next!.upserts]).toEqual([]);
    expect([...next!.deletes].sort()).toEqual([...USERS].sort());
  });

  it('a rule setting a tag waits for the entity to be written first', () => {
    const { sliced, whole } = compare((task) => USERS.forEach((u, i) => task.setRuleTag(u, 'flagged', true, s(13) + i, 1)));
    expect(sliced).toEqual(whole);
  });

  it('a definition switch that drops a tag\'s state finishes the checkpoint first', () => {
    const { sliced, whole } = compare((task) => task.applyDefinitions(WITHOUT_TOTAL!));
    expect(sliced).toEqual(whole);
  });
});

/** A profile store: removals, then writes, as the engine applies a round. */
function apply(store: Map<string, string>, write: ReadonlyArray<readonly [string, Uint8Array]>, remove: ReadonlyArray<string> = []): void {
  for (const key of remove) store.delete(key);
  for (const [key, bytes] of write) store.set(key, Buffer.from(bytes).toString('hex'));
}

describe('profiles are written in rounds encoded in slices', () => {
  it('a round handed out in slices writes each changed profile once; changes after it began wait for the next round', () => {
    const { task, offset } = loaded();
    const remove = task.beginProfileRound();
    expect(remove).toEqual([]);
    const first = task.drainProfileRound(0);
    expect(first.done).toBe(false);
    expect(first.write.length).toBeGreaterThan(0);
    expect(first.write.length).toBeLessThan(USERS.length);
    // A user already written changes again, and one not yet written: both are in the store once more by the end.
    const written = first.write[0]![0];
    const notYet = USERS.find((u) => !first.write.some(([k]) => k === u))!;
    task.process(pay(written, s(13), 9), offset);
    task.process(pay(notYet, s(13), 9), offset + 1);
    const rest = task.drainProfileRound(Infinity);
    expect(rest.done).toBe(true);
    const keys = [...first.write, ...rest.write].map(([k]) => k);
    expect(new Set(keys).size).toBe(keys.length);
    expect([...keys].sort()).toEqual([...USERS].sort());
    // The one written before its change is written again by the next round, and only it.
    task.beginProfileRound();
    const next = task.drainProfileRound(Infinity);
    expect(next.write.map(([k]) => k)).toEqual([written]);
    expect(task.pendingProfiles).toBe(0);
  });

  it('an entity that expires and comes back in its old slot while a round is in progress stays in the store', () => {
    const run = (task: PartitionTask, offset: number, between: () => void): void => {
      // Everyone expires (TTL 20 s); the last to expire comes back first, in the slot it had.
      task.process(mark(s(40)), offset++);
      between();
      task.process(pay(USERS[USERS.length - 1]!, s(41), 5), offset++);
    };
    const reference = loaded();
    run(reference.task, reference.offset, () => undefined);
    const whole = new Map<string, string>();
    const all = reference.task.drainProfiles();
    apply(whole, all.write, all.remove);
    expect(whole.size).toBe(1);

    const { task, offset } = loaded();
    const store = new Map<string, string>();
    apply(store, [], task.beginProfileRound());
    // One slice, then the expiry and the return; the round goes on with the slot of the one back.
    const first = task.drainProfileRound(0);
    apply(store, first.write);
    expect(first.done).toBe(false);
    run(task, offset, () => undefined);
    const rest = task.drainProfileRound(Infinity);
    apply(store, rest.write);
    const next = task.drainProfiles();
    apply(store, next.write, next.remove);
    expect(store).toEqual(whole);
  });

  it('rounds in slices between records leave the store as one write of everything at the end does, expiry and re-creation included', () => {
    const events = (task: PartitionTask, from: number, each: (i: number) => void): number => {
      let offset = from;
      USERS.forEach((u, i) => {
        task.process(pay(u, s(30) + i, i), offset++);
        each(i);
      });
      // Everyone expires (TTL 20 s), then half come back.
      task.process(mark(s(80)), offset++);
      each(-1);
      USERS.forEach((u, i) => {
        if (i % 2 === 0) task.process(pay(u, s(81) + i, 1), offset++);
        each(i);
      });
      return offset;
    };
    const reference = loaded();
    events(reference.task, reference.offset, () => undefined);
    const whole = new Map<string, string>();
    const all = reference.task.drainProfiles();
    apply(whole, all.write, all.remove);

    const { task, offset } = loaded();
    const store = new Map<string, string>();
    let inRound = false;
    events(task, offset, (i) => {
      if (!inRound && (i === -1 || i % 37 === 0)) {
        apply(store, [], task.beginProfileRound());
        inRound = true;
      }
      if (inRound && i % 5 === 0) {
        const { write, done } = task.drainProfileRound(0);
        apply(store, write);
        if (done) inRound = false;
      }
    });
    const rest = task.drainProfiles();
    apply(store, rest.write, rest.remove);
    expect(store.size).toBe(USERS.length / 2);
    expect(store).toEqual(whole);
  });
});
