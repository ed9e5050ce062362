import fc from 'fast-check';
import { Packr } from 'msgpackr';
import { describe, expect, it } from 'vitest';
import type { Event } from '../../../src/engine/event.js';
import {
  CepNfa,
  type CepContiguity,
  type CepMatch,
  type CepPatternSpec,
  type CepSkipStrategy,
  type CepStage,
  type CepState,
  type CepTimeout,
} from '../../../src/engine/internal/cep/index.js';

// Property tests: a key's state survives a msgpack round trip (the engine's snapshot codec
// settings) at any point of a stream with identical results, and nextTimerAt tells exactly
// when advanceTime starts to matter.

const codec = new Packr({ useRecords: false, moreTypes: false });

type StageChoice = {
  type: 'a' | 'b' | 'c';
  contiguity: CepContiguity;
  quant: 'one' | 'optional' | 'times2' | 'range13' | 'oneOrMore' | 'zeroOrMore';
  inner: CepContiguity | 'default';
  greedy: boolean;
  negation: 'none' | 'notNext' | 'notFollowedBy';
  rising: boolean;
};

const stageArb: fc.Arbitrary<StageChoice> = fc.record({
  type: fc.constantFrom('a', 'b', 'c'),
  contiguity: fc.constantFrom<CepContiguity>('strict', 'relaxed', 'nondeterministic'),
  quant: fc.constantFrom('one', 'optional', 'times2', 'range13', 'oneOrMore', 'zeroOrMore'),
  inner: fc.constantFrom<CepContiguity | 'default'>('default', 'strict', 'relaxed', 'nondeterministic'),
  greedy: fc.boolean(),
  negation: fc.constantFrom('none', 'none', 'none', 'notNext', 'notFollowedBy'),
  rising: fc.boolean(),
});

const skipArb = fc.constantFrom<(names: string[]) => CepSkipStrategy>(
  () => ({ kind: 'noSkip' }),
  () => ({ kind: 'skipToNext' }),
  () => ({ kind: 'skipPastLastEvent' }),
  (names) => ({ kind: 'skipToFirst', stage: names[names.length - 1]! }),
  (names) => ({ kind: 'skipToLast', stage: names[0]! }),
);

const price = (e: Event) => e.attrs['price'] as number;

/** Turns random choices into a valid pattern, dropping the combinations Flink rejects. */
function buildPattern(choices: StageChoice[], withinMs: number, skip: (names: string[]) => CepSkipStrategy): CepPatternSpec {
  const stages: CepStage[] = [];
  let prevOptional = false;
  let prevGreedy = false;
  let needsWindow = false;
  choices.forEach((c, i) => {
    const name = `s${i}`;
    const type = c.type;
    // Iterative variant: each accepted event of this stage must not be cheaper than the previous one.
    const condition = c.rising
      ? (e: Event, ctx: { eventsFor(n: string): readonly Event[] }) => {
          if (e.type !== type) return false;
          const before = ctx.eventsFor(name);
          return before.length === 0 || price(e) >= price(before[before.length - 1]!);
        }
      : (e: Event) => e.type === type;
    if (i > 0 && c.negation !== 'none' && !prevOptional) {
      stages.push({ name, kind: c.negation, condition });
      if (c.negation === 'notFollowedBy' && i === choices.length - 1) needsWindow = true;
      prevOptional = false;
      prevGreedy = false;
      return;
    }
    const s: { -readonly [K in keyof CepStage]: CepStage[K] } = { name, condition, contiguity: c.contiguity };
    switch (c.quant) {
      case 'optional':
        s.optional = true;
        break;
      case 'times2':
        s.min = 2;
        s.max = 2;
        break;
      case 'range13':
        s.min = 1;
        s.max = 3;
        break;
      case 'oneOrMore':
        s.max = null;
        break;
      case 'zeroOrMore':
        s.max = null;
        s.optional = true;
        break;
      default:
        break;
    }
    const repeating = s.max === null || (s.max ?? 1) > 1;
    if (repeating && c.inner !== 'default') s.inner = c.inner;
    if (repeating && c.greedy && c.inner !== 'nondeterministic') s.greedy = true;
    if (s.optional === true && prevGreedy) delete s.optional;
    stages.push(s);
    prevOptional = s.optional === true;
    prevGreedy = s.greedy === true;
  });
  const names = stages.map((s) => s.name);
  return {
    stages,
    withinMs: needsWindow && withinMs === 0 ? 20 : withinMs,
    skip: skip(names),
    maxPartialMatches: 200,
  };
}

type Op = { kind: 'event'; type: 'a' | 'b' | 'c' | 'x'; price: number; dt: number } | { kind: 'tick'; dt: number };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 5, arbitrary: fc.record({ kind: fc.constant('event' as const), type: fc.constantFrom('a', 'b', 'c', 'x'), price: fc.integer({ min: 0, max: 3 }), dt: fc.integer({ min: 0, max: 6 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('tick' as const), dt: fc.integer({ min: 0, max: 25 }) }) },
);

interface Trace {
  matches: unknown[];
  timeouts: unknown[];
  dropped: number;
}

const describeMatch = (m: CepMatch) => ({
  events: Object.fromEntries(Object.entries(m.events).map(([k, v]) => [k, v.map((e) => e.attrs['label'])])),
  first: m.firstTimestamp,
  last: m.lastTimestamp,
});
const describeTimeout = (t: CepTimeout) => ({ ...describeMatch(t), at: t.timeoutTimestamp });

/** Runs the ops; `cut` (if set) round-trips the state through msgpack before op number `cut`. */
function execute(nfa: CepNfa, ops: Op[], cut: number | null): Trace {
  const trace: Trace = { matches: [], timeouts: [], dropped: 0 };
  let state: CepState | undefined;
  let now = 0;
  ops.forEach((op, i) => {
    if (i === cut) state = state === undefined ? undefined : (codec.unpack(codec.pack(state)) as CepState);
    now += op.dt;
    const step = op.kind === 'event' ? nfa.process(state, { type: op.type, time: now, key: 'k', attrs: { label: `e${i}`, price: op.price } }, now) : nfa.advanceTime(state, now);
    state = step.state;
    trace.matches.push(...step.matches.map(describeMatch));
    trace.timeouts.push(...step.timeouts.map(describeTimeout));
    trace.dropped += step.dropped;
    expect(nfa.isEmpty(state)).toBe(state === undefined);
  });
  return trace;
}

describe('CEP state properties', () => {
  it('a msgpack round trip of the state mid-stream gives identical results', () => {
    let matched = 0;
    let timedOut = 0;
    let restoredNonEmpty = 0;
    fc.assert(
      fc.property(
        fc.array(stageArb, { minLength: 1, maxLength: 3 }),
        fc.constantFrom(0, 0, 10, 30),
        skipArb,
        fc.array(opArb, { minLength: 1, maxLength: 30 }),
        fc.nat(),
        (choices, withinMs, skip, ops, cutSeed) => {
          const nfa = new CepNfa(buildPattern(choices, withinMs, skip));
          const cut = cutSeed % (ops.length + 1);
          const straight = execute(nfa, ops, null);
          const restored = execute(nfa, ops, cut);
          expect(restored).toEqual(straight);
          matched += straight.matches.length;
          timedOut += straight.timeouts.length;
          if (restored.matches.length + restored.timeouts.length > 0 && cut > 0) restoredNonEmpty++;
        },
      ),
      { numRuns: 400 },
    );
    // Guard against a vacuous property: the generated streams do produce output.
    expect(matched).toBeGreaterThan(100);
    expect(timedOut).toBeGreaterThan(10);
    expect(restoredNonEmpty).toBeGreaterThan(20);
  });

  it('nextTimerAt: advancing to just before it changes nothing, advancing to it changes the state', () => {
    fc.assert(
      fc.property(
        fc.array(stageArb, { minLength: 1, maxLength: 3 }),
        fc.constantFrom(10, 30),
        skipArb,
        fc.array(opArb, { minLength: 1, maxLength: 25 }),
        (choices, withinMs, skip, ops) => {
          const nfa = new CepNfa(buildPattern(choices, withinMs, skip));
          let state: CepState | undefined;
          let now = 0;
          ops.forEach((op, i) => {
            now += op.dt;
            state = (op.kind === 'event' ? nfa.process(state, { type: op.type, time: now, key: 'k', attrs: { label: `e${i}`, price: op.price } }, now) : nfa.advanceTime(state, now)).state;
            const at = nfa.nextTimerAt(state);
            if (at === Infinity) {
              expect(state === undefined || state.pm.length === 0).toBe(true);
              return;
            }
            expect(at).toBeGreaterThan(now);
            const copy = codec.unpack(codec.pack(state)) as CepState;
            const before = nfa.advanceTime(copy, at - 1);
            expect(before.matches.length + before.timeouts.length).toBe(0);
            expect(before.state).toBe(copy);
            const due = nfa.advanceTime(codec.unpack(codec.pack(state)) as CepState, at);
            const remaining = due.state === undefined ? 0 : due.state.pm.length;
            expect(remaining).toBeLessThan(state!.pm.length);
          });
        },
      ),
      { numRuns: 200 },
    );
  });
});
