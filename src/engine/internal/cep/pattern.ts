import type { Event } from '../../event.js';

/**
 * What a condition can read besides the event: the events the same partial
 * match has already accepted. Flink's `IterativeCondition.Context`.
 *
 * One context object is reused for every evaluation, so a condition must not
 * keep a reference to it after it returns.
 */
export interface CepContext {
  /**
   * Events already accepted by stage `name` in this partial match, oldest
   * first; the event being evaluated is not among them. Empty for an unknown
   * name, a negated stage, or a partial match that has not reached the stage.
   * Flink's `ctx.getEventsForPattern(name)`.
   */
  eventsFor(name: string): readonly Event[];
  /** Timestamp (epoch ms) the event being evaluated was processed at. */
  readonly timestamp: number;
}

/**
 * A stage condition. It must be pure: the NFA evaluates it at most once per
 * (partial match, event) and reuses the answer for every transition that asks.
 * A function declared with fewer than two parameters (`(event) => …`) is taken
 * not to read the context and is evaluated once per event for all partial
 * matches (Flink's `SimpleCondition`); declare the `ctx` parameter to read it.
 * A condition that throws counts as `false` for that event and is reported in
 * `CepSink.conditionErrors`, so one bad event never corrupts a key's state.
 */
export type CepCondition = (event: Event, ctx: CepContext) => boolean;

/**
 * How an event may be separated from the previous accepted one.
 * - `strict`: the very next event (Flink `next()` / `consecutive()`).
 * - `relaxed`: the next event that satisfies the condition; non-matching events
 *   in between are skipped (Flink `followedBy()`, the default inner contiguity of loops).
 * - `nondeterministic`: any later event that satisfies the condition, also
 *   skipping matching ones, so one partial match forks into many
 *   (Flink `followedByAny()` / `allowCombinations()`).
 */
export type CepContiguity = 'strict' | 'relaxed' | 'nondeterministic';

/**
 * The role of a stage.
 * - `match` (default): accepts events.
 * - `notNext`: the event right after the previous stage must not satisfy the condition (Flink `notNext()`).
 * - `notFollowedBy`: no event satisfying the condition may occur between the
 *   previous stage and the next one; as the last stage (requires `withinMs`) it
 *   means "none until the window ends" (Flink `notFollowedBy()`).
 */
export type CepStageKind = 'match' | 'notNext' | 'notFollowedBy';

/** One stage of a pattern: data plus condition closures. */
export interface CepStage {
  /** Unique stage name; the key of this stage's events in a match. */
  readonly name: string;
  /** @defaultValue `'match'` */
  readonly kind?: CepStageKind;
  /** Condition an event must satisfy. @defaultValue accept every event */
  readonly condition?: CepCondition;
  /**
   * Stop condition of a looping stage (`max` unbounded): an event satisfying it
   * ends the loop and is not accepted. Flink `until()`.
   */
  readonly until?: CepCondition;
  /**
   * Least number of events. `0` is shorthand for `optional: true, min: 1`
   * (Flink `times(0, m)`). @defaultValue 1
   */
  readonly min?: number;
  /**
   * Most number of events; `null` or `Infinity` for unbounded (Flink
   * `oneOrMore()` / `timesOrMore(n)`). @defaultValue 1, or `min` when only `min` is given
   */
  readonly max?: number | null;
  /** The stage may be skipped entirely (Flink `optional()`). @defaultValue false */
  readonly optional?: boolean;
  /** Repeat as often as possible before moving on (Flink `greedy()`); only for stages with `max` > 1. @defaultValue false */
  readonly greedy?: boolean;
  /** Contiguity to the previous stage; ignored on the first stage and on negated stages. @defaultValue `'relaxed'` */
  readonly contiguity?: CepContiguity;
  /** Contiguity between the events of a repeating stage (`max` > 1). @defaultValue `'relaxed'` */
  readonly inner?: CepContiguity;
}

/** What happens to other partial matches after a match is emitted (Flink `AfterMatchSkipStrategy`). */
export type CepSkipStrategy =
  | { readonly kind: 'noSkip' }
  | { readonly kind: 'skipToNext' }
  | { readonly kind: 'skipPastLastEvent' }
  | { readonly kind: 'skipToFirst'; readonly stage: string }
  | { readonly kind: 'skipToLast'; readonly stage: string };

/** A pattern: an ordered list of stages plus pattern-wide settings. */
export interface CepPatternSpec {
  readonly stages: readonly CepStage[];
  /**
   * A match must complete within this many ms of its first event (Flink
   * `within()`): a partial match started at `s` times out once time `t`
   * reaches `t - s >= withinMs`. Absent or 0: no window.
   */
  readonly withinMs?: number;
  /** @defaultValue `{ kind: 'noSkip' }` */
  readonly skip?: CepSkipStrategy;
  /**
   * Most partial matches kept per key; beyond it the one that started earliest
   * is dropped and counted in {@link CepSink.dropped}. @defaultValue 1000
   */
  readonly maxPartialMatches?: number;
  /** Report timed-out partial matches (Flink's timeout side output). @defaultValue true */
  readonly emitTimeouts?: boolean;
}

/** Defaults of {@link CepPatternSpec}. */
export const defaultCepPatternOptions = Object.freeze({
  withinMs: 0,
  skip: Object.freeze({ kind: 'noSkip' }) as CepSkipStrategy,
  maxPartialMatches: 1000,
  emitTimeouts: true,
});

/**
 * A pattern that cannot be compiled. `path` is a JSON pointer into the spec
 * (e.g. `/stages/2/until`). The code is the registry's `PRT_DEF_INVALID`; the
 * definitions layer wraps it into its own error with the rule id.
 */
export class CepPatternError extends Error {
  readonly code = 'PRT_DEF_INVALID';
  readonly retryable = false;
  constructor(
    readonly path: string,
    message: string,
  ) {
    super(`pattern ${path} ${message}`);
    this.name = 'CepPatternError';
  }
}

/** A stage after defaults are applied and shorthands resolved. */
export interface NormalizedStage {
  readonly name: string;
  readonly kind: CepStageKind;
  readonly condition: CepCondition | null;
  readonly until: CepCondition | null;
  /** ≥ 1 for `match` stages. */
  readonly min: number;
  /** `Infinity` when unbounded. */
  readonly max: number;
  readonly optional: boolean;
  readonly greedy: boolean;
  /** Contiguity to the previous stage; `strict` for the first stage (Flink `begin`). */
  readonly contiguity: CepContiguity;
  readonly inner: CepContiguity;
}

/** A validated pattern. */
export interface NormalizedPattern {
  readonly stages: readonly NormalizedStage[];
  readonly withinMs: number;
  readonly skip: CepSkipStrategy;
  /** Index of the stage named by `skipToFirst`/`skipToLast`, else -1. */
  readonly skipStage: number;
  readonly maxPartialMatches: number;
  readonly emitTimeouts: boolean;
}

const CONTIGUITIES: readonly string[] = ['strict', 'relaxed', 'nondeterministic'];
const KINDS: readonly string[] = ['match', 'notNext', 'notFollowedBy'];
const SKIPS: readonly string[] = ['noSkip', 'skipToNext', 'skipPastLastEvent', 'skipToFirst', 'skipToLast'];
const RESERVED_NAMES: readonly string[] = ['__proto__', 'constructor', 'prototype'];

function show(value: unknown): string {
  if (typeof value === 'function') return 'a function';
  if (value === undefined) return 'undefined';
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}

function isCount(value: unknown): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value >= 0;
}

/**
 * Validates a pattern and applies defaults, with Flink's rules for which
 * constructs combine. Throws {@link CepPatternError} naming the first problem.
 */
export function normalizePattern(spec: CepPatternSpec): NormalizedPattern {
  if (spec === null || typeof spec !== 'object') throw new CepPatternError('', `must be an object, got ${show(spec)}`);
  const raw = spec.stages;
  if (!Array.isArray(raw) || raw.length === 0) {
    throw new CepPatternError('/stages', `must be a non-empty array, got ${show(raw)}`);
  }
  const names = new Set<string>();
  const stages: NormalizedStage[] = [];
  for (let i = 0; i < raw.length; i++) {
    const s = raw[i] as CepStage;
    const at = `/stages/${i}`;
    if (s === null || typeof s !== 'object') throw new CepPatternError(at, `must be an object, got ${show(s)}`);
    if (typeof s.name !== 'string' || s.name.length === 0 || s.name.startsWith('$') || RESERVED_NAMES.includes(s.name)) {
      throw new CepPatternError(`${at}/name`, `must be a non-empty string not starting with "$" and not a reserved word, got ${show(s.name)}`);
    }
    if (names.has(s.name)) throw new CepPatternError(`${at}/name`, `must be unique, "${s.name}" is used twice`);
    names.add(s.name);
    const kind = s.kind ?? 'match';
    if (!KINDS.includes(kind)) throw new CepPatternError(`${at}/kind`, `must be one of ${KINDS.join(', ')}, got ${show(kind)}`);
    if (s.condition !== undefined && typeof s.condition !== 'function') {
      throw new CepPatternError(`${at}/condition`, `must be a function, got ${show(s.condition)}`);
    }
    if (s.until !== undefined && typeof s.until !== 'function') {
      throw new CepPatternError(`${at}/until`, `must be a function, got ${show(s.until)}`);
    }
    for (const field of ['contiguity', 'inner'] as const) {
      const v = s[field];
      if (v !== undefined && !CONTIGUITIES.includes(v)) {
        throw new CepPatternError(`${at}/${field}`, `must be one of ${CONTIGUITIES.join(', ')}, got ${show(v)}`);
      }
    }
    if (s.optional !== undefined && typeof s.optional !== 'boolean') throw new CepPatternError(`${at}/optional`, `must be a boolean, got ${show(s.optional)}`);
    if (s.greedy !== undefined && typeof s.greedy !== 'boolean') throw new CepPatternError(`${at}/greedy`, `must be a boolean, got ${show(s.greedy)}`);

    if (kind !== 'match') {
      if (i === 0) throw new CepPatternError(`${at}/kind`, `cannot be "${kind}" on the first stage: a pattern starts with an event`);
      for (const field of ['until', 'min', 'max', 'optional', 'greedy', 'inner'] as const) {
        if (s[field] !== undefined && s[field] !== false) {
          throw new CepPatternError(`${at}/${field}`, `is not applicable to a "${kind}" stage`);
        }
      }
      const prev = stages[i - 1]!;
      if (prev.optional) {
        throw new CepPatternError(`${at}/kind`, `cannot follow the optional stage "${prev.name}" (Flink does not support an optional path to a negation)`);
      }
      stages.push(
        Object.freeze({
          name: s.name,
          kind,
          condition: s.condition ?? null,
          until: null,
          min: 1,
          max: 1,
          optional: false,
          greedy: false,
          contiguity: kind === 'notNext' ? 'strict' : 'relaxed',
          inner: 'relaxed',
        }) as NormalizedStage,
      );
      continue;
    }

    if (s.min !== undefined && !isCount(s.min)) throw new CepPatternError(`${at}/min`, `must be an integer >= 0, got ${show(s.min)}`);
    if (s.max !== undefined && s.max !== null && s.max !== Infinity && !(isCount(s.max) && s.max >= 1)) {
      throw new CepPatternError(`${at}/max`, `must be an integer >= 1, null or Infinity, got ${show(s.max)}`);
    }
    let min = s.min ?? 1;
    let max = s.max === null || s.max === Infinity ? Infinity : (s.max ?? (s.min !== undefined && s.min > 1 ? s.min : 1));
    let optional = s.optional === true;
    if (min === 0) {
      // Flink times(0, m): optional with at least one.
      optional = true;
      min = 1;
    }
    if (max < min) throw new CepPatternError(`${at}/max`, `must be >= min (${min}), got ${show(s.max)}`);
    const repeating = max > 1;
    const looping = max === Infinity;
    const greedy = s.greedy === true;
    if (greedy && !repeating) throw new CepPatternError(`${at}/greedy`, 'is only applicable to a repeating stage (max > 1)');
    if (s.inner !== undefined && !repeating) throw new CepPatternError(`${at}/inner`, 'is only applicable to a repeating stage (max > 1)');
    const inner = s.inner ?? 'relaxed';
    if (greedy && inner === 'nondeterministic') {
      throw new CepPatternError(`${at}/greedy`, 'cannot be combined with inner "nondeterministic" (Flink: not applicable to allowCombinations)');
    }
    if (s.until !== undefined && !looping) throw new CepPatternError(`${at}/until`, 'is only applicable to a looping stage (max unbounded)');
    if (optional && i > 0 && stages[i - 1]!.greedy) {
      throw new CepPatternError(`${at}/optional`, `cannot follow the greedy stage "${stages[i - 1]!.name}" (Flink: optional pattern cannot be preceded by greedy pattern)`);
    }
    stages.push(
      Object.freeze({
        name: s.name,
        kind,
        condition: s.condition ?? null,
        until: s.until ?? null,
        min,
        max,
        optional,
        greedy,
        contiguity: i === 0 ? 'strict' : (s.contiguity ?? 'relaxed'),
        inner,
      }) as NormalizedStage,
    );
  }

  const withinMs = spec.withinMs ?? 0;
  if (typeof withinMs !== 'number' || !Number.isFinite(withinMs) || withinMs < 0) {
    throw new CepPatternError('/withinMs', `must be a finite number of ms >= 0, got ${show(spec.withinMs)}`);
  }
  const last = stages[stages.length - 1]!;
  if (last.kind === 'notFollowedBy' && withinMs <= 0) {
    throw new CepPatternError(`/stages/${stages.length - 1}/kind`, 'cannot be "notFollowedBy" on the last stage without withinMs (nothing would ever decide the absence)');
  }

  const skip = spec.skip ?? defaultCepPatternOptions.skip;
  if (skip === null || typeof skip !== 'object' || !SKIPS.includes(skip.kind)) {
    throw new CepPatternError('/skip/kind', `must be one of ${SKIPS.join(', ')}, got ${show(skip?.kind)}`);
  }
  let skipStage = -1;
  if (skip.kind === 'skipToFirst' || skip.kind === 'skipToLast') {
    skipStage = stages.findIndex((s) => s.name === skip.stage);
    if (skipStage < 0) throw new CepPatternError('/skip/stage', `must name a stage of the pattern, got ${show(skip.stage)}`);
  }

  const maxPartialMatches = spec.maxPartialMatches ?? defaultCepPatternOptions.maxPartialMatches;
  if (!isCount(maxPartialMatches) || maxPartialMatches < 1) {
    throw new CepPatternError('/maxPartialMatches', `must be an integer >= 1, got ${show(spec.maxPartialMatches)}`);
  }
  const emitTimeouts = spec.emitTimeouts ?? defaultCepPatternOptions.emitTimeouts;
  if (typeof emitTimeouts !== 'boolean') throw new CepPatternError('/emitTimeouts', `must be a boolean, got ${show(spec.emitTimeouts)}`);

  return Object.freeze({
    stages: Object.freeze(stages),
    withinMs,
    skip: Object.freeze({ ...skip }) as CepSkipStrategy,
    skipStage,
    maxPartialMatches,
    emitTimeouts,
  });
}
