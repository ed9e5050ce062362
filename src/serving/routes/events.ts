import type { FastifyInstance, FastifyRequest } from 'fastify';
import { InputError, PortraitError, showValue } from '../../errors/index.js';
import { decodeBody, SchemaMapper, type AppendResult, type BodyFormat } from '../../ingest/index.js';
import type { AttrValue } from '../../engine/index.js';
import type { ServingContext } from '../context.js';
import { errors, errorSchema, ingestResultSchema } from './schemas.js';
import { withTimeout } from '../with-timeout.js';

/** Refused items listed in an ingest answer; the rest are only counted. */
const MAX_LISTED_ERRORS = 20;
const ATTRIBUTE_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/;

interface IngestQuery {
  schema?: string;
  wait?: boolean;
}

const eventLines = { type: 'string', description: 'One event per line; each line as in application/json.' } as const;
/** Request bodies of `POST /v1/events` by content type. */
const eventBodyContent = {
  'application/json': {
    schema: {
      description:
        'One canonical event or an array of them: `type` (a declared event type), the entity key (`user_id`), ' +
        '`time` (epoch ms or ISO-8601; absent means now) and the fields the type declares.',
    },
  },
  'application/x-ndjson': { schema: eventLines },
  'application/ndjson': { schema: eventLines },
  'application/jsonl': { schema: eventLines },
  'text/plain': { schema: eventLines },
  'text/csv': { schema: { type: 'string', description: 'Rows mapped to events by the input schema named in `?schema=`.' } },
} as const;

/** `POST /v1/events`, attribute upserts and dead letters. */
export function registerEventRoutes(app: FastifyInstance, ctx: ServingContext): void {
  app.post<{ Querystring: IngestQuery }>(
    '/v1/events',
    {
      schema: {
        tags: ['ingest'],
        summary: 'Send events',
        description:
          'Accepts one event object or a JSON array of them (`application/json`), one event per line (`application/x-ndjson`), ' +
          'or CSV through a named input schema (`text/csv`, `?schema=`). An event is acknowledged once durably appended to the log. ' +
          'Invalid items are refused with the field and reason and sent to the dead letters; the valid ones are still accepted.',
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: {
            schema: { type: 'string', description: 'Input schema mapping the items to events (required for CSV).' },
            wait: { type: 'boolean', description: 'Answer only once the events are reflected in stored profiles.' },
          },
        },
        // Describes the accepted bodies in the OpenAPI document; it checks nothing, since
        // items are validated one by one against the event catalog by the handler.
        body: { content: eventBodyContent },
        response: { 200: ingestResultSchema, ...errors(400, 413, 415, 503, 504) },
      },
    },
    async (req, reply) => {
      ctx.ingestor.checkCapacity();
      const format = formatOf(req);
      const mapper = mapperFor(ctx, req.query.schema);
      const { events, rejected } = decodeBody(req.body, format, mapper, ctx.catalog, ctx.limits, ctx.clock.now());
      for (const r of rejected) ctx.ingestor.reject(r.error, r.payload);
      if (events.length === 0) {
        const first = rejected[0]?.error ?? new InputError('PRT_INGEST_MISSING_FIELD', 'the request holds no events', { path: '/body' });
        const body = first.toJSON();
        if (rejected.length > 1) body.details = rejected.slice(0, MAX_LISTED_ERRORS).map((r) => ({ path: r.error.path ?? '', message: r.error.message }));
        return reply.status(first.statusCode).send(body);
      }
      const result = await ctx.ingestor.appendEvents(events);
      const answer: Record<string, unknown> = { accepted: events.length, rejected: rejected.length };
      if (rejected.length > 0) answer.errors = rejected.slice(0, MAX_LISTED_ERRORS).map((r) => r.error.toJSON());
      if (req.query.wait === true) answer.visible = await waitVisible(ctx, result);
      return answer;
    },
  );

  app.patch<{ Params: { id: string }; Body: Record<string, unknown> }>(
    '/v1/profiles/:id/attributes',
    {
      schema: {
        tags: ['ingest'],
        summary: 'Upsert static attributes of a profile',
        description: 'Merges the given attributes (age, gender, region…) into the profile; `null` removes one. Durable when answered.',
        params: { type: 'object', properties: { id: { type: 'string', minLength: 1, maxLength: 256 } } },
        querystring: { type: 'object', additionalProperties: false, properties: { wait: { type: 'boolean' } } },
        body: { type: 'object', additionalProperties: { type: ['string', 'number', 'boolean', 'null'] } },
        response: {
          200: { type: 'object', properties: { id: { type: 'string' }, updated: { type: 'array', items: { type: 'string' } }, visible: { type: 'boolean' } } },
          ...errors(400, 503),
        },
      },
    },
    async (req) => {
      ctx.ingestor.checkCapacity();
      const attrs = checkAttributes(req.body, '/body');
      const result = await ctx.ingestor.appendAttributes(req.params.id, attrs, ctx.clock.now());
      const answer: Record<string, unknown> = { id: req.params.id, updated: Object.keys(attrs) };
      if ((req.query as { wait?: boolean }).wait === true) answer.visible = await waitVisible(ctx, result);
      return answer;
    },
  );

  app.post<{ Body: { items: Array<{ id: string; attributes: Record<string, unknown> }> } }>(
    '/v1/attributes',
    {
      schema: {
        tags: ['ingest'],
        summary: 'Upsert static attributes of many profiles',
        body: {
          type: 'object',
          required: ['items'],
          additionalProperties: false,
          properties: {
            items: {
              type: 'array',
              maxItems: 10_000,
              items: {
                type: 'object',
                required: ['id', 'attributes'],
                additionalProperties: false,
                properties: { id: { type: 'string', minLength: 1, maxLength: 256 }, attributes: { type: 'object' } },
              },
            },
          },
        },
        response: { 200: { type: 'object', properties: { updated: { type: 'integer' } } }, ...errors(400, 503) },
      },
    },
    async (req) => {
      ctx.ingestor.checkCapacity();
      const checked = req.body.items.map((item, i) => ({ id: item.id, attrs: checkAttributes(item.attributes, `/body/items/${i}/attributes`) }));
      const now = ctx.clock.now();
      await Promise.all(checked.map((c) => ctx.ingestor.appendAttributes(c.id, c.attrs, now)));
      return { updated: checked.length };
    },
  );

  app.get<{ Querystring: { limit?: number } }>(
    '/v1/deadletters',
    {
      schema: {
        tags: ['ingest'],
        summary: 'The newest refused records with their reasons',
        querystring: { type: 'object', additionalProperties: false, properties: { limit: { type: 'integer', minimum: 1, maximum: 1000, default: 100 } } },
        response: {
          200: {
            type: 'object',
            properties: {
              total: { type: 'integer' },
              items: {
                type: 'array',
                items: {
                  type: 'object',
                  properties: {
                    stage: { type: 'string' },
                    code: { type: 'string' },
                    reason: { type: 'string' },
                    path: { type: 'string' },
                    payload: { type: 'string' },
                    at: { type: 'string', format: 'date-time' },
                    source: { type: 'string' },
                    position: { type: 'integer' },
                  },
                },
              },
            },
          },
          400: errorSchema,
        },
      },
    },
    async (req) => {
      const items = ctx.deadLetters.listDeadLetters(req.query.limit ?? 100).map((l) => ({ ...l, at: new Date(l.at).toISOString() }));
      return { total: ctx.deadLetters.countDeadLetters(), items };
    },
  );
}

function formatOf(req: FastifyRequest): BodyFormat {
  const type = (req.headers['content-type'] ?? 'application/json').split(';')[0]!.trim().toLowerCase();
  if (type === 'application/json') return 'json';
  if (type === 'text/csv') return 'csv';
  return 'ndjson';
}

function mapperFor(ctx: ServingContext, name: string | undefined): SchemaMapper | undefined {
  if (name === undefined) return undefined;
  const schema = ctx.schemas.get(name);
  if (schema === undefined) {
    throw new InputError('PRT_INGEST_UNKNOWN_SCHEMA', `/query/schema ${showValue(name)} is not a known input schema (known: ${[...ctx.schemas.keys()].join(', ')})`, {
      path: '/query/schema',
    });
  }
  return new SchemaMapper(schema, ctx.catalog, ctx.limits);
}

function checkAttributes(body: Record<string, unknown>, path: string): Record<string, AttrValue> {
  const out: Record<string, AttrValue> = {};
  const names = Object.keys(body);
  if (names.length === 0) throw new InputError('PRT_INGEST_MISSING_FIELD', `${path} names no attribute`, { path });
  for (const name of names) {
    if (!ATTRIBUTE_NAME.test(name)) {
      throw new InputError('PRT_INGEST_WRONG_TYPE', `${path}/${name} is not a valid attribute name (letters, digits and _, starting with a letter or _)`, { path: `${path}/${name}` });
    }
    const value = body[name];
    if (value !== null && typeof value !== 'string' && typeof value !== 'boolean' && !(typeof value === 'number' && Number.isFinite(value))) {
      throw new InputError('PRT_INGEST_WRONG_TYPE', `${path}/${name} must be a string, number, boolean or null, got ${showValue(value)}`, { path: `${path}/${name}` });
    }
    if (typeof value === 'string' && value.length > 4096) {
      throw new InputError('PRT_INGEST_WRONG_TYPE', `${path}/${name} is ${value.length} characters long; the limit is 4096`, { path: `${path}/${name}` });
    }
    out[name] = value as AttrValue;
  }
  return out;
}

/** Waits until the engine processed `offsets` and stored the profiles; false when that takes too long. */
async function waitVisible(ctx: ServingContext, offsets: AppendResult): Promise<boolean> {
  try {
    await withTimeout(ctx.engine.waitForOffsets(offsets), ctx.limitsHttp.waitTimeoutMs, 'waiting for events to become visible');
    return true;
  } catch (err: unknown) {
    if (err instanceof PortraitError && err.code === 'PRT_SERVING_TIMEOUT') return false;
    throw err;
  }
}
