import { describe, expect, it } from 'vitest';
import { P, byStage, ev, expectPatterns, feed, named, run, type Rec } from './harness.js';

// Scenarios ported from flink-cep NFAITCase (flink-libraries/flink-cep/src/test/java/org/apache/flink/cep/nfa/NFAITCase.java).
// Each test names the Flink test it follows; events and expected matches are Flink's.

/** NFAITCase.ConsecutiveData */
const C = {
  startEvent: ev('start', 'c', 1.0),
  middleEvent1: ev('m1', 'a', 2.0),
  middleEvent2: ev('m2', 'a', 3.0),
  middleEvent3: ev('m3', 'a', 4.0),
  middleEvent4: ev('m4', 'a', 5.0),
  end: ev('end', 'b', 5.0),
};
const f = (label: string) => ev(label, 'f', 1.0);
const d = (label: string) => ev(label, 'd', 6.0);

describe('NFAITCase: contiguity', () => {
  const a = ev('a', 'a', 1.0);
  const b = ev('b', 'b', 2.0);
  const c = ev('c', 'c', 3.0);
  const dd = ev('d', 'd', 4.0);
  const e = ev('e', 'e', 5.0);
  const abcde: Rec[] = [
    [a, 1],
    [b, 2],
    [c, 3],
    [dd, 4],
    [e, 5],
  ];

  it('testNoConditionNFA: begin.followedBy with no conditions pairs each event with the next', () => {
    expectPatterns(feed(P.begin('start').followedBy('end'), abcde), [
      [a, b],
      [b, c],
      [c, dd],
      [dd, e],
    ]);
  });

  it('testNoConditionLoopingNFA: followedBy(end).oneOrMore() with no conditions', () => {
    expectPatterns(feed(P.begin('start').followedBy('end').oneOrMore(), abcde), [
      [a, b, c, dd, e],
      [a, b, c, dd],
      [a, b, c],
      [a, b],
      [b, c, dd, e],
      [b, c, dd],
      [b, c],
      [c, dd, e],
      [c, dd],
      [dd, e],
    ]);
  });

  it('testAnyWithNoConditionNFA: followedByAny pairs each event with every later one', () => {
    expectPatterns(feed(P.begin('start').followedByAny('end'), abcde), [
      [a, b],
      [a, c],
      [a, dd],
      [a, e],
      [b, c],
      [b, dd],
      [b, e],
      [c, dd],
      [c, e],
      [dd, e],
    ]);
  });

  it('testSimplePatternNFA: start, subtype middle with volume > 5, end (relaxed)', () => {
    const startEvent = ev('start', 'start', 1.0);
    const middleEvent = ev('middle', 'foo', 1.0, { sub: true, volume: 10.0 });
    const endEvent = ev('end', 'end', 1.0);
    const records: Rec[] = [
      [startEvent, 1],
      [ev('foobar', 'foobar', 1.0), 2],
      [ev('barfoo', 'barfoo', 1.0, { sub: true, volume: 5.0 }), 3],
      [middleEvent, 3],
      [ev('start2', 'start', 1.0), 4],
      [endEvent, 5],
    ];
    const pattern = P.begin('start')
      .where(named('start'))
      .followedBy('middle')
      .where((e) => e.attrs['sub'] === true && (e.attrs['volume'] as number) > 5.0)
      .followedBy('end')
      .where(named('end'));
    expectPatterns(feed(pattern, records), [[startEvent, middleEvent, endEvent]]);
  });

  it('testStrictContinuityWithResults: next() matches adjacent events', () => {
    const m1 = ev('m1', 'a', 2.0);
    const end = ev('end', 'b', 4.0);
    const pattern = P.begin('middle').where(named('a')).next('end').where(named('b'));
    expectPatterns(
      feed(pattern, [
        [m1, 3],
        [end, 5],
      ]),
      [[m1, end]],
    );
  });

  it('testStrictContinuityNoResults: next() fails when another event is in between', () => {
    const pattern = P.begin('middle').where(named('a')).next('end').where(named('b'));
    const records: Rec[] = [
      [ev('m1', 'a', 2.0), 3],
      [ev('m2', 'c', 3.0), 4],
      [ev('end', 'b', 4.0), 5],
    ];
    expectPatterns(feed(pattern, records), []);
  });

  it('testBranchingPattern: followedByAny branches over every middle candidate', () => {
    const startEvent = ev('start', 'start', 1.0);
    const sub = (label: string, name: string, volume: number) => ev(label, name, 1.0, { sub: true, volume });
    const m1 = sub('m1', 'foo1', 10.0);
    const m2 = sub('m2', 'foo2', 10.0);
    const m3 = sub('m3', 'foo3', 10.0);
    const n1 = sub('n1', 'next-one', 2.0);
    const n2 = sub('n2', 'next-one', 2.0);
    const endEvent = ev('end', 'end', 1.0);
    const records: Rec[] = [
      [startEvent, 1],
      [m1, 3],
      [m2, 4],
      [m3, 5],
      [n1, 6],
      [n2, 7],
      [endEvent, 8],
    ];
    const build = (first: 'followedBy' | 'followedByAny', second: 'followedBy' | 'followedByAny') =>
      P.begin('start')
        .where(named('start'))
        [first]('middle-first')
        .where((e) => e.attrs['sub'] === true && (e.attrs['volume'] as number) > 5.0)
        [second]('middle-second')
        .where((e) => e.attrs['sub'] === true && e.type === 'next-one')
        .followedByAny('end')
        .where(named('end'));
    // NFAITCase.testBranchingPattern
    expectPatterns(feed(build('followedByAny', 'followedByAny'), records), [
      [startEvent, m1, n1, endEvent],
      [startEvent, m2, n1, endEvent],
      [startEvent, m3, n1, endEvent],
      [startEvent, m1, n2, endEvent],
      [startEvent, m2, n2, endEvent],
      [startEvent, m3, n2, endEvent],
    ]);
    // NFAITCase.testBranchingPatternSkipTillNext
    expectPatterns(feed(build('followedBy', 'followedBy'), records), [[startEvent, m1, n1, endEvent]]);
    // NFAITCase.testBranchingPatternMixedFollowedBy
    expectPatterns(feed(build('followedByAny', 'followedBy'), records), [
      [startEvent, m1, n1, endEvent],
      [startEvent, m2, n1, endEvent],
      [startEvent, m3, n1, endEvent],
    ]);
  });
});

describe('NFAITCase: looping and optional stages', () => {
  const c = ev('c', 'c', 1.0);
  const a1 = ev('a1', 'a', 2.0);
  const a2 = ev('a2', 'a', 3.0);
  const a3 = ev('a3', 'a', 4.0);
  const b = ev('b', 'b', 5.0);

  it('testComplexBranchingAfterZeroOrMore', () => {
    const end1 = ev('end1', 'b', 5.0);
    const end2 = ev('end2', 'd', 6.0);
    const end3 = ev('end3', 'd', 7.0);
    const end4 = ev('end4', 'e', 8.0);
    const records: Rec[] = [
      [c, 1],
      [a1, 3],
      [a2, 4],
      [a3, 5],
      [end1, 6],
      [end2, 7],
      [end3, 8],
      [end4, 9],
    ];
    const pattern = P.begin('start')
      .where(named('c'))
      .followedByAny('middle')
      .where(named('a'))
      .oneOrMore()
      .allowCombinations()
      .optional()
      .followedByAny('end1')
      .where(named('b'))
      .followedByAny('end2')
      .where(named('d'))
      .followedByAny('end3')
      .where(named('e'));
    const expected = [];
    for (const d of [end2, end3]) {
      expected.push(
        [c, a1, a2, a3, end1, d, end4],
        [c, a1, a2, end1, d, end4],
        [c, a1, a3, end1, d, end4],
        [c, a2, a3, end1, d, end4],
        [c, a1, end1, d, end4],
        [c, a2, end1, d, end4],
        [c, a3, end1, d, end4],
        [c, end1, d, end4],
      );
    }
    expectPatterns(feed(pattern, records), expected);
  });

  it('testZeroOrMore: followedByAny a* (combinations) followedBy b', () => {
    const pattern = P.begin('start')
      .where(named('c'))
      .followedByAny('middle')
      .where(named('a'))
      .oneOrMore()
      .allowCombinations()
      .optional()
      .followedBy('end1')
      .where(named('b'));
    const records: Rec[] = [
      [c, 1],
      [a1, 3],
      [a2, 4],
      [b, 6],
    ];
    expectPatterns(feed(pattern, records), [
      [c, a1, a2, b],
      [c, a1, b],
      [c, a2, b],
      [c, b],
    ]);
  });

  it('testEagerZeroOrMore: relaxed a* skips a non-matching event in between', () => {
    const pattern = P.begin('start').where(named('c')).followedBy('middle').where(named('a')).oneOrMore().optional().followedBy('end1').where(named('b'));
    const records: Rec[] = [
      [c, 1],
      [a1, 3],
      [a2, 4],
      [ev('x', 'd', 6.0), 5],
      [a3, 6],
      [b, 7],
    ];
    expectPatterns(feed(pattern, records), [
      [c, a1, a2, a3, b],
      [c, a1, a2, b],
      [c, a1, b],
      [c, b],
    ]);
  });

  it('testBeginWithZeroOrMore: a pattern may start with an optional loop', () => {
    const m1 = ev('m1', 'a', 2.0);
    const m2 = ev('m2', 'a', 3.0);
    const m3 = ev('m3', 'a', 3.0);
    const end = ev('end', 'b', 4.0);
    const pattern = P.begin('middle').where(named('a')).oneOrMore().optional().followedBy('end').where(named('b'));
    const records: Rec[] = [
      [m1, 3],
      [m2, 4],
      [m3, 5],
      [end, 6],
    ];
    expectPatterns(feed(pattern, records), [[m1, m2, m3, end], [m1, m2, end], [m2, m3, end], [m1, end], [m2, end], [m3, end], [end]]);
  });

  it('testZeroOrMoreAfterZeroOrMore', () => {
    const m1 = ev('m1', 'a', 2.0);
    const m2 = ev('m2', 'd', 3.0);
    const m3 = ev('m3', 'd', 4.0);
    const end = ev('end', 'e', 4.0);
    const pattern = P.begin('start')
      .where(named('c'))
      .followedByAny('middle-first')
      .where(named('a'))
      .oneOrMore()
      .allowCombinations()
      .optional()
      .followedBy('middle-second')
      .where(named('d'))
      .oneOrMore()
      .allowCombinations()
      .optional()
      .followedBy('end')
      .where(named('e'));
    const records: Rec[] = [
      [c, 1],
      [m1, 3],
      [m2, 4],
      [m3, 5],
      [end, 6],
    ];
    expectPatterns(feed(pattern, records), [
      [c, m1, m2, m3, end],
      [c, m1, m2, end],
      [c, m2, m3, end],
      [c, m2, end],
      [c, m1, end],
      [c, end],
    ]);
  });

  it('testZeroOrMoreAfterBranching', () => {
    const m1 = ev('m1', 'a', 2.0);
    const m2 = ev('m2', 'a', 3.0);
    const merging = ev('merging', 'f', 3.0);
    const k1 = ev('k1', 'd', 4.0);
    const k2 = ev('k2', 'd', 4.0);
    const end = ev('end', 'e', 4.0);
    const pattern = P.begin('start')
      .where(named('c'))
      .followedByAny('branching')
      .where(named('a'))
      .followedByAny('merging')
      .where(named('f'))
      .followedByAny('kleene')
      .where(named('d'))
      .oneOrMore()
      .allowCombinations()
      .optional()
      .followedBy('end')
      .where(named('e'));
    const records: Rec[] = [
      [c, 1],
      [m1, 3],
      [m2, 4],
      [merging, 5],
      [k1, 6],
      [k2, 7],
      [end, 8],
    ];
    expectPatterns(feed(pattern, records), [
      [c, m1, merging, end],
      [c, m1, merging, k1, end],
      [c, m1, merging, k2, end],
      [c, m1, merging, k1, k2, end],
      [c, m2, merging, end],
      [c, m2, merging, k1, end],
      [c, m2, merging, k2, end],
      [c, m2, merging, k1, k2, end],
    ]);
  });

  it('testStrictContinuityNoResultsAfterZeroOrMore / testStrictContinuityResultsAfterZeroOrMore', () => {
    const start = ev('start', 'd', 2.0);
    const m1 = ev('m1', 'a', 2.0);
    const m2 = ev('m2', 'a', 2.0);
    const m3 = ev('m3', 'c', 3.0);
    const end = ev('end', 'b', 4.0);
    const noResults = P.begin('start').where(named('d')).followedBy('middle').where(named('a')).oneOrMore().optional().next('end').where(named('b'));
    expectPatterns(
      feed(noResults, [
        [start, 1],
        [m1, 2],
        [m2, 3],
        [m3, 4],
        [end, 5],
      ]),
      [],
    );
    const results = P.begin('start')
      .where(named('d'))
      .followedByAny('middle')
      .where(named('a'))
      .oneOrMore()
      .optional()
      .allowCombinations()
      .next('end')
      .where(named('b'));
    expectPatterns(
      feed(results, [
        [start, 1],
        [m1, 2],
        [m2, 3],
        [end, 5],
      ]),
      [
        [start, m1, m2, end],
        [start, m2, end],
      ],
    );
  });

  it('testAtLeastOne: followedByAny a+ (combinations) followedByAny b', () => {
    const pattern = P.begin('start')
      .where(named('c'))
      .followedByAny('middle')
      .where(named('a'))
      .oneOrMore()
      .allowCombinations()
      .followedByAny('end1')
      .where(named('b'));
    const records: Rec[] = [
      [c, 1],
      [a1, 3],
      [a2, 4],
      [b, 6],
    ];
    expectPatterns(feed(pattern, records), [
      [c, a1, a2, b],
      [c, a1, b],
      [c, a2, b],
    ]);
  });

  it('testBeginWithAtLeastOne: a+ (combinations) at the start', () => {
    const s1 = ev('s1', 'a', 2.0);
    const s2 = ev('s2', 'a', 3.0);
    const s3 = ev('s3', 'a', 4.0);
    const pattern = P.begin('start').where(named('a')).oneOrMore().allowCombinations().followedBy('end').where(named('b'));
    const records: Rec[] = [
      [s1, 3],
      [s2, 4],
      [s3, 5],
      [b, 6],
    ];
    expectPatterns(feed(pattern, records), [[s1, s2, s3, b], [s1, s2, b], [s1, s3, b], [s2, s3, b], [s1, b], [s2, b], [s3, b]]);
  });

  it('testNextZeroOrMore: next() into an optional consecutive loop', () => {
    const startEvent = ev('start', 'start', 1.0);
    const endEvent = ev('end', 'end', 1.0);
    const pattern = P.begin('start')
      .where(named('start'))
      .next('middle')
      .where(named('middle'))
      .oneOrMore()
      .optional()
      .consecutive()
      .followedBy('end')
      .where(named('end'));
    const records: Rec[] = [
      [startEvent, 1],
      [ev('x', 'event', 1.0), 2],
      [ev('m1', 'middle', 2.0), 3],
      [ev('m2', 'middle', 3.0), 4],
      [ev('m3', 'middle', 4.0), 5],
      [endEvent, 6],
    ];
    expectPatterns(feed(pattern, records), [[startEvent, endEvent]]);
  });

  it('testAtLeastOneEager: followedByAny a+ (relaxed inside) followedByAny b', () => {
    const pattern = P.begin('start').where(named('c')).followedByAny('middle').where(named('a')).oneOrMore().followedByAny('end1').where(named('b'));
    const records: Rec[] = [
      [c, 1],
      [a1, 3],
      [a2, 4],
      [a3, 5],
      [b, 6],
    ];
    expectPatterns(feed(pattern, records), [
      [c, a1, a2, a3, b],
      [c, a1, a2, b],
      [c, a2, a3, b],
      [c, a3, b],
      [c, a2, b],
      [c, a1, b],
    ]);
  });

  it('testOptional / testStartWithOptional / testEndWithOptional', () => {
    const middle = ev('middle', 'a', 4.0);
    const mid = P.begin('start').where(named('c')).followedBy('middle').where(named('a')).optional().followedBy('end1').where(named('b'));
    expectPatterns(
      feed(mid, [
        [c, 1],
        [middle, 5],
        [b, 6],
      ]),
      [
        [c, middle, b],
        [c, b],
      ],
    );
    const atStart = P.begin('start').where(named('c')).optional().followedBy('end1').where(named('b'));
    expectPatterns(
      feed(atStart, [
        [c, 1],
        [b, 6],
      ]),
      [[c, b], [b]],
    );
    const atEnd = P.begin('start').where(named('c')).followedBy('middle').where(named('a')).optional();
    expectPatterns(
      feed(atEnd, [
        [c, 1],
        [a1, 3],
      ]),
      [[c, a1], [c]],
    );
  });

  it('testEndWithZeroOrMore / testEndWithOneOrMore / testStartAndEndWithZeroOrMore', () => {
    const records: Rec[] = [
      [c, 1],
      [a1, 3],
      [a2, 4],
      [a3, 5],
    ];
    const zeroOrMore = P.begin('start').where(named('c')).followedBy('middle').where(named('a')).oneOrMore().optional();
    expectPatterns(feed(zeroOrMore, records), [[c, a1, a2, a3], [c, a1, a2], [c, a1], [c]]);
    const oneOrMore = P.begin('start').where(named('c')).followedBy('middle').where(named('a')).oneOrMore();
    expectPatterns(feed(oneOrMore, records), [
      [c, a1, a2, a3],
      [c, a1, a2],
      [c, a1],
    ]);
    const d1 = ev('d1', 'd', 5.0);
    const startAndEnd = P.begin('start').where(named('a')).oneOrMore().optional();
    expectPatterns(feed(startAndEnd, [...records, [d1, 6], [ev('d2', 'd', 5.0), 6], [ev('d3', 'd', 5.0), 6]]), [[a1, a2, a3], [a1, a2], [a1], [a2, a3], [a2], [a3]]);
  });
});

describe('NFAITCase: times', () => {
  const { startEvent, middleEvent1, middleEvent2, middleEvent3, end } = C;

  it('testTimes: next a{2} with combinations', () => {
    const pattern = P.begin('start').where(named('c')).next('middle').where(named('a')).times(2).allowCombinations().followedBy('end1').where(named('b'));
    const records: Rec[] = [
      [startEvent, 1],
      [middleEvent1, 2],
      [middleEvent2, 3],
      [middleEvent3, 4],
      [end, 6],
    ];
    expectPatterns(feed(pattern, records), [
      [startEvent, middleEvent1, middleEvent2, end],
      [startEvent, middleEvent1, middleEvent3, end],
    ]);
  });

  it('testStartWithTimes: a{2} consecutive at the start', () => {
    const pattern = P.begin('middle').where(named('a')).times(2).consecutive().followedBy('end1').where(named('b'));
    const records: Rec[] = [
      [middleEvent1, 2],
      [middleEvent2, 3],
      [middleEvent3, 4],
      [end, 6],
    ];
    expectPatterns(feed(pattern, records), [
      [middleEvent1, middleEvent2, end],
      [middleEvent2, middleEvent3, end],
    ]);
  });

  const withGaps: Rec[] = [
    [startEvent, 1],
    [middleEvent1, 2],
    [f('f1'), 3],
    [middleEvent2, 4],
    [f('f2'), 5],
    [middleEvent3, 6],
    [end, 7],
  ];

  it('testTimesNonStrictWithNext', () => {
    const pattern = P.begin('start').where(named('c')).next('middle').where(named('a')).times(2).allowCombinations().followedBy('end1').where(named('b'));
    expectPatterns(feed(pattern, withGaps), [
      [startEvent, middleEvent1, middleEvent2, end],
      [startEvent, middleEvent1, middleEvent3, end],
    ]);
  });

  it('testTimesStrictWithNextAndConsecutive: a gap breaks a consecutive times()', () => {
    const pattern = P.begin('start').where(named('c')).next('middle').where(named('a')).times(2).consecutive().followedBy('end1').where(named('b'));
    const records: Rec[] = [
      [startEvent, 1],
      [middleEvent1, 2],
      [f('f1'), 3],
      [middleEvent2, 4],
      [middleEvent3, 6],
      [end, 7],
    ];
    expectPatterns(feed(pattern, records), []);
  });

  it('testTimesNotStrictWithFollowedByEager / NotEager', () => {
    const records: Rec[] = [
      [startEvent, 1],
      [middleEvent1, 2],
      [middleEvent2, 4],
      [middleEvent3, 6],
      [end, 7],
    ];
    const eager = P.begin('start').where(named('c')).followedBy('middle').where(named('a')).times(2).followedBy('end1').where(named('b'));
    expectPatterns(feed(eager, records), [[startEvent, middleEvent1, middleEvent2, end]]);
    const notEager = P.begin('start').where(named('c')).followedByAny('middle').where(named('a')).times(2).allowCombinations().followedBy('end1').where(named('b'));
    expectPatterns(feed(notEager, records), [
      [startEvent, middleEvent1, middleEvent2, end],
      [startEvent, middleEvent3, middleEvent2, end],
      [startEvent, middleEvent3, middleEvent1, end],
    ]);
  });

  const gapsAtStart: Rec[] = [
    [startEvent, 1],
    [f('f1'), 2],
    [middleEvent1, 3],
    [f('f2'), 4],
    [middleEvent2, 5],
    [middleEvent3, 6],
    [end, 7],
  ];

  it('testTimesStrict / testTimesNonStrict', () => {
    const strict = P.begin('start').where(named('c')).followedByAny('middle').where(named('a')).times(2).consecutive().followedBy('end1').where(named('b'));
    expectPatterns(feed(strict, gapsAtStart), [[startEvent, middleEvent2, middleEvent3, end]]);
    const nonStrict = P.begin('start').where(named('c')).followedByAny('middle').where(named('a')).times(2).allowCombinations().followedBy('end1').where(named('b'));
    expectPatterns(feed(nonStrict, gapsAtStart), [
      [startEvent, middleEvent1, middleEvent2, end],
      [startEvent, middleEvent1, middleEvent3, end],
      [startEvent, middleEvent2, middleEvent3, end],
    ]);
  });

  it('testTimesNonStrictOptional1/2/3', () => {
    const o1 = P.begin('start').where(named('c')).followedBy('middle').where(named('a')).times(3).optional().followedBy('end1').where(named('b'));
    expectPatterns(
      feed(o1, [
        [startEvent, 1],
        [f('f1'), 2],
        [end, 7],
      ]),
      [[startEvent, end]],
    );
    const o2 = P.begin('start').where(named('c')).followedByAny('middle').where(named('a')).times(2).allowCombinations().optional().followedBy('end1').where(named('b'));
    expectPatterns(feed(o2, gapsAtStart), [
      [startEvent, middleEvent1, middleEvent2, end],
      [startEvent, middleEvent1, middleEvent3, end],
      [startEvent, middleEvent2, middleEvent3, end],
      [startEvent, end],
    ]);
    const o3 = P.begin('start').where(named('c')).followedByAny('middle').where(named('a')).times(2).optional().followedBy('end1').where(named('b'));
    expectPatterns(feed(o3, gapsAtStart), [
      [startEvent, middleEvent1, middleEvent2, end],
      [startEvent, middleEvent2, middleEvent3, end],
      [startEvent, end],
    ]);
  });

  it('testTimesStrictOptional / testOneOrMoreStrictOptional', () => {
    const times = P.begin('start').where(named('c')).followedByAny('middle').where(named('a')).times(2).consecutive().optional().followedBy('end1').where(named('b'));
    expectPatterns(feed(times, gapsAtStart), [
      [startEvent, middleEvent2, middleEvent3, end],
      [startEvent, end],
    ]);
    const loop = P.begin('start').where(named('c')).followedByAny('middle').where(named('a')).oneOrMore().consecutive().optional().followedBy('end1').where(named('b'));
    expectPatterns(feed(loop, gapsAtStart), [
      [startEvent, middleEvent2, middleEvent3, end],
      [startEvent, middleEvent1, end],
      [startEvent, middleEvent2, end],
      [startEvent, middleEvent3, end],
      [startEvent, end],
    ]);
  });

  it('testTimesStrictOptional1 / testOptionalTimesNonStrictWithNext', () => {
    const strict = P.begin('start').where(named('c')).next('middle').where(named('a')).times(2).consecutive().optional().followedBy('end1').where(named('b'));
    expectPatterns(
      feed(strict, [
        [startEvent, 1],
        [middleEvent1, 3],
        [middleEvent2, 5],
        [middleEvent3, 6],
        [end, 7],
      ]),
      [
        [startEvent, middleEvent1, middleEvent2, end],
        [startEvent, end],
      ],
    );
    const nonStrict = P.begin('start').where(named('c')).next('middle').where(named('a')).times(2).allowCombinations().optional().followedBy('end1').where(named('b'));
    expectPatterns(feed(nonStrict, withGaps), [
      [startEvent, middleEvent1, middleEvent2, end],
      [startEvent, middleEvent1, middleEvent3, end],
      [startEvent, end],
    ]);
  });
});

describe('NFAITCase: inner contiguity of oneOrMore', () => {
  const { startEvent, middleEvent1, middleEvent2, middleEvent3, middleEvent4, end } = C;
  const records: Rec[] = [
    [startEvent, 1],
    [d('d1'), 2],
    [middleEvent1, 3],
    [middleEvent2, 4],
    [middleEvent3, 4],
    [d('d2'), 5],
    [middleEvent4, 6],
    [end, 7],
  ];
  const oneOrMore = (inner: 'strict' | 'relaxed' | 'nondeterministic', optional: boolean) => {
    let p = P.begin('start').where(named('c')).followedBy('middle').where(named('a')).oneOrMore();
    if (optional) p = p.optional();
    if (inner === 'strict') p = p.consecutive();
    if (inner === 'nondeterministic') p = p.allowCombinations();
    return p.followedBy('end1').where(named('b'));
  };

  it('testStrictOneOrMore', () => {
    expectPatterns(feed(oneOrMore('strict', false), records), [
      [startEvent, middleEvent1, middleEvent2, middleEvent3, end],
      [startEvent, middleEvent1, middleEvent2, end],
      [startEvent, middleEvent1, end],
    ]);
  });

  it('testSkipTillNextOneOrMore', () => {
    expectPatterns(feed(oneOrMore('relaxed', false), records), [
      [startEvent, middleEvent1, middleEvent2, middleEvent3, middleEvent4, end],
      [startEvent, middleEvent1, middleEvent2, middleEvent3, end],
      [startEvent, middleEvent1, middleEvent2, end],
      [startEvent, middleEvent1, end],
    ]);
  });

  it('testSkipTillAnyOneOrMore', () => {
    expectPatterns(feed(oneOrMore('nondeterministic', false), records), [
      [startEvent, middleEvent1, middleEvent2, middleEvent3, middleEvent4, end],
      [startEvent, middleEvent1, middleEvent3, middleEvent4, end],
      [startEvent, middleEvent1, middleEvent2, middleEvent3, end],
      [startEvent, middleEvent1, middleEvent2, middleEvent4, end],
      [startEvent, middleEvent1, middleEvent2, end],
      [startEvent, middleEvent1, middleEvent3, end],
      [startEvent, middleEvent1, middleEvent4, end],
      [startEvent, middleEvent1, end],
    ]);
  });

  it('testStrictEagerZeroOrMore / testSkipTillNextZeroOrMore / testSkipTillAnyZeroOrMore', () => {
    expectPatterns(feed(oneOrMore('strict', true), records), [
      [startEvent, middleEvent1, middleEvent2, middleEvent3, end],
      [startEvent, middleEvent1, middleEvent2, end],
      [startEvent, middleEvent1, end],
      [startEvent, end],
    ]);
    expectPatterns(feed(oneOrMore('relaxed', true), records), [
      [startEvent, middleEvent1, middleEvent2, middleEvent3, middleEvent4, end],
      [startEvent, middleEvent1, middleEvent2, middleEvent3, end],
      [startEvent, middleEvent1, middleEvent2, end],
      [startEvent, middleEvent1, end],
      [startEvent, end],
    ]);
    expectPatterns(feed(oneOrMore('nondeterministic', true), records), [
      [startEvent, middleEvent1, middleEvent2, middleEvent3, middleEvent4, end],
      [startEvent, middleEvent1, middleEvent2, middleEvent4, end],
      [startEvent, middleEvent1, middleEvent3, middleEvent4, end],
      [startEvent, middleEvent1, middleEvent4, end],
      [startEvent, middleEvent1, middleEvent2, middleEvent3, end],
      [startEvent, middleEvent1, middleEvent2, end],
      [startEvent, middleEvent1, middleEvent3, end],
      [startEvent, middleEvent1, end],
      [startEvent, end],
    ]);
  });

  it('testStartWithOneOrMoreStrict / testStartWithZeroOrMoreStrict', () => {
    const input: Rec[] = [
      [startEvent, 1],
      [middleEvent1, 3],
      [ev('start2', 'c', 1.0), 4],
      [middleEvent2, 5],
      [middleEvent3, 6],
    ];
    const expected = [[middleEvent1], [middleEvent2, middleEvent3], [middleEvent2], [middleEvent3]];
    expectPatterns(feed(P.begin('start').where(named('a')).oneOrMore().consecutive(), input), expected);
    expectPatterns(feed(P.begin('start').where(named('a')).oneOrMore().optional().consecutive(), input), expected);
  });
});

describe('NFAITCase: results', () => {
  it('testNFAResultOrdering: events of a stage come oldest first', () => {
    const s = ['a-1', 'a-2', 'a-3', 'a-4'].map((n, i) => ev(`s${i + 1}`, n, i + 2));
    const e = ['b-1', 'b-2', 'b-3'].map((n, i) => ev(`e${i + 1}`, n, i + 6));
    const pattern = P.begin('start')
      .where((x) => x.type.startsWith('a-'))
      .times(4)
      .allowCombinations()
      .followedByAny('middle')
      .where((x) => x.type.startsWith('b-'))
      .times(3)
      .consecutive();
    const records: Rec[] = [
      [s[0]!, 1],
      [s[1]!, 3],
      [s[2]!, 4],
      [s[3]!, 5],
      [e[0]!, 6],
      [e[1]!, 7],
      [e[2]!, 10],
    ];
    const { matches } = run(pattern, records);
    expect(matches.map(byStage)).toEqual([{ start: ['s1', 's2', 's3', 's4'], middle: ['e1', 'e2', 'e3'] }]);
    expect(matches[0]!.firstTimestamp).toBe(1);
    expect(matches[0]!.lastTimestamp).toBe(10);
  });

  it('testNFAResultKeyOrdering: stage names come in pattern order', () => {
    const names = ['a', 'b', 'aa', 'bb', 'ab'];
    let pattern = P.begin('a').where(named('a'));
    for (const n of names.slice(1)) pattern = pattern.next(n).where(named(n));
    const records = names.map((n, i) => [ev(n, n, i + 2), [1, 3, 4, 5, 6][i]!] as const);
    const { matches } = run(pattern, records);
    expect(matches).toHaveLength(1);
    expect(Object.keys(matches[0]!.events)).toEqual(names);
  });

  it('testMultipleTakesVersionCollision: two combination loops over the same events', () => {
    const c = ev('c', 'c', 1.0);
    const m = [1, 2, 3, 4, 5].map((i) => ev(`m${i}`, 'a', i + 1));
    const end = ev('end', 'b', 5.0);
    const pattern = P.begin('start')
      .where(named('c'))
      .followedBy('middle1')
      .where(named('a'))
      .oneOrMore()
      .allowCombinations()
      .followedBy('middle2')
      .where(named('a'))
      .oneOrMore()
      .allowCombinations()
      .followedBy('end')
      .where(named('b'));
    const records: Rec[] = [[c, 1], ...m.map((x, i) => [x, i + 3] as const), [end, 10]];
    const matches = feed(pattern, records);
    // Flink lists these 20 matches explicitly (several with the same events, split
    // differently between middle1 and middle2). They are: m1 plus any subset of m2..m5,
    // cut into a non-empty middle1 and middle2, where middle2 begins with the event right
    // after middle1's last one (middle2 is relaxed and every event in between is an `a`).
    const [m1, m2, m3, m4, m5] = m as [typeof c, typeof c, typeof c, typeof c, typeof c];
    const expected: (typeof c)[][] = [];
    for (const rest of subsets([m2, m3, m4, m5])) {
      const chosen = [m1, ...rest];
      for (let cut = 1; cut < chosen.length; cut++) {
        // middle2 is relaxed too: it starts at the first `a` after middle1's last taken event.
        const first2 = m.indexOf(chosen[cut - 1]!) + 1;
        if (chosen[cut] !== m[first2]) continue;
        expected.push([c, ...chosen, end]);
      }
    }
    expectPatterns(matches, expected);
    expect(matches).toHaveLength(20);
  });
});

function subsets<T>(items: readonly T[]): T[][] {
  const out: T[][] = [];
  for (let mask = 0; mask < 1 << items.length; mask++) out.push(items.filter((_, i) => (mask & (1 << i)) !== 0));
  return out;
}

describe('NFAITCase: windows', () => {
  it('testSimplePatternWithTimeWindowNFA: events outside the window do not match', () => {
    const startEvent = ev('start2', 'start', 1.0);
    const middleEvent = ev('middle', 'middle', 1.0);
    const endEvent = ev('end', 'end', 1.0);
    const records: Rec[] = [
      [ev('start1', 'start', 1.0), 1],
      [startEvent, 2],
      [middleEvent, 3],
      [ev('foobar', 'foobar', 1.0), 4],
      [endEvent, 11],
      [ev('end2', 'end', 1.0), 13],
    ];
    const pattern = P.begin('start').where(named('start')).followedBy('middle').where(named('middle')).followedBy('end').where(named('end')).within(10);
    expectPatterns(feed(pattern, records), [[startEvent, middleEvent, endEvent]]);
  });

  it('testSimplePatternWithTimeoutHandling: timed-out partial matches carry start + window', () => {
    const s1 = ev('s1', 'start', 1.0);
    const s2 = ev('s2', 'start', 1.0);
    const m = ev('m', 'middle', 1.0);
    const records: Rec[] = [
      [s1, 1],
      [s2, 2],
      [m, 3],
      [ev('foobar', 'foobar', 1.0), 4],
      [ev('e1', 'end', 1.0), 11],
      [ev('e2', 'end', 1.0), 13],
    ];
    const pattern = P.begin('start').where(named('start')).followedByAny('middle').where(named('middle')).followedByAny('end').where(named('end')).within(10);
    const { matches, timeouts } = run(pattern, records);
    expect(matches).toHaveLength(1);
    const got = timeouts.map((t) => ({ events: byStage(t), at: t.timeoutTimestamp }));
    expect(got).toHaveLength(4);
    expect(got).toEqual(
      expect.arrayContaining([
        { events: { start: ['s1'], middle: ['m'] }, at: 11 },
        { events: { start: ['s2'], middle: ['m'] }, at: 12 },
        { events: { start: ['s1'] }, at: 11 },
        { events: { start: ['s2'] }, at: 12 },
      ]),
    );
  });

  it('testTimesClearingBuffer / testOptionalClearingBuffer / testAtLeastOneClearingBuffer / testZeroOrMoreClearingBuffer: state is empty after the window', () => {
    const c = ev('c', 'c', 1.0);
    const m1 = ev('m1', 'a', 2.0);
    const m2 = ev('m2', 'a', 3.0);
    const m3 = ev('m3', 'a', 4.0);
    const b = ev('b', 'b', 5.0);
    const cases: [P, Rec[]][] = [
      [
        P.begin('start').where(named('c')).next('middle').where(named('a')).times(2).followedBy('end1').where(named('b')).within(8),
        [
          [c, 1],
          [m1, 2],
          [m2, 3],
          [m3, 4],
          [b, 6],
        ],
      ],
      [
        P.begin('start').where(named('c')).followedBy('middle').where(named('a')).optional().followedBy('end1').where(named('b')).within(8),
        [
          [c, 1],
          [m3, 5],
          [b, 6],
        ],
      ],
      [
        P.begin('start').where(named('c')).followedBy('middle').where(named('a')).oneOrMore().allowCombinations().followedBy('end1').where(named('b')).within(8),
        [
          [c, 1],
          [m1, 3],
          [m2, 4],
          [b, 6],
        ],
      ],
      [
        P.begin('start').where(named('c')).followedBy('middle').where(named('a')).oneOrMore().allowCombinations().optional().followedBy('end1').where(named('b')).within(8),
        [
          [c, 1],
          [m1, 3],
          [m2, 4],
          [b, 6],
        ],
      ],
    ];
    for (const [pattern, records] of cases) {
      const nfa = pattern.compile();
      const { state } = run(nfa, records);
      // Flink: nfa.advanceTime(..., 10) leaves only the start state.
      const after = nfa.advanceTime(state, 10);
      expect(after.state).toBeUndefined();
      expect(nfa.isEmpty(after.state)).toBe(true);
    }
  });
});

