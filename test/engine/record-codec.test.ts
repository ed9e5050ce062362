import fc from 'fast-check';
import { Packr } from 'msgpackr';
import { describe, expect, it } from 'vitest';
import { decodeRecord, encodeRecord, type LogRecord } from '../../src/engine/index.js';

const scalar = fc.oneof(
  fc.double(),
  fc.integer(),
  fc.constantFrom(0, -0, Number.MAX_SAFE_INTEGER, -1.5e300),
  fc.string({ unit: 'grapheme', maxLength: 80 }),
  fc.string({ maxLength: 200 }),
  fc.boolean(),
  fc.constant(null),
);
const name = fc.oneof(fc.string({ maxLength: 70 }), fc.string({ unit: 'grapheme', maxLength: 10 }), fc.constant('__proto__'));
const record: fc.Arbitrary<LogRecord> = fc.record({
  type: fc.oneof(fc.constantFrom('payment', 'login', '$mark', '$source'), fc.string({ unit: 'grapheme', maxLength: 70 })),
  time: fc.oneof(fc.integer({ min: 0, max: 2 ** 45 }), fc.double()),
  key: fc.oneof(fc.string({ maxLength: 100 }), fc.string({ unit: 'grapheme', maxLength: 20 })),
  attrs: fc.dictionary(name, scalar, { maxKeys: 12 }),
});

/** Own enumerable entries in order, so `__proto__` as a name counts as data. */
function entries(r: LogRecord): unknown[] {
  return [r.type, r.time, r.key, Object.keys(r.attrs), Object.keys(r.attrs).map((k) => r.attrs[k])];
}

describe('log record codec', () => {
  it('gives back strings that share a slot of the decoder\'s string cache, each exactly, however they alternate', () => {
    // Same length, first, middle and last byte: one cache slot; they differ only elsewhere.
    const ids = ['u1a2b3', 'u9a8b3', 'u1a8b3', 'uXaYb3', 'u1a2b3'];
    // Kept in the cache up to 40 bytes (these collide too), built anew above.
    const long = ['y'.repeat(10) + '1' + 'y'.repeat(28), 'y'.repeat(10) + '2' + 'y'.repeat(28), 'x'.repeat(50) + '1', 'x'.repeat(50) + '2'];
    for (let round = 0; round < 3; round++) {
      for (const key of [...ids, ...long]) {
        const r: LogRecord = { type: 'login', time: 1, key, attrs: { [key]: key, other: `${key}-v` } };
        const back = decodeRecord(encodeRecord(r));
        expect(entries(back)).toStrictEqual(entries(r));
      }
    }
  });

  it('gives back every record with scalar attributes exactly: values, names, their order, -0 and NaN', () => {
    fc.assert(
      fc.property(record, (r) => {
        const bytes = encodeRecord(r);
        expect(bytes[0]).toBe(0x01);
        const back = decodeRecord(bytes);
        expect(entries(back)).toStrictEqual(entries(r));
        expect(Object.getPrototypeOf(back.attrs)).toBe(Object.prototype);
      }),
      { numRuns: 2_000 },
    );
  });

  it('keeps each encoded record intact while later ones are encoded (no shared buffer handed out twice)', () => {
    const records = fc.sample(record, 500);
    const encoded = records.map((r) => encodeRecord(r));
    encoded.forEach((bytes, i) => expect(entries(decodeRecord(bytes))).toStrictEqual(entries(records[i]!)));
  });

  it('writes a record with a non-scalar attribute as msgpack, and reads it back', () => {
    const r = { type: 'x', time: 1, key: 'k', attrs: { list: [1, 2], nested: { a: 'b' } } } as unknown as LogRecord;
    const bytes = encodeRecord(r);
    expect(bytes[0]).not.toBe(0x01);
    expect(decodeRecord(bytes)).toEqual(r);
  });

  it('reads records of logs written with msgpack before the binary form', () => {
    const packr = new Packr({ useRecords: false, moreTypes: false, int64AsType: 'number' });
    // (msgpackr itself renames an attribute `__proto__` when it decodes one.)
    fc.assert(
      fc.property(record.filter((r) => !Object.keys(r.attrs).includes('__proto__')), (r) => {
        const back = decodeRecord(packr.pack(r));
        expect(back.type).toBe(r.type);
        expect(back.key).toBe(r.key);
        expect(Object.keys(back.attrs)).toEqual(Object.keys(r.attrs));
      }),
      { numRuns: 300 },
    );
  });
});
