import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { compileRule, validateRuleDocument } from '../../src/definitions/index.js';
import { CepNfa } from '../../src/engine/internal/cep/index.js';
import { DefinitionError } from '../../src/errors/index.js';
import { defaultCatalog } from '../../src/runtime/default-catalog.js';
import { cleanup } from '../helpers/system.js';
import { ev, openRules, summary } from './harness.js';

afterEach(cleanup);

const sequenceRule = (pattern: Array<Record<string, unknown>>, extra: Record<string, unknown> = {}) => ({
  id: 'seq',
  key: ['user_id'],
  ordering: 'arrival',
  condition: { sequence: { pattern, ...extra } },
});
const login = { eventTypes: ['login'] };

describe('sequence patterns the engine cannot compile are refused with their path', () => {
  it.each<[string, Array<Record<string, unknown>>, string]>([
    ['greedy on a stage that takes one event', [{ name: 'a', ...login, greedy: true }], '/condition/sequence/pattern/0/greedy'],
    ['greedy with inner allowCombinations', [{ name: 'a', ...login, oneOrMore: true, greedy: true, inner: 'allowCombinations' }, { name: 'b', ...login }], '/condition/sequence/pattern/0/greedy'],
    ['an optional stage after a greedy one', [{ name: 'a', ...login, oneOrMore: true, greedy: true }, { name: 'b', ...login, optional: true }, { name: 'c', ...login }], '/condition/sequence/pattern/1/optional'],
    ['a negation after an optional stage', [{ name: 'a', ...login }, { name: 'b', ...login, optional: true }, { name: 'c', ...login, contiguity: 'notNext' }, { name: 'd', ...login }], '/condition/sequence/pattern/2/contiguity'],
    ['a reserved stage name', [{ name: 'constructor', ...login }], '/condition/sequence/pattern/0/name'],
  ])('%s', (_name, pattern, path) => {
    let error: DefinitionError | undefined;
    try {
      validateRuleDocument(sequenceRule(pattern), defaultCatalog);
    } catch (err: unknown) {
      error = err as DefinitionError;
    }
    expect(error).toBeInstanceOf(DefinitionError);
    expect(error!.code).toBe('PRT_DEF_INVALID');
    expect((error!.details ?? []).map((d) => d.path)).toContain(path);
  });

  it('such a rule is refused by the API (it used to be accepted and stop the engine when started); a valid greedy rule runs', async () => {
    const rs = await openRules();
    const refused = await rs.app.inject({ method: 'POST', url: '/v1/rules', payload: { ...sequenceRule([{ name: 'a', ...login, greedy: true }]), id: 'greedy_one' } });
    expect(refused.statusCode, refused.body).toBe(400);
    expect(refused.json()).toMatchObject({ code: 'PRT_DEF_INVALID', path: '/condition/sequence/pattern/0/greedy' });
    await rs.addRule(sequenceRule([{ name: 'fails', ...login, where: 'event.attrs.success == false', oneOrMore: true, greedy: true, inner: 'consecutive' }, { name: 'ok', ...login, where: 'event.attrs.success' }]));
    await rs.send(ev('login', 'u1', 0, { success: false }), ev('login', 'u1', 1000, { success: false }), ev('login', 'u1', 2000, { success: true }));
    expect(rs.system.engine.stats().running).toBe(true);
    const m = (fails: number[]) => ({ rule: 'seq', version: 1, key: { user_id: 'u1' }, outcome: 'match', trigger: 'event', at: 2000, matched: { fails, ok: [2000] } });
    expect((await rs.decisions('seq')).map(summary)).toEqual([m([0, 1000]), m([1000])]);
  });
});

describe('every sequence rule validation accepts compiles to an engine NFA', () => {
  it('property: accepted ⇒ new CepNfa(pattern) does not throw', () => {
    const stage = fc.record(
      {
        contiguity: fc.constantFrom('next', 'followedBy', 'followedByAny', 'notNext', 'notFollowedBy'),
        times: fc.oneof(fc.constant(1), fc.constant(3), fc.constant({ min: 1, max: 1 }), fc.constant({ min: 2, max: 4 })),
        oneOrMore: fc.boolean(),
        optional: fc.boolean(),
        greedy: fc.boolean(),
        inner: fc.constantFrom('relaxed', 'consecutive', 'allowCombinations'),
        until: fc.constant('event.attrs.success'),
      },
      { requiredKeys: [] },
    );
    const doc = fc.record({
      stages: fc.array(stage, { minLength: 1, maxLength: 4 }),
      within: fc.option(fc.constant('1m'), { nil: undefined }),
      on: fc.constantFrom('match', 'timeout'),
    });
    let accepted = 0;
    fc.assert(
      fc.property(doc, ({ stages, within, on }) => {
        const rule = {
          id: 'seq',
          key: ['user_id'],
          condition: { sequence: { pattern: stages.map((s, i) => ({ name: `s${i}`, ...login, ...s })), ...(within === undefined ? {} : { within }) }, on },
        };
        let spec;
        try {
          spec = compileRule(rule, 1, defaultCatalog);
        } catch (err: unknown) {
          if (err instanceof DefinitionError) return;
          throw err;
        }
        accepted++;
        for (const s of spec.sequences) new CepNfa(s.pattern);
      }),
      { numRuns: 3_000 },
    );
    expect(accepted).toBeGreaterThan(50);
  });
});

describe('a rule that no event could evaluate is refused', () => {
  it('an expression-only condition needs a trigger; with one it is accepted and evaluated', async () => {
    const doc = { id: 'big_transfer', key: ['user_id'], ordering: 'arrival', condition: { expr: 'event.attrs.amount > 100' } };
    let error: DefinitionError | undefined;
    try {
      validateRuleDocument(doc, defaultCatalog);
    } catch (err: unknown) {
      error = err as DefinitionError;
    }
    expect(error).toBeInstanceOf(DefinitionError);
    expect((error!.details ?? []).map((d) => d.path)).toEqual(['/trigger']);
    const rs = await openRules();
    await rs.addRule({ ...doc, trigger: { eventTypes: ['transfer'] } });
    await rs.send(ev('transfer', 'u1', 0, { amount: 50, to_account: 'a' }), ev('transfer', 'u1', 1000, { amount: 500, to_account: 'a' }));
    expect((await rs.decisions('big_transfer')).map((d) => summary(d).at)).toEqual([1000]);
  });
});
