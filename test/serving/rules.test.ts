import { readFileSync } from 'node:fs';
import { Ajv } from 'ajv';
import { afterEach, describe, expect, it } from 'vitest';
import { ruleDocumentSchema, validateRuleDocument } from '../../src/definitions/index.js';
import { PortraitError } from '../../src/errors/index.js';
import { defaultCatalog } from '../../src/runtime/default-catalog.js';
import { cleanup, openTestApp } from '../helpers/system.js';

afterEach(cleanup);

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any -- parsed HTTP bodies and schema walking

/** A rule using every part of the document: each field can be taken out in turn. */
const full: Json = {
  id: 'big_spender',
  description: 'spends a lot after a failed login',
  owner: 'risk',
  labels: { team: 'risk' },
  version: 1,
  key: ['user_id'],
  trigger: { eventTypes: ['transfer'] },
  condition: {
    all: [
      { aggregate: { fn: 'sum', field: 'amount', eventTypes: ['transfer'], filter: 'attrs.amount > 0.0', window: { type: 'sliding', size: '10m', slide: '1m' } }, op: '>=', value: 5000 },
      {
        sequence: { pattern: [{ name: 'fail', eventTypes: ['login'], where: 'event.attrs.success == false' }, { name: 'move', eventTypes: ['transfer'] }], within: '30m', skip: 'skipPastLastEvent' },
        on: 'match',
      },
    ],
  },
  ordering: 'arrival',
  time: 'event',
  outputs: { setTag: { id: 'big_spender_flag', value: true } },
  limits: { maxPartialMatches: 100, stateTtl: '1h' },
};

/** The validator's problems with a document: undefined when it accepts it. */
function validatorProblems(doc: unknown): Array<{ path: string; message: string }> | undefined {
  try {
    validateRuleDocument(doc, defaultCatalog);
    return undefined;
  } catch (err: unknown) {
    if (!(err instanceof PortraitError)) throw err;
    return [...(err.details ?? [{ path: err.path ?? '', message: err.message }])];
  }
}

function at(doc: Json, path: ReadonlyArray<string | number>): Json {
  return path.reduce<Json>((node, step) => node[step] as Json, doc);
}

describe('GET /v1/schemas/rule-definition.json', () => {
  it('serves the JSON Schema of rule documents: it accepts valid rules and requires what the validator requires', async () => {
    const { app } = await openTestApp();
    const res = await app.inject({ method: 'GET', url: '/v1/schemas/rule-definition.json' });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toContain('application/json');
    const schema = res.json() as Json;
    expect(schema).toEqual(JSON.parse(JSON.stringify(ruleDocumentSchema)));
    expect(schema).toMatchObject({ $schema: 'http://json-schema.org/draft-07/schema#', type: 'object', additionalProperties: false });
    const check = new Ajv({ strict: false, allErrors: true }).compile(schema);

    // Valid rules: the full one, and every rule and condition docs/rules.md shows.
    expect(validatorProblems(full)).toBeUndefined();
    expect(check(full), JSON.stringify(check.errors)).toBe(true);
    const docs = readFileSync(new URL('../../docs/rules.md', import.meta.url), 'utf8');
    let examples = 0;
    for (const [, block] of docs.matchAll(/```json\n([\s\S]*?)\n```/g)) {
      let doc: Json;
      try {
        doc = JSON.parse(block!) as Json;
      } catch {
        continue; // the decision example elides fields with …
      }
      const rule = 'condition' in doc ? doc : { id: 'snippet', key: ['user_id'], condition: doc };
      expect(check(rule), `${block}\n${JSON.stringify(check.errors)}`).toBe(true);
      examples++;
    }
    expect(examples).toBeGreaterThanOrEqual(8);
    // Invalid ones are refused by both.
    for (const bad of [{ ...full, colour: 'red' }, { ...full, key: [] }, { ...full, ordering: 'sometimes' }, { ...full, limits: { stateTtl: '-5m' } }]) {
      expect(check(bad), JSON.stringify(bad)).toBe(false);
      expect(validatorProblems(bad), JSON.stringify(bad)).toBeDefined();
    }

    // Every object of the document: the schema's required fields are the ones the validator reports
    // as "is required" when missing, and a field the schema leaves optional the validator accepts missing.
    const aggregate = (schema.definitions.condition.oneOf as Json[]).find((s) => s.required.includes('aggregate'))!;
    const sequence = (schema.definitions.condition.oneOf as Json[]).find((s) => s.required.includes('sequence'))!;
    const objects: Array<[string, Json, Array<string | number>, string[]]> = [
      ['rule', schema, [], []],
      ['trigger', schema.properties.trigger, ['trigger'], []],
      // `value` and `expr` exclude each other; the full rule has `value`.
      ['outputs.setTag', schema.properties.outputs.properties.setTag, ['outputs', 'setTag'], ['expr']],
      ['limits', schema.properties.limits, ['limits'], []],
      // The node's kind is the key naming it; taking it out leaves no condition to check the others against.
      ['aggregate condition', aggregate, ['condition', 'all', 0], ['aggregate']],
      // `field` is required by the validator for sum, avg, min and max, which the schema leaves to it.
      ['aggregate', aggregate.properties.aggregate, ['condition', 'all', 0, 'aggregate'], ['field']],
      ['sequence condition', sequence, ['condition', 'all', 1], ['sequence']],
      ['sequence', sequence.properties.sequence, ['condition', 'all', 1, 'sequence'], []],
      // Quantifiers and contiguity constrain each other (test/rules/validation.test.ts); the full rule's stages use none.
      ['pattern stage', sequence.properties.sequence.properties.pattern.items, ['condition', 'all', 1, 'sequence', 'pattern', 0], ['contiguity', 'times', 'oneOrMore', 'optional', 'greedy', 'inner', 'until']],
    ];
    let required = 0;
    for (const [name, part, path, skip] of objects) {
      const unused = Object.keys(part.properties as Json).filter((p) => part.properties[p].readOnly !== true && !(p in at(full, path)));
      expect(unused, `${name}: properties of the schema the full rule does not use`).toEqual(skip.filter((p) => !(p in at(full, path))));
      for (const field of Object.keys(part.properties as Json)) {
        if (skip.includes(field) || part.properties[field].readOnly === true) continue;
        const doc = structuredClone(full);
        delete at(doc, path)[field];
        const fieldPath = `/${[...path, field].join('/')}`;
        const problems = validatorProblems(doc);
        if ((part.required as string[] | undefined)?.includes(field)) {
          required++;
          expect(check(doc), `${fieldPath} is required by the schema`).toBe(false);
          expect(problems, `${fieldPath} is required by the validator`).toContainEqual({ path: fieldPath, message: 'is required' });
        } else {
          expect(check(doc), `${fieldPath} is optional in the schema`).toBe(true);
          expect(problems, `${fieldPath} is optional for the validator`).toBeUndefined();
        }
      }
    }
    expect(required).toBe(13);
  });
});
