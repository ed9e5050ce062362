import { describe, expect, it } from 'vitest';
import { P, ev, expectPatterns, feed, inOrder, nameContains, named, priceOf, skip } from './harness.js';

// Scenarios ported from flink-cep AfterMatchSkipITCase. Flink feeds these records without
// timestamps; `inOrder` gives them increasing ones (no window is involved).

describe('AfterMatchSkipITCase', () => {
  const as = [1, 2, 3, 4, 5, 6].map((i) => ev(`a${i}`, 'a', 0.0));
  const [a1, a2, a3, a4, a5, a6] = as as [ReturnType<typeof ev>, ReturnType<typeof ev>, ReturnType<typeof ev>, ReturnType<typeof ev>, ReturnType<typeof ev>, ReturnType<typeof ev>];

  it('testNoSkip: a{3} over six a', () => {
    const pattern = P.begin('start', skip.noSkip()).where(named('a')).times(3);
    expectPatterns(feed(pattern, inOrder(...as)), [
      [a1, a2, a3],
      [a2, a3, a4],
      [a3, a4, a5],
      [a4, a5, a6],
    ]);
  });

  it('testSkipPastLast: a{3} over six a', () => {
    const pattern = P.begin('start', skip.skipPastLastEvent()).where(named('a')).times(3);
    expectPatterns(feed(pattern, inOrder(...as)), [
      [a1, a2, a3],
      [a4, a5, a6],
    ]);
  });

  describe('TwoVariablesFollowedByAny', () => {
    const x1 = ev('a1', 'a');
    const y1 = ev('b1', 'b');
    const x2 = ev('a2', 'a');
    const y2 = ev('b2', 'b');
    const compute = (strategy: ReturnType<typeof skip.noSkip>) =>
      feed(P.begin('start').where(named('a')).followedByAny('end').where(named('b')).compile({ skip: strategy }), inOrder(x1, y1, x2, y2));

    it('testNoSkipWithFollowedByAny', () => {
      expectPatterns(compute(skip.noSkip()), [
        [x1, y1],
        [x1, y2],
        [x2, y2],
      ]);
    });

    it('testSkipToNextWithFollowedByAny', () => {
      expectPatterns(compute(skip.skipToNext()), [
        [x1, y1],
        [x2, y2],
      ]);
    });
  });

  describe('QuantifierAtEndOfPattern', () => {
    const x1 = ev('a1', 'a');
    const b1 = ev('b1', 'b');
    const b2 = ev('b2', 'b');
    const b3 = ev('b3', 'b');
    const compute = (strategy: ReturnType<typeof skip.noSkip>) =>
      feed(P.begin('start').where(named('a')).next('end').where(named('b')).oneOrMore().compile({ skip: strategy }), inOrder(x1, b1, b2, b3));

    it('testNoSkipWithQuantifierAtTheEnd', () => {
      expectPatterns(compute(skip.noSkip()), [[x1, b1, b2, b3], [x1, b1, b2], [x1, b1]]);
    });

    it('testSkipToNextWithQuantifierAtTheEnd', () => {
      expectPatterns(compute(skip.skipToNext()), [[x1, b1]]);
    });
  });

  describe('skip to first / last', () => {
    const abs = [1, 2, 3, 4, 5, 6, 7].map((i) => ev(`ab${i}`, 'ab'));

    it('testSkipToFirst: a{2} next b{2}, skipToFirst("end")', () => {
      const pattern = P.begin('start', skip.skipToFirst('end')).where(nameContains('a')).times(2).next('end').where(nameContains('b')).times(2);
      const [ab1, ab2, ab3, ab4, ab5, ab6] = abs as [ReturnType<typeof ev>, ReturnType<typeof ev>, ReturnType<typeof ev>, ReturnType<typeof ev>, ReturnType<typeof ev>, ReturnType<typeof ev>];
      expectPatterns(feed(pattern, inOrder(...abs.slice(0, 6))), [
        [ab1, ab2, ab3, ab4],
        [ab3, ab4, ab5, ab6],
      ]);
    });

    it('testSkipToLast: a{2} next b{2}, skipToLast("end")', () => {
      const pattern = P.begin('start', skip.skipToLast('end')).where(nameContains('a')).times(2).next('end').where(nameContains('b')).times(2);
      const [ab1, ab2, ab3, ab4, ab5, ab6, ab7] = abs as [ReturnType<typeof ev>, ReturnType<typeof ev>, ReturnType<typeof ev>, ReturnType<typeof ev>, ReturnType<typeof ev>, ReturnType<typeof ev>, ReturnType<typeof ev>];
      expectPatterns(feed(pattern, inOrder(...abs)), [
        [ab1, ab2, ab3, ab4],
        [ab4, ab5, ab6, ab7],
      ]);
      void ab6;
    });

    it('testSkipToFirstWithOptionalMatch / testSkipToFirstAtStartPosition', () => {
      const ab1 = ev('ab1', 'ab1');
      const c1 = ev('c1', 'c1');
      const ab2 = ev('ab2', 'ab2');
      const c2 = ev('c2', 'c2');
      const withOptional = P.begin('x', skip.skipToFirst('b'))
        .where(nameContains('x'))
        .oneOrMore()
        .optional()
        .next('b')
        .where(nameContains('b'))
        .next('c')
        .where(nameContains('c'));
      expectPatterns(feed(withOptional, inOrder(ab1, c1, ab2, c2)), [
        [ab1, c1],
        [ab2, c2],
      ]);
      const atStart = P.begin('b', skip.skipToFirst('b')).where(nameContains('b')).next('c').where(nameContains('c'));
      expectPatterns(feed(atStart, inOrder(ab1, c1, ab2, c2)), [
        [ab1, c1],
        [ab2, c2],
      ]);
    });

    it('testSkipToFirstWithOneOrMore / testSkipToLastWithOneOrMore', () => {
      const x1 = ev('a1', 'a1');
      const b1 = ev('b1', 'b1');
      const x2 = ev('a2', 'a2');
      const b2 = ev('b2', 'b2');
      const b3 = ev('b3', 'b3');
      const x3 = ev('a3', 'a3');
      const b4 = ev('b4', 'b4');
      for (const strategy of [skip.skipToFirst('b'), skip.skipToLast('b')]) {
        const pattern = P.begin('a', strategy).where(nameContains('a')).next('b').where(nameContains('b')).oneOrMore().consecutive();
        expectPatterns(feed(pattern, inOrder(x1, b1, x2, b2, b3, x3, b4)), [
          [x1, b1],
          [x2, b2],
          [x3, b4],
        ]);
      }
    });

    it('testSkipToFirstNonExistentPositionWithoutException / testSkipToLastNonExistentPositionWithoutException: a missing stage means no skip', () => {
      const x = ev('a', 'a');
      const c = ev('c', 'c');
      for (const strategy of [skip.skipToFirst('b'), skip.skipToLast('b')]) {
        const pattern = P.begin('a').where(nameContains('a')).next('b').where(nameContains('b')).oneOrMore().optional().consecutive().next('c').where(nameContains('c'));
        expectPatterns(feed(pattern.compile({ skip: strategy }), inOrder(x, c)), [[x, c]]);
      }
    });
  });

  describe('examples from the Flink docs: a+ (consecutive, greedy) next b', () => {
    const x1 = ev('a1', 'a1');
    const x2 = ev('a2', 'a2');
    const x3 = ev('a3', 'a3');
    const b1 = ev('b1', 'b1');
    const compute = (strategy: ReturnType<typeof skip.noSkip>) =>
      feed(P.begin('a', strategy).where(nameContains('a')).oneOrMore().consecutive().greedy().next('b').where(nameContains('b')), inOrder(x1, x2, x3, b1));

    it('testSkipPastLastWithOneOrMoreAtBeginning', () => {
      expectPatterns(compute(skip.skipPastLastEvent()), [[x1, x2, x3, b1]]);
    });

    it('testSkipToLastWithOneOrMoreAtBeginning', () => {
      expectPatterns(compute(skip.skipToLast('a')), [
        [x1, x2, x3, b1],
        [x3, b1],
      ]);
    });

    it('testSkipToFirstWithOneOrMoreAtBeginning / testNoSkipWithOneOrMoreAtBeginning', () => {
      const all = [
        [x1, x2, x3, b1],
        [x2, x3, b1],
        [x3, b1],
      ];
      expectPatterns(compute(skip.skipToFirst('a')), all);
      expectPatterns(compute(skip.noSkip()), all);
    });
  });

  it('testSkipPastLast2: ties between matches that start at the same event', () => {
    const x1 = ev('a1', 'a1');
    const x2 = ev('a2', 'a2');
    const b1 = ev('b1', 'b1');
    const b2 = ev('b2', 'b2');
    const c1 = ev('c1', 'c1');
    const c2 = ev('c2', 'c2');
    const d1 = ev('d1', 'd1');
    const d2 = ev('d2', 'd2');
    const pattern = P.begin('a', skip.skipPastLastEvent())
      .where(nameContains('a'))
      .followedByAny('b')
      .where(nameContains('b'))
      .followedByAny('c')
      .where(nameContains('c'))
      .followedBy('d')
      .where(nameContains('d'));
    expectPatterns(feed(pattern, inOrder(x1, x2, b1, b2, c1, c2, d1, d2)), [[x1, b1, c1, d1]]);
  });

  it('testSkipPastLast3', () => {
    const x1 = ev('a1', 'a1');
    const c = ev('c', 'c');
    const x2 = ev('a2', 'a2');
    const b2 = ev('b2', 'b2');
    const pattern = P.begin('a', skip.skipPastLastEvent()).where(nameContains('a')).next('b').where(nameContains('b'));
    expectPatterns(feed(pattern, inOrder(x1, c, x2, b2)), [[x2, b2]]);
  });

  it('testSkipToFirstDiscarding', () => {
    const a = ev('a', 'a');
    const b = ev('b', 'b');
    const c1 = ev('c1', 'c1');
    const c2 = ev('c2', 'c2');
    const c3 = ev('c3', 'c3');
    const d = ev('d', 'd');
    const pattern = P.begin('a or c', skip.skipToFirst('c*'))
      .where((e) => e.type.includes('a') || e.type.includes('c'))
      .followedBy('b or c')
      .where((e) => e.type.includes('b') || e.type.includes('c'))
      .followedBy('c*')
      .where(nameContains('c'))
      .oneOrMore()
      .greedy()
      .followedBy('d')
      .where(nameContains('d'));
    expectPatterns(feed(pattern, inOrder(a, b, c1, c2, c3, d)), [
      [a, b, c1, c2, c3, d],
      [c1, c2, c3, d],
    ]);
  });

  it('testSkipBeforeOtherAlreadyCompleted: a completed match waits for an earlier partial one', () => {
    const x1 = ev('a1', 'a1', 0.0);
    const c1 = ev('c1', 'c1', 0.0);
    const x2 = ev('a2', 'a2', 1.0);
    const c2 = ev('c2', 'c2', 0.0);
    const b1 = ev('b1', 'b1', 1.0);
    const b2 = ev('b2', 'b2', 0.0);
    const pattern = P.begin('a', skip.skipToFirst('c'))
      .where(nameContains('a'))
      .followedBy('c')
      .where(nameContains('c'))
      .followedBy('b')
      .where((value, ctx) => value.type.includes('b') && priceOf(ctx.eventsFor('a')[0]!) === priceOf(value));
    const nfa = pattern.compile();
    const out: ReturnType<typeof ev>[][] = [];
    let state;
    const emittedAt: string[] = [];
    for (const [e, ts] of inOrder(x1, c1, x2, c2, b1, b2)) {
      const step = nfa.process(state, e, ts);
      state = step.state;
      for (const m of step.matches) {
        out.push(Object.values(m.events).flat());
        emittedAt.push(e.attrs['label'] as string);
      }
    }
    expectPatterns(out, [
      [x1, c1, b2],
      [x2, c2, b1],
    ]);
    // {a2 c2 b1} completes at b1 but is held until {a1 c1 …} completes at b2.
    expect(emittedAt).toEqual(['b2', 'b2']);
    expect(nfa.isEmpty(state)).toBe(true);
  });

  it('testSharedBufferIsProperlyCleared: skipPastLastEvent leaves no state behind', () => {
    const pattern = P.begin('start', skip.skipPastLastEvent())
      .where(() => true)
      .times(2);
    const nfa = pattern.compile();
    let state;
    for (let i = 0; i < 4; i++) state = nfa.process(state, ev(`x${i}`, 'a', 1.0), i).state;
    expect(state).toBeUndefined();
  });
});
