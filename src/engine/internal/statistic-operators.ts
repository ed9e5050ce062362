import type { AttrValue, Event } from '../event.js';
import type { StatisticTagSpec } from '../definition-set.js';
import type { TagValue } from '../ports.js';
import { accumulatorFor, type Accumulator } from './accumulators.js';
import { BinaryReader, BinaryWriter } from '../binary.js';

/**
 * Per-partition state and logic of one statistic tag. State is kept in
 * columns indexed by entity slot: typed arrays for fixed-width numbers and
 * plain arrays for per-entity objects, so there is no per-entity object unless
 * the tag needs one (windows, distinct sets).
 */
export interface StatisticOperator {
  readonly spec: StatisticTagSpec;
  /** True for windowed tags, whose value can change when time passes. */
  readonly windowed: boolean;
  /** Value shown when the entity has no state for this tag (0 for count, sum, distinct). */
  readonly defaultValue: TagValue | undefined;
  /** Events skipped because the aggregated field had the wrong type. */
  typeMismatches: number;
  /** Events skipped because the filter threw. */
  filterErrors: number;
  has(slot: number): boolean;
  value(slot: number): TagValue | undefined;
  /** Event time of the last change of the value. */
  updatedAt(slot: number): number;
  /** Applies an event at stream time `now`; returns true when the visible value changed. */
  apply(slot: number, event: Event, now: number): boolean;
  /** Moves the window to stream time `now`; returns true when the visible value changed. */
  advance(slot: number, now: number): boolean;
  /** Stream time at which the value next changes with no event; Infinity when the slot has no state or never changes with time. */
  nextChange(slot: number): number;
  clear(slot: number): void;
  /** Writes the slot's state (the slot has state) for a checkpoint. */
  write(slot: number, w: BinaryWriter): void;
  /** Restores a slot's state written by {@link write}. */
  read(slot: number, r: BinaryReader): void;
  /** The slot's state as bytes (for snapshots that embed it). */
  snapshot(slot: number): Uint8Array;
  restore(slot: number, data: Uint8Array): void;
  /** Makes room for `capacity` slots. */
  grow(capacity: number): void;
}

/** Creates the operator of a statistic tag. */
export function createStatisticOperator(spec: StatisticTagSpec, capacity: number): StatisticOperator {
  if (spec.aggregate === 'distinct') {
    return spec.window.kind === 'lifetime' ? new LifetimeDistinct(spec, capacity) : new WindowedDistinct(spec, capacity);
  }
  return spec.window.kind === 'lifetime' ? new LifetimeAggregate(spec, capacity) : new WindowedAggregate(spec, capacity);
}

/** Whether the aggregate reads a numeric field. */
function isNumeric(spec: StatisticTagSpec): boolean {
  return spec.aggregate === 'sum' || spec.aggregate === 'avg' || spec.aggregate === 'min' || spec.aggregate === 'max';
}

function growFloat(column: Float64Array<ArrayBuffer>, capacity: number, fill: number): Float64Array<ArrayBuffer> {
  if (column.length >= capacity) return column;
  const next = new Float64Array(capacity);
  next.set(column);
  next.fill(fill, column.length);
  return next;
}

const scratch = new BinaryWriter(4096);

abstract class BaseOperator {
  typeMismatches = 0;
  filterErrors = 0;

  abstract write(slot: number, w: BinaryWriter): void;
  abstract read(slot: number, r: BinaryReader): void;

  snapshot(slot: number): Uint8Array {
    this.write(slot, scratch.reset());
    return scratch.bytes();
  }

  restore(slot: number, data: Uint8Array): void {
    this.read(slot, new BinaryReader(data));
  }

  protected at: Float64Array<ArrayBuffer>;
  protected readonly field: string | null;
  protected readonly numeric: boolean;

  constructor(readonly spec: StatisticTagSpec, capacity: number) {
    this.at = new Float64Array(capacity).fill(NaN);
    this.field = spec.field;
    this.numeric = isNumeric(spec);
  }

  updatedAt(slot: number): number {
    return this.at[slot]!;
  }

  /**
   * Whether the slot has state: its time of last change is set exactly while it
   * does (one implementation for every operator keeps this hot call monomorphic).
   */
  has(slot: number): boolean {
    const at = this.at[slot]!;
    return at === at; // not NaN
  }

  grow(capacity: number): void {
    this.at = growFloat(this.at, capacity, NaN);
  }

  /**
   * The raw field value of an event, or undefined when the event does not
   * count for this tag (field absent, or not a number where one is needed).
   */
  protected input(event: Event): AttrValue | undefined {
    const field = this.field;
    if (field === null) return 1;
    const raw = event.attrs[field];
    if (raw === undefined || raw === null) return undefined;
    if (this.numeric && typeof raw !== 'number') {
      this.typeMismatches++;
      return undefined;
    }
    return raw;
  }
}

/** count/sum/avg/min/max/first/last/latest since the tag went online. */
class LifetimeAggregate extends BaseOperator implements StatisticOperator {
  readonly windowed = false;
  readonly defaultValue: TagValue | undefined;
  private readonly acc: Accumulator;
  private readonly width: number;
  private cells: Float64Array<ArrayBuffer>;
  /** Picked values, for first/last/latest of a field. */
  private readonly picked: AttrValue[] | null;

  constructor(spec: StatisticTagSpec, capacity: number) {
    super(spec, capacity);
    this.acc = accumulatorFor(spec.aggregate as Exclude<typeof spec.aggregate, 'distinct'>);
    this.width = this.acc.width;
    this.cells = new Float64Array(capacity * this.width);
    this.picked = this.acc.picksEvent && spec.field !== null ? [] : null;
    this.defaultValue = this.acc.additive ? 0 : undefined;
  }

  value(slot: number): TagValue | undefined {
    if (!this.has(slot)) return undefined;
    if (this.picked !== null) return this.picked[slot] ?? null;
    return this.acc.result(this.cells, slot * this.width);
  }

  apply(slot: number, event: Event, _now: number): boolean {
    const raw = this.input(event);
    if (raw === undefined) return false;
    const cells = this.cells;
    const o = slot * this.width;
    const fresh = !this.has(slot);
    if (fresh) this.acc.init(cells, o);
    const before = fresh ? undefined : this.value(slot);
    const took = this.acc.add(cells, o, this.numeric ? (raw as number) : 1, event.time);
    if (took && this.picked !== null) this.picked[slot] = raw;
    if (fresh) {
      this.at[slot] = event.time;
      return true;
    }
    if (this.value(slot) !== before) {
      this.at[slot] = event.time;
      return true;
    }
    return false;
  }

  advance(): boolean {
    return false;
  }

  nextChange(): number {
    return Infinity;
  }

  clear(slot: number): void {
    this.at[slot] = NaN;
    if (this.picked !== null) this.picked[slot] = null;
  }

  write(slot: number, w: BinaryWriter): void {
    w.f64(this.at[slot]!);
    w.f64s(this.cells, slot * this.width, this.width);
    if (this.picked !== null) w.value(this.picked[slot] ?? null);
  }

  read(slot: number, r: BinaryReader): void {
    this.at[slot] = r.f64();
    r.f64s(this.cells, slot * this.width, this.width);
    if (this.picked !== null) this.picked[slot] = r.value();
  }

  override grow(capacity: number): void {
    super.grow(capacity);
    if (this.cells.length < capacity * this.width) {
      const next = new Float64Array(capacity * this.width);
      next.set(this.cells);
      this.cells = next;
    }
  }
}

/** Window bucket geometry shared by windowed operators. */
class WindowGeometry {
  readonly sizeMs: number;
  readonly slideMs: number;

  constructor(spec: StatisticTagSpec) {
    const w = spec.window;
    if (w.kind === 'lifetime') throw new Error('lifetime has no window geometry');
    this.sizeMs = w.sizeMs;
    this.slideMs = w.kind === 'sliding' ? w.slideMs : w.sizeMs;
  }

  bucketOf(time: number): number {
    return Math.floor(time / this.slideMs) * this.slideMs;
  }

  /** Lowest bucket start in the window that ends with the slide containing `now`. */
  low(now: number): number {
    return this.bucketOf(now) + this.slideMs - this.sizeMs;
  }
}

/** Scratch of {@link WindowedAggregate.drop}: one accumulator (widest is 2) and the values after each drop. */
const dropScratch: number[] = [0, 0];
const dropValues: TagValue[] = [];

/**
 * count/sum/avg/min/max/first/last/latest over a sliding or tumbling window.
 *
 * State in columns by slot: `buckets[slot]` holds, per bucket in ascending
 * start order, the bucket start followed by the accumulator cells (the only
 * per-entity object); `lo` is the lowest bucket start in view; `run` holds the
 * accumulator of the buckets in view (start >= lo), maintained on add and
 * rebuilt when the view moves. For first/last/latest of a field, `vals[slot]`
 * keeps each bucket's picked value and `runValue` the view's.
 */
class WindowedAggregate extends BaseOperator implements StatisticOperator {
  readonly windowed = true;
  readonly defaultValue: TagValue | undefined;
  private readonly acc: Accumulator;
  private readonly width: number;
  private readonly stride: number;
  private readonly geo: WindowGeometry;
  private readonly picks: boolean;
  /** A count: buckets leave by subtraction ({@link dropCounts}). */
  private readonly counts: boolean;
  private buckets: Array<number[] | undefined> = [];
  private vals: Array<AttrValue[] | undefined> = [];
  private lo: Float64Array<ArrayBuffer>;
  private run: Float64Array<ArrayBuffer>;
  private runValue: AttrValue[] = [];

  constructor(spec: StatisticTagSpec, capacity: number) {
    super(spec, capacity);
    this.acc = accumulatorFor(spec.aggregate as Exclude<typeof spec.aggregate, 'distinct'>);
    this.width = this.acc.width;
    this.stride = this.width + 1;
    this.geo = new WindowGeometry(spec);
    this.picks = this.acc.picksEvent && spec.field !== null;
    this.counts = spec.aggregate === 'count';
    this.defaultValue = this.acc.additive ? 0 : undefined;
    this.lo = new Float64Array(capacity);
    this.run = new Float64Array(capacity * this.width);
  }

  override grow(capacity: number): void {
    super.grow(capacity);
    if (this.lo.length < capacity) {
      const lo = new Float64Array(capacity);
      lo.set(this.lo);
      this.lo = lo;
      const run = new Float64Array(capacity * this.width);
      run.set(this.run);
      this.run = run;
    }
  }

  value(slot: number): TagValue | undefined {
    return this.buckets[slot] === undefined ? undefined : this.viewValue(slot);
  }

  private viewValue(slot: number): TagValue {
    const o = slot * this.width;
    if (this.picks) return this.acc.isEmpty(this.run, o) ? null : (this.runValue[slot] ?? null);
    return this.acc.result(this.run, o);
  }

  apply(slot: number, event: Event, now: number): boolean {
    const raw = this.input(event);
    if (raw === undefined) return false;
    const geo = this.geo;
    const t = event.time;
    const start = geo.bucketOf(t);
    const lo = geo.low(now);
    if (start < lo) return false; // already out of view; cannot affect this or any later value
    let b = this.buckets[slot];
    let before: TagValue | undefined;
    let dropped = false;
    const ro = slot * this.width;
    if (b === undefined) {
      b = [];
      this.buckets[slot] = b;
      this.lo[slot] = lo;
      this.acc.init(this.run, ro);
      if (this.picks) {
        this.vals[slot] = [];
        this.runValue[slot] = null;
      }
    } else {
      if (this.lo[slot]! < lo) {
        // Buckets that left the window since the last event change the value at their own time.
        const changedAt = this.counts ? this.dropCounts(slot, b, lo) : this.drop(slot, b, lo);
        if (changedAt === changedAt) {
          this.at[slot] = changedAt;
          dropped = true;
        }
      }
      if (b.length > 0) before = this.viewValue(slot);
    }
    const v = this.numeric ? (raw as number) : 1;
    const stride = this.stride;
    // Find the bucket: usually the last one (events mostly arrive in order).
    let i = b.length - stride;
    while (i >= 0 && b[i]! > start) i -= stride;
    let o: number;
    const vals = this.picks ? this.vals[slot]! : null;
    if (i >= 0 && b[i] === start) {
      o = i + 1;
    } else {
      const at = i + stride;
      if (at === b.length) {
        b.push(start);
        for (let k = 1; k < stride; k++) b.push(0);
      } else {
        const cells = new Array<number>(stride).fill(0);
        cells[0] = start;
        b.splice(at, 0, ...cells);
      }
      o = at + 1;
      this.acc.init(b, o);
      if (vals !== null) vals.splice(at / stride, 0, null);
    }
    if (this.acc.add(b, o, v, t) && vals !== null) vals[(o - 1) / stride] = raw;
    if (this.acc.add(this.run, ro, v, t) && this.picks) this.runValue[slot] = raw;
    const after = this.viewValue(slot);
    if (before === undefined || after !== before) {
      this.at[slot] = t;
      return true;
    }
    return dropped;
  }

  advance(slot: number, now: number): boolean {
    const b = this.buckets[slot];
    if (b === undefined) return false;
    const lo = this.geo.low(now);
    if (lo <= this.lo[slot]!) return false;
    const changedAt = this.counts ? this.dropCounts(slot, b, lo) : this.drop(slot, b, lo);
    if (b.length === 0) {
      this.clear(slot);
      return true;
    }
    if (changedAt === changedAt) {
      this.at[slot] = changedAt;
      return true;
    }
    return false;
  }

  /**
   * {@link drop} for a count: each leaving bucket's count is subtracted from
   * the view (integers, so exactly what a rebuild gives) and the value
   * changed with the last leaving bucket that held any event.
   */
  private dropCounts(slot: number, b: number[], lo: number): number {
    let cut = 0;
    while (cut < b.length && b[cut]! < lo) cut += 2;
    this.lo[slot] = lo;
    if (cut === 0) return NaN;
    let total = this.run[slot]!;
    let changedAt = NaN;
    for (let o = 0; o < cut; o += 2) {
      const n = b[o + 1]!;
      if (n === 0) continue;
      total -= n;
      changedAt = b[o]! + this.geo.sizeMs;
    }
    this.run[slot] = cut === b.length ? 0 : total;
    b.splice(0, cut);
    return changedAt;
  }

  /**
   * Drops the buckets below `lo` and rebuilds the view accumulator from the
   * rest. Returns the time of the last change of the visible value the drop
   * made (the end of the last bucket whose leaving changed it), or NaN when
   * the value is unchanged — exactly as if each bucket had left at its own
   * time, however late the window is moved. One backward pass over the
   * buckets computes both the value after each drop and the new view.
   */
  private drop(slot: number, b: number[], lo: number): number {
    const stride = this.stride;
    let cut = 0;
    while (cut < b.length && b[cut]! < lo) cut += stride;
    this.lo[slot] = lo;
    if (cut === 0) return NaN;
    const acc = this.acc;
    const temp = dropScratch;
    acc.init(temp, 0);
    let tempValue: AttrValue = null;
    const droppedCount = cut / stride;
    // values[k]: the visible value once the first k buckets have left (k = 0 is the current value).
    const values = dropValues;
    values.length = droppedCount + 1;
    const picks = this.picks;
    const vals = picks ? this.vals[slot]! : null;
    const valueOf = (): TagValue => (picks ? (acc.isEmpty(temp, 0) ? null : tempValue) : acc.result(temp, 0));
    const ro = slot * this.width;
    let k = b.length / stride;
    if (k === droppedCount) values[k] = valueOf();
    for (let o = b.length - stride; o >= 0; o -= stride) {
      k--;
      if (acc.merge(temp, 0, b, o + 1) && vals !== null) tempValue = vals[k] ?? null;
      if (k === droppedCount) {
        // The new view: everything at or above the cut.
        for (let c = 0; c < this.width; c++) this.run[ro + c] = temp[c]!;
        if (picks) this.runValue[slot] = tempValue;
      }
      if (k <= droppedCount) values[k] = valueOf();
    }
    let changedAt = NaN;
    for (let i = droppedCount; i >= 1; i--) {
      if (values[i] !== values[i - 1]) {
        changedAt = b[(i - 1) * stride]! + this.geo.sizeMs;
        break;
      }
    }
    if (droppedCount * stride === b.length) {
      acc.init(this.run, ro);
      if (picks) this.runValue[slot] = null;
    }
    b.splice(0, cut);
    if (vals !== null) vals.splice(0, droppedCount);
    return changedAt;
  }

  nextChange(slot: number): number {
    const b = this.buckets[slot];
    if (b === undefined || b.length === 0) return Infinity;
    return b[0]! + this.geo.sizeMs;
  }

  clear(slot: number): void {
    this.buckets[slot] = undefined;
    if (this.picks) {
      this.vals[slot] = undefined;
      this.runValue[slot] = null;
    }
    this.at[slot] = NaN;
  }

  write(slot: number, w: BinaryWriter): void {
    const b = this.buckets[slot]!;
    w.f64(this.at[slot]!);
    w.f64(this.lo[slot]!);
    w.u32(b.length);
    w.f64s(b, 0, b.length);
    w.f64s(this.run, slot * this.width, this.width);
    if (this.picks) {
      w.value(this.runValue[slot] ?? null);
      const v = this.vals[slot]!;
      for (let i = 0; i < v.length; i++) w.value(v[i] ?? null);
    }
  }

  read(slot: number, r: BinaryReader): void {
    this.at[slot] = r.f64();
    this.lo[slot] = r.f64();
    const n = r.u32();
    const b = new Array<number>(n);
    r.f64s(b, 0, n);
    this.buckets[slot] = b;
    r.f64s(this.run, slot * this.width, this.width);
    if (this.picks) {
      this.runValue[slot] = r.value();
      const v: AttrValue[] = [];
      for (let i = 0; i < n / this.stride; i++) v.push(r.value());
      this.vals[slot] = v;
    }
  }
}

/** Distinct values of a field since the tag went online, capped at `maxDistinct`. */
class LifetimeDistinct extends BaseOperator implements StatisticOperator {
  readonly windowed = false;
  readonly defaultValue = 0;
  /** Entities whose set reached `maxDistinct` (their count stops growing). */
  capped = 0;
  private sets: Array<Set<AttrValue> | undefined> = [];

  value(slot: number): TagValue | undefined {
    return this.sets[slot]?.size;
  }

  apply(slot: number, event: Event): boolean {
    const raw = this.input(event);
    if (raw === undefined) return false;
    let set = this.sets[slot];
    if (set === undefined) {
      set = new Set();
      this.sets[slot] = set;
    }
    if (set.has(raw)) return false;
    if (set.size >= this.spec.maxDistinct) {
      if (set.size === this.spec.maxDistinct) this.capped++;
      return false;
    }
    set.add(raw);
    this.at[slot] = event.time;
    return true;
  }

  advance(): boolean {
    return false;
  }

  nextChange(): number {
    return Infinity;
  }

  clear(slot: number): void {
    this.sets[slot] = undefined;
    this.at[slot] = NaN;
  }

  write(slot: number, w: BinaryWriter): void {
    const set = this.sets[slot]!;
    w.f64(this.at[slot]!);
    w.u32(set.size);
    for (const value of set) w.value(value);
  }

  read(slot: number, r: BinaryReader): void {
    this.at[slot] = r.f64();
    const set = new Set<AttrValue>();
    for (let n = r.u32(); n > 0; n--) set.add(r.value());
    this.sets[slot] = set;
  }
}

/** Per-entity state of a windowed distinct count: value → latest event time. */
class DistinctWindowState {
  lo: number;
  /** A lower bound of the earliest time in `seen`. */
  minTime = Infinity;
  seen = new Map<AttrValue, number>();

  constructor(lo: number) {
    this.lo = lo;
  }
}

/** Distinct values of a field over a sliding or tumbling window. */
class WindowedDistinct extends BaseOperator implements StatisticOperator {
  readonly windowed = true;
  readonly defaultValue = 0;
  capped = 0;
  private readonly geo: WindowGeometry;
  private states: Array<DistinctWindowState | undefined> = [];

  constructor(spec: StatisticTagSpec, capacity: number) {
    super(spec, capacity);
    this.geo = new WindowGeometry(spec);
  }

  value(slot: number): TagValue | undefined {
    return this.states[slot]?.seen.size;
  }

  apply(slot: number, event: Event, now: number): boolean {
    const raw = this.input(event);
    if (raw === undefined) return false;
    const t = event.time;
    const lo = this.geo.low(now);
    if (t < lo) return false;
    let st = this.states[slot];
    let dropped = false;
    if (st === undefined) {
      st = new DistinctWindowState(lo);
      this.states[slot] = st;
    } else if (st.lo < lo) {
      const changedAt = this.prune(st, lo);
      if (changedAt === changedAt) {
        this.at[slot] = changedAt;
        dropped = true;
      }
    }
    const seen = st.seen;
    const prev = seen.get(raw);
    if (prev !== undefined) {
      if (t > prev) seen.set(raw, t);
      return dropped;
    }
    if (seen.size >= this.spec.maxDistinct) {
      if (seen.size === this.spec.maxDistinct) this.capped++;
      return dropped;
    }
    seen.set(raw, t);
    if (t < st.minTime) st.minTime = t;
    this.at[slot] = t;
    return true;
  }

  /**
   * Drops the values last seen below `lo`. Returns when the count last changed
   * because of it — the end of the window of the latest dropped value — or NaN
   * when nothing was dropped.
   */
  private prune(st: DistinctWindowState, lo: number): number {
    let min = Infinity;
    let latestDropped = -Infinity;
    if (st.minTime < lo) {
      for (const [value, time] of st.seen) {
        if (time < lo) {
          st.seen.delete(value);
          if (time > latestDropped) latestDropped = time;
        } else if (time < min) min = time;
      }
      st.minTime = min;
    }
    st.lo = lo;
    return latestDropped === -Infinity ? NaN : this.geo.bucketOf(latestDropped) + this.geo.sizeMs;
  }

  advance(slot: number, now: number): boolean {
    const st = this.states[slot];
    if (st === undefined) return false;
    const lo = this.geo.low(now);
    if (lo <= st.lo) return false;
    const changedAt = this.prune(st, lo);
    if (st.seen.size === 0) {
      this.states[slot] = undefined;
      this.at[slot] = NaN;
      return true;
    }
    if (changedAt === changedAt) {
      this.at[slot] = changedAt;
      return true;
    }
    return false;
  }

  nextChange(slot: number): number {
    const st = this.states[slot];
    if (st === undefined || st.seen.size === 0) return Infinity;
    return this.geo.bucketOf(st.minTime) + this.geo.sizeMs;
  }

  clear(slot: number): void {
    this.states[slot] = undefined;
    this.at[slot] = NaN;
  }

  write(slot: number, w: BinaryWriter): void {
    const st = this.states[slot]!;
    w.f64(this.at[slot]!);
    w.f64(st.lo);
    w.f64(st.minTime);
    w.u32(st.seen.size);
    for (const [value, time] of st.seen) {
      w.value(value);
      w.f64(time);
    }
  }

  read(slot: number, r: BinaryReader): void {
    const at = r.f64();
    const st = new DistinctWindowState(r.f64());
    st.minTime = r.f64();
    for (let n = r.u32(); n > 0; n--) {
      const value = r.value();
      st.seen.set(value, r.f64());
    }
    this.states[slot] = st;
    this.at[slot] = at;
  }
}
