import { BinaryReader, BinaryWriter, setAttr, type AttrValue, type Decision } from '../../engine/index.js';

/**
 * The stored form of a decision: a flat binary record (strings and numbers in
 * field order; short ASCII strings byte by byte, see BinaryWriter.str16),
 * several times cheaper to write than a msgpack map of the same
 * object, whose nested shapes (attributes of each event type, stage names,
 * key fields) differ from rule to rule.
 */
const FORMAT = 1;

type StoredEvent = NonNullable<Decision['event']>;

const writer = new BinaryWriter(16 * 1024);

/**
 * Encoded parts by object: the decisions of one event share its attributes,
 * and the rules of a shared sequence share each match's events, so each is
 * encoded once and copied after.
 */
const encoded = new WeakMap<object, Uint8Array>();

function writeAttrs(w: BinaryWriter, attrs: Readonly<Record<string, AttrValue>>): void {
  const known = encoded.get(attrs);
  if (known !== undefined) {
    w.raw(known);
    return;
  }
  const at = w.pos;
  writeAttrsOnce(w, attrs);
  encoded.set(attrs, w.copyFrom(at));
}

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
  writeAttrs(w, e.attrs);
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

/** Encodes a decision; the bytes are the caller's (see BinaryWriter.bytes). */
export function encodeDecision(d: Decision): Uint8Array {
  const w = writer.reset();
  w.u8(FORMAT);
  w.str16(d.id);
  w.str16(d.ruleId);
  w.f64(d.version);
  writeAttrsOnce(w, d.key); // a fresh object per decision: nothing to share
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
    const known = encoded.get(d.matched);
    if (known !== undefined) w.raw(known);
    else {
      const at = w.pos;
      writeMatched(w, d.matched);
      encoded.set(d.matched, w.copyFrom(at));
    }
  }
  w.u32(d.aggregates.length);
  for (const a of d.aggregates) w.value(a);
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

/** Decodes a record written by {@link encodeDecision}. */
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
      Object.defineProperty(stages, stage, { value: events, enumerable: true, writable: true, configurable: true });
    }
    matched = stages;
  }
  const aggCount = r.u32();
  const aggregates = new Array<number | null>(aggCount);
  for (let i = 0; i < aggCount; i++) {
    const v = r.value();
    aggregates[i] = typeof v === 'number' ? v : null;
  }
  const partition = r.f64();
  const offset = r.f64();
  return { id, ruleId, version, key, entity, outcome, trigger, time, processingTime, event, matched, aggregates, partition, offset };
}
