import type { AggregateFn } from '../engine/index.js';
import { DURATION_PATTERN } from './duration.js';
import type { Duration } from './tag-document.js';

/** Comparison operators of aggregate predicates. */
export type ComparisonOperator = '>' | '>=' | '<' | '<=' | '==' | '!=';

/** Window of an aggregate predicate. */
export type RuleWindowDocument = { type: 'tumbling'; size: Duration } | { type: 'sliding'; size: Duration; slide: Duration } | { type: 'lifetime' };

/**
 * "aggregate over the rule key's events in a window, compared with a
 * threshold": every part is data. The group-by fields are the rule's `key`.
 */
export interface AggregateConditionDocument {
  aggregate: {
    fn: Exclude<AggregateFn, 'first' | 'last' | 'latest'>;
    /** Attribute aggregated; required except for `count`. */
    field?: string;
    eventTypes: string[];
    /** CEL over one event (`attrs`, `eventType`, `time`, `key`). */
    filter?: string;
    window: RuleWindowDocument;
  };
  op: ComparisonOperator;
  value: number;
}

/** How one pattern stage joins the stage before it (Flink CEP names). */
export type StageContiguity = 'next' | 'followedBy' | 'followedByAny' | 'notNext' | 'notFollowedBy';

/** One stage of a sequence pattern. */
export interface PatternStageDocument {
  /** Stage name, unique in the pattern; conditions read earlier stages' events as `matched.<name>`. */
  name: string;
  eventTypes: string[];
  /** CEL over the candidate `event` and `matched` (events taken by earlier stages, by name). */
  where?: string;
  /** How this stage follows the previous one. Ignored for the first stage. @defaultValue `followedBy` */
  contiguity?: StageContiguity;
  /** Exactly n events, or between min and max. */
  times?: number | { min: number; max: number };
  /** One or more events (with `times`: n or more). */
  oneOrMore?: boolean;
  /** The stage may match no event. */
  optional?: boolean;
  /** Take as many events as possible before moving on. */
  greedy?: boolean;
  /** Contiguity between the events of a looping stage. @defaultValue `relaxed` */
  inner?: 'relaxed' | 'consecutive' | 'allowCombinations';
  /** CEL: stop the looping stage when an event satisfies it. */
  until?: string;
}

/** After a match, which partial matches are kept (Flink CEP skip strategies). */
export type SkipStrategyDocument =
  | 'noSkip'
  | 'skipToNext'
  | 'skipPastLastEvent'
  | { strategy: 'skipToFirst' | 'skipToLast'; stage: string };

/** A behaviour sequence: "A then B within 15 min", "A and not B within 30 min", "3 failed logins in 2 min"… */
export interface SequenceConditionDocument {
  sequence: {
    pattern: PatternStageDocument[];
    /** Largest time from the first to the last event of a match. */
    within?: Duration;
    /** @defaultValue `noSkip` */
    skip?: SkipStrategyDocument;
  };
  /** True when the sequence completes (`match`), or when a partial match runs out of time (`timeout`). @defaultValue `match` */
  on?: 'match' | 'timeout';
}

/** A CEL predicate over the triggering `event`, the profile (`tags`, `attrs`), the rule `key` and `now`. */
export interface ExpressionConditionDocument {
  expr: string;
}

/** A rule condition: predicates combined with all / any / not. */
export type ConditionDocument =
  | { all: ConditionDocument[] }
  | { any: ConditionDocument[] }
  | { not: ConditionDocument }
  | ExpressionConditionDocument
  | AggregateConditionDocument
  | SequenceConditionDocument;

/** A dynamic decision rule, as operators write it. */
export interface RuleDocument {
  /** Rule id: lower case letters, digits and underscores. */
  id: string;
  description?: string;
  owner?: string;
  labels?: Record<string, string>;
  /** On update: the version the author started from (optimistic concurrency). */
  version?: number;
  /** Event fields the rule groups by, e.g. `["user_id"]` or `["user_id", "shop_id"]` or `["device_id"]`. */
  key: string[];
  /** Event types that cause an evaluation; defaults to every event type the condition reads. Sequences also evaluate when they complete on a timer. */
  trigger?: { eventTypes: string[] };
  condition: ConditionDocument;
  /**
   * `event-time`: each key's events are processed in event-time order once the
   * watermark passes them (as Flink CEP does; decisions wait for the watermark).
   * `arrival`: processed as they arrive, decisions at once (needed by `POST /v1/decide`).
   * @defaultValue `event-time`
   */
  ordering?: 'event-time' | 'arrival';
  /** Time of `within` and windows: event time, or processing time as carried by the log. @defaultValue `event` */
  time?: 'event' | 'processing';
  outputs?: {
    /** Sets a tag on the profile of the event's entity (rules keyed by the entity key only). */
    setTag?: { id: string; value?: string | number | boolean; expr?: string };
  };
  limits?: {
    /** Most partial matches kept per key and sequence. @defaultValue 1000 */
    maxPartialMatches?: number;
    /**
     * State of a key with no event for this long (in the rule's time) is dropped, once it holds no
     * partial match or buffered event. @defaultValue the longest window or `within`; never when an
     * aggregate has a lifetime window
     */
    stateTtl?: Duration;
  };
}

const duration = {
  oneOf: [
    { type: 'string', pattern: DURATION_PATTERN },
    { type: 'integer', minimum: 1 },
  ],
  description: 'A duration: an integer and a unit (ms, s, m, h, d, w), e.g. "15m", or a number of milliseconds.',
};
const identifier = { type: 'string', pattern: '^[a-z][a-z0-9_]{0,63}$' };
const fieldName = { type: 'string', minLength: 1, maxLength: 128 };
const eventTypes = { type: 'array', items: { type: 'string', minLength: 1 }, minItems: 1, uniqueItems: true };
const cel = { type: 'string', minLength: 1, maxLength: 10_000 };

/** The published JSON Schema of rule documents. */
export const ruleDocumentSchema = {
  $schema: 'http://json-schema.org/draft-07/schema#',
  $id: 'https://portrait.dev/schemas/rule-definition.json',
  title: 'Portrait rule definition',
  type: 'object',
  required: ['id', 'key', 'condition'],
  additionalProperties: false,
  properties: {
    id: identifier,
    description: { type: 'string', maxLength: 2000 },
    owner: { type: 'string', maxLength: 200 },
    labels: { type: 'object', additionalProperties: { type: 'string', maxLength: 200 }, maxProperties: 50 },
    version: { type: 'integer', minimum: 1 },
    status: { enum: ['draft', 'online', 'offline', 'archived'], readOnly: true },
    createdAt: { readOnly: true },
    updatedAt: { readOnly: true },
    key: { type: 'array', items: fieldName, minItems: 1, maxItems: 8, uniqueItems: true },
    trigger: { type: 'object', required: ['eventTypes'], additionalProperties: false, properties: { eventTypes } },
    condition: { $ref: '#/definitions/condition' },
    ordering: { enum: ['event-time', 'arrival'] },
    time: { enum: ['event', 'processing'] },
    outputs: {
      type: 'object',
      additionalProperties: false,
      properties: {
        setTag: {
          type: 'object',
          required: ['id'],
          additionalProperties: false,
          properties: { id: identifier, value: { type: ['string', 'number', 'boolean'] }, expr: cel },
          not: { required: ['value', 'expr'] },
        },
      },
    },
    limits: {
      type: 'object',
      additionalProperties: false,
      properties: { maxPartialMatches: { type: 'integer', minimum: 1, maximum: 1_000_000 }, stateTtl: duration },
    },
  },
  definitions: {
    condition: {
      type: 'object',
      minProperties: 1,
      oneOf: [
        { required: ['all'], properties: { all: { type: 'array', minItems: 1, items: { $ref: '#/definitions/condition' } } }, additionalProperties: false },
        { required: ['any'], properties: { any: { type: 'array', minItems: 1, items: { $ref: '#/definitions/condition' } } }, additionalProperties: false },
        { required: ['not'], properties: { not: { $ref: '#/definitions/condition' } }, additionalProperties: false },
        { required: ['expr'], properties: { expr: cel }, additionalProperties: false },
        {
          required: ['aggregate', 'op', 'value'],
          additionalProperties: false,
          properties: {
            aggregate: {
              type: 'object',
              required: ['fn', 'eventTypes', 'window'],
              additionalProperties: false,
              properties: {
                fn: { enum: ['count', 'sum', 'avg', 'min', 'max', 'distinct'] },
                field: fieldName,
                eventTypes,
                filter: cel,
                window: {
                  type: 'object',
                  required: ['type'],
                  additionalProperties: false,
                  properties: { type: { enum: ['lifetime', 'tumbling', 'sliding'] }, size: duration, slide: duration },
                  allOf: [
                    { if: { properties: { type: { const: 'tumbling' } } }, then: { required: ['size'], not: { required: ['slide'] } } },
                    { if: { properties: { type: { const: 'sliding' } } }, then: { required: ['size', 'slide'] } },
                    { if: { properties: { type: { const: 'lifetime' } } }, then: { not: { anyOf: [{ required: ['size'] }, { required: ['slide'] }] } } },
                  ],
                },
              },
            },
            op: { enum: ['>', '>=', '<', '<=', '==', '!='] },
            value: { type: 'number' },
          },
        },
        {
          required: ['sequence'],
          additionalProperties: false,
          properties: {
            on: { enum: ['match', 'timeout'] },
            sequence: {
              type: 'object',
              required: ['pattern'],
              additionalProperties: false,
              properties: {
                within: duration,
                skip: {
                  oneOf: [
                    { enum: ['noSkip', 'skipToNext', 'skipPastLastEvent'] },
                    {
                      type: 'object',
                      required: ['strategy', 'stage'],
                      additionalProperties: false,
                      properties: { strategy: { enum: ['skipToFirst', 'skipToLast'] }, stage: { type: 'string' } },
                    },
                  ],
                },
                pattern: {
                  type: 'array',
                  minItems: 1,
                  maxItems: 32,
                  items: {
                    type: 'object',
                    required: ['name', 'eventTypes'],
                    additionalProperties: false,
                    properties: {
                      name: { type: 'string', pattern: '^[A-Za-z_][A-Za-z0-9_]{0,63}$' },
                      eventTypes,
                      where: cel,
                      contiguity: { enum: ['next', 'followedBy', 'followedByAny', 'notNext', 'notFollowedBy'] },
                      times: {
                        oneOf: [
                          { type: 'integer', minimum: 1, maximum: 1000 },
                          {
                            type: 'object',
                            required: ['min', 'max'],
                            additionalProperties: false,
                            properties: { min: { type: 'integer', minimum: 1, maximum: 1000 }, max: { type: 'integer', minimum: 1, maximum: 1000 } },
                          },
                        ],
                      },
                      oneOrMore: { type: 'boolean' },
                      optional: { type: 'boolean' },
                      greedy: { type: 'boolean' },
                      inner: { enum: ['relaxed', 'consecutive', 'allowCombinations'] },
                      until: cel,
                    },
                  },
                },
              },
            },
          },
        },
      ],
    },
  },
} as const;
