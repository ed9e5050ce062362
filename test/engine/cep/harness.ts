import { expect } from 'vitest';
import type { AttrValue, Event } from '../../../src/engine/event.js';
import {
  CepNfa,
  type CepCondition,
  type CepMatch,
  type CepPatternSpec,
  type CepSkipStrategy,
  type CepStage,
  type CepState,
  type CepTimeout,
} from '../../../src/engine/internal/cep/index.js';

/**
 * Flink's test `Event(id, name, price)` as a Portrait event: `type` is the
 * name, `label` the variable name in the Flink test (unique per event, so a
 * match is compared by which events it holds, as Flink's tests do).
 */
export function ev(label: string, name: string, price = 0, extra: Record<string, AttrValue> = {}): Event {
  return { type: name, time: 0, key: 'k', attrs: { label, price, ...extra } };
}

/** Flink `SimpleCondition.of(value -> value.getName().equals(name))`. */
export const named =
  (name: string): CepCondition =>
  (e) =>
    e.type === name;
/** Flink `value.getName().contains(s)`. */
export const nameContains =
  (s: string): CepCondition =>
  (e) =>
    e.type.includes(s);
/** Flink `value.getName().startsWith(s)`. */
export const nameStarts =
  (s: string): CepCondition =>
  (e) =>
    e.type.startsWith(s);
export const priceOf = (e: Event): number => e.attrs['price'] as number;
export const labelOf = (e: Event): string => e.attrs['label'] as string;

type MutableStage = { -readonly [K in keyof CepStage]: CepStage[K] };

/**
 * A builder shaped like Flink's `Pattern` API, so a ported test reads like
 * its Java original. It only produces a {@link CepPatternSpec} (plain data).
 */
export class P {
  private readonly stages: MutableStage[] = [];
  private withinMs: number | undefined;
  private skipStrategy: CepSkipStrategy | undefined;

  static begin(name: string, skip?: CepSkipStrategy): P {
    const p = new P();
    p.stages.push({ name });
    if (skip !== undefined) p.skipStrategy = skip;
    return p;
  }

  private get cur(): MutableStage {
    return this.stages[this.stages.length - 1]!;
  }

  where(cond: CepCondition): this {
    const prev = this.cur.condition;
    this.cur.condition = prev === undefined ? cond : (e, ctx) => prev(e, ctx) && cond(e, ctx);
    return this;
  }
  or(cond: CepCondition): this {
    const prev = this.cur.condition;
    this.cur.condition = prev === undefined ? cond : (e, ctx) => prev(e, ctx) || cond(e, ctx);
    return this;
  }
  next(name: string): this {
    this.stages.push({ name, contiguity: 'strict' });
    return this;
  }
  followedBy(name: string): this {
    this.stages.push({ name, contiguity: 'relaxed' });
    return this;
  }
  followedByAny(name: string): this {
    this.stages.push({ name, contiguity: 'nondeterministic' });
    return this;
  }
  notNext(name: string): this {
    this.stages.push({ name, kind: 'notNext' });
    return this;
  }
  notFollowedBy(name: string): this {
    this.stages.push({ name, kind: 'notFollowedBy' });
    return this;
  }
  oneOrMore(): this {
    this.cur.min = 1;
    this.cur.max = null;
    return this;
  }
  timesOrMore(n: number): this {
    this.cur.min = n;
    this.cur.max = null;
    return this;
  }
  times(from: number, to?: number): this {
    this.cur.min = from;
    this.cur.max = to ?? from;
    return this;
  }
  optional(): this {
    this.cur.optional = true;
    return this;
  }
  greedy(): this {
    this.cur.greedy = true;
    return this;
  }
  consecutive(): this {
    this.cur.inner = 'strict';
    return this;
  }
  allowCombinations(): this {
    this.cur.inner = 'nondeterministic';
    return this;
  }
  until(cond: CepCondition): this {
    this.cur.until = cond;
    return this;
  }
  within(ms: number): this {
    this.withinMs = ms;
    return this;
  }
  build(extra: Partial<CepPatternSpec> = {}): CepPatternSpec {
    const spec: { -readonly [K in keyof CepPatternSpec]: CepPatternSpec[K] } = { stages: this.stages.map((s) => ({ ...s })) };
    if (this.withinMs !== undefined) spec.withinMs = this.withinMs;
    if (this.skipStrategy !== undefined) spec.skip = this.skipStrategy;
    return { ...spec, ...extra };
  }
  compile(extra: Partial<CepPatternSpec> = {}): CepNfa {
    return new CepNfa(this.build(extra));
  }
}

export const skip = {
  noSkip: (): CepSkipStrategy => ({ kind: 'noSkip' }),
  skipToNext: (): CepSkipStrategy => ({ kind: 'skipToNext' }),
  skipPastLastEvent: (): CepSkipStrategy => ({ kind: 'skipPastLastEvent' }),
  skipToFirst: (stage: string): CepSkipStrategy => ({ kind: 'skipToFirst', stage }),
  skipToLast: (stage: string): CepSkipStrategy => ({ kind: 'skipToLast', stage }),
};

/** A record to feed: the event and the timestamp it is processed at (Flink `StreamRecord(event, ts)`). */
export type Rec = readonly [Event, number];

/** Records with timestamps 1, 2, 3… for Flink tests that feed `StreamRecord(event)` without one. */
export function inOrder(...events: Event[]): Rec[] {
  return events.map((e, i) => [e, i + 1] as const);
}

export interface RunResult {
  matches: CepMatch[];
  timeouts: CepTimeout[];
  state: CepState | undefined;
  dropped: number;
}

/**
 * Flink's `NFATestHarness.feedRecords`: for each record, advance time to its
 * timestamp (pending matches and timeouts included), then process it.
 */
export function run(pattern: P | CepPatternSpec | CepNfa, records: readonly Rec[], state?: CepState): RunResult {
  const nfa = pattern instanceof CepNfa ? pattern : pattern instanceof P ? pattern.compile() : new CepNfa(pattern);
  const out: RunResult = { matches: [], timeouts: [], state, dropped: 0 };
  for (const [event, ts] of records) {
    const step = nfa.process(out.state, event, ts);
    out.state = step.state;
    out.matches.push(...step.matches);
    out.timeouts.push(...step.timeouts);
    out.dropped += step.dropped;
  }
  return out;
}

/** Flink `feedNFA`: the matches, each flattened to its events in stage order. */
export function feed(pattern: P | CepPatternSpec | CepNfa, records: readonly Rec[]): Event[][] {
  return run(pattern, records).matches.map(flatten);
}

export function flatten(match: CepMatch): Event[] {
  return Object.values(match.events).flat();
}

function canonical(events: readonly Event[]): string {
  return events.map(labelOf).sort().join(' ');
}

/**
 * Flink's `comparePatterns`: the same multiset of matches, where each match is
 * compared as a set of events (order inside a match is not compared).
 */
export function expectPatterns(actual: readonly Event[][], expected: readonly Event[][]): void {
  expect(actual.map(canonical).sort()).toEqual(expected.map(canonical).sort());
}

/** A match as `{ stage: [labels] }` for exact assertions. */
export function byStage(match: CepMatch): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const [name, events] of Object.entries(match.events)) out[name] = events.map(labelOf);
  return out;
}
