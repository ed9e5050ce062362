import { describe, expect, it } from 'vitest';
import type { TagDocument } from '../../src/definitions/index.js';
import { ControlType, type Event, type LogRecord, type Profile } from '../../src/engine/index.js';
import { PartitionTask, type TimePolicy } from '../../src/engine/internal/partition-task.js';
import { demoCatalog } from '../../src/ingest/index.js';
import { compileRevisions } from './harness.js';

// A slide visits only the windows due, found from a per-entity row of next
// changes. These cases move time with marks alone (no event touches the
// entities again), so a row left stale by a definition switch or a restore
// would leave windows that never slide.

const BASE = Date.UTC(2024, 0, 1);
const s = (seconds: number): number => BASE + seconds * 1_000;

const CNT: TagDocument = { id: 'cnt', kind: 'statistic', eventTypes: ['payment'], aggregate: 'count', window: { type: 'sliding', size: '4s', slide: '1s' } };
const SUM: TagDocument = { id: 'sum', kind: 'statistic', eventTypes: ['payment'], aggregate: 'sum', field: 'amount', window: { type: 'sliding', size: '6s', slide: '2s' } };
const MANY: TagDocument = { id: 'many', kind: 'rule', condition: 'has(tags.cnt) && tags.cnt >= 2' };
const TOTAL: TagDocument = { id: 'total', kind: 'statistic', eventTypes: ['payment'], aggregate: 'sum', field: 'amount', window: { type: 'lifetime' } };
const LOGINS: TagDocument = { id: 'logins', kind: 'statistic', eventTypes: ['login'], aggregate: 'count', window: { type: 'sliding', size: '3s', slide: '1s' } };

// Windows at other indices after the switch: a new windowed tag comes first, a lifetime one goes.
const [BEFORE, AFTER] = compileRevisions([[TOTAL, CNT, SUM, MANY], [LOGINS, SUM, CNT, MANY]], demoCatalog);
const POLICY: TimePolicy = { outOfOrdernessMs: 0, allowedLatenessMs: 60_000, latePolicy: 'count', stateTtlMs: 0 };
const USERS = Array.from({ length: 50 }, (_, i) => `u${i}`);

const pay = (key: string, time: number, amount: number): Event => ({ type: 'payment', time, key, attrs: { order_id: `o${time}`, amount, success: true } });
const mark = (time: number): LogRecord => ({ type: ControlType.Mark, time, key: '', attrs: { now: time } });

function load(task: PartitionTask): number {
  let offset = 0;
  USERS.forEach((u, i) => {
    task.process(pay(u, s(10) + i, 2), offset++);
    task.process(pay(u, s(12) + i, 3), offset++);
  });
  return offset;
}

const MARKS = [s(13), s(14) + 100, s(15) + 100, s(16) + 100, s(17) + 100, s(19), s(25)];

/** Profiles of every user after each mark, without the tags only one side has. */
function slide(task: PartitionTask, offset: number): Array<Array<Profile | undefined>> {
  return MARKS.map((t) => {
    task.process(mark(t), offset++);
    return USERS.map((u) => {
      const slot = task.slotOf(u);
      if (slot === undefined) return undefined;
      const p = task.profileOf(slot);
      delete p.tags.total;
      return p;
    });
  });
}

describe('window slides with no event', () => {
  it('go on after a definition switch moves the windows, as if the new definitions had been there from the start', () => {
    const reference = new PartitionTask(0, POLICY);
    reference.applyDefinitions(AFTER!);
    const expected = slide(reference, load(reference));

    const task = new PartitionTask(0, POLICY);
    task.applyDefinitions(BEFORE!);
    const offset = load(task);
    task.applyDefinitions(AFTER!);
    const got = slide(task, offset);
    expect(got).toEqual(expected);

    // The values themselves: at 14.1 s the first payment (10 s) has left the 4 s count.
    expect(got[1]![0]!.tags.cnt!.value).toBe(1);
    expect(got[1]![0]!.tags.many!.value).toBe(false);
    // At 17.1 s both payments have left the count; the 6 s sum still holds the second.
    expect(got[4]![0]!.tags.cnt).toBeUndefined();
    expect(got[4]![0]!.tags.sum!.value).toBe(3);
    // At 25 s both windows are empty (the rule tag keeps the entity).
    expect(got[6]!.every((p) => p !== undefined && p.tags.cnt === undefined && p.tags.sum === undefined)).toBe(true);
  });

  it('go on after a restore from a checkpoint', () => {
    const reference = new PartitionTask(0, POLICY);
    reference.applyDefinitions(AFTER!);
    const offset = load(reference);
    const checkpoint = reference.checkpointChange(1);
    expect(reference.encodeCheckpoint(Infinity)).toBe(true);
    const expected = slide(reference, offset);

    const restored = new PartitionTask(0, POLICY);
    restored.applyDefinitions(AFTER!);
    restored.restoreMeta(checkpoint.meta);
    for (const [key, bytes] of checkpoint.upserts) restored.restoreEntity(key, bytes);
    restored.finishRestore();
    expect(slide(restored, offset)).toEqual(expected);
  });
});
