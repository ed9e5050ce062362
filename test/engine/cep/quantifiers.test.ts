import { describe, expect, it } from 'vitest';
import { P, byStage, ev, expectPatterns, feed, named, priceOf, run, type Rec } from './harness.js';
import type { CepCondition } from '../../../src/engine/internal/cep/index.js';

// Scenarios ported from flink-cep GreedyITCase, UntilConditionITCase, TimesRangeITCase,
// TimesOrMoreITCase and IterativeConditionsITCase. The TimesRange/TimesOrMore ITCases are
// parameterized with a per-event window; the ports use the `time == null` variant.

const seq = (...events: ReturnType<typeof ev>[]): Rec[] => events.map((e, i) => [e, i + 1] as const);
const dummy = (label: string, price = 2.0) => ev(label, 'dummy', price);

describe('GreedyITCase', () => {
  const c = ev('c', 'c', 1.0);
  const a1 = ev('a1', 'a', 2.0);
  const a2 = ev('a2', 'a', 2.0);
  const a3 = ev('a3', 'a', 2.0);
  const d = ev('d', 'd', 3.0);
  const greedyMiddle = (optional: boolean) => {
    let p = P.begin('start').where(named('c')).followedBy('middle').where(named('a')).oneOrMore();
    if (optional) p = p.optional();
    return p.greedy().followedBy('end').where(named('d'));
  };

  it('testGreedyZeroOrMore / testGreedyOneOrMore: only the longest run of a', () => {
    for (const optional of [true, false]) {
      expectPatterns(feed(greedyMiddle(optional), seq(c, a1, a2, a3, d)), [[c, a1, a2, a3, d]]);
    }
  });

  it('testGreedyZeroOrMoreInBetween / testGreedyOneOrMoreInBetween', () => {
    for (const optional of [true, false]) {
      expectPatterns(feed(greedyMiddle(optional), seq(c, dummy('x1', 1111), a1, dummy('x2', 1111), a2, dummy('x3', 1111), a3, d)), [[c, a1, a2, a3, d]]);
    }
  });

  it('testGreedyZeroOrMoreWithDummyEventsAfterQuantifier / testGreedyOneOrMoreWithDummyEventsAfterQuantifier', () => {
    for (const optional of [true, false]) {
      expectPatterns(feed(greedyMiddle(optional), seq(c, a1, a2, dummy('x'), d)), [[c, a1, a2, d]]);
    }
  });

  it('testGreedyZeroOrMoreWithDummyEventsBeforeQuantifier / OneOrMore', () => {
    expectPatterns(feed(greedyMiddle(true), seq(c, dummy('x'), d)), [[c, d]]);
    expectPatterns(feed(greedyMiddle(false), seq(c, dummy('x'), d)), []);
  });

  describe('greedy with until', () => {
    const b1 = ev('a1', 'a', 2.0);
    const b2 = ev('a2', 'a', 3.0);
    const b3 = ev('a3', 'a', 3.0);
    const big = ev('a4', 'a', 4.0);
    const dd = ev('d', 'd', 3.0);
    const pattern = (optional: boolean) => {
      let p = P.begin('start').where(named('c')).followedBy('middle').where(named('a')).oneOrMore();
      if (optional) p = p.optional();
      return p
        .greedy()
        .until((e) => priceOf(e) > 3.0)
        .followedBy('end')
        .where(named('d'));
    };

    it('testGreedyUntilZeroOrMoreWithDummyEventsAfterQuantifier / testGreedyUntilOneOrMoreWithDummyEventsAfterQuantifier', () => {
      for (const optional of [true, false]) {
        expectPatterns(feed(pattern(optional), seq(c, b1, b2, b3, big, dd)), [[c, b1, b2, b3, dd]]);
      }
    });

    it('testGreedyUntilWithDummyEventsBeforeQuantifier / testGreedyUntilOneOrMoreWithDummyEventsBeforeQuantifier', () => {
      expectPatterns(feed(pattern(true), seq(c, big, b1, b2, b3, dd)), [[c, dd]]);
      expectPatterns(feed(pattern(false), seq(c, big, b1, b2, b3, dd)), []);
    });
  });

  it('testEndWithZeroOrMoreGreedy / testEndWithZeroOrMoreConsecutiveGreedy', () => {
    const records = seq(c, a1, a2, dummy('x'), a3);
    const relaxed = P.begin('start').where(named('c')).followedBy('end').where(named('a')).oneOrMore().optional().greedy();
    expectPatterns(feed(relaxed, records), [[c], [c, a1], [c, a1, a2], [c, a1, a2, a3]]);
    const consecutive = P.begin('start').where(named('c')).followedBy('end').where(named('a')).oneOrMore().optional().consecutive().greedy();
    expectPatterns(feed(consecutive, records), [[c], [c, a1], [c, a1, a2]]);
  });

  it('testEndWithGreedyTimesRange / testGreedyTimesRange', () => {
    const a4 = ev('a4', 'a', 2.0);
    const atEnd = P.begin('start').where(named('c')).followedBy('end').where(named('a')).times(2, 5).greedy();
    expectPatterns(feed(atEnd, seq(c, a1, a2, a3, a4, dummy('x'))), [
      [c, a1, a2],
      [c, a1, a2, a3],
      [c, a1, a2, a3, a4],
    ]);
    const inMiddle = P.begin('start').where(named('c')).followedBy('middle').where(named('a')).times(2, 5).greedy().followedBy('end').where(named('d'));
    expectPatterns(feed(inMiddle, seq(c, a1, a2, a3, a4, ev('d', 'd', 2.0))), [[c, a1, a2, a3, a4, ev('d', 'd', 2.0)]]);
  });
});

describe('UntilConditionITCase', () => {
  const UNTIL: CepCondition = (e) => priceOf(e) === 5.0;
  const c = ev('c', 'c', 1.0);
  const a1 = ev('a1', 'a', 2.0);
  const a2 = ev('a2', 'a', 3.0);
  const a3 = ev('a3', 'a', 4.0);
  const breaking = ev('breaking', 'a', 5.0);
  const ignored = ev('ignored', 'a', 6.0);
  const middle = (inner: 'relaxed' | 'strict' | 'nondeterministic', optional: boolean) => {
    let p = P.begin('start').where(named('c')).followedBy('middle').where(named('a')).oneOrMore();
    if (optional) p = p.optional();
    if (inner === 'strict') p = p.consecutive();
    if (inner === 'nondeterministic') p = p.allowCombinations();
    return p.until(UNTIL).followedBy('end').where(UNTIL);
  };

  it('testUntilConditionFollowedByOneOrMore / ZeroOrMore: the loop stops at the until event; nothing is left behind', () => {
    const nfa = middle('relaxed', false).compile();
    const r = run(nfa, seq(c, a1, a2, breaking, ignored));
    expectPatterns(r.matches.map((m) => Object.values(m.events).flat()), [
      [c, a1, a2, breaking],
      [c, a1, breaking],
    ]);
    expect(nfa.isEmpty(r.state)).toBe(true);
    const zero = middle('relaxed', true).compile();
    const rz = run(zero, seq(c, a1, a2, breaking, ignored));
    expectPatterns(rz.matches.map((m) => Object.values(m.events).flat()), [[c, a1, a2, breaking], [c, a1, breaking], [c, breaking]]);
    expect(zero.isEmpty(rz.state)).toBe(true);
  });

  it('testUntilConditionFollowedByOneOrMoreCombinations / ZeroOrMoreCombinations', () => {
    const events = seq(c, a1, a2, a3, breaking, ignored);
    const expected = [
      [c, a1, a2, a3, breaking],
      [c, a1, a2, breaking],
      [c, a1, a3, breaking],
      [c, a1, breaking],
    ];
    expectPatterns(feed(middle('nondeterministic', false), events), expected);
    expectPatterns(feed(middle('nondeterministic', true), events), [...expected, [c, breaking]]);
  });

  it('testUntilConditionFollowedByOneOrMoreConsecutive / Consecutive2 / ZeroOrMoreConsecutive', () => {
    expectPatterns(feed(middle('strict', false), seq(c, a1, a2, breaking, ignored)), [
      [c, a1, a2, breaking],
      [c, a1, breaking],
    ]);
    const b = ev('b', 'b', 3.0);
    const a3x = ev('a3', 'a', 4.0);
    expectPatterns(feed(middle('strict', false), seq(c, a1, b, a3x, breaking, ignored)), [[c, a1, breaking]]);
    expectPatterns(feed(middle('strict', true), seq(c, a1, a2, breaking, ignored)), [[c, a1, a2, breaking], [c, a1, breaking], [c, breaking]]);
  });

  it('testUntilConditionFollowedByAnyOneOrMore: until on a trailing loop', () => {
    const a3x = ev('a3', 'a', 6.0);
    const pattern = P.begin('start').where(named('c')).followedByAny('middle').where(named('a')).oneOrMore().until(UNTIL);
    expectPatterns(feed(pattern, seq(c, a1, a2, breaking, a3x)), [[c, a1, a2], [c, a1], [c, a2], [c, a3x]]);
    // testUntilConditionFollowedByAnyZeroOrMore
    const zero = P.begin('start').where(named('c')).followedByAny('middle').where(named('a')).oneOrMore().optional().until(UNTIL);
    expectPatterns(feed(zero, seq(c, a1, a2, breaking, a3x)), [[c, a1, a2], [c, a1], [c, a2], [c, a3x], [c]]);
  });

  it('testUntilConditionWithEmptyWhere / testIterativeUntilConditionOneOrMore / ZeroOrMore', () => {
    const d = ev('d', 'd', 1.0);
    const events = seq(c, a1, a2, d, breaking, ignored);
    const emptyWhere = P.begin('start').where(named('c')).followedBy('middle').oneOrMore().until(UNTIL).compile();
    const r1 = run(emptyWhere, events);
    expectPatterns(r1.matches.map((m) => Object.values(m.events).flat()), [[c, a1, a2, d], [c, a1, a2], [c, a1]]);
    expect(emptyWhere.isEmpty(r1.state)).toBe(true);
    // An iterative until: stop once the loop's prices add up to 6.
    const sumIs6: CepCondition = (_value, ctx) => ctx.eventsFor('middle').reduce((s, e) => s + priceOf(e), 0) === 6.0;
    const iterative = P.begin('start').where(named('c')).followedBy('middle').oneOrMore().until(sumIs6).compile();
    const r2 = run(iterative, events);
    expectPatterns(r2.matches.map((m) => Object.values(m.events).flat()), [[c, a1, a2, d], [c, a1, a2], [c, a1]]);
    expect(iterative.isEmpty(r2.state)).toBe(true);
    const iterativeZero = P.begin('start').where(named('c')).followedBy('middle').oneOrMore().optional().until(sumIs6).compile();
    const r3 = run(iterativeZero, events);
    expectPatterns(r3.matches.map((m) => Object.values(m.events).flat()), [[c, a1, a2, d], [c, a1, a2], [c, a1], [c]]);
    expect(iterativeZero.isEmpty(r3.state)).toBe(true);
  });
});

/** TimesRangeITCase / TimesOrMoreITCase ConsecutiveData. */
const C = {
  startEvent: ev('start', 'c', 1.0),
  middleEvent1: ev('m1', 'a', 2.0),
  middleEvent2: ev('m2', 'a', 3.0),
  middleEvent3: ev('m3', 'a', 4.0),
  end: ev('end', 'b', 5.0),
};
const gaps: Rec[] = [
  [C.startEvent, 1],
  [ev('f1', 'f', 1.0), 2],
  [C.middleEvent1, 3],
  [ev('f2', 'f', 1.0), 4],
  [C.middleEvent2, 5],
  [C.middleEvent3, 6],
  [C.end, 7],
];

describe('TimesRangeITCase', () => {
  const { startEvent, middleEvent1, middleEvent2, middleEvent3, end } = C;
  const plain: Rec[] = [
    [startEvent, 1],
    [middleEvent1, 2],
    [middleEvent2, 3],
    [middleEvent3, 4],
    [end, 6],
  ];

  it('testTimesRange: next a{1,3} with combinations', () => {
    const pattern = P.begin('start').where(named('c')).next('middle').where(named('a')).times(1, 3).allowCombinations().followedBy('end1').where(named('b'));
    expectPatterns(feed(pattern, plain), [
      [startEvent, middleEvent1, middleEvent2, middleEvent3, end],
      [startEvent, middleEvent1, middleEvent2, end],
      [startEvent, middleEvent1, middleEvent3, end],
      [startEvent, middleEvent1, end],
    ]);
  });

  it('testTimesRangeFromZero: a{0,2} means optional a{1,2}', () => {
    const pattern = P.begin('start').where(named('c')).next('middle').where(named('a')).times(0, 2).allowCombinations().followedBy('end1').where(named('b'));
    expectPatterns(feed(pattern, plain), [
      [startEvent, middleEvent1, middleEvent2, end],
      [startEvent, middleEvent1, middleEvent3, end],
      [startEvent, middleEvent1, end],
      [startEvent, end],
    ]);
  });

  it('testTimesRangeNonStrict', () => {
    const pattern = P.begin('start').where(named('c')).followedByAny('middle').where(named('a')).times(1, 3).allowCombinations().followedBy('end1').where(named('b'));
    expectPatterns(feed(pattern, gaps), [
      [startEvent, middleEvent1, middleEvent2, middleEvent3, end],
      [startEvent, middleEvent1, middleEvent2, end],
      [startEvent, middleEvent1, middleEvent3, end],
      [startEvent, middleEvent1, end],
      [startEvent, middleEvent2, middleEvent3, end],
      [startEvent, middleEvent2, end],
      [startEvent, middleEvent3, end],
    ]);
  });

  it('testTimesRangeStrict / testTimesRangeStrictOptional', () => {
    const expected = [[startEvent, middleEvent2, middleEvent3, end], [startEvent, middleEvent1, end], [startEvent, middleEvent2, end], [startEvent, middleEvent3, end], [startEvent, end]];
    const fromZero = P.begin('start').where(named('c')).followedByAny('middle').where(named('a')).times(0, 3).consecutive().followedBy('end1').where(named('b'));
    expectPatterns(feed(fromZero, gaps), expected);
    const optional = P.begin('start').where(named('c')).followedByAny('middle').where(named('a')).times(1, 3).consecutive().optional().followedBy('end1').where(named('b'));
    expectPatterns(feed(optional, gaps), expected);
  });
});

describe('TimesOrMoreITCase', () => {
  const { startEvent, middleEvent1, middleEvent2, middleEvent3, end } = C;

  it('testTimesOrMore: a{2,} with combinations', () => {
    const pattern = P.begin('start').where(named('c')).followedBy('middle').where(named('a')).timesOrMore(2).allowCombinations().followedBy('end1').where(named('b'));
    const records: Rec[] = [
      [startEvent, 1],
      [middleEvent1, 2],
      [middleEvent2, 3],
      [middleEvent3, 4],
      [end, 6],
    ];
    expectPatterns(feed(pattern, records), [
      [startEvent, middleEvent1, middleEvent2, middleEvent3, end],
      [startEvent, middleEvent1, middleEvent2, end],
      [startEvent, middleEvent1, middleEvent3, end],
    ]);
  });

  it('testTimesOrMoreNonStrict', () => {
    const pattern = P.begin('start').where(named('c')).followedByAny('middle').where(named('a')).timesOrMore(2).allowCombinations().followedBy('end1').where(named('b'));
    expectPatterns(feed(pattern, gaps), [
      [startEvent, middleEvent1, middleEvent2, middleEvent3, end],
      [startEvent, middleEvent1, middleEvent2, end],
      [startEvent, middleEvent1, middleEvent3, end],
      [startEvent, middleEvent2, middleEvent3, end],
    ]);
  });

  it('testTimesOrMoreStrict / testTimesOrMoreStrictOptional', () => {
    const strict = P.begin('start').where(named('c')).followedByAny('middle').where(named('a')).times(2).consecutive().followedBy('end1').where(named('b'));
    expectPatterns(feed(strict, gaps), [[startEvent, middleEvent2, middleEvent3, end]]);
    const optional = P.begin('start').where(named('c')).followedByAny('middle').where(named('a')).timesOrMore(2).consecutive().optional().followedBy('end1').where(named('b'));
    expectPatterns(feed(optional, gaps), [
      [startEvent, middleEvent2, middleEvent3, end],
      [startEvent, end],
    ]);
  });

  it('testTimesOrMoreStrictOptional2 / testTimesOrMoreNonStrictOptional', () => {
    const strict2 = P.begin('start').where(named('c')).next('middle').where(named('a')).timesOrMore(2).consecutive().optional().followedBy('end1').where(named('b'));
    const records: Rec[] = [
      [startEvent, 1],
      [middleEvent1, 3],
      [middleEvent2, 5],
      [middleEvent3, 6],
      [end, 7],
    ];
    expectPatterns(feed(strict2, records), [
      [startEvent, middleEvent1, middleEvent2, middleEvent3, end],
      [startEvent, middleEvent1, middleEvent2, end],
      [startEvent, end],
    ]);
    const nonStrict = P.begin('start').where(named('c')).followedBy('middle').where(named('a')).timesOrMore(2).optional().followedBy('end1').where(named('b'));
    expectPatterns(
      feed(nonStrict, [
        [startEvent, 1],
        [ev('f', 'f', 1.0), 2],
        [end, 7],
      ]),
      [[startEvent, end]],
    );
  });
});

describe('IterativeConditionsITCase', () => {
  const startEvent1 = ev('s1', 'start', 1.0);
  const startEvent2 = ev('s2', 'start', 2.0);
  const startEvent3 = ev('s3', 'start', 3.0);
  const startEvent4 = ev('s4', 'start', 4.0);
  const sub = (label: string, name: string, price: number) => ev(label, name, price, { sub: true, volume: 10 });
  const middleEvent1 = sub('m1', 'foo1', 1.0);
  const middleEvent2 = sub('m2', 'foo2', 2.0);
  const middleEvent3 = sub('m3', 'foo3', 3.0);
  const middleEvent4 = sub('m4', 'foo4', 1.0);
  const nextOne = ev('next', 'next-one', 1.0);
  const endEvent = ev('end', 'end', 1.0);
  const sumOf = (events: readonly ReturnType<typeof ev>[]) => events.reduce((s, e) => s + priceOf(e), 0);

  /** MySubeventIterCondition: a `foo…` sub-event while the running sum of "middle" prices stays below 5. */
  const subeventIter: CepCondition = (value, ctx) => value.attrs['sub'] === true && value.type.startsWith('foo') && sumOf(ctx.eventsFor('middle')) + priceOf(value) < 5.0;

  const branching = (eager: boolean) => {
    let p = P.begin('start').where(named('start')).followedBy('middle').where(subeventIter).oneOrMore();
    if (!eager) p = p.allowCombinations();
    const records: Rec[] = [
      [startEvent1, 1],
      [middleEvent1, 2],
      [middleEvent2, 3],
      [startEvent2, 4],
      [middleEvent3, 5],
      [middleEvent4, 5],
      [nextOne, 6],
      [endEvent, 8],
    ];
    return feed(p.followedBy('end').where(named('end')), records);
  };

  it('testIterativeWithBranchingPatternEager', () => {
    expectPatterns(branching(true), [
      [startEvent1, endEvent, middleEvent1, middleEvent2, middleEvent4],
      [startEvent1, endEvent, middleEvent2, middleEvent1],
      [startEvent1, endEvent, middleEvent1],
      [startEvent2, endEvent, middleEvent3, middleEvent4],
      [startEvent2, endEvent, middleEvent3],
    ]);
  });

  it('testIterativeWithBranchingPatternCombinations', () => {
    expectPatterns(branching(false), [
      [startEvent1, endEvent, middleEvent1, middleEvent2, middleEvent4],
      [startEvent1, endEvent, middleEvent2, middleEvent1],
      [startEvent1, endEvent, middleEvent3, middleEvent1],
      [startEvent2, endEvent, middleEvent3, middleEvent4],
      [startEvent1, endEvent, middleEvent4, middleEvent1],
      [startEvent1, endEvent, middleEvent1],
      [startEvent2, endEvent, middleEvent3],
    ]);
  });

  /** MyEventIterCondition: a `start` event while the running sum of "start" prices stays below 5. */
  const eventIter: CepCondition = (value, ctx) => value.type === 'start' && sumOf(ctx.eventsFor('start')) + priceOf(value) < 5.0;

  it('testIterativeWithLoopingStartingEager / Combination: the condition reads the loop it is in', () => {
    const records: Rec[] = [
      [startEvent1, 1],
      [startEvent2, 2],
      [startEvent3, 3],
      [endEvent, 4],
    ];
    const eager = P.begin('start').where(eventIter).oneOrMore().optional().followedBy('end').where(named('end'));
    expectPatterns(feed(eager, records), [[startEvent1, startEvent2, endEvent], [startEvent1, endEvent], [startEvent2, endEvent], [startEvent3, endEvent], [endEvent]]);
    const combinations = P.begin('start').where(eventIter).oneOrMore().allowCombinations().optional().followedBy('end').where(named('end'));
    expectPatterns(feed(combinations, records), [
      [startEvent1, startEvent2, endEvent],
      [startEvent1, startEvent3, endEvent],
      [startEvent1, endEvent],
      [startEvent2, endEvent],
      [startEvent3, endEvent],
      [endEvent],
    ]);
  });

  it('testIterativeWithPrevPatternDependency: a later stage reads an earlier one', () => {
    const pattern = P.begin('start')
      .where(named('start'))
      .oneOrMore()
      .followedBy('end')
      .where((value, ctx) => value.type === 'end' && sumOf(ctx.eventsFor('start')) >= 2.0);
    expectPatterns(
      feed(pattern, [
        [startEvent1, 1],
        [startEvent2, 2],
        [endEvent, 4],
      ]),
      [
        [startEvent1, startEvent2, endEvent],
        [startEvent2, endEvent],
      ],
    );
  });

  it('testIterativeWithABACPattern', () => {
    const pattern = P.begin('start')
      .where(named('start'))
      .followedByAny('middle1')
      .where((e) => e.attrs['sub'] === true && e.type.startsWith('foo'))
      .followedBy('middle2')
      .where((value, ctx) => value.type === 'start' && sumOf(ctx.eventsFor('middle2')) + priceOf(value) <= 5.0)
      .oneOrMore()
      .followedBy('end')
      .where(named('end'));
    const records: Rec[] = [
      [startEvent1, 1],
      [middleEvent1, 2],
      [startEvent2, 2],
      [startEvent3, 2],
      [middleEvent2, 2],
      [startEvent4, 2],
      [middleEvent3, 2],
      [middleEvent4, 2],
      [endEvent, 4],
    ];
    expectPatterns(feed(pattern, records), [
      [startEvent1, startEvent2, startEvent3, middleEvent1, endEvent],
      [startEvent1, middleEvent1, startEvent2, endEvent],
      [startEvent1, middleEvent2, startEvent4, endEvent],
      [startEvent2, middleEvent2, startEvent4, endEvent],
      [startEvent3, middleEvent2, startEvent4, endEvent],
    ]);
  });

  it('risk example: a second transfer larger than the first within 10 minutes', () => {
    const t = (label: string, amount: number) => ev(label, 'transfer', amount);
    const pattern = P.begin('first')
      .where(named('transfer'))
      .followedBy('second')
      .where((value, ctx) => value.type === 'transfer' && priceOf(value) > priceOf(ctx.eventsFor('first')[0]!))
      .within(600_000);
    const { matches } = run(pattern, [
      [t('t1', 100), 0],
      [t('t2', 50), 1_000],
      [t('t3', 120), 2_000],
      [t('t4', 500), 700_000],
    ]);
    expect(matches.map(byStage)).toEqual([
      { first: ['t1'], second: ['t3'] },
      { first: ['t2'], second: ['t3'] },
    ]);
  });
});

