import type { AttrValue, Event } from './event.js';
import type { TagValue } from './ports.js';
import type { CepPatternSpec } from './internal/cep/pattern.js';

/** Aggregate functions of statistic tags. */
export type AggregateFn = 'count' | 'sum' | 'avg' | 'min' | 'max' | 'distinct' | 'first' | 'last' | 'latest';

/**
 * Window of a statistic tag, in event time.
 * - `lifetime`: everything since the tag went online (cumulative).
 * - `tumbling`: fixed, non-overlapping windows of `sizeMs`, aligned to the epoch; the value is the window containing the stream time.
 * - `sliding`: the last `sizeMs`, advancing in steps of `slideMs` (`sizeMs` is a multiple of `slideMs`).
 */
export type WindowSpec =
  | { readonly kind: 'lifetime' }
  | { readonly kind: 'tumbling'; readonly sizeMs: number }
  | { readonly kind: 'sliding'; readonly sizeMs: number; readonly slideMs: number };

/** Fields every compiled tag has. */
interface TagSpecBase {
  /** Tag id, e.g. `clicks_1h`. */
  readonly id: string;
  /** Definition version that produced this spec. */
  readonly version: number;
  /**
   * Identity of the computation. Two versions with the same `stateId` share
   * state (e.g. only the description changed); a new `stateId` starts empty.
   */
  readonly stateId: string;
}

/** A statistic tag compiled for the engine: an aggregate over events in a window. */
export interface StatisticTagSpec extends TagSpecBase {
  readonly kind: 'statistic';
  /** Event types the tag reads; the engine routes only these to it. */
  readonly eventTypes: ReadonlyArray<string>;
  /** Compiled filter; returns true to include the event. Throws on a runtime error (counted, event skipped). */
  readonly filter: ((event: Event) => boolean) | null;
  /** Attribute aggregated; null for `count` of events and for `first`/`last` event time. */
  readonly field: string | null;
  /**
   * Event attributes the tag reads (its field and those its filter names);
   * `'*'` or absent when it may read any.
   */
  readonly attrInputs?: ReadonlyArray<string> | '*';
  readonly aggregate: AggregateFn;
  readonly window: WindowSpec;
  /** Upper bound of distinct values kept per entity for `distinct`. */
  readonly maxDistinct: number;
}

/** What a rule-tag expression sees. */
export interface RuleContext {
  /** Values of the tags the rule reads (statistic tags default to 0 for count, sum and distinct). */
  tags: Record<string, TagValue>;
  /** Static attributes of the entity. */
  attrs: Record<string, AttrValue>;
  /** Entity id. */
  key: string;
  /** Stream time of the partition, epoch ms. */
  now: number;
}

/** A rule tag compiled for the engine: a condition over the profile. */
export interface RuleTagSpec extends TagSpecBase {
  readonly kind: 'rule';
  /** Ids of tags the condition reads. */
  readonly tagInputs: ReadonlyArray<string>;
  /** Attributes the condition reads; `'*'` when it may read any. */
  readonly attrInputs: ReadonlyArray<string> | '*';
  /** Evaluates the condition. Throws on a runtime error (counted; the tag value becomes absent). */
  readonly evaluate: (context: RuleContext) => TagValue;
}

/** Any tag the engine computes. */
export type TagSpec = StatisticTagSpec | RuleTagSpec;

/** What a rule predicate over the profile and the triggering event sees. */
export interface RulePredicateContext {
  /** The triggering event as a map (`type`, `time`, `attrs`); absent (empty) on timer evaluations. */
  event: { type: string; time: number; key: string; attrs: Record<string, AttrValue> } | Record<string, never>;
  /** Tag values of the entity's profile (entity-keyed rules only; empty otherwise). */
  tags: Record<string, TagValue>;
  /** Static attributes of the entity (entity-keyed rules only). */
  attrs: Record<string, AttrValue>;
  /** The rule key: key field → value. */
  key: Record<string, AttrValue>;
  /** Stream time, epoch ms. */
  now: number;
}

/** A comparison of an aggregate with a threshold. */
export type Comparison = '>' | '>=' | '<' | '<=' | '==' | '!=';

/** A windowed aggregate over the rule key's events. */
export interface RuleAggregateSpec {
  /**
   * Identity of the computation (events, filter, function, field, window).
   * Rules with the same key that use an aggregate of the same identity share
   * its state: thousands of rules over one aggregate keep one window per key.
   */
  readonly identity: string;
  readonly eventTypes: ReadonlyArray<string>;
  readonly filter: ((event: Event) => boolean) | null;
  readonly aggregate: Exclude<AggregateFn, 'first' | 'last' | 'latest'>;
  readonly field: string | null;
  readonly window: WindowSpec;
  readonly maxDistinct: number;
}

/** A behaviour sequence: a CEP pattern over the rule key's events. */
export interface RuleSequenceSpec {
  /** Event types the pattern reads; only these reach its NFA. */
  readonly eventTypes: ReadonlyArray<string>;
  readonly pattern: CepPatternSpec;
  /** How the sequence may share its computation with other rules' (null: it runs alone). */
  readonly share: RuleSequenceShare | null;
}

/**
 * Rules of one key space whose conditions have the same `key` are evaluated
 * together: the same condition except, at most, for one number, `parameter`
 * here, in which the answer is monotone (false then true, or true then
 * false, as it grows), so the rules' answers split at one point found by a
 * binary search over the rules ordered by it.
 */
export interface RuleConditionShare {
  readonly key: string;
  readonly parameter: number;
}

/**
 * Sequences of one key space with the same `key` run as one computation: the
 * same pattern, except for the number at condition slot `slot` (-1: none),
 * which is `parameter` for this one. The condition at that slot must answer
 * monotonically in the number (false then true, or true then false, as it
 * grows), so the rules' answers split at one point.
 */
export interface RuleSequenceShare {
  readonly key: string;
  readonly slot: number;
  readonly parameter: number;
}

/** A node of a compiled rule condition. Leaves refer to aggregates and sequences by index. */
export type RuleConditionNode =
  | { readonly op: 'all'; readonly children: ReadonlyArray<RuleConditionNode> }
  | { readonly op: 'any'; readonly children: ReadonlyArray<RuleConditionNode> }
  | { readonly op: 'not'; readonly child: RuleConditionNode }
  | { readonly op: 'expr'; readonly evaluate: (context: RulePredicateContext) => boolean }
  | { readonly op: 'aggregate'; readonly index: number; readonly comparison: Comparison; readonly threshold: number }
  | { readonly op: 'sequence'; readonly index: number; readonly on: 'match' | 'timeout' };

/** A dynamic decision rule compiled for the engine. */
export interface RuleSpec {
  readonly id: string;
  readonly version: number;
  /** Identity of the computation: a new stateId drops the old state (partial matches, windows). */
  readonly stateId: string;
  /** Event fields of the rule key, in document order. */
  readonly keyFields: ReadonlyArray<string>;
  /** Name of the entity key field (its value is `Event.key`, not an attribute). */
  readonly entityKeyField: string;
  /** The key includes the entity key: state lives in the entity's partition, beside its profile. */
  readonly entityKeyed: boolean;
  /** Every event type the rule reads (routing). */
  readonly eventTypes: ReadonlyArray<string>;
  /** Event types that cause an evaluation. */
  readonly triggerTypes: ReadonlyArray<string>;
  /** `event-time`: per key, events are processed in event-time order once the watermark passes them; `arrival`: at once. */
  readonly ordering: 'event-time' | 'arrival';
  /** Time domain of windows and `within`. */
  readonly time: 'event' | 'processing';
  readonly condition: RuleConditionNode;
  readonly aggregates: ReadonlyArray<RuleAggregateSpec>;
  readonly sequences: ReadonlyArray<RuleSequenceSpec>;
  /**
   * How the condition may be evaluated together with other rules': one option
   * per number that may differ (null for rules with sequences).
   */
  readonly conditionShare: ReadonlyArray<RuleConditionShare> | null;
  /** Tag ids and attribute names the rule's predicates read from the profile. */
  readonly tagInputs: ReadonlyArray<string>;
  /** Sets a tag on the entity's profile on each decision. */
  readonly setTag: { readonly id: string; readonly value: (context: RulePredicateContext) => TagValue } | null;
  /** State of a key with no event for this long is dropped, ms. */
  readonly stateTtlMs: number;
}

/** Everything online at one definition revision, compiled. Frozen. */
export interface DefinitionSet {
  /** Revision number, increasing with every definition change. */
  readonly revision: number;
  readonly tags: ReadonlyArray<TagSpec>;
  /** Online decision rules; absent means none. */
  readonly rules?: ReadonlyArray<RuleSpec>;
}

/** Supplies the compiled definition set of a revision (revisions are immutable). */
export interface DefinitionSetResolver {
  resolve(revision: number): Promise<DefinitionSet>;
}

/** The empty set at revision 0: no tags. */
export const emptyDefinitionSet: DefinitionSet = Object.freeze({ revision: 0, tags: Object.freeze([]), rules: Object.freeze([]) });

/**
 * The event attributes the definitions of a set read, by event type: the
 * union of the statistic tags' {@link StatisticTagSpec.attrInputs}; every
 * attribute (`undefined`) for a type a rule reads (rules keep events in
 * partial matches and decisions), a tag reads without saying which, or a
 * control record. An event type nothing reads needs none.
 */
export function attributesRead(set: DefinitionSet): (type: string) => ReadonlySet<string> | undefined {
  // By type: the names read, or null when any may be.
  const sets = new Map<string, Set<string> | null>();
  for (const rule of set.rules ?? []) for (const type of rule.eventTypes) sets.set(type, null);
  for (const tag of set.tags) {
    if (tag.kind !== 'statistic') continue;
    const inputs = tag.attrInputs;
    for (const type of tag.eventTypes) {
      let names = sets.get(type);
      if (names === null) continue;
      if (inputs === undefined || inputs === '*') {
        sets.set(type, null);
        continue;
      }
      if (names === undefined) sets.set(type, (names = new Set()));
      for (const name of inputs) names.add(name);
    }
  }
  const none: ReadonlySet<string> = new Set();
  // One lookup per record; control records ('$…') keep everything.
  return (type) => {
    if (type.charCodeAt(0) === 36) return undefined;
    const names = sets.get(type);
    return names === undefined ? none : (names ?? undefined);
  };
}
