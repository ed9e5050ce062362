import { BinaryReader, BinaryWriter, setAttr, type AttrValue, type Decision } from '../../engine/index.js';

/**
 * The stored forms of decisions. A block (see {@link DecisionBlockEncoder})
 * holds many decisions in one value: each rule, event and match once, the
 * records referring to them. Strings and numbers are written in field order
 * (short ASCII strings byte by byte, see BinaryWriter.str16): several times
 * cheaper than msgpack maps of the same objects, whose nested shapes
 * (attributes of each event type, stage names, key fields) differ from rule
 * to rule. A record of format 1 (one decision per value) is what earlier
 * versions stored; the store moves those into blocks.
 */
const FORMAT = 1;

type StoredEvent = NonNullable<Decision['event']>;

const writer = new BinaryWriter(16 * 1024);

function writeAttrsOnce(w: BinaryWriter, attrs: Readonly<Record<string, AttrValue>>): void {
  const countAt = w.pos;
  w.u32(0);
  let n = 0;
  for (const name in attrs) {
    w.str16(name);
    w.value16(attrs[name]);
    n++;
  }
  w.patchU32(countAt, n);
}

function writeEvent(w: BinaryWriter, e: StoredEvent): void {
  w.str16(e.type);
  w.f64(e.time);
  w.str16(e.key);
  writeAttrsOnce(w, e.attrs);
}

function writeMatched(w: BinaryWriter, matched: NonNullable<Decision['matched']>): void {
  const countAt = w.pos;
  w.u32(0);
  let n = 0;
  for (const stage in matched) {
    const events = matched[stage]!;
    w.str16(stage);
    w.u32(events.length);
    for (const e of events) writeEvent(w, e);
    n++;
  }
  w.patchU32(countAt, n);
}

/** Encodes a decision as one record of format 1 (earlier versions' stored form); the bytes are the caller's (see BinaryWriter.bytes). */
export function encodeDecision(d: Decision): Uint8Array {
  const w = writer.reset();
  w.u8(FORMAT);
  w.str16(d.id);
  w.str16(d.ruleId);
  w.f64(d.version);
  writeAttrsOnce(w, d.key);
  if (d.entity === null) w.u8(0);
  else {
    w.u8(1);
    w.str16(d.entity);
  }
  w.u8(d.outcome === 'match' ? 0 : 1);
  w.u8(d.trigger === 'event' ? 0 : 1);
  w.f64(d.time);
  w.f64(d.processingTime);
  if (d.event === null) w.u8(0);
  else {
    w.u8(1);
    writeEvent(w, d.event);
  }
  if (d.matched === null) w.u8(0);
  else {
    w.u8(1);
    writeMatched(w, d.matched);
  }
  writeAggregates(w, d.aggregates);
  w.f64(d.partition);
  w.f64(d.offset);
  return w.bytes();
}

function readAttrs(r: BinaryReader): Record<string, AttrValue> {
  const n = r.u32();
  const attrs: Record<string, AttrValue> = {};
  for (let i = 0; i < n; i++) {
    const name = r.str16();
    setAttr(attrs, name, r.value16());
  }
  return attrs;
}

function readEvent(r: BinaryReader): StoredEvent {
  const type = r.str16();
  const time = r.f64();
  const key = r.str16();
  return { type, time, key, attrs: readAttrs(r) };
}

function writeAggregates(w: BinaryWriter, aggregates: ReadonlyArray<number | null>): void {
  w.u32(aggregates.length);
  for (let i = 0; i < aggregates.length; i++) w.value(aggregates[i]);
}

function readAggregates(r: BinaryReader): Array<number | null> {
  const n = r.u32();
  const aggregates = new Array<number | null>(n);
  for (let i = 0; i < n; i++) {
    const v = r.value();
    aggregates[i] = typeof v === 'number' ? v : null;
  }
  return aggregates;
}

/** Sets a stage's events as data, whatever its name (`__proto__` included). */
function setStage(stages: Record<string, StoredEvent[]>, stage: string, events: StoredEvent[]): void {
  Object.defineProperty(stages, stage, { value: events, enumerable: true, writable: true, configurable: true });
}

/** Decodes a record of format 1 ({@link encodeDecision}). */
export function decodeDecision(bytes: Uint8Array): Decision {
  const r = new BinaryReader(bytes);
  const format = r.u8();
  if (format !== FORMAT) throw new Error(`unknown decision record format ${format}`);
  const id = r.str16();
  const ruleId = r.str16();
  const version = r.f64();
  const key = readAttrs(r);
  const entity = r.u8() === 0 ? null : r.str16();
  const outcome = r.u8() === 0 ? 'match' : 'timeout';
  const trigger = r.u8() === 0 ? 'event' : 'timer';
  const time = r.f64();
  const processingTime = r.f64();
  const event = r.u8() === 0 ? null : readEvent(r);
  let matched: Decision['matched'] = null;
  if (r.u8() === 1) {
    const stages: Record<string, StoredEvent[]> = {};
    const n = r.u32();
    for (let i = 0; i < n; i++) {
      const stage = r.str16();
      const count = r.u32();
      const events = new Array<StoredEvent>(count);
      for (let j = 0; j < count; j++) events[j] = readEvent(r);
      setStage(stages, stage, events);
    }
    matched = stages;
  }
  const aggregates = readAggregates(r);
  const partition = r.f64();
  const offset = r.f64();
  return { id, ruleId, version, key, entity, outcome, trigger, time, processingTime, event, matched, aggregates, partition, offset };
}

/** Decisions in one block at most; record `i` of block `b` has the position `b * BLOCK_RECORDS + i`. */
export const BLOCK_RECORDS = 4096;
const BLOCK_FORMAT = 2;

const F_ENTITY = 1;
const F_ENTITY_IS_EVENT_KEY = 2;
const F_TIMEOUT = 4;
const F_TIMER = 8;
const F_EVENT = 16;
const F_MATCHED = 32;

/** The log offsets of one partition's decisions in a block. */
export interface BlockPartition {
  partition: number;
  min: number;
  max: number;
}

/**
 * Builds a block of decisions. The decisions of one event share it, and the
 * rules of a shared sequence share each match: an event (told apart by its
 * attributes object) and a match are written once and referred to by number.
 * Reused from block to block ({@link reset}).
 */
export class DecisionBlockEncoder {
  private readonly rules = new BinaryWriter(4 * 1024);
  private readonly events = new BinaryWriter(64 * 1024);
  private readonly matches = new BinaryWriter(16 * 1024);
  private readonly records = new BinaryWriter(128 * 1024);
  private readonly eventStarts: number[] = [];
  private readonly matchStarts: number[] = [];
  private readonly recordStarts: number[] = [];
  private readonly ruleVersions: number[] = [];
  private readonly ruleByName = new Map<string, number>();
  private readonly eventByAttrs = new Map<object, number>();
  private readonly eventTypes: string[] = [];
  private readonly eventTimes: number[] = [];
  private readonly eventKeys: string[] = [];
  private readonly matchByObject = new Map<object, number>();
  private readonly partitions = new Map<number, BlockPartition>();

  /** Decisions added since the last reset. */
  get count(): number {
    return this.recordStarts.length;
  }

  reset(): this {
    this.rules.reset();
    this.events.reset();
    this.matches.reset();
    this.records.reset();
    this.eventStarts.length = 0;
    this.matchStarts.length = 0;
    this.recordStarts.length = 0;
    this.ruleVersions.length = 0;
    this.ruleByName.clear();
    this.eventByAttrs.clear();
    this.eventTypes.length = 0;
    this.eventTimes.length = 0;
    this.eventKeys.length = 0;
    this.matchByObject.clear();
    this.partitions.clear();
    return this;
  }

  add(d: Decision): void {
    let rule = this.ruleByName.get(d.ruleId);
    if (rule === undefined || this.ruleVersions[rule] !== d.version) {
      rule = this.ruleVersions.length;
      this.ruleVersions.push(d.version);
      this.ruleByName.set(d.ruleId, rule);
      this.rules.str16(d.ruleId);
      this.rules.f64(d.version);
    }
    const part = this.partitions.get(d.partition);
    if (part === undefined) this.partitions.set(d.partition, { partition: d.partition, min: d.offset, max: d.offset });
    else {
      if (d.offset < part.min) part.min = d.offset;
      if (d.offset > part.max) part.max = d.offset;
    }
    const event = d.event;
    let flags = (d.outcome === 'timeout' ? F_TIMEOUT : 0) | (d.trigger === 'timer' ? F_TIMER : 0);
    if (event !== null) flags |= F_EVENT;
    if (d.matched !== null) flags |= F_MATCHED;
    if (d.entity !== null) flags |= event !== null && d.entity === event.key ? F_ENTITY_IS_EVENT_KEY : F_ENTITY;
    const w = this.records;
    this.recordStarts.push(w.pos);
    w.u32(rule);
    w.u8(flags);
    if ((flags & F_ENTITY) !== 0) w.str16(d.entity!);
    if (event !== null) w.u32(this.eventRef(event));
    if (d.matched !== null) w.u32(this.matchRef(d.matched));
    w.str16(d.id);
    writeAttrsOnce(w, d.key);
    w.f64(d.time);
    w.f64(d.processingTime);
    writeAggregates(w, d.aggregates);
    w.f64(d.partition);
    w.f64(d.offset);
  }

  private eventRef(e: StoredEvent): number {
    const known = this.eventByAttrs.get(e.attrs);
    if (known !== undefined && this.eventTimes[known] === e.time && this.eventKeys[known] === e.key && this.eventTypes[known] === e.type) return known;
    const index = this.eventStarts.length;
    this.eventStarts.push(this.events.pos);
    this.eventTypes.push(e.type);
    this.eventTimes.push(e.time);
    this.eventKeys.push(e.key);
    writeEvent(this.events, e);
    if (known === undefined) this.eventByAttrs.set(e.attrs, index);
    return index;
  }

  private matchRef(matched: NonNullable<Decision['matched']>): number {
    const known = this.matchByObject.get(matched);
    if (known !== undefined) return known;
    const refs: number[] = [];
    let stages = 0;
    for (const stage in matched) {
      stages++;
      const events = matched[stage]!;
      refs.push(events.length);
      for (const e of events) refs.push(this.eventRef(e));
    }
    const index = this.matchStarts.length;
    const w = this.matches;
    this.matchStarts.push(w.pos);
    w.u32(stages);
    let at = 0;
    for (const stage in matched) {
      w.str16(stage);
      const n = refs[at++]!;
      w.u32(n);
      for (let i = 0; i < n; i++) w.u32(refs[at++]!);
    }
    this.matchByObject.set(matched, index);
    return index;
  }

  /** The block's offsets per partition (valid until the next reset). */
  partitionRanges(): BlockPartition[] {
    return [...this.partitions.values()];
  }

  /** The block's bytes (a buffer of their own). */
  finish(): Uint8Array {
    const rules = this.rules.written();
    const events = this.events.written();
    const matches = this.matches.written();
    const records = this.records.written();
    const parts = this.partitions.size;
    const size =
      1 + 4 + 4 + parts * 24 +
      4 + 4 + rules.length +
      4 + 4 * this.eventStarts.length + 4 + events.length +
      4 + 4 * this.matchStarts.length + 4 + matches.length +
      4 * this.recordStarts.length + 4 + records.length;
    const out = Buffer.allocUnsafeSlow(size);
    const view = new DataView(out.buffer, out.byteOffset, out.byteLength);
    let p = 0;
    const u32 = (v: number): void => {
      view.setUint32(p, v, true);
      p += 4;
    };
    const f64 = (v: number): void => {
      view.setFloat64(p, v, true);
      p += 8;
    };
    const bytes = (b: Uint8Array): void => {
      out.set(b, p);
      p += b.length;
    };
    out[p++] = BLOCK_FORMAT;
    u32(this.recordStarts.length);
    u32(parts);
    for (const r of this.partitions.values()) {
      f64(r.partition);
      f64(r.min);
      f64(r.max);
    }
    u32(this.ruleVersions.length);
    u32(rules.length);
    bytes(rules);
    for (const [starts, body] of [[this.eventStarts, events], [this.matchStarts, matches]] as const) {
      u32(starts.length);
      for (const s of starts) u32(s);
      u32(body.length);
      bytes(body);
    }
    for (const s of this.recordStarts) u32(s);
    u32(records.length);
    bytes(records);
    return out;
  }
}

/** The header of a block: its size and offsets per partition, without decoding its decisions. */
export function blockHeader(bytes: Uint8Array): { count: number; partitions: BlockPartition[] } {
  const r = new BinaryReader(bytes);
  const format = r.u8();
  if (format !== BLOCK_FORMAT) throw new Error(`unknown decision block format ${format}`);
  const count = r.u32();
  const n = r.u32();
  const partitions: BlockPartition[] = [];
  for (let i = 0; i < n; i++) partitions.push({ partition: r.f64(), min: r.f64(), max: r.f64() });
  return { count, partitions };
}

/** Reads the decisions of a block one at a time (events and matches decoded once each). */
export class DecisionBlock {
  readonly count: number;
  readonly partitions: BlockPartition[];
  readonly ruleIds: string[] = [];
  readonly ruleVersions: number[] = [];
  private readonly r: BinaryReader;
  private readonly eventStarts: number;
  private readonly eventBase: number;
  private readonly matchStarts: number;
  private readonly matchBase: number;
  private readonly recordStarts: number;
  private readonly recordBase: number;
  private readonly events: Array<StoredEvent | undefined>;
  private readonly matches: Array<NonNullable<Decision['matched']> | undefined>;

  constructor(bytes: Uint8Array) {
    const header = blockHeader(bytes);
    this.count = header.count;
    this.partitions = header.partitions;
    const r = (this.r = new BinaryReader(bytes));
    r.pos = 1 + 4 + 4 + header.partitions.length * 24;
    const rules = r.u32();
    r.u32();
    for (let i = 0; i < rules; i++) {
      this.ruleIds.push(r.str16());
      this.ruleVersions.push(r.f64());
    }
    const events = r.u32();
    this.eventStarts = r.pos;
    r.pos += 4 * events;
    const eventBytes = r.u32();
    this.eventBase = r.pos;
    r.pos += eventBytes;
    const matches = r.u32();
    this.matchStarts = r.pos;
    r.pos += 4 * matches;
    const matchBytes = r.u32();
    this.matchBase = r.pos;
    r.pos += matchBytes;
    this.recordStarts = r.pos;
    r.pos += 4 * this.count;
    r.u32();
    this.recordBase = r.pos;
    this.events = new Array(events);
    this.matches = new Array(matches);
  }

  private at(table: number, i: number): number {
    this.r.pos = table + 4 * i;
    return this.r.u32();
  }

  /** The index (into {@link ruleIds}) of record `i`'s rule. */
  rule(i: number): number {
    return this.seek(i);
  }

  /** Positions the reader at record `i` and reads its rule. */
  private seek(i: number): number {
    this.r.pos = this.recordBase + this.at(this.recordStarts, i);
    return this.r.u32();
  }

  /** The entity of record `i`. */
  entity(i: number): string | null {
    this.seek(i);
    const r = this.r;
    const flags = r.u8();
    if ((flags & F_ENTITY) !== 0) return r.str16();
    if ((flags & F_ENTITY_IS_EVENT_KEY) !== 0) return this.event(r.u32()).key;
    return null;
  }

  /** The id of record `i`. */
  id(i: number): string {
    this.seek(i);
    const r = this.r;
    const flags = r.u8();
    if ((flags & F_ENTITY) !== 0) r.str16();
    if ((flags & F_EVENT) !== 0) r.pos += 4;
    if ((flags & F_MATCHED) !== 0) r.pos += 4;
    return r.str16();
  }

  /** Record `i`. */
  decision(i: number): Decision {
    const rule = this.seek(i);
    const r = this.r;
    const flags = r.u8();
    const explicitEntity = (flags & F_ENTITY) !== 0 ? r.str16() : null;
    const eventRef = (flags & F_EVENT) !== 0 ? r.u32() : -1;
    const matchRef = (flags & F_MATCHED) !== 0 ? r.u32() : -1;
    const id = r.str16();
    const key = readAttrs(r);
    const time = r.f64();
    const processingTime = r.f64();
    const aggregates = readAggregates(r);
    const partition = r.f64();
    const offset = r.f64();
    const event = eventRef < 0 ? null : this.event(eventRef);
    const entity = explicitEntity ?? ((flags & F_ENTITY_IS_EVENT_KEY) !== 0 ? event!.key : null);
    return {
      id,
      ruleId: this.ruleIds[rule]!,
      version: this.ruleVersions[rule]!,
      key,
      entity,
      outcome: (flags & F_TIMEOUT) !== 0 ? 'timeout' : 'match',
      trigger: (flags & F_TIMER) !== 0 ? 'timer' : 'event',
      time,
      processingTime,
      event,
      matched: matchRef < 0 ? null : this.match(matchRef),
      aggregates,
      partition,
      offset,
    };
  }

  private event(i: number): StoredEvent {
    const known = this.events[i];
    if (known !== undefined) return known;
    const r = this.r;
    const back = r.pos;
    r.pos = this.eventBase + this.at(this.eventStarts, i);
    const e = readEvent(r);
    r.pos = back;
    this.events[i] = e;
    return e;
  }

  private match(i: number): NonNullable<Decision['matched']> {
    const known = this.matches[i];
    if (known !== undefined) return known;
    const r = this.r;
    const back = r.pos;
    r.pos = this.matchBase + this.at(this.matchStarts, i);
    const stages: Record<string, StoredEvent[]> = {};
    const n = r.u32();
    for (let s = 0; s < n; s++) {
      const stage = r.str16();
      const count = r.u32();
      const refs = new Array<number>(count);
      for (let j = 0; j < count; j++) refs[j] = r.u32();
      const events = refs.map((ref) => this.event(ref));
      setStage(stages, stage, events);
    }
    r.pos = back;
    this.matches[i] = stages;
    return stages;
  }
}
