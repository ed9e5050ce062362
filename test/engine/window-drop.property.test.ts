import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Event, StatisticTagSpec } from '../../src/engine/index.js';
import { createStatisticOperator } from '../../src/engine/internal/statistic-operators.js';

const S = 1_000;

function spec(aggregate: 'count' | 'sum', window: StatisticTagSpec['window']): StatisticTagSpec {
  return { kind: 'statistic', id: aggregate, version: 1, stateId: aggregate, eventTypes: ['e'], filter: null, field: aggregate === 'sum' ? 'one' : null, aggregate, window, maxDistinct: 100 };
}

describe('a count drops leaving buckets by subtraction', () => {
  it('giving the values and change times a rebuild from the buckets gives (a sum of ones), through events, late events and slides', () => {
    const step = fc.oneof(
      fc.record({ kind: fc.constant('event' as const), back: fc.integer({ min: 0, max: 12 * S }), slot: fc.integer({ min: 0, max: 2 }), burst: fc.integer({ min: 1, max: 6 }) }),
      fc.record({ kind: fc.constant('advance' as const), by: fc.oneof(fc.integer({ min: 0, max: 4 * S }), fc.integer({ min: 0, max: 30 * S })), slot: fc.integer({ min: 0, max: 2 }) }),
    );
    const windows = fc.constantFrom<StatisticTagSpec['window']>({ kind: 'sliding', sizeMs: 10 * S, slideMs: 2 * S }, { kind: 'sliding', sizeMs: 9 * S, slideMs: 3 * S }, { kind: 'tumbling', sizeMs: 5 * S });
    fc.assert(
      fc.property(windows, fc.array(step, { minLength: 1, maxLength: 150 }), (window, steps) => {
        const count = createStatisticOperator(spec('count', window), 4);
        const sum = createStatisticOperator(spec('sum', window), 4);
        let now = 100 * S;
        for (const s of steps) {
          if (s.kind === 'event') {
            now += 100;
            const event: Event = { type: 'e', time: now - s.back, key: 'k', attrs: { one: 1 } };
            for (let i = 0; i < s.burst; i++) expect(count.apply(s.slot, event, now)).toBe(sum.apply(s.slot, event, now));
          } else {
            now += s.by;
            expect(count.advance(s.slot, now)).toBe(sum.advance(s.slot, now));
          }
          for (let slot = 0; slot < 3; slot++) {
            expect(count.has(slot)).toBe(sum.has(slot));
            if (!sum.has(slot)) continue;
            expect(count.value(slot)).toBe(sum.value(slot));
            expect(count.updatedAt(slot)).toBe(sum.updatedAt(slot));
            expect(count.nextChange(slot)).toBe(sum.nextChange(slot));
          }
        }
      }),
      { numRuns: 300 },
    );
  });
});
