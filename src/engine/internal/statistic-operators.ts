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

  /**
   * Time of the last change by slot, at `slot * atStride + atOffset` (an
   * operator that keeps a row per slot keeps it in the row).
   */
  protected at: Float64Array<ArrayBuffer>;
  protected atStride = 1;
  protected atOffset = 0;
  protected readonly field: string | null;
  protected readonly numeric: boolean;

  constructor(readonly spec: StatisticTagSpec, capacity: number) {
    this.at = growRows(new Float64Array(0), capacity, 1, 0);
    this.field = spec.field;
    this.numeric = isNumeric(spec);
  }

  updatedAt(slot: number): number {
    return this.at[slot * this.atStride + this.atOffset]!;
  }

  /**
   * Whether the slot has state: its time of last change is set exactly while it
   * does (one implementation for every operator keeps this hot call monomorphic).
   */
  has(slot: number): boolean {
    const at = this.at[slot * this.atStride + this.atOffset]!;
    return at === at; // not NaN
  }

  grow(capacity: number): void {
    this.at = growRows(this.at, capacity, 1, 0);
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

/**
 * `rows` grown to `capacity` rows of `width` numbers, the new ones without
 * state: NaN at `atOffset` (an operator's time of last change).
 */
function growRows(rows: Float64Array<ArrayBuffer>, capacity: number, width: number, atOffset: number): Float64Array<ArrayBuffer> {
  if (rows.length >= capacity * width) return rows;
  const next = new Float64Array(capacity * width);
  next.set(rows);
  for (let o = rows.length + atOffset; o < next.length; o += width) next[o] = NaN;
  return next;
}

/**
 * count/sum/avg/min/max/first/last/latest since the tag went online. A row
 * per slot holds the time of the last change and the accumulator after it.
 */
class LifetimeAggregate extends BaseOperator implements StatisticOperator {
  readonly windowed = false;
  readonly defaultValue: TagValue | undefined;
  private readonly acc: Accumulator;
  private readonly rowWidth: number;
  private readonly width: number;
  private row: Float64Array<ArrayBuffer>;
  /** Picked values, for first/last/latest of a field. */
  private readonly picked: AttrValue[] | null;

  constructor(spec: StatisticTagSpec, capacity: number) {
    super(spec, capacity);
    this.acc = accumulatorFor(spec.aggregate as Exclude<typeof spec.aggregate, 'distinct'>);
    this.width = this.acc.width;
    this.rowWidth = 1 + this.width;
    this.row = growRows(new Float64Array(0), capacity, this.rowWidth, 0);
    this.at = this.row;
    this.atStride = this.rowWidth;
    this.picked = this.acc.picksEvent && spec.field !== null ? [] : null;
    this.defaultValue = this.acc.additive ? 0 : undefined;
  }

  value(slot: number): TagValue | undefined {
    if (!this.has(slot)) return undefined;
    if (this.picked !== null) return this.picked[slot] ?? null;
    return this.acc.result(this.row, slot * this.rowWidth + 1);
  }

  apply(slot: number, event: Event, _now: number): boolean {
    const raw = this.input(event);
    if (raw === undefined) return false;
    const row = this.row;
    const r = slot * this.rowWidth;
    const fresh = !this.has(slot);
    if (fresh) this.acc.init(row, r + 1);
    const before = fresh ? undefined : this.value(slot);
    const took = this.acc.add(row, r + 1, this.numeric ? (raw as number) : 1, event.time);
    if (took && this.picked !== null) this.picked[slot] = raw;
    if (fresh || this.value(slot) !== before) {
      row[r] = event.time;
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
    this.row[slot * this.rowWidth] = NaN;
    if (this.picked !== null) this.picked[slot] = null;
  }

  write(slot: number, w: BinaryWriter): void {
    const r = slot * this.rowWidth;
    w.f64(this.row[r]!);
    w.f64s(this.row, r + 1, this.width);
    if (this.picked !== null) w.value(this.picked[slot] ?? null);
  }

  read(slot: number, rd: BinaryReader): void {
    const r = slot * this.rowWidth;
    this.row[r] = rd.f64();
    rd.f64s(this.row, r + 1, this.width);
    if (this.picked !== null) this.picked[slot] = rd.value();
  }

  override grow(capacity: number): void {
    this.row = growRows(this.row, capacity, this.rowWidth, 0);
    this.at = this.row;
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

// Fields of a WindowedAggregate row (one per slot); the view accumulator follows them.
const ROW_AT = 0; // time of the last change (the operator's `at`)
const ROW_LO = 1;
const ROW_COUNT = 2; // buckets held
const ROW_OFFSET = 3; // where the slot's buckets start in the arena
const ROW_CAPACITY = 4; // buckets the slot's arena segment holds (0: none)
const ROW_FIRST = 5; // start of the first bucket, when there is one
const ROW_RUN = 6;
/** Buckets of a slot's first arena segment; segments double when full. */
const FIRST_SEGMENT_BUCKETS = 2;
/** An arena is compacted when more than half of it, and at least this many numbers, is free. */
const COMPACT_MIN_FREE = 1 << 16;

/**
 * count/sum/avg/min/max/first/last/latest over a sliding or tumbling window.
 *
 * State by slot: a row of `row` holds the time of the last change (`at`), the
 * lowest bucket start in view (`lo`),
 * how many buckets the slot has, where they are in the arena, the first
 * bucket's start and the accumulator of the buckets in view (`run`,
 * maintained on add and rebuilt when the view moves). The buckets, in
 * ascending start order, each its start followed by the accumulator cells, lie
 * in one segment of `cells`, an arena shared by all slots (segments of 2, 4,
 * 8… buckets, reused through free lists). An entity's state is thus two runs
 * of memory rather than several arrays and an object each, which is what
 * applying an event and sliding a window mostly wait for. For first/last/latest
 * of a field, `vals[slot]` keeps each bucket's picked value and `runValue` the
 * view's.
 */
class WindowedAggregate extends BaseOperator implements StatisticOperator {
  readonly windowed = true;
  readonly defaultValue: TagValue | undefined;
  private readonly acc: Accumulator;
  private readonly width: number;
  private readonly stride: number;
  private readonly rowWidth: number;
  private readonly geo: WindowGeometry;
  private readonly picks: boolean;
  /** A count: buckets leave by subtraction ({@link dropCounts}). */
  private readonly counts: boolean;
  private row: Float64Array<ArrayBuffer>;
  private cells: Float64Array<ArrayBuffer>;
  /** Arena numbers handed out so far. */
  private top = 0;
  /** Free segments by size class (`FIRST_SEGMENT_BUCKETS << class` buckets): their offsets. */
  private free: number[][] = [];
  /** Numbers in free segments. */
  private freeNumbers = 0;
  private vals: Array<AttrValue[] | undefined> = [];
  private runValue: AttrValue[] = [];

  constructor(spec: StatisticTagSpec, capacity: number) {
    super(spec, capacity);
    this.acc = accumulatorFor(spec.aggregate as Exclude<typeof spec.aggregate, 'distinct'>);
    this.width = this.acc.width;
    this.stride = this.width + 1;
    this.rowWidth = ROW_RUN + this.width;
    this.geo = new WindowGeometry(spec);
    this.picks = this.acc.picksEvent && spec.field !== null;
    this.counts = spec.aggregate === 'count';
    this.defaultValue = this.acc.additive ? 0 : undefined;
    this.row = growRows(new Float64Array(0), capacity, this.rowWidth, ROW_AT);
    this.at = this.row;
    this.atStride = this.rowWidth;
    this.atOffset = ROW_AT;
    this.cells = new Float64Array(Math.max(1024, capacity * this.stride * FIRST_SEGMENT_BUCKETS));
  }

  override grow(capacity: number): void {
    this.row = growRows(this.row, capacity, this.rowWidth, ROW_AT);
    this.at = this.row;
  }

  value(slot: number): TagValue | undefined {
    return this.has(slot) ? this.viewValue(slot) : undefined;
  }

  private viewValue(slot: number): TagValue {
    const o = slot * this.rowWidth + ROW_RUN;
    if (this.picks) return this.acc.isEmpty(this.row, o) ? null : (this.runValue[slot] ?? null);
    return this.acc.result(this.row, o);
  }

  // ---- arena -------------------------------------------------------------

  /** Offset of a free segment of `buckets` buckets (a power of two times {@link FIRST_SEGMENT_BUCKETS}). */
  private allocate(buckets: number): number {
    const list = this.free[Math.log2(buckets / FIRST_SEGMENT_BUCKETS)];
    const size = buckets * this.stride;
    if (list !== undefined && list.length > 0) {
      this.freeNumbers -= size;
      return list.pop()!;
    }
    const offset = this.top;
    if (offset + size > this.cells.length) {
      const cells = new Float64Array(Math.max(this.cells.length * 2, offset + size));
      cells.set(this.cells);
      this.cells = cells;
    }
    this.top = offset + size;
    return offset;
  }

  private release(offset: number, buckets: number): void {
    const c = Math.log2(buckets / FIRST_SEGMENT_BUCKETS);
    (this.free[c] ??= []).push(offset);
    this.freeNumbers += buckets * this.stride;
  }

  /**
   * Moves every slot's segment to the front of a new arena sized to them, when
   * more than half of this one is free: after many entities with many buckets
   * expire, the arena shrinks back instead of keeping its largest size.
   */
  private compactIfSparse(): void {
    if (this.freeNumbers < COMPACT_MIN_FREE || this.freeNumbers * 2 < this.top) return;
    const old = this.cells;
    const row = this.row;
    const width = this.rowWidth;
    const stride = this.stride;
    const cells = new Float64Array(Math.max(1024, Math.ceil((this.top - this.freeNumbers) * 1.25)));
    let top = 0;
    for (let r = 0; r < row.length; r += width) {
      const capacity = row[r + ROW_CAPACITY]!;
      if (capacity === 0) continue;
      const from = row[r + ROW_OFFSET]!;
      cells.set(old.subarray(from, from + row[r + ROW_COUNT]! * stride), top);
      row[r + ROW_OFFSET] = top;
      top += capacity * stride;
    }
    this.cells = cells;
    this.top = top;
    this.free = [];
    this.freeNumbers = 0;
  }

  /** Numbers the bucket arena holds (used and free), for tests. */
  arenaSize(): number {
    return this.cells.length;
  }

  /** Makes room for one more bucket in the slot's segment (moving it to one twice as large when full). */
  private reserve(r: number): void {
    const row = this.row;
    const capacity = row[r + ROW_CAPACITY]!;
    const n = row[r + ROW_COUNT]!;
    if (n < capacity) return;
    const next = capacity === 0 ? FIRST_SEGMENT_BUCKETS : capacity * 2;
    const offset = this.allocate(next);
    if (capacity > 0) {
      const from = row[r + ROW_OFFSET]!;
      this.cells.copyWithin(offset, from, from + n * this.stride);
      this.release(from, capacity);
    }
    row[r + ROW_OFFSET] = offset;
    row[r + ROW_CAPACITY] = next;
  }

  // ---- events and time -----------------------------------------------------

  apply(slot: number, event: Event, now: number): boolean {
    const raw = this.input(event);
    if (raw === undefined) return false;
    const geo = this.geo;
    const t = event.time;
    const start = geo.bucketOf(t);
    const lo = geo.low(now);
    if (start < lo) return false; // already out of view; cannot affect this or any later value
    const r = slot * this.rowWidth;
    const row = this.row;
    const ro = r + ROW_RUN;
    let before: TagValue | undefined;
    let dropped = false;
    if (!this.has(slot)) {
      row[r + ROW_LO] = lo;
      row[r + ROW_COUNT] = 0;
      this.acc.init(row, ro);
      if (this.picks) {
        this.vals[slot] = [];
        this.runValue[slot] = null;
      }
    } else {
      if (row[r + ROW_LO]! < lo) {
        // Buckets that left the window since the last event change the value at their own time.
        const changedAt = this.counts ? this.dropCounts(r, lo) : this.drop(slot, r, lo);
        if (changedAt === changedAt) {
          this.row[slot * this.rowWidth + ROW_AT] = changedAt;
          dropped = true;
        }
      }
      if (row[r + ROW_COUNT]! > 0) before = this.viewValue(slot);
    }
    const v = this.numeric ? (raw as number) : 1;
    const stride = this.stride;
    const n = row[r + ROW_COUNT]!;
    let cells = this.cells;
    let off = row[r + ROW_OFFSET]!;
    // Find the bucket: usually the last one (events mostly arrive in order).
    let i = (n - 1) * stride;
    while (i >= 0 && cells[off + i]! > start) i -= stride;
    let o: number;
    const vals = this.picks ? this.vals[slot]! : null;
    if (i >= 0 && cells[off + i] === start) {
      o = off + i + 1;
    } else {
      const at = i + stride;
      this.reserve(r);
      cells = this.cells;
      off = row[r + ROW_OFFSET]!;
      const end = off + n * stride;
      if (off + at < end) cells.copyWithin(off + at + stride, off + at, end);
      cells[off + at] = start;
      o = off + at + 1;
      this.acc.init(cells, o);
      row[r + ROW_COUNT] = n + 1;
      if (at === 0) row[r + ROW_FIRST] = start;
      if (vals !== null) vals.splice(at / stride, 0, null);
    }
    if (this.acc.add(cells, o, v, t) && vals !== null) vals[(o - off - 1) / stride] = raw;
    if (this.acc.add(row, ro, v, t) && this.picks) this.runValue[slot] = raw;
    const after = this.viewValue(slot);
    if (before === undefined || after !== before) {
      row[r + ROW_AT] = t;
      return true;
    }
    return dropped;
  }

  advance(slot: number, now: number): boolean {
    if (!this.has(slot)) return false;
    const r = slot * this.rowWidth;
    const lo = this.geo.low(now);
    if (lo <= this.row[r + ROW_LO]!) return false;
    const changedAt = this.counts ? this.dropCounts(r, lo) : this.drop(slot, r, lo);
    if (this.row[r + ROW_COUNT] === 0) {
      this.clear(slot);
      return true;
    }
    if (changedAt === changedAt) {
      this.row[slot * this.rowWidth + ROW_AT] = changedAt;
      return true;
    }
    return false;
  }

  /** Removes the first `buckets` buckets of the slot at row `r`. */
  private cut(r: number, buckets: number): void {
    const row = this.row;
    const n = row[r + ROW_COUNT]! - buckets;
    row[r + ROW_COUNT] = n;
    if (n === 0) return;
    const off = row[r + ROW_OFFSET]!;
    const stride = this.stride;
    this.cells.copyWithin(off, off + buckets * stride, off + (n + buckets) * stride);
    row[r + ROW_FIRST] = this.cells[off]!;
  }

  /**
   * {@link drop} for a count: each leaving bucket's count is subtracted from
   * the view (integers, so exactly what a rebuild gives) and the value
   * changed with the last leaving bucket that held any event.
   */
  private dropCounts(r: number, lo: number): number {
    const row = this.row;
    const cells = this.cells;
    const off = row[r + ROW_OFFSET]!;
    const n = row[r + ROW_COUNT]!;
    let cut = 0;
    while (cut < n && cells[off + 2 * cut]! < lo) cut++;
    row[r + ROW_LO] = lo;
    if (cut === 0) return NaN;
    let total = row[r + ROW_RUN]!;
    let changedAt = NaN;
    for (let k = 0; k < cut; k++) {
      const c = cells[off + 2 * k + 1]!;
      if (c === 0) continue;
      total -= c;
      changedAt = cells[off + 2 * k]! + this.geo.sizeMs;
    }
    row[r + ROW_RUN] = cut === n ? 0 : total;
    this.cut(r, cut);
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
  private drop(slot: number, r: number, lo: number): number {
    const row = this.row;
    const cells = this.cells;
    const stride = this.stride;
    const off = row[r + ROW_OFFSET]!;
    const n = row[r + ROW_COUNT]!;
    let droppedCount = 0;
    while (droppedCount < n && cells[off + droppedCount * stride]! < lo) droppedCount++;
    row[r + ROW_LO] = lo;
    if (droppedCount === 0) return NaN;
    const acc = this.acc;
    const temp = dropScratch;
    acc.init(temp, 0);
    let tempValue: AttrValue = null;
    // values[k]: the visible value once the first k buckets have left (k = 0 is the current value).
    const values = dropValues;
    values.length = droppedCount + 1;
    const picks = this.picks;
    const vals = picks ? this.vals[slot]! : null;
    const valueOf = (): TagValue => (picks ? (acc.isEmpty(temp, 0) ? null : tempValue) : acc.result(temp, 0));
    const ro = r + ROW_RUN;
    let k = n;
    if (k === droppedCount) values[k] = valueOf();
    for (let o = off + (n - 1) * stride; o >= off; o -= stride) {
      k--;
      if (acc.merge(temp, 0, cells, o + 1) && vals !== null) tempValue = vals[k] ?? null;
      if (k === droppedCount) {
        // The new view: everything at or above the cut.
        for (let c = 0; c < this.width; c++) row[ro + c] = temp[c]!;
        if (picks) this.runValue[slot] = tempValue;
      }
      if (k <= droppedCount) values[k] = valueOf();
    }
    let changedAt = NaN;
    for (let i = droppedCount; i >= 1; i--) {
      if (values[i] !== values[i - 1]) {
        changedAt = cells[off + (i - 1) * stride]! + this.geo.sizeMs;
        break;
      }
    }
    if (droppedCount === n) {
      acc.init(row, ro);
      if (picks) this.runValue[slot] = null;
    }
    this.cut(r, droppedCount);
    if (vals !== null) vals.splice(0, droppedCount);
    return changedAt;
  }

  nextChange(slot: number): number {
    const r = slot * this.rowWidth;
    return this.row[r + ROW_COUNT]! > 0 ? this.row[r + ROW_FIRST]! + this.geo.sizeMs : Infinity;
  }

  clear(slot: number): void {
    const r = slot * this.rowWidth;
    const row = this.row;
    const capacity = row[r + ROW_CAPACITY]!;
    row[r + ROW_COUNT] = 0;
    row[r + ROW_CAPACITY] = 0;
    if (capacity > 0) {
      this.release(row[r + ROW_OFFSET]!, capacity);
      this.compactIfSparse();
    }
    if (this.picks) {
      this.vals[slot] = undefined;
      this.runValue[slot] = null;
    }
    row[r + ROW_AT] = NaN;
  }

  write(slot: number, w: BinaryWriter): void {
    const r = slot * this.rowWidth;
    const row = this.row;
    const n = row[r + ROW_COUNT]! * this.stride;
    w.f64(row[r + ROW_AT]!);
    w.f64(row[r + ROW_LO]!);
    w.u32(n);
    w.f64s(this.cells, row[r + ROW_OFFSET]!, n);
    w.f64s(row, r + ROW_RUN, this.width);
    if (this.picks) {
      w.value(this.runValue[slot] ?? null);
      const v = this.vals[slot]!;
      for (let i = 0; i < v.length; i++) w.value(v[i] ?? null);
    }
  }

  read(slot: number, rd: BinaryReader): void {
    if (this.has(slot)) this.clear(slot);
    const r = slot * this.rowWidth;
    this.row[r + ROW_AT] = rd.f64();
    this.row[r + ROW_LO] = rd.f64();
    const n = rd.u32();
    const buckets = n / this.stride;
    let capacity = FIRST_SEGMENT_BUCKETS;
    while (capacity < buckets) capacity *= 2;
    const offset = this.allocate(capacity);
    const row = this.row;
    row[r + ROW_OFFSET] = offset;
    row[r + ROW_CAPACITY] = capacity;
    row[r + ROW_COUNT] = buckets;
    rd.f64s(this.cells, offset, n);
    if (buckets > 0) row[r + ROW_FIRST] = this.cells[offset]!;
    rd.f64s(row, r + ROW_RUN, this.width);
    if (this.picks) {
      this.runValue[slot] = rd.value();
      const v: AttrValue[] = [];
      for (let i = 0; i < buckets; i++) v.push(rd.value());
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
