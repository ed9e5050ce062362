import type { FastifyInstance } from 'fastify';
import type { Decision, Event } from '../../engine/index.js';
import { InputError, PortraitError, showValue } from '../../errors/index.js';
import { validateEvent } from '../../ingest/index.js';
import type { ServingContext } from '../context.js';
import { withTimeout } from '../with-timeout.js';
import { errors } from './schemas.js';

const decisionSchema = { type: 'object', additionalProperties: true } as const;
const outputStatsSchema = {
  type: 'object',
  required: ['name', 'delivered', 'failed', 'dropped', 'queued', 'lastError'],
  properties: {
    name: { type: 'string', description: '`file:<path>` or `webhook:<url>` (the URL without credentials and query).' },
    delivered: { type: 'integer' },
    failed: { type: 'integer', description: 'Decisions not delivered after the retries.' },
    dropped: { type: 'integer', description: 'Decisions dropped because the queue was full.' },
    queued: { type: 'integer' },
    lastError: { type: ['string', 'null'], description: 'The latest delivery error, or null when none.' },
  },
} as const;
/** Bytes an SSE client may fall behind before it is disconnected. */
const MAX_SSE_BACKLOG_BYTES = 4 * 1024 * 1024;

/** Decisions: query, live stream (SSE), the synchronous `decide` call and the delivery counters of outputs. */
export function registerDecisionRoutes(app: FastifyInstance, ctx: ServingContext): void {
  app.get<{ Querystring: { rule?: string; entity?: string; limit?: number; before?: number } }>(
    '/v1/decisions',
    {
      schema: {
        tags: ['decisions'],
        summary: 'Stored decisions, newest first',
        description: 'Filter by rule id or entity; page with `before` set to the last `cursor` of a page.',
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: {
            rule: { type: 'string' },
            entity: { type: 'string' },
            limit: { type: 'integer', minimum: 1, maximum: 1000, default: 100 },
            before: { type: 'integer', minimum: 1 },
          },
        },
        response: { 200: { type: 'object', properties: { total: { type: 'integer' }, items: { type: 'array', items: decisionSchema } } }, ...errors(400) },
      },
    },
    async (req) => {
      const q = req.query;
      await ctx.decisions.flushed();
      const items = ctx.decisions.list({
        limit: q.limit ?? 100,
        ...(q.rule === undefined ? {} : { ruleId: q.rule }),
        ...(q.entity === undefined ? {} : { entity: q.entity }),
        ...(q.before === undefined ? {} : { before: q.before }),
      });
      return { total: ctx.decisions.count(), items };
    },
  );

  app.get<{ Querystring: { rule?: string } }>(
    '/v1/decisions::stream',
    {
      schema: {
        tags: ['decisions'],
        summary: 'Live decisions as Server-Sent Events',
        description: 'Each new decision as an `event: decision` with the decision as JSON data and its id as the SSE id. `?rule=` keeps one rule. A comment line every 15 s keeps the connection open.',
        querystring: { type: 'object', additionalProperties: false, properties: { rule: { type: 'string' } } },
      },
    },
    (req, reply) => {
      const rule = req.query.rule;
      reply.hijack();
      const res = reply.raw;
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive', 'x-accel-buffering': 'no' });
      res.write(': connected\n\n');
      const unsubscribe = ctx.decisions.subscribe((batch) => {
        let text = '';
        for (const d of batch) if (rule === undefined || d.ruleId === rule) text += `id: ${d.id}\nevent: decision\ndata: ${JSON.stringify(d)}\n\n`;
        if (text === '') return;
        if (res.writableLength > MAX_SSE_BACKLOG_BYTES) {
          // A client that does not read must not hold the server's memory.
          res.end('event: error\ndata: {"code":"PRT_SERVING_TIMEOUT","message":"the client fell too far behind"}\n\n');
          stop();
          return;
        }
        res.write(text);
      });
      const heartbeat = setInterval(() => res.write(': keep-alive\n\n'), 15_000);
      heartbeat.unref();
      const stop = (): void => {
        clearInterval(heartbeat);
        unsubscribe();
      };
      req.raw.on('close', stop);
    },
  );

  app.get(
    '/v1/decisions/outputs',
    {
      schema: {
        tags: ['decisions'],
        summary: 'Delivery counters of each decision output',
        description:
          'One item per configured output (`decisions.file`, `decisions.webhookUrl`), counted since start: decisions delivered, failed (after the retries), dropped (queue full) and queued, with the latest error.',
        response: { 200: { type: 'object', properties: { items: { type: 'array', items: outputStatsSchema } } } },
      },
    },
    async () => ({ items: ctx.decisions.outputStats().map((o) => ({ ...o, lastError: o.lastError ?? null })) }),
  );

  app.get<{ Params: { id: string } }>(
    '/v1/decisions/:id',
    { schema: { tags: ['decisions'], summary: 'One decision', params: { type: 'object', properties: { id: { type: 'string' } } }, response: { 200: decisionSchema, ...errors(404) } } },
    async (req) => {
      await ctx.decisions.flushed();
      const d = ctx.decisions.get(req.params.id);
      if (d === undefined) throw new PortraitError('PRT_DECISION_NOT_FOUND', `no stored decision has id ${showValue(req.params.id)}`, { path: '/params/id' });
      return d;
    },
  );

  app.post<{ Body: unknown }>(
    '/v1/decide',
    {
      schema: {
        tags: ['decisions'],
        summary: 'Send one event and get the decisions it causes now',
        description:
          'The event is durably appended (it enters the stream like any other) and the answer lists the decisions of rules with `ordering: arrival` that it triggered. ' +
          'Rules in event-time order decide once the watermark passes the event; their decisions arrive later on the stream and in `GET /v1/decisions`.',
        body: { type: 'object', additionalProperties: true },
        response: {
          200: { type: 'object', properties: { decisions: { type: 'array', items: decisionSchema }, positions: { type: 'array', items: { type: 'object', additionalProperties: true } } } },
          ...errors(400, 503, 504),
        },
      },
    },
    async (req) => {
      ctx.ingestor.checkCapacity();
      let event;
      try {
        event = validateEvent(req.body, ctx.catalog, ctx.limits, ctx.clock.now(), '/body');
      } catch (err: unknown) {
        if (err instanceof InputError) ctx.ingestor.reject(err, JSON.stringify(req.body) ?? '');
        throw err;
      }
      // Listen before appending: the engine may decide before the append's promise settles here.
      const seen: Decision[] = [];
      const unsubscribe = ctx.decisions.subscribe((batch) => {
        for (const d of batch) if (triggeredBy(d, event)) seen.push(d);
      });
      try {
        const started = performance.now();
        const positions = await ctx.ingestor.appendTracked(event);
        const durable = performance.now();
        ctx.metrics.decideWait.observe({ phase: 'append' }, (durable - started) / 1000);
        const targets = new Array<number>(ctx.ingestor.partitionCount).fill(0);
        for (const p of positions) targets[p.partition] = p.offset + 1;
        await withTimeout(ctx.engine.waitForOffsets(targets), ctx.limitsHttp.waitTimeoutMs, 'deciding');
        ctx.metrics.decideWait.observe({ phase: 'engine' }, (performance.now() - durable) / 1000);
        const at = new Set(positions.map((p) => `${p.partition}:${p.offset}`));
        return { decisions: seen.filter((d) => at.has(`${d.partition}:${d.offset}`)), positions };
      } finally {
        unsubscribe();
      }
    },
  );
}

/**
 * Whether a decision was made on this very event. Processing an event can also
 * release earlier events of the same entity from an event-time rule's ordering
 * buffer (the event moved the watermark past them): those decisions are made at
 * the same log position but answer an earlier event, not this request.
 */
function triggeredBy(d: Decision, event: Event): boolean {
  const e = d.event;
  if (d.trigger !== 'event' || e === null || e.type !== event.type || e.key !== event.key) return false;
  // A processing-time rule sees the event at its processing time.
  if (e.time !== event.time && e.time !== d.processingTime) return false;
  const names = Object.keys(event.attrs);
  if (Object.keys(e.attrs).length !== names.length) return false;
  for (const name of names) if (e.attrs[name] !== event.attrs[name]) return false;
  return true;
}
