import { isAscii } from 'node:buffer';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { BinaryWriter, decodeRecord, encodeRecord } from '../../src/engine/index.js';
import { demoCatalog, defaultEventLimits, type EventCatalog } from '../../src/ingest/index.js';
import { encodeFastLine } from '../../src/ingest/fast-line.js';
import { LineParser, type LineParserSetup } from '../../src/ingest/line-parser.js';

// The fast path of canonical NDJSON lines must never accept a line the full
// path (JSON.parse, validateEvent, encodeRecord) refuses, and must write the
// very bytes the full path writes. Lines are built from tokens as text, so
// number spellings, escapes, whitespace and odd names reach the scanner as a
// file would hold them; the fast path reads them as bytes (ASCII lines only,
// as a file's blocks that are all ASCII), placed inside a larger buffer.

/** The line's bytes inside a larger buffer, with junk around them; undefined when not ASCII. */
function asBytes(text: string): { bytes: Buffer; start: number; end: number } | undefined {
  const line = Buffer.from(text, 'utf8');
  if (!isAscii(line)) return undefined;
  const bytes = Buffer.concat([Buffer.from('{"x":1}\n'), line, Buffer.from('\n{"y":"z"}')]);
  return { bytes, start: 8, end: 8 + line.length };
}

const NOW = Date.UTC(2024, 0, 2);

const numberText = fc.oneof(
  fc.double({ noNaN: true, noDefaultInfinity: true }).map((d) => JSON.stringify(d)),
  fc.integer().map(String),
  fc.constantFrom('0', '-0', '-0.0', '0.1', '87.49', '1e5', '1E+2', '2.5e-3', '12.500', '00', '01', '1.', '.5', '+1', '0x10', 'Infinity', '-', '1e', '1e400', '123456789012345678', '9007199254740993', '0.30000000000000004', '1704067200035', '1704067200035.9', '0.0000000000000000000001', '1234567890.12345'),
);
const stringText = fc.oneof(
  fc.string({ maxLength: 12 }).map((s) => JSON.stringify(s)),
  fc.string({ unit: 'grapheme', maxLength: 8 }).map((s) => JSON.stringify(s)),
  fc.constantFrom('"plain"', '"with \\"quote"', '"tab\\there"', '"\\u0041"', '"raw\ttab"', '"héllo"', '"2024-01-01T10:00:00Z"', '"2024-01-01"', '"not a time"', '""', `"${'x'.repeat(5000)}"`),
);
const valueText = fc.oneof(
  { weight: 3, arbitrary: numberText },
  { weight: 3, arbitrary: stringText },
  { weight: 1, arbitrary: fc.constantFrom('true', 'false', 'null', 'tru', 'nul', '[]', '{}', '[1]', '{"a":1}') },
);
const TYPES = Object.keys(demoCatalog.types);
const typeValue = fc.oneof({ weight: 6, arbitrary: fc.constantFrom(...TYPES).map((t) => JSON.stringify(t)) }, { weight: 1, arbitrary: valueText });
const timeValue = fc.oneof(
  { weight: 4, arbitrary: fc.integer({ min: NOW - 86_400_000, max: NOW + 7_200_000 }).map(String) },
  { weight: 1, arbitrary: valueText },
);
const keyValue = fc.oneof({ weight: 4, arbitrary: fc.integer({ min: 0, max: 99 }).map((i) => `"u${i}"`) }, { weight: 1, arbitrary: valueText });
const FIELD_NAMES = [...new Set(Object.values(demoCatalog.types).flatMap((t) => Object.keys(t.fields)))];
const attrName = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom(...FIELD_NAMES) },
  { weight: 1, arbitrary: fc.constantFrom('extra', 'note', '', '7', '01', '__proto__', 'constructor', 'a\\"b', 'é', 'type', 'user_id', 'time') },
  { weight: 1, arbitrary: fc.string({ maxLength: 6 }) },
);
const ws = fc.constantFrom('', '', '', ' ', '  ', '\t', '\r');

/** A value of a declared field's type, spelled as a file might (the right type most of the time). */
function typedValue(type: string): fc.Arbitrary<string> {
  const right =
    type === 'number'
      ? fc.oneof(fc.double({ noNaN: true, noDefaultInfinity: true, min: -1e9, max: 1e9 }).map((d) => JSON.stringify(d)), fc.constantFrom('87.49', '-0', '1e3', '0.5', '12.500', '100'))
      : type === 'integer'
        ? fc.oneof(fc.integer().map(String), fc.constantFrom('1e3', '2.0', '-0'))
        : type === 'boolean'
          ? fc.constantFrom('true', 'false')
          : fc.oneof(fc.string({ maxLength: 10 }).map((x) => JSON.stringify(x)), fc.integer({ min: 0, max: 999_999 }).map((i) => `"i${i}"`), fc.integer({ min: 0, max: 999 }).map(String));
  return fc.oneof({ weight: 8, arbitrary: right }, { weight: 1, arbitrary: fc.constant('null') }, { weight: 1, arbitrary: valueText });
}

const TYPED: Record<string, fc.Arbitrary<string>> = Object.fromEntries(['string', 'number', 'integer', 'boolean'].map((t) => [t, typedValue(t)]));

/** An event of a declared type with its fields mostly right: what the fast path is for. */
const plausible = fc.oneof(
  ...TYPES.map((type) => {
    const fields = demoCatalog.types[type]!.fields;
    const names = Object.keys(fields);
    return fc.record({
      type: fc.constant(JSON.stringify(type)),
      time: fc.option(timeValue, { freq: 8 }),
      key: keyValue,
      attrs: fc
        .tuple(fc.tuple(...names.map((n) => fc.option(TYPED[fields[n]!]!.map((v) => [n, v] as [string, string]), { freq: 8 }))), fc.array(fc.tuple(attrName, valueText), { maxLength: 2 }))
        .map(([declared, extra]) => [...declared.filter((x): x is [string, string] => x !== null), ...extra]),
    });
  }),
);

const line = fc
  .record({
    event: fc.oneof(
      { weight: 3, arbitrary: plausible },
      {
        weight: 1,
        arbitrary: fc.record({
          type: fc.option(typeValue, { freq: 12 }),
          time: fc.option(timeValue, { freq: 4 }),
          key: fc.option(keyValue, { freq: 12 }),
          attrs: fc.array(fc.tuple(attrName, valueText), { maxLength: 8 }),
        }),
      },
    ),
    order: fc.integer({ min: 0, max: 1000 }),
    gaps: fc.array(ws, { minLength: 7, maxLength: 7 }),
    tail: fc.constantFrom('', '', '', '', '', '', ' ', 'x', ','),
  })
  .map(({ event: { type, time, key, attrs }, order, gaps, tail }) => {
    const fields: Array<[string, string]> = [];
    if (type !== null) fields.push(['type', type]);
    if (time !== null) fields.push(['time', time]);
    if (key !== null) fields.push(['user_id', key]);
    for (const [name, value] of attrs) fields.push([name.includes('"') ? name : JSON.stringify(name).slice(1, -1), value]);
    // Mostly in the usual order; sometimes rotated (the key or the type last).
    const at = order < 700 ? 0 : order % (fields.length + 1);
    const moved = fields.splice(0, Math.min(at, fields.length));
    fields.push(...moved);
    let g = 0;
    const gap = (): string => gaps[g++ % gaps.length]!;
    return `${gap()}{${gap()}${fields.map(([n, v]) => `"${n}"${gap()}:${gap()}${v}${gap()}`).join(`,${gap()}`)}}${gap()}${tail}`;
  });

function setupFor(catalog: EventCatalog, timeShiftMs = 0): LineParserSetup {
  return { catalog, limits: defaultEventLimits, now: NOW, timeShiftMs };
}

/** The full path's record of a line, or undefined when it refuses the line. */
function fullPath(setup: LineParserSetup, text: string): Uint8Array | undefined {
  try {
    const event = new LineParser(setup).parse(text, 1);
    return event === undefined ? undefined : encodeRecord(event);
  } catch {
    return undefined;
  }
}

const CATALOGS: Array<[string, EventCatalog]> = [
  ['keep', demoCatalog],
  ['drop', { ...demoCatalog, additionalFields: 'drop' }],
  ['reject', { ...demoCatalog, additionalFields: 'reject' }],
];

describe('fast path of canonical NDJSON lines', () => {
  for (const [mode, catalog] of CATALOGS) {
    it(`writes what the full path writes, and only for lines it accepts (undeclared fields: ${mode})`, () => {
      const w = new BinaryWriter(256);
      let fast = 0;
      let total = 0;
      for (const shift of [0, -3_600_000]) {
        const setup = setupFor(catalog, shift);
        fc.assert(
          fc.property(line, (text) => {
            const held = asBytes(text);
            if (held === undefined) return;
            total++;
            w.reset();
            const full = fullPath(setup, text);
            if (!encodeFastLine(held.bytes, held.start, held.end, setup, w)) {
              expect(w.pos).toBe(0);
              return;
            }
            fast++;
            expect(full).toBeDefined();
            expect(Buffer.from(w.written()).toString('hex')).toBe(Buffer.from(full!).toString('hex'));
          }),
          { numRuns: 2_500 },
        );
      }
      // The generator makes plenty of plain lines: the fast path must take a good share of them.
      expect(fast / total).toBeGreaterThan(0.05);
    });
  }

  it('takes the lines of a generated event file, and falls back on those it cannot take', () => {
    const setup = setupFor(demoCatalog);
    const w = new BinaryWriter(256);
    const plain = '{"type":"order_created","time":1704067200035,"user_id":"u42643","order_id":"o855","shop_id":"s2337","amount":87.49,"item_count":1,"coupon_id":null}';
    const held = asBytes(plain)!;
    expect(encodeFastLine(held.bytes, held.start, held.end, setup, w)).toBe(true);
    const event = decodeRecord(w.written());
    expect(event).toEqual({ type: 'order_created', time: 1704067200035, key: 'u42643', attrs: { order_id: 'o855', shop_id: 's2337', amount: 87.49, item_count: 1, coupon_id: null } });
    for (const other of [
      plain.replace('"o855"', '"o\\u0038"'), // an escape
      plain.replace('"s2337"', '{"id":"s2337"}'), // nesting: refused by the full path
      plain.replace('"item_count":1', '"item_count":1.5'), // not an integer: refused
      plain.replace('}', ',"amount":1}'), // a name twice: JSON.parse keeps the last
      plain.replace('"coupon_id"', '"7"'), // an array index: JSON.parse puts it first
    ]) {
      w.reset();
      const o = asBytes(other)!;
      expect(encodeFastLine(o.bytes, o.start, o.end, setup, w)).toBe(false);
      expect(w.pos).toBe(0);
    }
  });

  it('gives the record of the line through LineParser.encodeAscii, also for lines the fast path leaves', () => {
    const setup = setupFor(demoCatalog);
    const parser = new LineParser(setup);
    const w = new BinaryWriter(256);
    fc.assert(
      fc.property(line, (text) => {
        const held = asBytes(text);
        if (held === undefined) return;
        w.reset();
        let written: boolean | 'error';
        try {
          written = parser.encodeAscii(held.bytes, held.start, held.end, 1, w);
        } catch {
          written = 'error';
          expect(w.pos).toBe(0);
        }
        const full = fullPath(setup, text);
        if (written === true) expect(Buffer.from(w.written()).toString('hex')).toBe(Buffer.from(full!).toString('hex'));
        else expect(full).toBeUndefined();
      }),
      { numRuns: 2_000 },
    );
  });
});
