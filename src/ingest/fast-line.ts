import { BinaryWriter, beginAttrs, beginRecord, endRecord, shortAscii } from '../engine/index.js';
import { own, type EventCatalog, type EventLimits, type EventTypeSpec } from './catalog.js';

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
const nameStart = new Int32Array(MAX_FIELDS);
const nameLength = new Int32Array(MAX_FIELDS);
const kinds = new Uint8Array(MAX_FIELDS);
/** A string value's bytes: start and length. */
const valueStart = new Int32Array(MAX_FIELDS);
const valueLength = new Int32Array(MAX_FIELDS);
const numbers = new Float64Array(MAX_FIELDS);
/** A number declared a string: its text, as the full path makes it. */
const numberTexts: string[] = new Array<string>(MAX_FIELDS).fill('');

/** Exact powers of ten: a decimal of at most 15 digits divided by one is correctly rounded. */
const POW10 = [1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22];

/** What the fast path needs from a parser's setup. */
export interface FastLineContext {
  catalog: EventCatalog;
  limits: EventLimits;
  now: number;
  timeShiftMs: number;
}

// What an attribute of a line's layout is under its event type.
const ATTR_KEEP = 0; // undeclared, kept as it is
const ATTR_DROP = 1; // undeclared, dropped
const ATTR_STRING = 2;
const ATTR_NUMBER = 3;
const ATTR_INTEGER = 4;
const ATTR_BOOLEAN = 5;

/** A layout (see {@link Layout}) under one event type of the catalog. */
interface TypedLayout {
  /** What each attribute is (ATTR_*), by attribute index. */
  readonly attrs: Uint8Array;
  /** Attributes kept on the record. */
  readonly kept: number;
  /** Field index of each required attribute (its value must not be null). */
  readonly required: Int32Array;
  /** Each attribute's name as the record writes it (`str16`), back to back; `nameEnds[a]` ends attribute `a`'s. */
  readonly names: Uint8Array;
  readonly nameEnds: Int32Array;
}

/**
 * The field names of a line, in order, and what follows from them alone:
 * where type, time and the key are, the attributes, and whether the line can
 * take the fast path at all. Lines of one source mostly repeat a few layouts,
 * so each is worked out once and then only recognised, by its bytes.
 */
interface Layout {
  readonly count: number;
  /** The names' bytes, back to back, and where each ends. */
  readonly bytes: Uint8Array;
  readonly ends: Int32Array;
  /** False when a name sends the line to the full path (an array index, `__proto__`, a repeat). */
  readonly usable: boolean;
  readonly typeAt: number;
  readonly timeAt: number;
  readonly keyAt: number;
  /** Field index of each attribute (every field but type, time and the key), in line order. */
  readonly attrFields: Int32Array;
  readonly attrNames: readonly string[];
  /** By event type (types of the catalog only); undefined where the type makes every such line take the full path. */
  readonly typed: Map<string, TypedLayout | undefined>;
  lastType: string;
  lastTyped: TypedLayout | undefined;
}

const LAYOUT_SLOTS = 256;

/** Layouts recognised under one catalog (which the fast path must not see change). */
interface LayoutCache {
  readonly slots: Array<Layout | undefined>;
}

const caches = new WeakMap<EventCatalog, LayoutCache>();
let lastCatalog: EventCatalog | undefined;
let lastCache: LayoutCache | undefined;

function cacheFor(catalog: EventCatalog): LayoutCache {
  if (catalog === lastCatalog) return lastCache!;
  let cache = caches.get(catalog);
  if (cache === undefined) {
    cache = { slots: new Array<Layout | undefined>(LAYOUT_SLOTS).fill(undefined) };
    caches.set(catalog, cache);
  }
  lastCatalog = catalog;
  lastCache = cache;
  return cache;
}

function skipWs(b: Uint8Array, i: number, end: number): number {
  while (i < end) {
    const c = b[i]!;
    if (c !== 0x20 && c !== 0x09 && c !== 0x0d && c !== 0x0a) break;
    i++;
  }
  return i;
}

/** The layout of the `n` names just scanned from `b`: a known one, or one worked out now. */
function layoutOf(b: Uint8Array, n: number, catalog: EventCatalog): Layout {
  let h = n;
  for (let f = 0; f < n; f++) {
    const s = nameStart[f]!;
    const len = nameLength[f]!;
    h = (Math.imul(h, 31) + len * 17 + (len > 0 ? b[s]! * 7 + b[s + len - 1]! * 13 : 0)) | 0;
  }
  const slots = cacheFor(catalog).slots;
  const slot = (h ^ (h >>> 8) ^ (h >>> 16)) & (LAYOUT_SLOTS - 1);
  const known = slots[slot];
  if (known !== undefined && sameNames(known, b, n)) return known;
  const made = makeLayout(b, n, catalog);
  slots[slot] = made;
  return made;
}

function sameNames(layout: Layout, b: Uint8Array, n: number): boolean {
  if (layout.count !== n) return false;
  const bytes = layout.bytes;
  const ends = layout.ends;
  let p = 0;
  for (let f = 0; f < n; f++) {
    const end = ends[f]!;
    const s = nameStart[f]! - p;
    if (nameLength[f] !== end - p) return false;
    for (; p < end; p++) if (bytes[p] !== b[s + p]) return false;
  }
  return true;
}

function makeLayout(b: Uint8Array, n: number, catalog: EventCatalog): Layout {
  let total = 0;
  for (let f = 0; f < n; f++) total += nameLength[f]!;
  const bytes = new Uint8Array(total);
  const ends = new Int32Array(n);
  const names: string[] = [];
  let p = 0;
  for (let f = 0; f < n; f++) {
    const s = nameStart[f]!;
    const len = nameLength[f]!;
    bytes.set(b.subarray(s, s + len), p);
    p += len;
    ends[f] = p;
    names.push(latin1(b, s, s + len));
  }
  // Not usable: a name JSON.parse would order first (an array index), `__proto__`, or a name
  // the line repeats (JSON.parse keeps the last).
  let usable = true;
  for (let f = 0; f < n && usable; f++) {
    const name = names[f]!;
    if (name === '__proto__' || isArrayIndex(name) || names.indexOf(name) !== f) usable = false;
  }
  const keyField = catalog.entityKey;
  let typeAt = -1;
  let timeAt = -1;
  let keyAt = -1;
  const attrFields: number[] = [];
  for (let f = 0; f < n; f++) {
    const name = names[f]!;
    if (name === 'type') typeAt = f;
    else if (name === 'time') timeAt = f;
    else if (name === keyField) keyAt = f;
    else attrFields.push(f);
  }
  return {
    count: n,
    bytes,
    ends,
    usable,
    typeAt,
    timeAt,
    keyAt,
    attrFields: Int32Array.from(attrFields),
    attrNames: attrFields.map((f) => names[f]!),
    typed: new Map(),
    lastType: '',
    lastTyped: undefined,
  };
}

/** The layout under event type `type` (a type of the catalog), worked out once. */
function typedLayout(layout: Layout, type: string, spec: EventTypeSpec, catalog: EventCatalog): TypedLayout | undefined {
  if (layout.typed.has(type)) return layout.typed.get(type);
  const made = makeTypedLayout(layout, spec, catalog);
  layout.typed.set(type, made);
  return made;
}

function makeTypedLayout(layout: Layout, spec: EventTypeSpec, catalog: EventCatalog): TypedLayout | undefined {
  const count = layout.attrFields.length;
  const attrs = new Uint8Array(count);
  let kept = 0;
  const w = new BinaryWriter(256);
  const nameEnds = new Int32Array(count);
  for (let a = 0; a < count; a++) {
    const name = layout.attrNames[a]!;
    const declared = own(spec.fields, name);
    if (declared === undefined) {
      if (catalog.additionalFields === 'reject') return undefined;
      attrs[a] = catalog.additionalFields === 'drop' ? ATTR_DROP : ATTR_KEEP;
    } else if (declared === 'string') attrs[a] = ATTR_STRING;
    else if (declared === 'number') attrs[a] = ATTR_NUMBER;
    else if (declared === 'integer') attrs[a] = ATTR_INTEGER;
    else if (declared === 'boolean') attrs[a] = ATTR_BOOLEAN;
    else return undefined;
    if (attrs[a] !== ATTR_DROP) {
      kept++;
      w.str16(name);
    }
    nameEnds[a] = w.pos;
  }
  const required: number[] = [];
  for (const name of spec.required ?? []) {
    const a = layout.attrNames.indexOf(name);
    if (a < 0 || attrs[a] === ATTR_DROP) return undefined;
    required.push(layout.attrFields[a]!);
  }
  return { attrs, kept, required: Int32Array.from(required), names: w.bytes(), nameEnds };
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
  const layout = layoutOf(b, n, catalog);
  if (!layout.usable) return false;
  const typeAt = layout.typeAt;
  const keyAt = layout.keyAt;
  const timeAt = layout.timeAt;

  if (typeAt < 0 || kinds[typeAt] !== KIND_STRING) return false;
  const type = shortAscii(b, valueStart[typeAt]!, valueLength[typeAt]!);
  let typed: TypedLayout | undefined;
  if (type === layout.lastType) typed = layout.lastTyped;
  else {
    const spec = own(catalog.types, type);
    if (spec === undefined) return false;
    typed = typedLayout(layout, type, spec, catalog);
    layout.lastType = type;
    layout.lastTyped = typed;
  }
  if (typed === undefined) return false;

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
  const attrFields = layout.attrFields;
  const attrs = typed.attrs;
  const attrCount = attrFields.length;
  for (let a = 0; a < attrCount; a++) {
    const f = attrFields[a]!;
    const kind = kinds[f]!;
    if (kind === KIND_NULL) continue;
    switch (attrs[a]) {
      case ATTR_STRING:
        if (kind === KIND_STRING) {
          if (valueLength[f]! > limits.maxStringLength) return false;
        } else if (kind === KIND_NUMBER && Number.isFinite(numbers[f]!)) {
          numberTexts[f] = String(numbers[f]!);
          kinds[f] = KIND_NUMBER_TEXT;
        } else return false;
        break;
      case ATTR_NUMBER:
        if (kind !== KIND_NUMBER || !Number.isFinite(numbers[f]!)) return false;
        break;
      case ATTR_INTEGER:
        if (kind !== KIND_NUMBER || !Number.isInteger(numbers[f]!)) return false;
        break;
      case ATTR_BOOLEAN:
        if (kind !== KIND_TRUE && kind !== KIND_FALSE) return false;
        break;
      default:
        break;
    }
  }
  const required = typed.required;
  for (let r = 0; r < required.length; r++) if (kinds[required[r]!] === KIND_NULL) return false;

  beginRecord(w, type, time);
  if (numericKey === undefined) w.str16Ascii(b, valueStart[keyAt]!, valueLength[keyAt]!);
  else w.str16(numericKey);
  const countAt = beginAttrs(w);
  const names = typed.names;
  const nameEnds = typed.nameEnds;
  let from = 0;
  for (let a = 0; a < attrCount; a++) {
    const to = nameEnds[a]!;
    if (attrs[a] === ATTR_DROP) continue;
    w.copy(names, from, to);
    from = to;
    const f = attrFields[a]!;
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
  endRecord(w, countAt, typed.kept);
  return true;
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

/** Whether the name is all digits, which `JSON.parse` may put before the other names. */
function isArrayIndex(name: string): boolean {
  if (name.length === 0) return false;
  for (let k = 0; k < name.length; k++) {
    const c = name.charCodeAt(k);
    if (c < 0x30 || c > 0x39) return false;
  }
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
    // Name: no escape, no control character (its layout judges the rest: see makeLayout).
    const from = i + 1;
    const j = closingQuote(b, from, end);
    if (j < 0) return -1;
    nameStart[n] = from;
    nameLength[n] = j - from;
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
