import { Packr } from 'msgpackr';
import type { AttrValue, LogRecord } from './event.js';

// Records whose attributes are all scalars (every event the ingestors accept, every control
// record) are written in a compact binary form, built in one reused buffer: format byte,
// time (f64), then type, key and each attribute name as length-prefixed UTF-8 (ASCII copied
// byte by byte), each attribute value tagged. Anything else, and every record of logs written
// before this form, is msgpack: its first byte is a map header (0x80-0x8f, 0xde, 0xdf), never
// BINARY_FORMAT.
const packr = new Packr({ useRecords: false, moreTypes: false, int64AsType: 'number' });

const BINARY_FORMAT = 0x01;
const V_NULL = 0;
const V_NUMBER = 1;
const V_STRING = 2;
const V_TRUE = 3;
const V_FALSE = 4;
/** Strings up to this many UTF-16 units are copied by hand when ASCII; longer ones by Buffer#write. */
const SHORT_STRING = 64;
const ARENA_BYTES = 1 << 20;

let buf = Buffer.allocUnsafe(64 * 1024);
let view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
let pos = 0;
let arena = Buffer.allocUnsafeSlow(ARENA_BYTES);
let arenaPos = 0;

function room(bytes: number): void {
  if (pos + bytes <= buf.length) return;
  let size = buf.length * 2;
  while (size < pos + bytes) size *= 2;
  const next = Buffer.allocUnsafe(size);
  buf.copy(next, 0, 0, pos);
  buf = next;
  view = new DataView(next.buffer, next.byteOffset, next.byteLength);
}

/** A string with a 16-bit length when it fits (always for names and ids), else 0xffff and a 32-bit one. */
function writeStr(s: string): void {
  const n = s.length;
  room(6 + n * 3);
  if (n <= SHORT_STRING) {
    const b = buf;
    let p = pos + 2;
    let i = 0;
    for (; i < n; i++) {
      const c = s.charCodeAt(i);
      if (c >= 0x80) break;
      b[p++] = c;
    }
    if (i === n) {
      b[pos] = n & 0xff;
      b[pos + 1] = n >>> 8;
      pos = p;
      return;
    }
  }
  const written = buf.write(s, pos + 6, 'utf8');
  buf[pos] = 0xff;
  buf[pos + 1] = 0xff;
  view.setUint32(pos + 2, written, true);
  pos += 6 + written;
}

function writeValue(v: AttrValue): void {
  if (typeof v === 'number') {
    room(9);
    buf[pos] = V_NUMBER;
    view.setFloat64(pos + 1, v, true);
    pos += 9;
  } else if (typeof v === 'string') {
    room(1);
    buf[pos++] = V_STRING;
    writeStr(v);
  } else {
    room(1);
    buf[pos++] = v === null ? V_NULL : v ? V_TRUE : V_FALSE;
  }
}

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
  const attrs = record.attrs as Record<string, unknown>;
  if (typeof record.type !== 'string' || typeof record.key !== 'string' || typeof record.time !== 'number' || !scalarAttrs(attrs)) return packr.pack(record);
  pos = 0;
  room(13);
  buf[0] = BINARY_FORMAT;
  view.setFloat64(1, record.time, true);
  pos = 9;
  writeStr(record.type);
  writeStr(record.key);
  const countAt = pos;
  room(2);
  pos += 2;
  let n = 0;
  for (const name in attrs) {
    writeStr(name);
    writeValue(attrs[name] as AttrValue);
    n++;
  }
  if (n > 0xffff) return packr.pack(record);
  buf[countAt] = n & 0xff;
  buf[countAt + 1] = n >>> 8;
  return copyOut();
}

/**
 * The bytes written, copied into a slice of a shared arena: small payloads
 * with a buffer of their own cost far more to allocate and free. The log
 * copies a payload into its block on append, and slices are never reused.
 */
function copyOut(): Uint8Array {
  const n = pos;
  if (n > ARENA_BYTES / 4) return Buffer.from(buf.subarray(0, n));
  if (arenaPos + n > ARENA_BYTES) {
    arena = Buffer.allocUnsafeSlow(ARENA_BYTES);
    arenaPos = 0;
  }
  const out = arena.subarray(arenaPos, arenaPos + n);
  buf.copy(out, 0, 0, n);
  arenaPos += (n + 7) & ~7;
  return out;
}

// Decoding: a cursor over one payload.
/**
 * Short strings decoded lately, by a hash of their bytes: event types,
 * attribute names and many values repeat from record to record, and a hit
 * (checked unit by unit) returns the same string without building one.
 */
const RECENT_SIZE = 4096;
const recent: string[] = new Array<string>(RECENT_SIZE).fill('');

function shortAscii(b: Uint8Array, start: number, n: number): string {
  if (n === 0) return '';
  const end = start + n;
  const slot = (n * 31 + b[start]! * 7 + b[end - 1]! * 3 + b[start + (n >>> 1)]! * 13) & (RECENT_SIZE - 1);
  const hit = recent[slot]!;
  if (hit.length === n) {
    let i = 0;
    while (i < n && hit.charCodeAt(i) === b[start + i]) i++;
    if (i === n) return hit;
  }
  let s: string;
  if (n <= 4) s = n === 1 ? String.fromCharCode(b[start]!) : n === 2 ? String.fromCharCode(b[start]!, b[start + 1]!) : n === 3 ? String.fromCharCode(b[start]!, b[start + 1]!, b[start + 2]!) : String.fromCharCode(b[start]!, b[start + 1]!, b[start + 2]!, b[start + 3]!);
  else {
    s = '';
    let i = start;
    for (; i + 4 <= end; i += 4) s += String.fromCharCode(b[i]!, b[i + 1]!, b[i + 2]!, b[i + 3]!);
    for (; i < end; i++) s += String.fromCharCode(b[i]!);
  }
  recent[slot] = s;
  return s;
}
let rBytes: Uint8Array = new Uint8Array(0);
let rView = new DataView(rBytes.buffer);
let rPos = 0;

function readStr(): string {
  const b = rBytes;
  const n = b[rPos]! | (b[rPos + 1]! << 8);
  if (n !== 0xffff) {
    const start = rPos + 2;
    rPos = start + n;
    // Written only for ASCII strings of at most SHORT_STRING units.
    return shortAscii(b, start, n);
  }
  const len = rView.getUint32(rPos + 2, true);
  const start = rPos + 6;
  rPos = start + len;
  return Buffer.from(b.buffer, b.byteOffset + start, len).toString('utf8');
}

function readValue(): AttrValue {
  switch (rBytes[rPos++]) {
    case V_NUMBER: {
      const v = rView.getFloat64(rPos, true);
      rPos += 8;
      return v;
    }
    case V_STRING:
      return readStr();
    case V_TRUE:
      return true;
    case V_FALSE:
      return false;
    default:
      return null;
  }
}

/** Decodes bytes written by {@link encodeRecord} (either form). */
export function decodeRecord(bytes: Uint8Array): LogRecord {
  if (bytes[0] !== BINARY_FORMAT) return packr.unpack(bytes) as LogRecord;
  rBytes = bytes;
  rView = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const time = rView.getFloat64(1, true);
  rPos = 9;
  const type = readStr();
  const key = readStr();
  const n = bytes[rPos]! | (bytes[rPos + 1]! << 8);
  rPos += 2;
  const attrs: Record<string, AttrValue> = {};
  for (let i = 0; i < n; i++) {
    const name = readStr();
    if (name === '__proto__') Object.defineProperty(attrs, name, { value: readValue(), enumerable: true, writable: true, configurable: true });
    else attrs[name] = readValue();
  }
  return { type, time, key, attrs };
}
