import { beginAttrs, beginRecord, endRecord, shortAscii, type BinaryWriter } from '../engine/index.js';
import { own, type EventCatalog, type EventLimits } from './catalog.js';

/**
 * The fast path of a canonical NDJSON line held as ASCII bytes: a flat JSON
 * object whose names and strings have no escapes is scanned once and its
 * log record written straight from the bytes (strings are copied, not made),
 * with the checks of `validateEvent`, instead of `JSON.parse` building an
 * object, `validateEvent` copying it into an event and `encodeRecord` writing
 * that.
 *
 * It only ever says yes to a line the full path accepts, and then writes the
 * same bytes the full path writes (a property test holds the two side by
 * side). Anything else — escapes, nesting, a name JSON.parse would order
 * first (an array index) or that repeats, `__proto__`, any value or field the
 * checks refuse — answers `false` with nothing written: the line then takes
 * the full path, which gives the event or the error naming the field.
 */

const MAX_FIELDS = 64;

const KIND_STRING = 0;
const KIND_NUMBER = 1;
const KIND_TRUE = 2;
const KIND_FALSE = 3;
const KIND_NULL = 4;
/** A number in a field declared a string: written as its text. */
const KIND_NUMBER_TEXT = 5;

// Field columns of the line being scanned (one line at a time per thread).
const names: string[] = new Array<string>(MAX_FIELDS).fill('');
const kinds = new Uint8Array(MAX_FIELDS);
/** A string value's bytes: start and length. */
const valueStart = new Int32Array(MAX_FIELDS);
const valueLength = new Int32Array(MAX_FIELDS);
const numbers = new Float64Array(MAX_FIELDS);
/** A number declared a string: its text, as the full path makes it. */
const numberTexts: string[] = new Array<string>(MAX_FIELDS).fill('');
/** Index of each attribute (not type, time or the key) in the fields, in line order; -1 once dropped. */
const attrFields = new Int32Array(MAX_FIELDS);

/** Exact powers of ten: a decimal of at most 15 digits divided by one is correctly rounded. */
const POW10 = [1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22];

/** What the fast path needs from a parser's setup. */
export interface FastLineContext {
  catalog: EventCatalog;
  limits: EventLimits;
  now: number;
  timeShiftMs: number;
}

function skipWs(b: Uint8Array, i: number, end: number): number {
  while (i < end) {
    const c = b[i]!;
    if (c !== 0x20 && c !== 0x09 && c !== 0x0d && c !== 0x0a) break;
    i++;
  }
  return i;
}

/**
 * Writes the record of the line `b[start, end)` (ASCII bytes) at the writer's
 * position and returns true, or returns false (writing nothing) when the line
 * must take the full path.
 */
export function encodeFastLine(b: Uint8Array, start: number, end: number, ctx: FastLineContext, w: BinaryWriter): boolean {
  const n = scan(b, start, end);
  if (n < 0) return false;
  const { catalog, limits, now } = ctx;
  const keyField = catalog.entityKey;

  let typeAt = -1;
  let timeAt = -1;
  let keyAt = -1;
  let attrCount = 0;
  for (let f = 0; f < n; f++) {
    const name = names[f]!;
    if (name === 'type') typeAt = f;
    else if (name === 'time') timeAt = f;
    else if (name === keyField) keyAt = f;
    else attrFields[attrCount++] = f;
  }

  if (typeAt < 0 || kinds[typeAt] !== KIND_STRING) return false;
  const type = shortAscii(b, valueStart[typeAt]!, valueLength[typeAt]!);
  const spec = own(catalog.types, type);
  if (spec === undefined) return false;

  if (keyAt < 0) return false;
  let numericKey: string | undefined;
  if (kinds[keyAt] === KIND_STRING) {
    const length = valueLength[keyAt]!;
    if (length === 0 || length > limits.maxKeyLength) return false;
  } else if (kinds[keyAt] === KIND_NUMBER && Number.isFinite(numbers[keyAt]!)) {
    numericKey = String(numbers[keyAt]!);
    if (numericKey.length > limits.maxKeyLength) return false;
  } else return false;

  let time: number;
  if (timeAt < 0) time = now;
  else if (kinds[timeAt] === KIND_NUMBER) {
    const t = numbers[timeAt]!;
    if (!(Number.isFinite(t) && t >= 0)) return false;
    time = Math.floor(t);
  } else if (kinds[timeAt] === KIND_STRING && valueLength[timeAt]! >= 10) {
    const at = valueStart[timeAt]!;
    time = Date.parse(latin1(b, at, at + valueLength[timeAt]!));
    if (Number.isNaN(time)) return false;
  } else return false;
  if (time > now + limits.maxFutureMs) return false;
  if (ctx.timeShiftMs !== 0) time += ctx.timeShiftMs;

  // Every attribute is checked before a byte is written.
  const fields = spec.fields;
  const additional = catalog.additionalFields;
  let kept = 0;
  for (let a = 0; a < attrCount; a++) {
    const f = attrFields[a]!;
    const kind = kinds[f]!;
    const declared = own(fields, names[f]!);
    if (declared === undefined) {
      if (additional === 'reject') return false;
      if (additional === 'drop') {
        attrFields[a] = -1;
        continue;
      }
    } else if (kind !== KIND_NULL) {
      switch (declared) {
        case 'string':
          if (kind === KIND_STRING) {
            if (valueLength[f]! > limits.maxStringLength) return false;
          } else if (kind === KIND_NUMBER && Number.isFinite(numbers[f]!)) {
            numberTexts[f] = String(numbers[f]!);
            kinds[f] = KIND_NUMBER_TEXT;
          } else return false;
          break;
        case 'number':
          if (kind !== KIND_NUMBER || !Number.isFinite(numbers[f]!)) return false;
          break;
        case 'integer':
          if (kind !== KIND_NUMBER || !Number.isInteger(numbers[f]!)) return false;
          break;
        case 'boolean':
          if (kind !== KIND_TRUE && kind !== KIND_FALSE) return false;
          break;
        default:
          return false;
      }
    }
    kept++;
  }
  const required = spec.required;
  if (required !== undefined) {
    for (const name of required) if (!present(name, attrCount)) return false;
  }

  beginRecord(w, type, time);
  if (numericKey === undefined) w.str16Ascii(b, valueStart[keyAt]!, valueLength[keyAt]!);
  else w.str16(numericKey);
  const countAt = beginAttrs(w);
  for (let a = 0; a < attrCount; a++) {
    const f = attrFields[a]!;
    if (f < 0) continue;
    w.str16(names[f]!);
    switch (kinds[f]) {
      case KIND_STRING:
        w.value16Ascii(b, valueStart[f]!, valueLength[f]!);
        break;
      case KIND_NUMBER:
        w.value16(numbers[f]!);
        break;
      case KIND_NUMBER_TEXT:
        w.value16(numberTexts[f]!);
        break;
      case KIND_TRUE:
        w.value16(true);
        break;
      case KIND_FALSE:
        w.value16(false);
        break;
      default:
        w.value16(null);
    }
  }
  endRecord(w, countAt, kept);
  return true;
}

/** Whether an attribute kept on the record holds a value other than null. */
function present(name: string, attrCount: number): boolean {
  for (let a = 0; a < attrCount; a++) {
    const f = attrFields[a]!;
    if (f >= 0 && names[f] === name) return kinds[f] !== KIND_NULL;
  }
  return false;
}

/**
 * The closing quote of a JSON string whose text starts at `from`, or -1 when
 * the text has an escape or a control character (or no closing quote).
 */
function closingQuote(b: Uint8Array, from: number, end: number): number {
  for (let k = from; k < end; k++) {
    const c = b[k]!;
    if (c === 0x22) return k;
    if (c === 0x5c || c < 0x20) return -1;
  }
  return -1;
}

/** Whether the name `b[start, end)` is all digits, which `JSON.parse` puts before the other names. */
function isArrayIndex(b: Uint8Array, start: number, end: number): boolean {
  if (start === end) return false;
  for (let k = start; k < end; k++) if (b[k]! < 0x30 || b[k]! > 0x39) return false;
  return true;
}

/** The text of the ASCII bytes `b[start, end)`. */
export function latin1(b: Uint8Array, start: number, end: number): string {
  return Buffer.from(b.buffer, b.byteOffset + start, end - start).toString('latin1');
}

/** Scans a flat object into the field columns; the number of fields, or -1 for the full path. */
function scan(b: Uint8Array, start: number, end: number): number {
  let i = skipWs(b, start, end);
  if (b[i] !== 0x7b || i >= end) return -1; // {
  i = skipWs(b, i + 1, end);
  let n = 0;
  for (;;) {
    if (n === MAX_FIELDS || i >= end || b[i] !== 0x22) return -1; // "
    // Name: no escape, no control character; not an array index (JSON.parse would order it
    // first), not `__proto__`, not seen before on the line.
    const nameStart = i + 1;
    const j = closingQuote(b, nameStart, end);
    if (j < 0 || isArrayIndex(b, nameStart, j)) return -1;
    const name = shortAscii(b, nameStart, j - nameStart);
    if (name === '__proto__') return -1;
    for (let k = 0; k < n; k++) if (names[k] === name) return -1;
    names[n] = name;
    i = skipWs(b, j + 1, end);
    if (i >= end || b[i] !== 0x3a) return -1; // :
    i = skipWs(b, i + 1, end);
    if (i >= end) return -1;
    const c = b[i]!;
    if (c === 0x22) {
      const s = i + 1;
      const k = closingQuote(b, s, end);
      if (k < 0) return -1;
      kinds[n] = KIND_STRING;
      valueStart[n] = s;
      valueLength[n] = k - s;
      i = k + 1;
    } else if (c === 0x2d || (c >= 0x30 && c <= 0x39)) {
      const after = scanNumber(b, i, end, n);
      if (after < 0) return -1;
      kinds[n] = KIND_NUMBER;
      i = after;
    } else if (c === 0x74 && i + 4 <= end && b[i + 1] === 0x72 && b[i + 2] === 0x75 && b[i + 3] === 0x65) {
      kinds[n] = KIND_TRUE;
      i += 4;
    } else if (c === 0x66 && i + 5 <= end && b[i + 1] === 0x61 && b[i + 2] === 0x6c && b[i + 3] === 0x73 && b[i + 4] === 0x65) {
      kinds[n] = KIND_FALSE;
      i += 5;
    } else if (c === 0x6e && i + 4 <= end && b[i + 1] === 0x75 && b[i + 2] === 0x6c && b[i + 3] === 0x6c) {
      kinds[n] = KIND_NULL;
      i += 4;
    } else return -1;
    n++;
    i = skipWs(b, i, end);
    if (i >= end) return -1;
    const sep = b[i]!;
    if (sep === 0x2c) {
      i = skipWs(b, i + 1, end);
      continue;
    }
    if (sep !== 0x7d) return -1; // }
    return skipWs(b, i + 1, end) === end ? n : -1;
  }
}

/**
 * A JSON number at `i` (the grammar exactly: no leading zeros, `+`, bare `.`,
 * hex or `Infinity`) into `numbers[f]`; the index after it, or -1. A decimal
 * of at most 15 significant digits and no exponent is an exact integer divided
 * by an exact power of ten, so correctly rounded, as `JSON.parse` gives it;
 * any other number is read by `Number`.
 */
function scanNumber(b: Uint8Array, i: number, end: number, f: number): number {
  const start = i;
  const negative = b[i] === 0x2d;
  if (negative) i++;
  let mantissa = 0;
  let digits = 0;
  let c = i < end ? b[i]! : -1;
  if (c === 0x30) {
    i++;
  } else if (c >= 0x31 && c <= 0x39) {
    while (c >= 0x30 && c <= 0x39) {
      mantissa = mantissa * 10 + (c - 0x30);
      digits++;
      c = ++i < end ? b[i]! : -1;
    }
  } else return -1;
  let fraction = 0;
  if (i < end && b[i] === 0x2e) {
    c = ++i < end ? b[i]! : -1;
    if (!(c >= 0x30 && c <= 0x39)) return -1;
    while (c >= 0x30 && c <= 0x39) {
      mantissa = mantissa * 10 + (c - 0x30);
      if (mantissa !== 0 || digits > 0) digits++;
      fraction++;
      c = ++i < end ? b[i]! : -1;
    }
  }
  c = i < end ? b[i]! : -1;
  if (c === 0x65 || c === 0x45) {
    c = ++i < end ? b[i]! : -1;
    if (c === 0x2b || c === 0x2d) c = ++i < end ? b[i]! : -1;
    if (!(c >= 0x30 && c <= 0x39)) return -1;
    while (c >= 0x30 && c <= 0x39) c = ++i < end ? b[i]! : -1;
    numbers[f] = Number(latin1(b, start, i));
    return i;
  }
  if (digits <= 15 && fraction <= 22) {
    const v = fraction === 0 ? mantissa : mantissa / POW10[fraction]!;
    numbers[f] = negative ? -v : v;
  } else {
    numbers[f] = Number(latin1(b, start, i));
  }
  return i;
}
