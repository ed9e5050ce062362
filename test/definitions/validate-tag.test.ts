import { describe, expect, it } from 'vitest';
import { compileTag, tagDocumentSchema, validateTagDocument, type TagDocument } from '../../src/definitions/index.js';
import { DefinitionError, type PortraitError } from '../../src/errors/index.js';
import { defaultCatalog } from '../../src/runtime/default-catalog.js';
import { Ajv } from 'ajv';

const catalog = defaultCatalog;
const strictCatalog = { ...defaultCatalog, additionalFields: 'reject' as const };

const spend = {
  id: 'spend_30d',
  kind: 'statistic',
  eventTypes: ['payment'],
  filter: 'attrs.success == true',
  aggregate: 'sum',
  field: 'amount',
  window: { type: 'sliding', size: '30d', slide: '1d' },
};

/** The error `validateTagDocument` throws for `doc`; fails when it accepts it. */
function problems(doc: unknown, cat = catalog): PortraitError {
  try {
    validateTagDocument(doc, cat);
  } catch (err: unknown) {
    expect(err).toBeInstanceOf(DefinitionError);
    return err as PortraitError;
  }
  expect.fail(`accepted ${JSON.stringify(doc)}`);
}

const paths = (err: PortraitError): string[] => (err.details ?? []).map((d) => d.path);

describe('validateTagDocument accepts', () => {
  it.each<[string, Record<string, unknown>]>([
    ['a sliding sum with a filter', spend],
    ['a tumbling count', { id: 'clicks_day', kind: 'statistic', eventTypes: ['click', 'page_view'], aggregate: 'count', window: { type: 'tumbling', size: '1d' } }],
    ['a lifetime first', { id: 'first_buy', kind: 'statistic', eventTypes: ['payment'], aggregate: 'first', window: { type: 'lifetime' } }],
    ['a distinct with maxDistinct and a ms duration', { id: 'devices', kind: 'statistic', eventTypes: ['login'], aggregate: 'distinct', field: 'device_id', maxDistinct: 50, window: { type: 'sliding', size: 3_600_000, slide: '1m' } }],
    ['a rule', { id: 'high_value', kind: 'rule', condition: 'tags.spend_30d > 10000.0 && attrs.age >= 25', owner: 'risk', labels: { domain: 'risk' } }],
  ])('%s', (_name, doc) => {
    const out = validateTagDocument(doc, catalog);
    expect(out.id).toBe(doc.id);
  });

  it('drops the read-only fields a client echoes back from a read', () => {
    const out = validateTagDocument({ ...spend, status: 'online', createdAt: 'x', updatedAt: 'y', version: 3 }, catalog) as unknown as Record<string, unknown>;
    expect(out).not.toHaveProperty('status');
    expect(out).not.toHaveProperty('createdAt');
    expect(out).not.toHaveProperty('updatedAt');
    expect(out.version).toBe(3);
  });
});

describe('validateTagDocument reports problems with JSON paths', () => {
  it('a bad window size -> PRT_DEF_INVALID at /window/size, naming the value', () => {
    const err = problems({ ...spend, window: { type: 'tumbling', size: '-5m' } });
    expect(err.code).toBe('PRT_DEF_INVALID');
    expect(err.path).toBe('/window/size');
    expect(paths(err)).toEqual(['/window/size']);
    expect(err.subject).toBe('spend_30d');
    expect(err.message).toContain('spend_30d');
  });

  it.each([
    [{ type: 'sliding', size: '1h' }, '/window/slide'],
    [{ type: 'tumbling' }, '/window/size'],
    [{ type: 'sliding', size: '0m', slide: '1m' }, '/window/size'],
    [{ type: 'sliding', size: '1h', slide: 0 }, '/window/slide'],
    [{ type: 'sliding', size: '1h', slide: '7m' }, '/window/size'],
    [{ type: 'sliding', size: '30d', slide: '1s' }, '/window/slide'],
    [{ type: 'hopping', size: '1h' }, '/window/type'],
    [{ type: 'tumbling', size: '1h', offset: '5m' }, '/window/offset'],
  ])('window %j -> %s', (window, path) => {
    const err = problems({ ...spend, window });
    expect(err.code).toBe('PRT_DEF_INVALID');
    expect(paths(err)).toContain(path);
  });

  it('an unknown event type -> /eventTypes/<index>, every one of them', () => {
    const err = problems({ ...spend, eventTypes: ['teleport', 'payment', 'warp'] });
    expect(err.code).toBe('PRT_DEF_INVALID');
    expect(err.path).toBe('/eventTypes/0');
    expect(paths(err)).toEqual(['/eventTypes/0', '/eventTypes/2']);
  });

  it('a missing field for sum -> /field; count needs none', () => {
    const { field: _field, ...noField } = spend;
    const err = problems(noField);
    expect(err.code).toBe('PRT_DEF_INVALID');
    expect(err.path).toBe('/field');
    for (const aggregate of ['avg', 'min', 'max', 'distinct', 'latest']) expect(problems({ ...noField, aggregate }).path).toBe('/field');
    expect(() => validateTagDocument({ ...noField, aggregate: 'count' }, catalog)).not.toThrow();
  });

  it('a numeric aggregate over a field that is not a number -> /field', () => {
    expect(problems({ ...spend, field: 'method' }).path).toBe('/field');
  });

  it('an undeclared field when the catalog rejects undeclared fields -> /field', () => {
    expect(problems({ ...spend, field: 'amout' }, strictCatalog).path).toBe('/field');
    expect(() => validateTagDocument({ ...spend, field: 'amout' }, catalog)).not.toThrow();
  });

  it('a filter that does not compile -> PRT_DEF_EXPRESSION at /filter', () => {
    for (const filter of ['attrs.success ==', 'nosuchvar > 1', 'tags.x > 1']) {
      const err = problems({ ...spend, filter });
      expect(err.code).toBe('PRT_DEF_EXPRESSION');
      expect(err.path).toBe('/filter');
      expect(paths(err)).toEqual(['/filter']);
    }
  });

  it('a condition that does not compile -> PRT_DEF_EXPRESSION at /condition', () => {
    for (const condition of ['tags.a >', 'event.amount > 3', 'attrs.age >= 25 &&']) {
      const err = problems({ id: 'r', kind: 'rule', condition });
      expect(err.code).toBe('PRT_DEF_EXPRESSION');
      expect(err.path).toBe('/condition');
    }
  });

  it('properties of the other kind are named by their own path', () => {
    const rule = problems({ id: 'r', kind: 'rule', condition: 'true', window: { type: 'lifetime' }, aggregate: 'count' });
    expect(rule.code).toBe('PRT_DEF_INVALID');
    expect(paths(rule).sort()).toEqual(['/aggregate', '/window']);
    const stat = problems({ ...spend, condition: 'true' });
    expect(paths(stat)).toEqual(['/condition']);
    const lifetime = problems({ ...spend, window: { type: 'lifetime', size: '1h' } });
    expect(paths(lifetime)).toEqual(['/window/size']);
    const tumbling = problems({ ...spend, window: { type: 'tumbling', size: '1h', slide: '1m' } });
    expect(paths(tumbling)).toEqual(['/window/slide']);
  });

  it('missing required properties and unknown ones', () => {
    expect(paths(problems({ id: 'x', kind: 'statistic' })).sort()).toEqual(['/aggregate', '/eventTypes', '/window']);
    expect(paths(problems({ kind: 'rule', condition: 'true' }))).toEqual(['/id']);
    expect(paths(problems({ id: 'r', kind: 'rule' }))).toEqual(['/condition']);
    expect(paths(problems({ ...spend, colour: 'red' }))).toEqual(['/colour']);
    expect(paths(problems({ ...spend, id: 'Spend-30d' }))).toEqual(['/id']);
    expect(paths(problems({ ...spend, kind: 'model' }))).toContain('/kind');
    expect(problems(null).code).toBe('PRT_DEF_INVALID');
    expect(problems([spend]).code).toBe('PRT_DEF_INVALID');
  });

  it('reports every problem of a document in one pass (allErrors), schema and catalog alike', () => {
    const err = problems({
      id: 'bad_tag',
      kind: 'statistic',
      eventTypes: ['teleport'],
      aggregate: 'sum',
      filter: 'attrs.amount >',
      window: { type: 'tumbling', size: '-5m' },
      colour: 'red',
    });
    expect(err.code).toBe('PRT_DEF_INVALID');
    expect(paths(err).sort()).toEqual(['/colour', '/eventTypes/0', '/field', '/filter', '/window/size']);
    expect(err.message).toContain('4 more problems');
  });

  it('keeps the CEL problem in the details when there are others, as PRT_DEF_INVALID', () => {
    const err = problems({ ...spend, eventTypes: ['teleport'], filter: 'attrs.x >' });
    expect(err.code).toBe('PRT_DEF_INVALID');
    expect(paths(err).sort()).toEqual(['/eventTypes/0', '/filter']);
  });
});

describe('compileTag', () => {
  it('gives the same stateId when only descriptive fields change, another when the computation does', () => {
    const doc = validateTagDocument(spend, catalog);
    const a = compileTag(doc, 1).spec;
    const b = compileTag({ ...doc, description: 'new words', owner: 'someone' } as TagDocument, 2).spec;
    const c = compileTag({ ...doc, filter: 'attrs.success == false' } as TagDocument, 3).spec;
    const d = compileTag({ ...doc, window: { type: 'sliding', size: '7d', slide: '1d' } } as TagDocument, 4).spec;
    expect(b.stateId).toBe(a.stateId);
    expect(c.stateId).not.toBe(a.stateId);
    expect(d.stateId).not.toBe(a.stateId);
    expect(Object.isFrozen(a)).toBe(true);
  });

  it('converts durations to milliseconds', () => {
    const spec = compileTag(validateTagDocument(spend, catalog), 1).spec;
    expect(spec.kind === 'statistic' && spec.window).toEqual({ kind: 'sliding', sizeMs: 30 * 86_400_000, slideMs: 86_400_000 });
  });

  it('lists the tags and attributes a rule reads', () => {
    const spec = compileTag(validateTagDocument({ id: 'hv', kind: 'rule', condition: 'tags.spend_30d > 10.0 && attrs.age >= 25 && tags.hv2 == true' }, catalog), 1).spec;
    expect(spec.kind === 'rule' && [...spec.tagInputs].sort()).toEqual(['hv2', 'spend_30d']);
    expect(spec.kind === 'rule' && spec.attrInputs).toEqual(['age']);
  });

  it('lists the event attributes a statistic tag reads: its field and those its filter names, or any when the filter computes a name', () => {
    const inputs = (d: TagDocument): unknown => {
      const spec = compileTag(validateTagDocument(d, catalog), 1).spec;
      return spec.kind === 'statistic' ? spec.attrInputs : undefined;
    };
    const { filter: _, ...plain } = spend;
    expect(inputs(plain as TagDocument)).toEqual(['amount']);
    expect(inputs({ ...spend, filter: 'attrs.success == false && attrs.channel == "app"' } as TagDocument)).toEqual(['amount', 'success', 'channel']);
    expect(inputs({ ...spend, filter: 'attrs["chan" + "nel"] == "app"' } as TagDocument)).toBe('*');
    expect(inputs({ ...spend, filter: 'size(attrs) > 2' } as TagDocument)).toBe('*');
    expect(inputs({ id: 'n', kind: 'statistic', eventTypes: ['login'], aggregate: 'count', window: { type: 'lifetime' } })).toEqual([]);
  });
});

describe('the published JSON Schema', () => {
  it('is a valid draft-07 schema that accepts a valid document', () => {
    const ajv = new Ajv({ strict: false });
    const check = ajv.compile(tagDocumentSchema);
    expect(check(spend)).toBe(true);
    expect(check({ ...spend, window: { type: 'tumbling', size: '-5m' } })).toBe(false);
  });
});

describe('names that are Object.prototype members', () => {
  it('are not declared event types or fields', () => {
    const err = problems({ ...spend, eventTypes: ['constructor', 'toString'], field: 'amount' });
    expect(err.code).toBe('PRT_DEF_INVALID');
    expect(paths(err)).toEqual(['/eventTypes/0', '/eventTypes/1']);
    expect(problems({ ...spend, field: 'constructor' }, strictCatalog).path).toBe('/field');
  });
});
