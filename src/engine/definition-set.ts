import type { AttrValue, Event } from './event.js';
import type { TagValue } from './ports.js';

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

/** Everything online at one definition revision, compiled. Frozen. */
export interface DefinitionSet {
  /** Revision number, increasing with every definition change. */
  readonly revision: number;
  readonly tags: ReadonlyArray<TagSpec>;
}

/** Supplies the compiled definition set of a revision (revisions are immutable). */
export interface DefinitionSetResolver {
  resolve(revision: number): Promise<DefinitionSet>;
}

/** The empty set at revision 0: no tags. */
export const emptyDefinitionSet: DefinitionSet = Object.freeze({ revision: 0, tags: Object.freeze([]) });
