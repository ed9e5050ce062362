import fc from 'fast-check';
import { Packr } from 'msgpackr';
import { describe, expect, it } from 'vitest';
import { attributesRead, decodeRecord, decodeRecordProjected, encodeRecord, type DefinitionSet, type LogRecord, type StatisticTagSpec } from '../../src/engine/index.js';

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

  it('decodes only the attributes a projection keeps, stepping over the others whatever their kind and length', () => {
    fc.assert(
      fc.property(record, fc.func(fc.oneof(fc.constant(undefined), fc.uniqueArray(name, { maxLength: 6 }))), fc.integer({ min: 0, max: 3 }), (r, pick, extra) => {
        const names = Object.keys(r.attrs);
        // Keep some of the record's own names (and names it does not have), all, or none.
        const chosen = pick(r.type);
        const keep = chosen === undefined ? undefined : new Set([...chosen, ...names.filter((_, i) => i % 4 === extra)]);
        const back = decodeRecordProjected(encodeRecord(r), () => keep);
        expect([back.type, back.time, back.key]).toStrictEqual([r.type, r.time, r.key]);
        const kept = keep === undefined ? names : names.filter((n) => keep.has(n));
        expect(Object.keys(back.attrs)).toStrictEqual(kept);
        for (const n of kept) expect(Object.is(back.attrs[n], r.attrs[n])).toBe(true);
      }),
      { numRuns: 1000 },
    );
  });

  it('projects by the definitions online: a rule reading a type keeps all of it, tags keep their field and filter names', () => {
    const tag = (id: string, eventTypes: string[], attrInputs: StatisticTagSpec['attrInputs']): StatisticTagSpec =>
      ({ kind: 'statistic', id, version: 1, stateId: id, eventTypes, filter: null, field: null, attrInputs, aggregate: 'count', window: { kind: 'lifetime' }, maxDistinct: 10 }) as StatisticTagSpec;
    const set = {
      revision: 3,
      tags: [tag('a', ['pv', 'buy'], ['price']), tag('b', ['buy'], ['qty', 'price']), tag('c', ['fav'], '*'), tag('d', ['cart'], undefined)],
      rules: [{ eventTypes: ['login'] }],
    } as unknown as DefinitionSet;
    const project = attributesRead(set);
    expect([...project('pv')!]).toEqual(['price']);
    expect([...project('buy')!].sort()).toEqual(['price', 'qty']);
    expect(project('fav')).toBeUndefined();
    expect(project('cart')).toBeUndefined();
    expect(project('login')).toBeUndefined();
    expect(project('page_view')!.size).toBe(0);
    expect(project('$mark')).toBeUndefined();
    const r: LogRecord = { type: 'buy', time: 5, key: 'u1', attrs: { item: 'i1', price: 12.5, qty: 2, note: 'x'.repeat(300) } };
    expect(decodeRecordProjected(encodeRecord(r), project).attrs).toStrictEqual({ price: 12.5, qty: 2 });
    expect(decodeRecordProjected(encodeRecord({ ...r, type: 'pv' }), project).attrs).toStrictEqual({ price: 12.5 });
    expect(decodeRecordProjected(encodeRecord({ ...r, type: 'other' }), project).attrs).toStrictEqual({});
    expect(decodeRecordProjected(encodeRecord({ ...r, type: 'login' }), project).attrs).toStrictEqual(r.attrs);
  });
});
