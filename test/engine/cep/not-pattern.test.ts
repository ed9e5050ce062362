import { describe, expect, it } from 'vitest';
import { P, byStage, ev, expectPatterns, feed, named, run, skip, type Rec } from './harness.js';

// Scenarios ported from flink-cep NotPatternITCase (notNext / notFollowedBy), including the
// Flink 1.16+ "notFollowedBy at the end with within" tests.

const seq = (...events: ReturnType<typeof ev>[]): Rec[] => events.map((e, i) => [e, i + 1] as const);

describe('NotPatternITCase: notNext', () => {
  it('testNotNext: the event right after `a` must not be `b`', () => {
    const a1 = ev('a1', 'a', 1.0);
    const c1 = ev('c1', 'c', 2.0);
    const b1 = ev('b1', 'b', 3.0);
    const c2 = ev('c2', 'c', 4.0);
    const d = ev('d', 'd', 4.0);
    const pattern = P.begin('start').where(named('a')).notNext('notPattern').where(named('b')).followedByAny('middle').where(named('c')).followedBy('end').where(named('d'));
    expectPatterns(feed(pattern, seq(a1, c1, b1, c2, d)), [
      [a1, c1, d],
      [a1, c2, d],
    ]);
  });

  it('testNotNextNoMatches: a `b` right after `a` kills the match', () => {
    const pattern = P.begin('start').where(named('a')).notNext('notPattern').where(named('b')).followedBy('middle').where(named('c')).followedBy('end').where(named('d'));
    const events = seq(ev('a1', 'a', 1.0), ev('b1', 'b', 3.0), ev('c1', 'c', 2.0), ev('c2', 'c', 4.0), ev('d', 'd', 4.0));
    expect(feed(pattern, events)).toHaveLength(0);
  });

  it('testNotNextNoMatchesAtTheEnd: a trailing notNext is decided by the next event', () => {
    const pattern = P.begin('start')
      .where(named('a'))
      .followedByAny('middle')
      .where(named('c'))
      .followedByAny('end')
      .where(named('d'))
      .notNext('notPattern')
      .where(named('b'));
    const events = seq(ev('a1', 'a', 1.0), ev('c1', 'c', 2.0), ev('c2', 'c', 4.0), ev('d', 'd', 4.0), ev('b1', 'b', 3.0));
    expect(feed(pattern, events)).toHaveLength(0);
  });

  it('a trailing notNext matches on the next event that is not forbidden (Flink: IGNORE into the final state)', () => {
    // Same pattern as testNotNextNoMatchesAtTheEnd, followed by a harmless event instead of `b`.
    const pattern = P.begin('start').where(named('a')).followedBy('end').where(named('d')).notNext('notPattern').where(named('b'));
    const a1 = ev('a1', 'a');
    const d = ev('d', 'd');
    const { matches } = run(pattern, seq(a1, d, ev('x', 'x')));
    expect(matches.map(byStage)).toEqual([{ start: ['a1'], end: ['d'] }]);
  });
});

describe('NotPatternITCase: notFollowedBy in the middle', () => {
  const a1 = ev('a1', 'a', 1.0);
  const c1 = ev('c1', 'c', 2.0);
  const b1 = ev('b1', 'b', 3.0);
  const c2 = ev('c2', 'c', 4.0);
  const d = ev('d', 'd', 4.0);

  it('testNotFollowedBy', () => {
    const pattern = P.begin('start').where(named('a')).notFollowedBy('notPattern').where(named('b')).followedByAny('middle').where(named('c')).followedBy('end').where(named('d'));
    expectPatterns(feed(pattern, seq(a1, c1, b1, c2, d)), [[a1, c1, d]]);
  });

  it('testNotFollowedByBeforeOptional', () => {
    const pattern = P.begin('start')
      .where(named('a'))
      .notFollowedBy('notPattern')
      .where(named('b'))
      .followedByAny('middle')
      .where(named('c'))
      .optional()
      .followedBy('end')
      .where(named('d'));
    expectPatterns(feed(pattern, seq(a1, c1, b1, c2, d)), [[a1, c1, d]]);
  });

  it('testNotFollowedByBeforeOptionalAtTheEnd', () => {
    const pattern = P.begin('start').where(named('a')).notFollowedBy('notPattern').where(named('b')).followedByAny('end').where(named('c')).optional();
    expectPatterns(feed(pattern, seq(a1, c1, b1, c2)), [[a1, c1], [a1]]);
  });

  it('testNotFollowedByBeforeOptionalTimes', () => {
    const pattern = P.begin('start')
      .where(named('a'))
      .notFollowedBy('notPattern')
      .where(named('b'))
      .followedByAny('middle')
      .where(named('c'))
      .times(2)
      .optional()
      .followedBy('end')
      .where(named('d'));
    expectPatterns(feed(pattern, seq(a1, c1, b1, c2, d)), [[a1, c1, c2, d]]);
  });

  it('testTimesWithNotFollowedBy / testTimesWithNotFollowedByAfter', () => {
    const pattern = P.begin('start')
      .where(named('a'))
      .followedByAny('middle')
      .where(named('b'))
      .times(2)
      .notFollowedBy('notPattern')
      .where(named('c'))
      .followedBy('end')
      .where(named('d'));
    const b1x = ev('b1', 'b', 2.0);
    const c = ev('c', 'c', 3.0);
    const b2 = ev('b2', 'b', 4.0);
    expectPatterns(feed(pattern, seq(a1, b1x, c, b2, d)), []);
    // testTimesWithNotFollowedByAfter feeds out-of-order timestamps; the NFA takes them as given.
    const records: Rec[] = [
      [a1, 1],
      [ev('d1', 'd', 7.0), 2],
      [ev('e', 'e', 2.0), 1],
      [ev('b1', 'b', 4.0), 3],
      [ev('b2', 'b', 5.0), 3],
      [ev('c1', 'c', 3.0), 2],
      [ev('d2', 'd', 8.0), 5],
    ];
    expectPatterns(feed(pattern, records), []);
  });

  it('testIgnoreStateOfTimesWithNotFollowedBy', () => {
    const d1 = ev('d1', 'd', 6.0);
    const pattern = P.begin('start')
      .where(named('a'))
      .notFollowedBy('notPattern')
      .where(named('b'))
      .followedByAny('middle')
      .where(named('c'))
      .times(2)
      .optional()
      .followedBy('end')
      .where(named('d'));
    const records: Rec[] = [
      [a1, 1],
      [d1, 2],
      [ev('e', 'e', 2.0), 1],
      [ev('b1', 'b', 4.0), 3],
      [ev('c1', 'c', 3.0), 2],
      [ev('c2', 'c', 5.0), 4],
      [ev('d2', 'd', 7.0), 5],
    ];
    expectPatterns(feed(pattern, records), [[a1, d1]]);
  });

  it('testNotFollowedByWithBranchingAtStart', () => {
    const a2 = ev('a2', 'a', 4.0);
    const c2x = ev('c2', 'c', 5.0);
    const dx = ev('d', 'd', 6.0);
    const pattern = P.begin('start').where(named('a')).notFollowedBy('notPattern').where(named('b')).followedBy('middle').where(named('c')).followedBy('end').where(named('d'));
    expectPatterns(feed(pattern, seq(a1, ev('b1', 'b', 3.0), ev('c1', 'c', 2.0), a2, c2x, dx)), [[a2, c2x, dx]]);
  });
});

/** NotPatternITCase.NotFollowByData */
const N = {
  A_1: ev('A_1', 'a', 1.0),
  B_1: ev('B_1', 'b', 2.0),
  B_2: ev('B_2', 'b', 3.0),
  B_3: ev('B_3', 'b', 4.0),
  C_1: ev('C_1', 'c', 5.0),
  B_4: ev('B_4', 'b', 6.0),
  B_5: ev('B_5', 'b', 7.0),
  B_6: ev('B_6', 'b', 8.0),
  D_1: ev('D_1', 'd', 9.0),
};
const from0 = (...events: ReturnType<typeof ev>[]): Rec[] => events.map((e, i) => [e, i] as const);

describe('NotPatternITCase: negations around oneOrMore', () => {
  const { A_1, B_1, B_2, B_3, C_1, B_4, B_5, B_6, D_1 } = N;

  const notNextAfterOneOrMore = (allMatches: boolean) => {
    const base = P.begin('a').where(named('a'));
    return feed(
      (allMatches ? base.followedByAny('b*') : base.followedBy('b*'))
        .where(named('b'))
        .oneOrMore()
        .notNext('not c')
        .where(named('c'))
        .followedBy('d')
        .where(named('d')),
      from0(A_1, B_1, C_1, B_2, D_1),
    );
  };

  it('testNotNextAfterOneOrMoreSkipTillNext / SkipTillAny', () => {
    expect(notNextAfterOneOrMore(false)).toHaveLength(0);
    expectPatterns(notNextAfterOneOrMore(true), [[A_1, B_2, D_1]]);
  });

  const notFollowedByAfterOneOrMore = (eager: boolean, allMatches: boolean) => {
    const base = P.begin('a').where(named('a'));
    let p = (allMatches ? base.followedByAny('b*') : base.followedBy('b*')).where(named('b')).oneOrMore();
    if (!eager) p = p.allowCombinations();
    return feed(p.notFollowedBy('not c').where(named('c')).followedBy('d').where(named('d')), from0(A_1, B_1, B_2, B_3, C_1, B_4, B_5, B_6, D_1));
  };

  it('testNotFollowedByNextAfterOneOrMoreEager / Combinations: no match', () => {
    expect(notFollowedByAfterOneOrMore(true, false)).toHaveLength(0);
    expect(notFollowedByAfterOneOrMore(false, false)).toHaveLength(0);
  });

  it('testNotFollowedByAnyAfterOneOrMoreEager', () => {
    expectPatterns(notFollowedByAfterOneOrMore(true, true), [
      [A_1, B_4, B_5, B_6, D_1],
      [A_1, B_4, B_5, D_1],
      [A_1, B_4, D_1],
      [A_1, B_5, B_6, D_1],
      [A_1, B_5, D_1],
      [A_1, B_6, D_1],
    ]);
  });

  it('testNotFollowedByAnyAfterOneOrMoreCombinations', () => {
    expectPatterns(notFollowedByAfterOneOrMore(false, true), [
      [A_1, B_4, B_5, B_6, D_1],
      [A_1, B_4, B_5, D_1],
      [A_1, B_4, B_6, D_1],
      [A_1, B_4, D_1],
      [A_1, B_5, B_6, D_1],
      [A_1, B_5, D_1],
      [A_1, B_6, D_1],
    ]);
  });

  const notFollowedByBefore = (eager: boolean, allMatches: boolean, optional: boolean) => {
    const base = P.begin('a').where(named('a')).notFollowedBy('not c').where(named('c'));
    let p = (allMatches ? base.followedByAny('b*') : base.followedBy('b*')).where(named('b')).oneOrMore();
    if (optional) p = p.optional();
    if (!eager) p = p.allowCombinations();
    return feed(p.followedBy('d').where(named('d')), from0(A_1, B_1, C_1, B_4, B_5, B_6, D_1));
  };
  const eagerExpected = [
    [A_1, B_1, B_4, B_5, B_6, D_1],
    [A_1, B_1, B_4, B_5, D_1],
    [A_1, B_1, B_4, D_1],
    [A_1, B_1, D_1],
  ];
  const combinationsExpected = [
    [A_1, B_1, B_4, B_5, B_6, D_1],
    [A_1, B_1, B_4, B_6, D_1],
    [A_1, B_1, B_4, B_5, D_1],
    [A_1, B_1, B_4, D_1],
    [A_1, B_1, B_5, B_6, D_1],
    [A_1, B_1, B_5, D_1],
    [A_1, B_1, B_6, D_1],
    [A_1, B_1, D_1],
  ];

  it('testNotFollowedBy(Any)BeforeOneOrMoreEager / Combinations', () => {
    expectPatterns(notFollowedByBefore(true, true, false), eagerExpected);
    expectPatterns(notFollowedByBefore(false, true, false), combinationsExpected);
    expectPatterns(notFollowedByBefore(true, false, false), eagerExpected);
    expectPatterns(notFollowedByBefore(false, false, false), combinationsExpected);
  });

  it('testNotFollowedByBeforeZeroOrMore{Eager,Combinations}{SkipTillNext,SkipTillAny}', () => {
    expectPatterns(notFollowedByBefore(true, false, true), eagerExpected);
    expectPatterns(notFollowedByBefore(false, false, true), combinationsExpected);
    expectPatterns(notFollowedByBefore(true, true, true), eagerExpected);
    expectPatterns(notFollowedByBefore(false, true, true), combinationsExpected);
  });
});

describe('NotPatternITCase: notFollowedBy with within (Flink 1.16+)', () => {
  it('testNotFollowedByWithinFirstAndLastAtEnd: the absence is decided when the window elapses', () => {
    const a1 = ev('a1', 'a', 1.0);
    const a2 = ev('a2', 'a', 3.0);
    const a3 = ev('a3', 'a', 7.0);
    const records: Rec[] = [
      [a1, 1],
      [ev('b1', 'b', 2.0), 2],
      [a2, 4],
      [ev('c', 'c', 4.0), 5],
      [ev('b2', 'b', 5.0), 10],
      [a3, 11],
      [ev('b3', 'b', 8.0), 13],
    ];
    const pattern = P.begin('a').where(named('a')).notFollowedBy('b').where(named('b')).within(3);
    const { matches } = run(pattern, records);
    expectPatterns(matches.map((m) => Object.values(m.events).flat()), [[a2]]);
    // a2 (at 4) is emitted when time reaches 4 + 3 = 7, i.e. before b2 (at 10) is processed.
    expect(matches[0]!.firstTimestamp).toBe(4);
  });

  it('testNotFollowByBeforeTimesWithin', () => {
    const a1 = ev('a1', 'a', 1.0);
    const a2 = ev('a2', 'a', 3.0);
    const c1 = ev('c1', 'c', 4.0);
    const c2 = ev('c2', 'c', 5.0);
    const a3 = ev('a3', 'a', 7.0);
    const c3 = ev('c3', 'c', 8.0);
    const records: Rec[] = [
      [a1, 1],
      [ev('b1', 'b', 2.0), 2],
      [a2, 10],
      [c1, 11],
      [c2, 12],
      [a3, 20],
      [c3, 21],
      [ev('c4', 'c', 8.0), 24],
    ];
    const pattern = P.begin('a').where(named('a')).notFollowedBy('b').where(named('b')).followedBy('c').where(named('c')).times(0, 2).within(3);
    expectPatterns(feed(pattern, records), [[a1], [a2], [a2, c1], [a2, c1, c2], [a3], [a3, c3]]);
  });

  it('testNotFollowedByWithinAtEndAfterMatch: skipPastLastEvent over pending absences', () => {
    const a1 = ev('a1', 'a', 1.0);
    const a2 = ev('a2', 'a', 2.0);
    const a3 = ev('a3', 'a', 3.0);
    const c1 = ev('c1', 'c', 4.0);
    const records: Rec[] = [
      [a1, 1],
      [a2, 2],
      [a3, 3],
      [c1, 4],
      [ev('c2', 'c', 5.0), 10],
    ];
    const pattern = P.begin('a', skip.skipPastLastEvent())
      .where(named('a'))
      .oneOrMore()
      .allowCombinations()
      .followedBy('c')
      .where(named('c'))
      .notFollowedBy('b')
      .where(named('b'))
      .within(5);
    expectPatterns(feed(pattern, records), [[a1, a2, a3, c1]]);
  });
});
