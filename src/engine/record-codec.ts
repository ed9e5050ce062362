import { Packr } from 'msgpackr';
import { BinaryReader, BinaryWriter } from './binary.js';
import { setAttr, type AttrValue, type LogRecord } from './event.js';

// Records whose attributes are all scalars (every event the ingestors accept, every control
// record) are written in a compact binary form with the shared BinaryWriter: format byte,
// time (f64), then type, key and each attribute name as `str16` (ASCII copied byte by byte),
// each attribute value tagged (strings as `str16` too). Anything else, and every record of logs written before this
// form, is msgpack: its first byte is a map header (0x80-0x8f, 0xde, 0xdf), never
// BINARY_FORMAT.
const packr = new Packr({ useRecords: false, moreTypes: false, int64AsType: 'number' });

const BINARY_FORMAT = 0x01;
const writer = new BinaryWriter();
const reader = new BinaryReader(new Uint8Array(0));

function scalarAttrs(attrs: Record<string, unknown>): boolean {
  for (const name in attrs) {
    const v = attrs[name];
    const t = typeof v;
    if (t !== 'number' && t !== 'string' && t !== 'boolean' && v !== null) return false;
  }
  return true;
}

/** Encodes a log record to bytes for the event log. */
export function encodeRecord(record: LogRecord): Uint8Array {
  encodeRecordInto(record, writer.reset());
  // A slice of the writer's shared arena: the log copies a payload into its block on append.
  return writer.bytes();
}

/** Writes the bytes {@link encodeRecord} gives for a record at the writer's position. */
export function encodeRecordInto(record: LogRecord, w: BinaryWriter): void {
  const attrs = record.attrs as Record<string, unknown>;
  if (typeof record.type !== 'string' || typeof record.key !== 'string' || typeof record.time !== 'number' || !scalarAttrs(attrs)) {
    w.raw(packr.pack(record));
    return;
  }
  beginRecord(w, record.type, record.time);
  w.str16(record.key);
  const countAt = beginAttrs(w);
  let n = 0;
  for (const name in attrs) {
    w.str16(name);
    w.value16(attrs[name] as AttrValue);
    n++;
  }
  endRecord(w, countAt, n);
}

/**
 * Starts a record of scalar attributes in the binary form. The caller then
 * writes the key as `str16`, calls {@link beginAttrs}, writes each attribute
 * as `str16(name)` and `value16(value)`, and ends with {@link endRecord}.
 */
export function beginRecord(w: BinaryWriter, type: string, time: number): void {
  w.u8(BINARY_FORMAT);
  w.f64(time);
  w.str16(type);
}

/** After the key: returns where the attribute count goes. */
export function beginAttrs(w: BinaryWriter): number {
  const countAt = w.pos;
  w.u32(0);
  return countAt;
}

/** Ends a record begun with {@link beginRecord}: `attrs` attributes were written. */
export function endRecord(w: BinaryWriter, countAt: number, attrs: number): void {
  w.patchU32(countAt, attrs);
}

/**
 * Which attributes of an event of a type a reader needs: a set of names, or
 * `undefined` when it may need any (see {@link decodeRecordProjected}).
 */
export type AttributeProjection = (type: string) => ReadonlySet<string> | undefined;

/**
 * {@link decodeRecord} keeping only the attributes `project` names for the
 * record's type (all when it returns `undefined`): the others are stepped
 * over without building their strings. Time, type and key are always read.
 */
export function decodeRecordProjected(bytes: Uint8Array, project: AttributeProjection): LogRecord {
  if (bytes[0] !== BINARY_FORMAT) return packr.unpack(bytes) as LogRecord;
  const r = reader.reset(bytes);
  r.pos = 1;
  const time = r.f64();
  const type = r.str16();
  const key = r.str16();
  const n = r.u32();
  const attrs: Record<string, AttrValue> = {};
  const keep = project(type);
  if (keep === undefined) {
    for (let i = 0; i < n; i++) {
      const name = r.str16();
      setAttr(attrs, name, r.value16());
    }
  } else if (keep.size === 0) {
    for (let i = 0; i < n; i++) {
      r.skipStr16();
      r.skipValue16();
    }
  } else {
    for (let i = 0; i < n; i++) {
      const name = r.str16();
      if (keep.has(name)) setAttr(attrs, name, r.value16());
      else r.skipValue16();
    }
  }
  return { type, time, key, attrs };
}

/** The projection that keeps every attribute of every type. */
export const ALL_ATTRIBUTES: AttributeProjection = () => undefined;

/** Decodes bytes written by {@link encodeRecord} (either form). */
export function decodeRecord(bytes: Uint8Array): LogRecord {
  return decodeRecordProjected(bytes, ALL_ATTRIBUTES);
}
