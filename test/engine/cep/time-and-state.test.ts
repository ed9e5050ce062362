import { describe, expect, it } from 'vitest';
import { CepNfa, createCepSink, type CepState } from '../../../src/engine/internal/cep/index.js';
import { P, byStage, ev, named, run, type Rec } from './harness.js';

// Time, timers and per-key state: the parts of Flink's NFA.advanceTime / CepOperator contract
// the engine relies on, plus Portrait's own bound on partial matches.

describe('within: the exact timeout comparison', () => {
  const pattern = () => P.begin('a').where(named('a')).followedBy('b').where(named('b')).within(10);

  it('a match completes while timestamp - start < withinMs (NFAITCase.testSimplePatternWithTimeWindowNFA)', () => {
    const { matches, timeouts } = run(pattern(), [
      [ev('a', 'a'), 100],
      [ev('b', 'b'), 109],
    ]);
    expect(matches.map(byStage)).toEqual([{ a: ['a'], b: ['b'] }]);
    expect(timeouts).toEqual([]);
  });

  it('at timestamp - start == withinMs the partial match has timed out before the event is matched (CepOperator order)', () => {
    const { matches, timeouts, state } = run(pattern(), [
      [ev('a', 'a'), 100],
      [ev('b', 'b'), 110],
    ]);
    expect(matches).toEqual([]);
    expect(timeouts.map((t) => [byStage(t), t.timeoutTimestamp, t.firstTimestamp, t.lastTimestamp])).toEqual([[{ a: ['a'] }, 110, 100, 100]]);
    expect(state).toBeUndefined();
  });

  it('advanceTime alone times out a partial match at start + withinMs, not a millisecond earlier', () => {
    const nfa = pattern().compile();
    const { state } = run(nfa, [[ev('a', 'a'), 100]]);
    expect(nfa.nextTimerAt(state)).toBe(110);
    const early = nfa.advanceTime(state, 109);
    expect(early.timeouts).toEqual([]);
    expect(early.state).toBe(state);
    const due = nfa.advanceTime(state, 110);
    expect(due.timeouts.map((t) => t.timeoutTimestamp)).toEqual([110]);
    expect(due.state).toBeUndefined();
    expect(nfa.nextTimerAt(due.state)).toBe(Infinity);
  });

  it('the timeout timestamp is start + withinMs even when time jumps past it', () => {
    const nfa = pattern().compile();
    const { state } = run(nfa, [[ev('a', 'a'), 100]]);
    expect(nfa.advanceTime(state, 5_000).timeouts.map((t) => t.timeoutTimestamp)).toEqual([110]);
  });

  it('emitTimeouts: false drops timed-out partial matches silently', () => {
    const nfa = pattern().compile({ emitTimeouts: false });
    const { state } = run(nfa, [[ev('a', 'a'), 100]]);
    const step = nfa.advanceTime(state, 200);
    expect(step.timeouts).toEqual([]);
    expect(step.state).toBeUndefined();
  });

  it('nextTimerAt is the earliest start + withinMs; without a window there is no timer', () => {
    const nfa = P.begin('a').where(named('a')).followedByAny('b').where(named('b')).within(50).compile();
    const { state } = run(nfa, [
      [ev('a1', 'a'), 10],
      [ev('a2', 'a'), 20],
    ]);
    expect(nfa.nextTimerAt(state)).toBe(60);
    const after = nfa.advanceTime(state, 60);
    expect(after.timeouts.map((t) => byStage(t))).toEqual([{ a: ['a1'] }]);
    expect(nfa.nextTimerAt(after.state)).toBe(70);
    const noWindow = P.begin('a').where(named('a')).followedBy('b').where(named('b')).compile();
    expect(noWindow.nextTimerAt(run(noWindow, [[ev('a', 'a'), 1]]).state)).toBe(Infinity);
    expect(noWindow.nextTimerAt(undefined)).toBe(Infinity);
  });
});

describe('notFollowedBy at the end: absence decided by time', () => {
  // "order created and not paid within 15 minutes"
  const unpaid = () =>
    P.begin('created')
      .where(named('order_created'))
      .notFollowedBy('paid')
      .where((e, ctx) => e.type === 'order_paid' && e.attrs['order'] === ctx.eventsFor('created')[0]!.attrs['order'])
      .within(15 * 60_000);
  const created = (order: string) => ev(`created-${order}`, 'order_created', 0, { order });
  const paid = (order: string) => ev(`paid-${order}`, 'order_paid', 0, { order });

  it('emits the match when the window elapses with no further event', () => {
    const nfa = unpaid().compile();
    const { state } = run(nfa, [[created('o1'), 0]]);
    expect(nfa.nextTimerAt(state)).toBe(900_000);
    expect(nfa.advanceTime(state, 899_999).matches).toEqual([]);
    const due = nfa.advanceTime(state, 900_000);
    expect(due.matches.map(byStage)).toEqual([{ created: ['created-o1'] }]);
    expect(due.matches[0]!.lastTimestamp).toBe(0);
    expect(due.timeouts).toEqual([]);
    expect(due.state).toBeUndefined();
  });

  it('a forbidden event inside the window discards the partial match; others are untouched', () => {
    const nfa = unpaid().compile();
    const { state, matches } = run(nfa, [
      [created('o1'), 0],
      [created('o2'), 1_000],
      [paid('o1'), 60_000],
    ]);
    expect(matches).toEqual([]);
    const due = nfa.advanceTime(state, 10_000_000);
    expect(due.matches.map(byStage)).toEqual([{ created: ['created-o2'] }]);
  });

  it('an event exactly at the end of the window comes too late: time advances first', () => {
    const { matches } = run(unpaid(), [
      [created('o1'), 0],
      [paid('o1'), 900_000],
    ]);
    expect(matches.map(byStage)).toEqual([{ created: ['created-o1'] }]);
  });
});

describe('maxPartialMatches', () => {
  it('drops the partial matches that started first and counts them', () => {
    const nfa = P.begin('a').where(named('a')).followedByAny('b').where(named('b')).compile({ maxPartialMatches: 3 });
    const records: Rec[] = [1, 2, 3, 4, 5].map((i) => [ev(`a${i}`, 'a'), i] as const);
    const r = run(nfa, [...records, [ev('b', 'b'), 6]]);
    expect(r.dropped).toBe(2);
    expect(r.matches.map(byStage)).toEqual([
      { a: ['a3'], b: ['b'] },
      { a: ['a4'], b: ['b'] },
      { a: ['a5'], b: ['b'] },
    ]);
    expect(r.state!.pm).toHaveLength(3);
  });

  it('dropping an early partial match releases completed matches a skip strategy was holding', () => {
    // AfterMatchSkipITCase.testSkipBeforeOtherAlreadyCompleted's pattern: {a2 c2 b1} completes at b1
    // but waits for the earlier {a1 c1}; when a4 pushes the count over the bound, {a1 c1} is
    // dropped and the held match is released.
    const nfa = P.begin('a', { kind: 'skipToFirst', stage: 'c' })
      .where(named('a'))
      .followedBy('c')
      .where(named('c'))
      .followedBy('b')
      .where((v, ctx) => v.type === 'b' && ctx.eventsFor('a')[0]!.attrs['price'] === v.attrs['price'])
      .compile({ maxPartialMatches: 2 });
    const records: Rec[] = [
      [ev('a1', 'a', 0), 1],
      [ev('c1', 'c', 0), 2],
      [ev('a2', 'a', 1), 3],
      [ev('c2', 'c', 0), 4],
      [ev('b1', 'b', 1), 5],
      [ev('a3', 'a', 3), 6],
    ];
    const held = run(nfa, records);
    expect(held.matches).toEqual([]);
    expect(held.dropped).toBe(0);
    expect(held.state!.done).toHaveLength(1);
    const released = nfa.process(held.state, ev('a4', 'a', 4), 7);
    expect(released.dropped).toBe(1);
    expect(released.matches.map(byStage)).toEqual([{ a: ['a2'], c: ['c2'], b: ['b1'] }]);
    expect(released.state!.done).toHaveLength(0);
  });
});

describe('state', () => {
  it('keys that never start a match keep no state at all', () => {
    const nfa = P.begin('a').where(named('a')).followedBy('b').where(named('b')).within(10).compile();
    const sink = createCepSink();
    let state: CepState | undefined;
    for (let i = 0; i < 100; i++) state = nfa.processInto(state, ev(`x${i}`, 'x'), i, sink);
    expect(state).toBeUndefined();
    expect(nfa.isEmpty(state)).toBe(true);
    expect(sink.matches).toEqual([]);
    expect(nfa.advanceTime(undefined, 1e12).state).toBeUndefined();
  });

  it('the state is plain data: JSON round trip gives the same continuation', () => {
    const nfa = P.begin('a').where(named('a')).followedBy('b').where(named('b')).oneOrMore().compile();
    const first = run(nfa, [
      [ev('a', 'a'), 1],
      [ev('b1', 'b'), 2],
    ]);
    const copy = JSON.parse(JSON.stringify(first.state)) as CepState;
    const a = nfa.process(first.state, ev('b2', 'b'), 3);
    const b = nfa.process(copy, ev('b2', 'b'), 3);
    expect(b.matches.map(byStage)).toEqual(a.matches.map(byStage));
    expect(a.matches.map(byStage)).toEqual([{ a: ['a'], b: ['b1', 'b2'] }]);
  });

  it('a condition that throws counts as false and is reported; the state stays usable', () => {
    const nfa = new CepNfa({
      stages: [
        { name: 'a', condition: (e) => e.type === 'a' },
        {
          name: 'b',
          condition: (e) => {
            if (e.attrs['boom'] === true) throw new Error('bad attribute');
            return e.type === 'b';
          },
        },
      ],
    });
    const s1 = nfa.process(undefined, ev('a', 'a'), 1);
    const s2 = nfa.process(s1.state, ev('boom', 'b', 0, { boom: true }), 2);
    expect(s2.conditionErrors).toBe(1);
    expect((s2.lastConditionError as Error).message).toBe('bad attribute');
    expect(s2.matches).toEqual([]);
    const s3 = nfa.process(s2.state, ev('b', 'b'), 3);
    expect(s3.matches.map(byStage)).toEqual([{ a: ['a'], b: ['b'] }]);
  });

  it('a first-stage condition that throws on a key with no partial match is counted too (the start gate does not swallow it)', () => {
    let calls = 0;
    const nfa = new CepNfa({
      stages: [
        {
          name: 'a',
          condition: (e) => {
            calls++;
            if (e.attrs['boom'] === true) throw new Error('bad first');
            return e.type === 'a';
          },
        },
        { name: 'b', condition: (e) => e.type === 'b' },
      ],
    });
    const rejected = nfa.process(undefined, ev('x', 'x'), 1);
    expect(rejected.state).toBeUndefined();
    expect(rejected.conditionErrors).toBe(0);
    const boom = nfa.process(undefined, ev('boom', 'a', 0, { boom: true }), 2);
    expect(boom.conditionErrors).toBe(1);
    expect((boom.lastConditionError as Error).message).toBe('bad first');
    expect(boom.state).toBeUndefined();
    const started = nfa.process(undefined, ev('a', 'a'), 3);
    expect(started.state?.pm).toHaveLength(1);
    expect(calls).toBeGreaterThanOrEqual(4);
  });

  it('an optional first stage does not gate the start: a match may begin at the second stage', () => {
    const nfa = new CepNfa({
      stages: [
        { name: 'a', condition: (e) => e.type === 'a', optional: true },
        { name: 'b', condition: (e) => e.type === 'b' },
      ],
    });
    const s = nfa.process(undefined, ev('b', 'b'), 1);
    expect(s.matches.map(byStage)).toEqual([{ b: ['b'] }]);
  });

  it('a condition sees the timestamp the event is processed at and earlier stages only', () => {
    const seen: [number, number][] = [];
    const nfa = new CepNfa({
      stages: [
        { name: 'a', condition: (e) => e.type === 'a' },
        {
          name: 'b',
          condition: (e, ctx) => {
            seen.push([ctx.timestamp, ctx.eventsFor('a').length + ctx.eventsFor('b').length + ctx.eventsFor('nope').length]);
            return e.type === 'b';
          },
        },
      ],
    });
    run(nfa, [
      [ev('a', 'a'), 5],
      [ev('b', 'b'), 7],
    ]);
    // Evaluated once per (partial match, event) even though several edges use the condition.
    expect(seen).toEqual([[7, 1]]);
  });

  it('a condition without a ctx parameter is evaluated once per event, however many partial matches wait', () => {
    let calls = 0;
    const nfa = new CepNfa({
      stages: [
        { name: 'a', condition: (e) => e.type === 'a' },
        {
          name: 'b',
          condition: (e) => {
            calls++;
            return e.type === 'b';
          },
        },
      ],
    });
    const r = run(nfa, [1, 2, 3, 4].map((i) => [ev(`a${i}`, 'a'), i] as const));
    expect(r.state!.pm).toHaveLength(4);
    calls = 0;
    const step = nfa.process(r.state, ev('b', 'b'), 5);
    expect(calls).toBe(1);
    expect(step.matches).toHaveLength(4);
  });
});
