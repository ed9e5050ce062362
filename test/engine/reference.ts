import type { AggregateFn, AttrValue, Event, TagValue } from '../../src/engine/index.js';
import type { StatisticTagDocument } from '../../src/definitions/index.js';

/**
 * A brute-force model of statistic tags, written from the documented
 * semantics only (definition-set.ts `WindowSpec`, tag-document.ts), never from
 * the operators' code:
 *
 * - an event counts for a tag when its type is one of `eventTypes`, the filter
 *   holds, and the field (when the aggregate reads one) is present (not null);
 *   sum/avg/min/max need a number, other types are type mismatches;
 * - lifetime: every such event; tumbling: the window of `size` containing the
 *   stream time T; sliding: buckets of `slide` whose start is at or after
 *   bucketOf(T) + slide − size;
 * - count, sum, avg, min, max, distinct as their names say; first/last are the
 *   earliest/latest event by event time (ties: first to arrive / last to
 *   arrive), shown as the field's value or, without a field, the event time;
 * - a tag with no counted event in view has no value.
 */
export interface RefTag {
  doc: StatisticTagDocument;
  /** The filter of `doc.filter`, written in JS; throws where CEL would (missing key). */
  filter?: (event: Event) => boolean;
}

export type RefWindow = { kind: 'lifetime' } | { kind: 'tumbling'; sizeMs: number } | { kind: 'sliding'; sizeMs: number; slideMs: number };

const NUMERIC = new Set<AggregateFn>(['sum', 'avg', 'min', 'max']);
const ADDITIVE = new Set<AggregateFn>(['count', 'sum', 'distinct']);

/** Window of a document whose sizes are numbers of milliseconds. */
export function windowOf(doc: StatisticTagDocument): RefWindow {
  const w = doc.window;
  if (w.type === 'lifetime') return { kind: 'lifetime' };
  const size = ms(w.size);
  if (w.type === 'tumbling') return { kind: 'tumbling', sizeMs: size };
  return { kind: 'sliding', sizeMs: size, slideMs: ms(w.slide) };
}

function ms(d: string | number): number {
  if (typeof d === 'number') return d;
  const m = /^(\d+)(ms|s|m|h|d)$/.exec(d);
  if (m === null) throw new Error(`reference: unsupported duration ${d}`);
  const unit = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 }[m[2] as 'ms']!;
  return Number(m[1]) * unit;
}

/** Lowest event time still in view at stream time `now`, or -Infinity for lifetime. */
export function viewStart(window: RefWindow, now: number): number {
  if (window.kind === 'lifetime') return -Infinity;
  const slide = window.kind === 'sliding' ? window.slideMs : window.sizeMs;
  const bucketOfNow = Math.floor(now / slide) * slide;
  return bucketOfNow + slide - window.sizeMs;
}

/** Whether an event at `time` is in view at stream time `now` (bucket start >= view start). */
export function inView(window: RefWindow, time: number, now: number): boolean {
  if (window.kind === 'lifetime') return true;
  const slide = window.kind === 'sliding' ? window.slideMs : window.sizeMs;
  return Math.floor(time / slide) * slide >= viewStart(window, now);
}

/** Whether the reference keeps an event for a tag at all; `mismatch` when it fails only on the field's type. */
export function admits(tag: RefTag, event: Event): 'yes' | 'no' | 'mismatch' | 'filter-error' {
  const doc = tag.doc;
  if (!doc.eventTypes.includes(event.type)) return 'no';
  if (tag.filter !== undefined) {
    try {
      if (!tag.filter(event)) return 'no';
    } catch {
      return 'filter-error';
    }
  }
  if (doc.field === undefined) return 'yes';
  const raw = event.attrs[doc.field];
  if (raw === undefined || raw === null) return 'no';
  if (NUMERIC.has(doc.aggregate) && typeof raw !== 'number') return 'mismatch';
  return 'yes';
}

/**
 * The value of a tag for one entity at stream time `now`, given the entity's
 * accepted events in arrival order; undefined when the tag has no value.
 */
export function expectedValue(tag: RefTag, events: ReadonlyArray<Event>, now: number): TagValue | undefined {
  const doc = tag.doc;
  const window = windowOf(doc);
  const counted = events.filter((e) => admits(tag, e) === 'yes' && inView(window, e.time, now));
  if (counted.length === 0) return undefined;
  const field = doc.field;
  const raw = (e: Event): AttrValue => (field === undefined ? 1 : e.attrs[field]!);
  const nums = counted.map((e) => raw(e) as number);
  switch (doc.aggregate) {
    case 'count':
      return counted.length;
    case 'sum':
      return nums.reduce((a, b) => a + b, 0);
    case 'avg':
      return nums.reduce((a, b) => a + b, 0) / nums.length;
    case 'min':
      return Math.min(...nums);
    case 'max':
      return Math.max(...nums);
    case 'distinct':
      return new Set(counted.map(raw)).size;
    case 'first': {
      let pick = counted[0]!;
      for (const e of counted) if (e.time < pick.time) pick = e;
      return field === undefined ? pick.time : raw(pick);
    }
    case 'last':
    case 'latest': {
      let pick = counted[0]!;
      for (const e of counted) if (e.time >= pick.time) pick = e;
      return field === undefined ? pick.time : raw(pick);
    }
  }
}

/** Whether an absent value is shown as 0 by the API (count, sum, distinct). */
export function isAdditive(doc: StatisticTagDocument): boolean {
  return ADDITIVE.has(doc.aggregate);
}

/** Expected tag values of every entity: key → tag id → value (absent tags left out). */
export function expectedTags(tags: ReadonlyArray<RefTag>, eventsByKey: ReadonlyMap<string, Event[]>, now: number): Map<string, Record<string, TagValue>> {
  const out = new Map<string, Record<string, TagValue>>();
  for (const [key, events] of eventsByKey) {
    const values: Record<string, TagValue> = {};
    for (const tag of tags) {
      const v = expectedValue(tag, events, now);
      if (v !== undefined) values[tag.doc.id] = v;
    }
    out.set(key, values);
  }
  return out;
}

/** Groups events by entity key, keeping arrival order. */
export function byKey(events: Iterable<Event>): Map<string, Event[]> {
  const out = new Map<string, Event[]>();
  for (const e of events) {
    let list = out.get(e.key);
    if (list === undefined) out.set(e.key, (list = []));
    list.push(e);
  }
  return out;
}

/**
 * Which events the engine drops as too late, simulating each partition's
 * watermark from the documented rules: stream time is the highest time of
 * events and marks the partition processed; the watermark trails it by
 * `outOfOrdernessMs`; an event more than `allowedLatenessMs` behind the
 * watermark is late beyond lateness. Returns, per input record, whether it
 * was dropped (always false for marks).
 */
export function simulateLateness(
  records: ReadonlyArray<{ kind: 'event'; event: Event; partition: number } | { kind: 'mark'; time: number }>,
  partitions: number,
  outOfOrdernessMs: number,
  allowedLatenessMs: number,
): { late: boolean[]; beyond: boolean[] } {
  const stream = new Array<number>(partitions).fill(-Infinity);
  const late: boolean[] = [];
  const beyond: boolean[] = [];
  for (const r of records) {
    if (r.kind === 'mark') {
      for (let p = 0; p < partitions; p++) stream[p] = Math.max(stream[p]!, r.time);
      late.push(false);
      beyond.push(false);
      continue;
    }
    const wm = stream[r.partition]! - outOfOrdernessMs;
    const isLate = r.event.time < wm;
    const isBeyond = r.event.time < wm - allowedLatenessMs;
    late.push(isLate);
    beyond.push(isBeyond);
    // A late event is below the stream time anyway, so only on-time events move it.
    stream[r.partition] = Math.max(stream[r.partition]!, r.event.time);
  }
  return { late, beyond };
}
