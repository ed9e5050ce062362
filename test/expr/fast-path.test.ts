import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compileExpression } from '../../src/expr/index.js';
import { interpreterProgram } from '../../src/expr/expression.js';
import { fastClosure, Unhandled } from '../../src/expr/fast.js';

// The fast path must never answer differently from the CEL interpreter: wherever it returns a
// value, the interpreter returns the same value; everywhere else it hands over (Unhandled).

const value = fc.oneof(
  fc.integer({ min: -5, max: 5 }),
  fc.double({ noDefaultInfinity: false }),
  fc.constantFrom(0, -0, NaN, 1.5, 2 ** 53, 2 ** 60),
  fc.bigInt({ min: -(2n ** 64n), max: 2n ** 64n }),
  fc.constantFrom(0n, 1n, 2n, 2n ** 63n - 1n, -(2n ** 63n)),
  fc.constantFrom('a', 'b', '', 'é', '1'),
  fc.boolean(),
  fc.constant(null),
  fc.constant(undefined),
  fc.constant({ a: 1 }),
  fc.constant([1, 2]),
  fc.constant(new Map([['a', 1]])),
);

const attrs = fc.record({ a: value, b: value, c: value }, { requiredKeys: [] });
const event = fc.record({ type: fc.constantFrom('login', 'payment'), time: fc.integer({ min: 0, max: 10_000 }), key: fc.constantFrom('u1', 'u2'), attrs });
const context = fc.record({ event, matched: fc.record({ first: fc.array(event, { maxLength: 2 }) }) });

const leaf = fc.constantFrom(
  'event.attrs.a', 'event.attrs.b', 'event.attrs.c', 'event.attrs.missing', 'event.type', 'event.time', 'event.key',
  'matched.first[0].attrs.a', 'matched.first[1].attrs.b', 'event["attrs"]["a"]', 'matched.first.size()', 'event.attrs.size()',
  '1', '0', '-2', '2.5', '-0.5', '"a"', '"login"', 'true', 'false', 'null', '9223372036854775807', '[1, "a", 2.5]',
);
const expr: fc.Arbitrary<string> = fc.letrec((tie) => ({
  e: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    leaf,
    fc.tuple(tie('e'), fc.constantFrom('==', '!=', '<', '<=', '>', '>=', '+', '-', '*', '/', '&&', '||', 'in'), tie('e')).map(([a, op, b]) => `(${a} ${op} ${b})`),
    tie('e').map((a) => `!(${a})`),
    tie('e').map((a) => `-(${a})`),
    fc.tuple(tie('e'), tie('e'), tie('e')).map(([c, t, f]) => `(${c} ? ${t} : ${f})`),
    fc.constantFrom('a', 'b', 'missing').map((f) => `has(event.attrs.${f})`),
  ),
})).e as fc.Arbitrary<string>;

function outcome(fn: () => unknown): { ok: true; value: unknown } | { ok: false; error: unknown } {
  try {
    return { ok: true, value: fn() };
  } catch (error: unknown) {
    return { ok: false, error };
  }
}

describe('CEL fast path', () => {
  it('property: where the fast path answers, the interpreter gives the same answer', () => {
    let answered = 0;
    let total = 0;
    fc.assert(
      fc.property(expr, context, (source, ctx) => {
        let program: ReturnType<typeof interpreterProgram>;
        try {
          program = interpreterProgram(source, 'pattern');
        } catch {
          return; // not an expression the parser takes
        }
        if (!(program.check() as { valid: boolean }).valid) return; // nor one the type checker takes (compileExpression refuses these)
        const fast = fastClosure(program.ast);
        if (fast === undefined) return;
        total++;
        const f = outcome(() => fast(ctx));
        if (!f.ok) {
          expect(f.error, `${source}: the fast path may only hand over, not fail`).toBeInstanceOf(Unhandled);
          return;
        }
        answered++;
        const i = outcome(() => program(ctx));
        expect(i.ok, `${source} on ${String(JSON.stringify(ctx, (_k, v: unknown) => (typeof v === 'bigint' ? `${v}n` : v)))}: interpreter failed (${i.ok ? '' : String(i.error)}) where the fast path gave ${String(f.value)}`).toBe(true);
        if (i.ok) expect(Object.is(f.value, i.value) || (typeof f.value === 'object' && JSON.stringify(f.value, (_k, v: unknown) => (typeof v === 'bigint' ? `${v}n` : v)) === JSON.stringify(i.value, (_k, v: unknown) => (typeof v === 'bigint' ? `${v}n` : v))), source).toBe(true);
      }),
      { numRuns: 20_000, seed: 42 },
    );
    // Not vacuous: most generated expressions are translated and answered on the fast path.
    expect(total).toBeGreaterThan(10_000);
    expect(answered / total).toBeGreaterThan(0.2);
  });

  it('compiled expressions give the interpreter\'s value and its error message, fast path or not', () => {
    const sum = compileExpression('event.attrs.amount > matched.first[0].attrs.amount + 5', 'pattern', '/where');
    const ctx = (amount: unknown, first: unknown) => ({ event: { type: 'transfer', time: 0, key: 'u', attrs: { amount } }, matched: { first: [{ type: 'transfer', time: 0, key: 'u', attrs: { amount: first } }] } });
    expect(sum.evaluate(ctx(20, 10))).toBe(true);
    expect(sum.evaluate(ctx(15, 10))).toBe(false);
    expect(() => sum.evaluate(ctx('20', 10))).toThrow(/no such overload/);
    expect(() => sum.evaluate({ event: { attrs: {} }, matched: { first: [] } })).toThrow(/No such key/);
    const eq = compileExpression('event.attrs.id == matched.first[0].attrs.id', 'pattern', '/where');
    expect(eq.evaluate({ event: { attrs: { id: 'o1' } }, matched: { first: [{ attrs: { id: 'o2' } }] } })).toBe(false);
    expect(eq.evaluate({ event: { attrs: { id: 'o1' } }, matched: { first: [{ attrs: { id: 'o1' } }] } })).toBe(true);
    expect(eq.evaluate({ event: { attrs: { id: 1 } }, matched: { first: [{ attrs: { id: 1n } }] } })).toBe(true);
    // int with double is a double, so it mixes with ints again (it was typed int and failed at run time)
    expect(compileExpression('(1 + -0.5) / matched.first.size()', 'pattern', '/where').evaluate(ctx(1, 1))).toBe(0.5);
    // Outside the subset (a comprehension macro): the interpreter alone.
    const exists = compileExpression('matched.first.exists(e, e.attrs.amount > 5)', 'pattern', '/where');
    expect(exists.evaluate(ctx(1, 10))).toBe(true);
  });
});
