import { describe, expect, it } from 'vitest';
import type { Event, StatisticTagSpec } from '../../src/engine/index.js';
import { createStatisticOperator } from '../../src/engine/internal/statistic-operators.js';

const S = 1_000;
const T0 = 1_700_000_000_000;

function spec(aggregate: 'count' | 'sum'): StatisticTagSpec {
  return {
    kind: 'statistic', id: aggregate, version: 1, stateId: aggregate, eventTypes: ['e'], filter: null,
    field: aggregate === 'sum' ? 'amount' : null, aggregate, window: { kind: 'sliding', sizeMs: 60 * S, slideMs: S }, maxDistinct: 100,
  };
}

function same(a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.from(a.buffer, a.byteOffset, a.length).equals(Buffer.from(b.buffer, b.byteOffset, b.length));
}

function event(time: number, amount: number): Event {
  return { type: 'e', time, key: 'k', attrs: { amount } };
}

describe('windowed aggregates keep buckets in an arena', () => {
  for (const aggregate of ['count', 'sum'] as const) {
    it(`${aggregate}: gives the arena back when most entities expire, and the others keep their state exactly`, () => {
      const slots = 3_000;
      const op = createStatisticOperator(spec(aggregate), slots) as ReturnType<typeof createStatisticOperator> & { arenaSize(): number };
      const now = T0 + 59 * S;
      // 60 buckets for each entity: every entity's segment grows to 64 buckets.
      for (let slot = 0; slot < slots; slot++) {
        for (let k = 0; k < 60; k++) op.apply(slot, event(T0 + k * S + (slot % 7), (slot % 13) + k / 4), now);
      }
      const full = op.arenaSize();
      const kept = (slot: number): boolean => slot % 3 === 0;
      const before = new Map<number, { value: unknown; at: number; next: number; bytes: Uint8Array }>();
      for (let slot = 0; slot < slots; slot++) {
        if (kept(slot)) before.set(slot, { value: op.value(slot), at: op.updatedAt(slot), next: op.nextChange(slot), bytes: op.snapshot(slot).slice() });
      }
      // Two thirds of the entities see their window empty and lose their state.
      for (let slot = 0; slot < slots; slot++) if (!kept(slot)) expect(op.advance(slot, now + 120 * S)).toBe(true);
      for (let slot = 0; slot < slots; slot++) expect(op.has(slot)).toBe(kept(slot));
      expect(op.arenaSize()).toBeLessThan(full / 2);
      for (const [slot, b] of before) {
        expect(op.value(slot)).toBe(b.value);
        expect(op.updatedAt(slot)).toBe(b.at);
        expect(op.nextChange(slot)).toBe(b.next);
        expect(same(op.snapshot(slot), b.bytes)).toBe(true);
      }
      // The kept entities go on as before: a slide drops their oldest buckets, an event adds one.
      const reference = createStatisticOperator(spec(aggregate), slots);
      for (const [slot, b] of before) {
        reference.restore(slot, b.bytes);
        for (const o of [op, reference]) {
          o.advance(slot, now + 10 * S);
          o.apply(slot, event(now + 10 * S, 2.5), now + 10 * S);
        }
        expect(op.value(slot)).toBe(reference.value(slot));
        expect(op.updatedAt(slot)).toBe(reference.updatedAt(slot));
        expect(op.nextChange(slot)).toBe(reference.nextChange(slot));
        expect(same(op.snapshot(slot), reference.snapshot(slot))).toBe(true);
      }
      // Freed entities start again from nothing.
      op.apply(1, event(now + 200 * S, 4), now + 200 * S);
      expect(op.value(1)).toBe(aggregate === 'count' ? 1 : 4);
      expect(op.nextChange(1)).toBe(now + 200 * S - ((now + 200 * S) % S) + 60 * S);
    });
  }
});
