import type { AggregateFn } from '../engine/index.js';
import { DURATION_PATTERN } from './duration.js';

/** Lifecycle of a definition. */
export type DefinitionStatus = 'draft' | 'online' | 'offline' | 'archived';

/** A duration: `15m`, `1h`, `30d`… or milliseconds. */
export type Duration = string | number;

/** Window of a statistic tag as written in a document. */
export type WindowDocument = { type: 'lifetime' } | { type: 'tumbling'; size: Duration } | { type: 'sliding'; size: Duration; slide: Duration };

/** Fields every tag document has. */
interface TagDocumentBase {
  /** Tag id: lower case letters, digits and underscores, starting with a letter. */
  id: string;
  description?: string;
  /** Team or person responsible for the tag. */
  owner?: string;
  /** Free-form labels (e.g. `domain: risk`). */
  labels?: Record<string, string>;
  /**
   * On update: the version the author started from. If the stored version
   * differs the update is refused (`PRT_DEF_VERSION_CONFLICT`). Ignored on create.
   */
  version?: number;
}

/** An aggregate of events over a window, e.g. "clicks in the last hour". */
export interface StatisticTagDocument extends TagDocumentBase {
  kind: 'statistic';
  /** Event types the tag reads. */
  eventTypes: string[];
  /** CEL condition over one event (`attrs`, `eventType`, `time`, `key`); only matching events count. */
  filter?: string;
  aggregate: AggregateFn;
  /** Attribute aggregated; required except for `count`, `first` and `last`. */
  field?: string;
  window: WindowDocument;
  /** For `distinct`: most values kept per entity. @defaultValue 10000 */
  maxDistinct?: number;
}

/** A condition over the profile, e.g. "spend_30d > 10000 and age >= 25". */
export interface RuleTagDocument extends TagDocumentBase {
  kind: 'rule';
  /** CEL expression over `tags`, `attrs`, `key` and `now`; its result is the tag value. */
  condition: string;
}

/** A tag definition as authors write it. */
export type TagDocument = StatisticTagDocument | RuleTagDocument;

const duration = {
  oneOf: [
    { type: 'string', pattern: DURATION_PATTERN },
    { type: 'integer', minimum: 1 },
  ],
  description: 'A duration: an integer and a unit (ms, s, m, h, d, w), e.g. "15m", or a number of milliseconds.',
};

/** The published JSON Schema of tag documents. */
export const tagDocumentSchema = {
  $schema: 'http://json-schema.org/draft-07/schema#',
  $id: 'https://portrait.dev/schemas/tag-definition.json',
  title: 'Portrait tag definition',
  type: 'object',
  required: ['id', 'kind'],
  properties: {
    id: { type: 'string', pattern: '^[a-z][a-z0-9_]{0,63}$', description: 'Tag id.' },
    kind: { enum: ['statistic', 'rule'] },
    description: { type: 'string', maxLength: 2000 },
    owner: { type: 'string', maxLength: 200 },
    labels: { type: 'object', additionalProperties: { type: 'string', maxLength: 200 }, maxProperties: 50 },
    version: { type: 'integer', minimum: 1 },
    status: { enum: ['draft', 'online', 'offline', 'archived'], readOnly: true },
    createdAt: { readOnly: true },
    updatedAt: { readOnly: true },
    eventTypes: { type: 'array', items: { type: 'string', minLength: 1 }, minItems: 1, uniqueItems: true },
    filter: { type: 'string', minLength: 1, maxLength: 10000 },
    aggregate: { enum: ['count', 'sum', 'avg', 'min', 'max', 'distinct', 'first', 'last', 'latest'] },
    field: { type: 'string', minLength: 1 },
    window: {
      type: 'object',
      required: ['type'],
      properties: {
        type: { enum: ['lifetime', 'tumbling', 'sliding'] },
        size: duration,
        slide: duration,
      },
      additionalProperties: false,
      allOf: [
        { if: { properties: { type: { const: 'tumbling' } } }, then: { required: ['size'], not: { required: ['slide'] } } },
        { if: { properties: { type: { const: 'sliding' } } }, then: { required: ['size', 'slide'] } },
        { if: { properties: { type: { const: 'lifetime' } } }, then: { not: { anyOf: [{ required: ['size'] }, { required: ['slide'] }] } } },
      ],
    },
    maxDistinct: { type: 'integer', minimum: 1, maximum: 1_000_000 },
    condition: { type: 'string', minLength: 1, maxLength: 10000 },
  },
  additionalProperties: false,
  allOf: [
    {
      if: { properties: { kind: { const: 'statistic' } } },
      then: {
        required: ['eventTypes', 'aggregate', 'window'],
        not: { required: ['condition'] },
      },
    },
    {
      if: { properties: { kind: { const: 'rule' } } },
      then: {
        required: ['condition'],
        not: { anyOf: [{ required: ['eventTypes'] }, { required: ['aggregate'] }, { required: ['window'] }, { required: ['filter'] }, { required: ['field'] }] },
      },
    },
  ],
} as const;
