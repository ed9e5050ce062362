import Fastify, { LogController, type FastifyError, type FastifyInstance, type FastifyReply } from 'fastify';
import swagger from '@fastify/swagger';
import { InputError, PortraitError, toPortraitError } from '../errors/index.js';
import type { ServingContext } from './context.js';
import { registerEventRoutes } from './routes/events.js';
import { registerProfileRoutes } from './routes/profiles.js';
import { registerTagRoutes } from './routes/tags.js';
import { registerSystemRoutes } from './routes/system.js';
import { registerRuleRoutes } from './routes/rules.js';
import { registerDecisionRoutes } from './routes/decisions.js';

/** Options of {@link createApp}. */
export interface AppOptions {
  logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
  /** Version string shown in the OpenAPI document. */
  version: string;
}

const TEXT_TYPES = ['application/x-ndjson', 'application/ndjson', 'application/jsonl', 'text/csv', 'text/plain'];

/**
 * Builds the HTTP API over a serving context: ingest, profiles, tag
 * definitions, health, metrics and the OpenAPI document. Every error is
 * returned as `{ statusCode, code, error, message, path? }`.
 */
export async function createApp(ctx: ServingContext, options: AppOptions): Promise<FastifyInstance> {
  const app = Fastify({
    logger: options.logLevel === 'silent' ? false : { level: options.logLevel },
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: ctx.limitsHttp.maxBodyBytes,
    // Entity ids may be 256 characters long (the ingest limit), and a path parameter is
    // measured URL-encoded: up to 9 characters per UTF-16 unit. Fastify's default of 100
    // answered 414 to reads of ids that ingest had accepted.
    routerOptions: { maxParamLength: 256 * 9 },
    // Router errors (bad URL encoding, an over-long parameter) answer in Portrait's error shape too.
    frameworkErrors: (err, req, reply) => {
      const error = mapError(err as FastifyError, `${req.method} ${req.url.split('?')[0] ?? ''}`);
      // The reply's type here is generic over every route; it is an ordinary reply.
      void (reply as unknown as FastifyReply).status(error.statusCode).send(error.toJSON());
    },
    ajv: { customOptions: { allErrors: false, coerceTypes: 'array', removeAdditional: false, allowUnionTypes: true } },
  });

  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'Portrait API',
        version: options.version,
        description: 'Real-time user profiles and tags: ingest events, read profiles, manage tag definitions.',
      },
      tags: [
        { name: 'ingest', description: 'Send events and attributes' },
        { name: 'profiles', description: 'Read profiles' },
        { name: 'tags', description: 'Manage tag definitions' },
        { name: 'rules', description: 'Manage decision rules' },
        { name: 'decisions', description: 'Rule decisions: query, stream, decide, output delivery' },
        { name: 'system', description: 'Health, metrics and diagnostics' },
      ],
    },
  });

  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (req, body, done) => {
    const text = body as string;
    if (text.trim() === '') {
      done(null, undefined);
      return;
    }
    try {
      done(null, JSON.parse(text));
    } catch (err: unknown) {
      const ingest = req.url.startsWith('/v1/events') || req.url.startsWith('/v1/attributes');
      const message = `the request body is not valid JSON: ${(err as Error).message}`;
      done(ingest ? new InputError('PRT_INGEST_BAD_JSON', message, { path: '/body' }) : new PortraitError('PRT_SERVING_BAD_REQUEST', message, { path: '/body' }), undefined);
    }
  });
  app.addContentTypeParser(TEXT_TYPES, { parseAs: 'string' }, (_req, body, done) => done(null, body));

  app.setErrorHandler((err: FastifyError, req, reply) => {
    const error = mapError(err, `${req.method} ${req.routeOptions.url ?? req.url}`);
    if (error.statusCode >= 500 && error.code === 'PRT_INTERNAL') req.log.error({ err }, 'request failed');
    void reply.status(error.statusCode).send(error.toJSON());
  });
  app.setNotFoundHandler((req, reply) => {
    const error = new PortraitError('PRT_SERVING_NOT_FOUND', `no route ${req.method} ${req.url.split('?')[0]}`, { path: req.url.split('?')[0] ?? '' });
    void reply.status(404).send(error.toJSON());
  });
  app.addHook('onResponse', async (req, reply) => {
    ctx.metrics.httpDuration.observe({ method: req.method, route: req.routeOptions.url ?? 'unmatched', status: String(reply.statusCode) }, reply.elapsedTime / 1000);
  });

  registerEventRoutes(app, ctx);
  registerProfileRoutes(app, ctx);
  registerTagRoutes(app, ctx);
  registerSystemRoutes(app, ctx);
  registerRuleRoutes(app, ctx);
  registerDecisionRoutes(app, ctx);
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
  await app.ready();
  return app;
}

/** Maps anything a handler or Fastify throws to a Portrait error. */
function mapError(err: FastifyError, route: string): PortraitError {
  if (err instanceof PortraitError) return err;
  if (err.validation !== undefined && err.validation.length > 0) {
    const first = err.validation[0]!;
    // Fastify names the query string part `querystring`; Portrait's paths say `/query/…` everywhere.
    const context = err.validationContext === 'querystring' ? 'query' : (err.validationContext ?? 'body');
    let path = `/${context}${first.instancePath}`;
    const params = first.params as Record<string, unknown>;
    let message = first.message ?? 'is invalid';
    if (first.keyword === 'required') {
      path = `${path}/${String(params.missingProperty)}`;
      message = 'is required';
    } else if (first.keyword === 'additionalProperties') {
      path = `${path}/${String(params.additionalProperty)}`;
      message = 'is not a known property';
    }
    return new PortraitError('PRT_SERVING_BAD_REQUEST', `${route}: ${path} ${message}`, { path });
  }
  switch (err.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new InputError('PRT_INGEST_BODY_TOO_LARGE', `${route}: the request body is larger than the limit of ${err.message.match(/\d+/)?.[0] ?? 'the configured'} bytes`, { path: '/body' });
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new InputError('PRT_INGEST_UNSUPPORTED_MEDIA', `${route}: content type is not accepted; send application/json, application/x-ndjson or text/csv`, { path: '/headers/content-type' });
    case 'FST_ERR_BAD_URL':
    case 'FST_ERR_MAX_PARAM_LENGTH':
      return new PortraitError('PRT_SERVING_BAD_REQUEST', `${route}: ${err.message}`, { path: '/params' });
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return new PortraitError('PRT_SERVING_BAD_REQUEST', `${route}: ${err.message}`, { path: '/body' });
    default:
      if (typeof err.statusCode === 'number' && err.statusCode >= 400 && err.statusCode < 500) {
        return new PortraitError('PRT_SERVING_BAD_REQUEST', `${route}: ${err.message}`);
      }
      return toPortraitError(err);
  }
}
