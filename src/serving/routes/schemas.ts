/** JSON Schemas shared by routes, also published in the OpenAPI document. */

/** The body of every error response. */
export const errorSchema = {
  type: 'object',
  required: ['statusCode', 'code', 'error', 'message'],
  properties: {
    statusCode: { type: 'integer' },
    code: { type: 'string', description: 'Stable error code, see docs/errors.md.' },
    error: { type: 'string' },
    message: { type: 'string', description: 'Names the thing, the field and the reason.' },
    path: { type: 'string', description: 'JSON pointer of the offending field.' },
    details: { type: 'array', items: { type: 'object', properties: { path: { type: 'string' }, message: { type: 'string' } } } },
  },
} as const;

/** Error responses of a route, by status. */
export function errors(...statuses: number[]): Record<string, typeof errorSchema> {
  const out: Record<string, typeof errorSchema> = {};
  for (const s of statuses) out[String(s)] = errorSchema;
  return out;
}

const scalar = { type: ['string', 'number', 'boolean', 'null'] } as const;

/** A profile as the API returns it. */
export const profileSchema = {
  type: 'object',
  required: ['id', 'attributes', 'tags'],
  properties: {
    id: { type: 'string' },
    attributes: {
      type: 'object',
      additionalProperties: {
        type: 'object',
        properties: { value: scalar, updatedAt: { type: ['string', 'null'], format: 'date-time' } },
      },
    },
    tags: {
      type: 'object',
      additionalProperties: {
        type: 'object',
        properties: {
          value: scalar,
          updatedAt: { type: ['string', 'null'], format: 'date-time', description: 'Event time of the last change; null for a default value.' },
          version: { type: 'integer', description: 'Definition version that computed the value.' },
        },
      },
    },
  },
} as const;

/** The answer of an ingest request. */
export const ingestResultSchema = {
  type: 'object',
  required: ['accepted', 'rejected'],
  properties: {
    accepted: { type: 'integer', description: 'Events durably appended to the log.' },
    rejected: { type: 'integer', description: 'Items refused and sent to the dead letters.' },
    errors: { type: 'array', description: 'The first refused items with their reason.', items: errorSchema },
    visible: { type: 'boolean', description: 'With ?wait=true: the accepted events are reflected in stored profiles.' },
  },
} as const;
