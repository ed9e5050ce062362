import type { AggregateFn } from '../definition-set.js';

/** Lifetime columns are Float64Arrays; window buckets are plain number arrays. */
export type NumArray = Float64Array | number[];

/**
 * A fixed-width numeric accumulator stored inline in a number array at an
 * offset: no object per accumulator, so a million entities cost a few bytes each.
 */
export interface Accumulator {
  /** Numbers the accumulator occupies. */
  readonly width: number;
  /** True for count, sum and distinct: an empty window reads as 0 rather than absent. */
  readonly additive: boolean;
  /** True when the value is that of one chosen event (first/last/latest): callers keep the value beside it. */
  readonly picksEvent: boolean;
  init(a: NumArray, o: number): void;
  /**
   * Adds an observation `v` at event time `t`. For accumulators that pick an event,
   * returns true when this observation became the picked one.
   */
  add(a: NumArray, o: number, v: number, t: number): boolean;
  /** Merges `src` into `dst`; for picking accumulators returns true when `src`'s pick won. */
  merge(dst: NumArray, od: number, src: NumArray, os: number): boolean;
  /** Numeric result, or null when nothing was observed. For picking accumulators: the pick's time. */
  result(a: NumArray, o: number): number | null;
  /** Whether anything was observed. */
  isEmpty(a: NumArray, o: number): boolean;
}

const count: Accumulator = {
  width: 1,
  additive: true,
  picksEvent: false,
  init(a, o) { a[o] = 0; },
  add(a, o) { a[o]! += 1; return false; },
  merge(d, od, s, os) { d[od]! += s[os]!; return false; },
  result(a, o) { return a[o]!; },
  isEmpty(a, o) { return a[o] === 0; },
};

// sum keeps an observation count beside the total so an empty window is told apart from a zero sum.
const sum: Accumulator = {
  width: 2,
  additive: true,
  picksEvent: false,
  init(a, o) { a[o] = 0; a[o + 1] = 0; },
  add(a, o, v) { a[o]! += v; a[o + 1]! += 1; return false; },
  merge(d, od, s, os) { d[od]! += s[os]!; d[od + 1]! += s[os + 1]!; return false; },
  result(a, o) { return a[o]!; },
  isEmpty(a, o) { return a[o + 1] === 0; },
};

const avg: Accumulator = {
  ...sum,
  additive: false,
  result(a, o) { const n = a[o + 1]!; return n === 0 ? null : a[o]! / n; },
};

const min: Accumulator = {
  width: 1,
  additive: false,
  picksEvent: false,
  init(a, o) { a[o] = Infinity; },
  add(a, o, v) { if (v < a[o]!) a[o] = v; return false; },
  merge(d, od, s, os) { if (s[os]! < d[od]!) d[od] = s[os]!; return false; },
  result(a, o) { const v = a[o]!; return v === Infinity ? null : v; },
  isEmpty(a, o) { return a[o] === Infinity; },
};

const max: Accumulator = {
  width: 1,
  additive: false,
  picksEvent: false,
  init(a, o) { a[o] = -Infinity; },
  add(a, o, v) { if (v > a[o]!) a[o] = v; return false; },
  merge(d, od, s, os) { if (s[os]! > d[od]!) d[od] = s[os]!; return false; },
  result(a, o) { const v = a[o]!; return v === -Infinity ? null : v; },
  isEmpty(a, o) { return a[o] === -Infinity; },
};

// Earliest event by event time; on equal times the first to arrive stays.
const first: Accumulator = {
  width: 1,
  additive: false,
  picksEvent: true,
  init(a, o) { a[o] = Infinity; },
  add(a, o, _v, t) { if (t < a[o]!) { a[o] = t; return true; } return false; },
  merge(d, od, s, os) { if (s[os]! < d[od]!) { d[od] = s[os]!; return true; } return false; },
  result(a, o) { const t = a[o]!; return t === Infinity ? null : t; },
  isEmpty(a, o) { return a[o] === Infinity; },
};

// Latest event by event time; on equal times the last to arrive wins, which a replay reproduces.
const last: Accumulator = {
  width: 1,
  additive: false,
  picksEvent: true,
  init(a, o) { a[o] = -Infinity; },
  add(a, o, _v, t) { if (t >= a[o]!) { a[o] = t; return true; } return false; },
  merge(d, od, s, os) { if (s[os]! >= d[od]!) { d[od] = s[os]!; return true; } return false; },
  result(a, o) { const t = a[o]!; return t === -Infinity ? null : t; },
  isEmpty(a, o) { return a[o] === -Infinity; },
};

/** The accumulator of an aggregate function (`distinct` is kept as a set, not here). */
export function accumulatorFor(fn: Exclude<AggregateFn, 'distinct'>): Accumulator {
  switch (fn) {
    case 'count': return count;
    case 'sum': return sum;
    case 'avg': return avg;
    case 'min': return min;
    case 'max': return max;
    case 'first': return first;
    case 'last':
    case 'latest': return last;
  }
}
