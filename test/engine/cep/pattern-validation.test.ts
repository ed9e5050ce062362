import { describe, expect, it } from 'vitest';
import { CepNfa, CepPatternError, normalizePattern, type CepPatternSpec, type CepStage } from '../../../src/engine/internal/cep/index.js';

// Flink's MalformedPatternException rules (Pattern.java, Quantifier.java, NFACompiler.java),
// reported as CepPatternError with a JSON pointer into the spec.

const is = (type: string) => (e: { type: string }) => e.type === type;
const stage = (name: string, extra: Partial<CepStage> = {}): CepStage => ({ name, condition: is(name), ...extra });

function errorOf(spec: CepPatternSpec): CepPatternError {
  try {
    new CepNfa(spec);
  } catch (err: unknown) {
    expect(err).toBeInstanceOf(CepPatternError);
    return err as CepPatternError;
  }
  throw new Error('expected the pattern to be rejected');
}

describe('pattern validation', () => {
  it.each<[string, CepPatternSpec, string]>([
    ['no stages', { stages: [] }, '/stages'],
    ['duplicate names', { stages: [stage('a'), stage('a')] }, '/stages/1/name'],
    ['reserved name', { stages: [stage('$end')] }, '/stages/0/name'],
    ['negation first', { stages: [stage('a', { kind: 'notNext' }), stage('b')] }, '/stages/0/kind'],
    ['notFollowedBy last without within', { stages: [stage('a'), stage('b', { kind: 'notFollowedBy' })] }, '/stages/1/kind'],
    ['negation after an optional stage', { stages: [stage('a'), stage('b', { optional: true }), stage('c', { kind: 'notNext' }), stage('d')] }, '/stages/2/kind'],
    ['quantifier on a negation', { stages: [stage('a'), stage('b', { kind: 'notFollowedBy', max: null }), stage('c')] }, '/stages/1/max'],
    ['until on a bounded stage', { stages: [stage('a', { min: 2, max: 3, until: is('x') })] }, '/stages/0/until'],
    ['greedy on a single stage', { stages: [stage('a'), stage('b', { greedy: true })] }, '/stages/1/greedy'],
    ['inner on a single stage', { stages: [stage('a'), stage('b', { inner: 'strict' })] }, '/stages/1/inner'],
    ['greedy with combinations', { stages: [stage('a', { max: null, greedy: true, inner: 'nondeterministic' })] }, '/stages/0/greedy'],
    ['optional after greedy', { stages: [stage('a', { max: null, greedy: true }), stage('b', { optional: true })] }, '/stages/1/optional'],
    ['max below min', { stages: [stage('a', { min: 3, max: 2 })] }, '/stages/0/max'],
    ['negative min', { stages: [stage('a', { min: -1 })] }, '/stages/0/min'],
    ['bad contiguity', { stages: [stage('a'), stage('b', { contiguity: 'loose' as never })] }, '/stages/1/contiguity'],
    ['skip to an unknown stage', { stages: [stage('a')], skip: { kind: 'skipToFirst', stage: 'zz' } }, '/skip/stage'],
    ['unknown skip', { stages: [stage('a')], skip: { kind: 'skipAll' } as never }, '/skip/kind'],
    ['negative window', { stages: [stage('a')], withinMs: -5 }, '/withinMs'],
    ['zero bound', { stages: [stage('a')], maxPartialMatches: 0 }, '/maxPartialMatches'],
  ])('rejects %s', (_what, spec, path) => {
    const err = errorOf(spec);
    expect(err.code).toBe('PRT_DEF_INVALID');
    expect(err.path).toBe(path);
    expect(err.message).toContain(path);
  });

  it('applies Flink defaults and shorthands', () => {
    const p = normalizePattern({
      stages: [stage('a', { contiguity: 'nondeterministic' }), stage('b', { min: 0, max: 2 }), stage('c', { min: 3 }), stage('d', { min: 2, max: null })],
    });
    expect(p.stages.map((s) => [s.name, s.contiguity, s.min, s.max, s.optional, s.inner])).toEqual([
      ['a', 'strict', 1, 1, false, 'relaxed'], // the first stage is always strict (Flink begin)
      ['b', 'relaxed', 1, 2, true, 'relaxed'], // times(0, 2) = times(1, 2).optional()
      ['c', 'relaxed', 3, 3, false, 'relaxed'], // times(3)
      ['d', 'relaxed', 2, Infinity, false, 'relaxed'], // timesOrMore(2)
    ]);
    expect(p.skip).toEqual({ kind: 'noSkip' });
    expect(p.maxPartialMatches).toBe(1000);
    expect(p.emitTimeouts).toBe(true);
    expect(Object.isFrozen(p) && Object.isFrozen(p.stages) && Object.isFrozen(p.stages[0])).toBe(true);
  });

  it('accepts a trailing notFollowedBy with a window, and a trailing notNext without one', () => {
    expect(() => new CepNfa({ stages: [stage('a'), stage('b', { kind: 'notFollowedBy' })], withinMs: 1000 })).not.toThrow();
    expect(() => new CepNfa({ stages: [stage('a'), stage('b', { kind: 'notNext' })] })).not.toThrow();
  });
});
