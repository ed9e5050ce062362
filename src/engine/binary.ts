import type { AttrValue } from './event.js';

const ARENA_BYTES = 1 << 20;
let arena = new ArrayBuffer(ARENA_BYTES);
let arenaPos = 0;

/** Strings up to this many UTF-16 units are copied by hand when ASCII ({@link BinaryWriter.str16}). */
const SHORT_STRING = 64;

const T_NULL = 0;
const T_NUMBER = 1;
const T_STRING = 2;
const T_TRUE = 3;
const T_FALSE = 4;

/**
 * Writes numbers, strings and scalar values into one growing buffer, reused
 * from value to value, so encoding a profile or a snapshot allocates only its
 * final copy. Little-endian; strings are UTF-8 with a 32-bit length.
 */
export class BinaryWriter {
  private buf: Buffer;
  private view: DataView;
  /** Bytes written so far. */
  pos = 0;

  constructor(initialBytes = 64 * 1024) {
    this.buf = Buffer.allocUnsafe(initialBytes);
    this.view = new DataView(this.buf.buffer, this.buf.byteOffset, this.buf.byteLength);
  }

  /** Starts a new value. */
  reset(): this {
    this.pos = 0;
    return this;
  }

  private room(bytes: number): void {
    if (this.pos + bytes <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.pos + bytes) size *= 2;
    const next = Buffer.allocUnsafe(size);
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
    this.view = new DataView(next.buffer, next.byteOffset, next.byteLength);
  }

  /** The bytes written since the last reset, without a copy: valid until the next write. */
  written(): Uint8Array {
    return this.buf.subarray(0, this.pos);
  }

  u8(v: number): void {
    this.room(1);
    this.buf[this.pos++] = v;
  }

  u32(v: number): void {
    this.room(4);
    this.view.setUint32(this.pos, v, true);
    this.pos += 4;
  }

  f64(v: number): void {
    this.room(8);
    this.view.setFloat64(this.pos, v, true);
    this.pos += 8;
  }

  /** Overwrites the 32-bit number at `at` (a count or length written before its items). */
  patchU32(at: number, v: number): void {
    this.view.setUint32(at, v, true);
  }

  /** Writes `n` numbers of an array (typed or plain) from `from`. */
  f64s(a: ArrayLike<number>, from: number, n: number): void {
    this.room(8 * n);
    const view = this.view;
    let p = this.pos;
    for (let i = 0; i < n; i++, p += 8) view.setFloat64(p, a[from + i]!, true);
    this.pos = p;
  }

  str(s: string): void {
    // At most 3 bytes per UTF-16 unit.
    this.room(4 + s.length * 3);
    const written = this.buf.write(s, this.pos + 4, 'utf8');
    this.view.setUint32(this.pos, written, true);
    this.pos += 4 + written;
  }

  /**
   * A string for names and ids: an ASCII one of at most {@link SHORT_STRING}
   * units is copied byte by byte after a 16-bit length; any other is 0xffff,
   * a 32-bit length and UTF-8. Read with {@link BinaryReader.str16}.
   */
  str16(s: string): void {
    const n = s.length;
    this.room(6 + n * 3);
    const b = this.buf;
    const at = this.pos;
    if (n <= SHORT_STRING) {
      let p = at + 2;
      let i = 0;
      for (; i < n; i++) {
        const c = s.charCodeAt(i);
        if (c >= 0x80) break;
        b[p++] = c;
      }
      if (i === n) {
        b[at] = n & 0xff;
        b[at + 1] = n >>> 8;
        this.pos = p;
        return;
      }
    }
    const written = b.write(s, at + 6, 'utf8');
    b[at] = 0xff;
    b[at + 1] = 0xff;
    this.view.setUint32(at + 2, written, true);
    this.pos = at + 6 + written;
  }

  /**
   * What {@link str16} writes for the ASCII string held by `bytes[start,
   * start + n)`, copied from the bytes without making the string.
   */
  str16Ascii(bytes: Uint8Array, start: number, n: number): void {
    this.room(6 + n);
    const b = this.buf;
    let at = this.pos;
    if (n <= SHORT_STRING) {
      b[at] = n & 0xff;
      b[at + 1] = n >>> 8;
      at += 2;
    } else {
      b[at] = 0xff;
      b[at + 1] = 0xff;
      this.view.setUint32(at + 2, n, true);
      at += 6;
    }
    if (n <= 32) for (let i = 0; i < n; i++) b[at + i] = bytes[start + i]!;
    else b.set(bytes.subarray(start, start + n), at);
    this.pos = at + n;
  }

  /** {@link value16} of an ASCII string held in bytes (see {@link str16Ascii}). */
  value16Ascii(bytes: Uint8Array, start: number, n: number): void {
    this.u8(T_STRING);
    this.str16Ascii(bytes, start, n);
  }

  /** As {@link value}, strings written with {@link str16}. Read with {@link BinaryReader.value16}. */
  value16(v: AttrValue | undefined): void {
    if (typeof v === 'string') {
      this.u8(T_STRING);
      this.str16(v);
    } else this.value(v);
  }

  /** The bytes `src[start, end)` as they are: short runs copied by hand, longer ones by `set`. */
  copy(src: Uint8Array, start: number, end: number): void {
    const n = end - start;
    this.room(n);
    const b = this.buf;
    const at = this.pos;
    if (n <= 32) for (let i = 0; i < n; i++) b[at + i] = src[start + i]!;
    else b.set(src.subarray(start, end), at);
    this.pos = at + n;
  }

  /** Bytes as they are. */
  raw(bytes: Uint8Array): void {
    this.room(bytes.length);
    this.buf.set(bytes, this.pos);
    this.pos += bytes.length;
  }

  /** A string, number, boolean or null. */
  value(v: AttrValue | undefined): void {
    if (v === null || v === undefined) this.u8(T_NULL);
    else if (typeof v === 'number') {
      this.u8(T_NUMBER);
      this.f64(v);
    } else if (typeof v === 'string') {
      this.u8(T_STRING);
      this.str(v);
    } else this.u8(v ? T_TRUE : T_FALSE);
  }

  /** A copy of what was written since the last reset. */
  bytes(): Uint8Array {
    // A slice of a large shared arena: a typed array with an ArrayBuffer of its own (or of
    // Node's small 8 KiB pool) costs far more to allocate and free. Slices are never reused,
    // so a store may keep one until its write is done.
    const n = this.pos;
    if (n > ARENA_BYTES / 4) {
      const own = Buffer.allocUnsafeSlow(n);
      this.buf.copy(own, 0, 0, n);
      return own;
    }
    if (arenaPos + n > ARENA_BYTES) {
      arena = new ArrayBuffer(ARENA_BYTES);
      arenaPos = 0;
    }
    const out = Buffer.from(arena, arenaPos, n);
    this.buf.copy(out, 0, 0, n);
    arenaPos += (n + 7) & ~7;
    return out;
  }
}

// Eight bytes seen as one float64: a reader copies a number's bytes here instead of making a
// DataView per value it starts on (one per record decoded, which cost a fifth of decoding).
const F64_BYTES = new Uint8Array(8);
const F64 = new Float64Array(F64_BYTES.buffer);
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** Reads what a {@link BinaryWriter} wrote. */
export class BinaryReader {
  pos = 0;

  constructor(private bytes: Uint8Array) {}

  /** Starts on other bytes (one reader reused from value to value). */
  reset(bytes: Uint8Array): this {
    this.bytes = bytes;
    this.pos = 0;
    return this;
  }

  /** True while bytes remain. */
  get more(): boolean {
    return this.pos < this.bytes.byteLength;
  }

  u8(): number {
    return this.bytes[this.pos++]!;
  }

  u32(): number {
    const v = readU32(this.bytes, this.pos);
    this.pos += 4;
    return v;
  }

  f64(): number {
    const v = readF64(this.bytes, this.pos);
    this.pos += 8;
    return v;
  }

  f64s(into: { [i: number]: number }, from: number, n: number): void {
    const b = this.bytes;
    let p = this.pos;
    for (let i = 0; i < n; i++, p += 8) into[from + i] = readF64(b, p);
    this.pos = p;
  }

  str(): string {
    const n = this.u32();
    const s = Buffer.from(this.bytes.buffer, this.bytes.byteOffset + this.pos, n).toString('utf8');
    this.pos += n;
    return s;
  }

  /** A string written by {@link BinaryWriter.str16}. */
  str16(): string {
    const b = this.bytes;
    const n = b[this.pos]! | (b[this.pos + 1]! << 8);
    if (n !== 0xffff) {
      const start = this.pos + 2;
      this.pos = start + n;
      return shortAscii(b, start, n);
    }
    const len = readU32(b, this.pos + 2);
    const start = this.pos + 6;
    this.pos = start + len;
    return Buffer.from(b.buffer, b.byteOffset + start, len).toString('utf8');
  }

  /** Moves past a string written by {@link BinaryWriter.str16} without reading it. */
  skipStr16(): void {
    const b = this.bytes;
    const n = b[this.pos]! | (b[this.pos + 1]! << 8);
    this.pos += n !== 0xffff ? 2 + n : 6 + readU32(b, this.pos + 2);
  }

  /** Moves past a value written by {@link BinaryWriter.value16} without reading it. */
  skipValue16(): void {
    const tag = this.bytes[this.pos++];
    if (tag === T_STRING) this.skipStr16();
    else if (tag === T_NUMBER) this.pos += 8;
  }

  /** A value written by {@link BinaryWriter.value16}. */
  value16(): AttrValue {
    if (this.bytes[this.pos] !== T_STRING) return this.value();
    this.pos++;
    return this.str16();
  }

  value(): AttrValue {
    switch (this.u8()) {
      case T_NUMBER:
        return this.f64();
      case T_STRING:
        return this.str();
      case T_TRUE:
        return true;
      case T_FALSE:
        return false;
      default:
        return null;
    }
  }
}

/** The little-endian unsigned 32-bit number at `at`. */
function readU32(b: Uint8Array, at: number): number {
  return (b[at]! | (b[at + 1]! << 8) | (b[at + 2]! << 16)) + b[at + 3]! * 0x1000000;
}

/** The little-endian float64 at `at`. */
function readF64(b: Uint8Array, at: number): number {
  const s = F64_BYTES;
  if (LITTLE_ENDIAN) {
    s[0] = b[at]!;
    s[1] = b[at + 1]!;
    s[2] = b[at + 2]!;
    s[3] = b[at + 3]!;
    s[4] = b[at + 4]!;
    s[5] = b[at + 5]!;
    s[6] = b[at + 6]!;
    s[7] = b[at + 7]!;
  } else {
    for (let i = 0; i < 8; i++) s[i] = b[at + 7 - i]!;
  }
  return F64[0]!;
}

/**
 * Short strings read lately, by a hash of their bytes: event types,
 * attribute names and many values repeat from record to record, and a hit
 * (its bytes, kept beside it, compared byte by byte) returns the same string
 * without building one. Strings longer than RECENT_BYTES are not kept.
 */
const RECENT_SIZE = 4096;
const RECENT_BYTES = 40;
const recent: string[] = new Array<string>(RECENT_SIZE).fill('');
const recentLength = new Uint8Array(RECENT_SIZE);
const recentBytes = new Uint8Array(RECENT_SIZE * RECENT_BYTES);

/**
 * The string of `n` ASCII bytes from `a`, built flat in one call up to eight
 * units (ids and names mostly are that short) instead of by concatenation.
 */
function asciiString(c: Uint8Array, a: number, n: number): string {
  switch (n) {
    case 1:
      return String.fromCharCode(c[a]!);
    case 2:
      return String.fromCharCode(c[a]!, c[a + 1]!);
    case 3:
      return String.fromCharCode(c[a]!, c[a + 1]!, c[a + 2]!);
    case 4:
      return String.fromCharCode(c[a]!, c[a + 1]!, c[a + 2]!, c[a + 3]!);
    case 5:
      return String.fromCharCode(c[a]!, c[a + 1]!, c[a + 2]!, c[a + 3]!, c[a + 4]!);
    case 6:
      return String.fromCharCode(c[a]!, c[a + 1]!, c[a + 2]!, c[a + 3]!, c[a + 4]!, c[a + 5]!);
    case 7:
      return String.fromCharCode(c[a]!, c[a + 1]!, c[a + 2]!, c[a + 3]!, c[a + 4]!, c[a + 5]!, c[a + 6]!);
    case 8:
      return String.fromCharCode(c[a]!, c[a + 1]!, c[a + 2]!, c[a + 3]!, c[a + 4]!, c[a + 5]!, c[a + 6]!, c[a + 7]!);
    default: {
      const end = a + n;
      let s = '';
      let i = a;
      for (; i + 4 <= end; i += 4) s += String.fromCharCode(c[i]!, c[i + 1]!, c[i + 2]!, c[i + 3]!);
      for (; i < end; i++) s += String.fromCharCode(c[i]!);
      return s;
    }
  }
}

/**
 * The string of the ASCII bytes `b[start, start + n)`: the same string object
 * as for the same bytes read lately (names, types and other repeated values).
 */
export function shortAscii(b: Uint8Array, start: number, n: number): string {
  if (n === 0) return '';
  if (n > RECENT_BYTES) return asciiString(b, start, n);
  const end = start + n;
  const slot = (n * 31 + b[start]! * 7 + b[end - 1]! * 3 + b[start + (n >>> 1)]! * 13) & (RECENT_SIZE - 1);
  const kept = recentBytes;
  const at = slot * RECENT_BYTES;
  if (recentLength[slot] === n) {
    let i = 0;
    while (i < n && kept[at + i] === b[start + i]) i++;
    if (i === n) return recent[slot]!;
  }
  const s = asciiString(b, start, n);
  recent[slot] = s;
  recentLength[slot] = n;
  for (let i = 0; i < n; i++) kept[at + i] = b[start + i]!;
  return s;
}
