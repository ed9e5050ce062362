import { readFileSync } from 'node:fs';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import type { FastifyInstance } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { cleanup, openTestApp, testConfig } from '../helpers/system.js';

afterEach(cleanup);

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any -- parsed HTTP bodies

const apiDoc = readFileSync(new URL('../../docs/api.md', import.meta.url), 'utf8');

/**
 * Every `METHOD /path` the app routes, read from `printRoutes` (a tree whose lines are
 * `├── /segment (GET, HEAD)`, four characters of indentation per level). HEAD routes
 * Fastify adds for each GET are left out; paths use OpenAPI's `{param}` form.
 */
function registeredRoutes(app: FastifyInstance): string[] {
  const tree = app.printRoutes({ commonPrefix: false });
  const stack: string[] = [];
  const routes: string[] = [];
  for (const line of tree.split('\n')) {
    const m = /^((?:[│ ]   )*)[├└]── (.+?)(?: \(([A-Z, ]+)\))?$/.exec(line);
    if (m === null) continue;
    const depth = m[1]!.length / 4;
    const path = (stack[depth - 1] ?? '') + m[2]!;
    stack[depth] = path;
    stack.length = depth + 1;
    for (const method of (m[3] ?? '').split(',').map((s) => s.trim())) {
      if (method !== '' && method !== 'HEAD') routes.push(`${method} ${path.replace(/\/:([A-Za-z_]\w*)/g, '/{$1}')}`);
    }
  }
  return routes.sort();
}

/** A compact schema of the OpenAPI 3.1 rules this document must follow (no validator package is installed). */
const openApi31 = {
  $schema: 'https://json-schema.org/draft/2020-12/schema',
  type: 'object',
  required: ['openapi', 'info', 'paths'],
  additionalProperties: false,
  patternProperties: { '^x-': {} },
  properties: {
    openapi: { type: 'string', pattern: '^3\\.1\\.\\d+$' },
    info: {
      type: 'object',
      required: ['title', 'version'],
      properties: { title: { type: 'string', minLength: 1 }, version: { type: 'string', minLength: 1 }, description: { type: 'string' } },
    },
    jsonSchemaDialect: { type: 'string' },
    servers: { type: 'array', items: { type: 'object', required: ['url'] } },
    paths: { type: 'object', propertyNames: { pattern: '^/' }, additionalProperties: { $ref: '#/$defs/pathItem' } },
    webhooks: { type: 'object' },
    components: { type: 'object', properties: { schemas: { type: 'object', additionalProperties: { $ref: '#/$defs/schema' } } } },
    security: { type: 'array' },
    tags: { type: 'array', items: { type: 'object', required: ['name'], properties: { name: { type: 'string' }, description: { type: 'string' } } } },
    externalDocs: { type: 'object', required: ['url'] },
  },
  $defs: {
    schema: { type: ['object', 'boolean'] },
    pathItem: {
      type: 'object',
      propertyNames: { enum: ['$ref', 'summary', 'description', 'get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace', 'servers', 'parameters'] },
      properties: Object.fromEntries(['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'].map((m) => [m, { $ref: '#/$defs/operation' }])),
    },
    operation: {
      type: 'object',
      required: ['responses'],
      properties: {
        tags: { type: 'array', items: { type: 'string' } },
        summary: { type: 'string' },
        description: { type: 'string' },
        operationId: { type: 'string' },
        parameters: { type: 'array', items: { $ref: '#/$defs/parameter' } },
        requestBody: { type: 'object', required: ['content'], properties: { content: { $ref: '#/$defs/content' }, required: { type: 'boolean' } } },
        responses: {
          type: 'object',
          minProperties: 1,
          propertyNames: { pattern: '^([1-5](?:\\d{2}|XX)|default)$' },
          additionalProperties: {
            type: 'object',
            required: ['description'],
            properties: { description: { type: 'string' }, content: { $ref: '#/$defs/content' }, headers: { type: 'object' } },
          },
        },
        deprecated: { type: 'boolean' },
      },
    },
    parameter: {
      type: 'object',
      required: ['name', 'in'],
      properties: {
        name: { type: 'string', minLength: 1 },
        in: { enum: ['query', 'header', 'path', 'cookie'] },
        required: { type: 'boolean' },
        description: { type: 'string' },
        schema: { $ref: '#/$defs/schema' },
        content: { $ref: '#/$defs/content' },
      },
      oneOf: [{ required: ['schema'] }, { required: ['content'] }],
      if: { properties: { in: { const: 'path' } } },
      then: { required: ['required'], properties: { required: { const: true } } },
    },
    content: { type: 'object', additionalProperties: { type: 'object', properties: { schema: { $ref: '#/$defs/schema' } } } },
  },
} as const;

async function get(app: FastifyInstance, url: string): Promise<{ status: number; body: string; json: () => Json; type: string }> {
  const res = await app.inject({ method: 'GET', url });
  return { status: res.statusCode, body: res.body, json: () => res.json() as Json, type: String(res.headers['content-type']) };
}

describe('GET /healthz and /readyz', () => {
  it('are up and ready when the engine runs', async () => {
    const { app } = await openTestApp();
    const health = await get(app, '/healthz');
    expect([health.status, health.json()]).toEqual([200, { status: 'ok' }]);
    const ready = await get(app, '/readyz');
    expect(ready.status).toBe(200);
    expect(ready.json()).toEqual({ status: 'ready', engineRunning: true, lag: 0, overloaded: false });
  });

  it('/readyz answers 503 while the engine does not run or lags too far, /healthz still 200', async () => {
    const { app } = await openTestApp(await testConfig({ 'ingest.maxLagRecords': 2 }), { start: false });
    expect((await get(app, '/healthz')).status).toBe(200);
    const idle = await get(app, '/readyz');
    expect(idle.status).toBe(503);
    expect(idle.json()).toMatchObject({ status: 'not ready', engineRunning: false });
    const events = Array.from({ length: 5 }, (_, i) => ({ type: 'click', user_id: `u${i}`, item_id: 'x' }));
    await app.inject({ method: 'POST', url: '/v1/events', payload: events });
    expect((await get(app, '/readyz')).json()).toMatchObject({ status: 'not ready', overloaded: true, lag: 5 });
  });
});

describe('GET /metrics', () => {
  /** `| \`name\` | type | …` rows of the Metrics table of docs/api.md. */
  const documented = [...apiDoc.slice(apiDoc.indexOf('## Metrics')).matchAll(/^\| `(portrait_[a-z_]+)` \| (counter|gauge|histogram) \|/gm)].map((m) => ({ name: m[1]!, type: m[2]! }));

  it('exposes every documented metric with its type, and documents every Portrait metric it exposes', async () => {
    const { app } = await openTestApp();
    const res = await get(app, '/metrics');
    expect(res.status).toBe(200);
    expect(res.type).toContain('text/plain');
    const exposed = new Map([...res.body.matchAll(/^# TYPE (portrait_\w+) (\w+)$/gm)].filter((m) => !m[1]!.startsWith('portrait_process_')).map((m) => [m[1]!, m[2]!]));
    expect(documented.length).toBeGreaterThan(10);
    for (const { name, type } of documented) expect([name, exposed.get(name)]).toEqual([name, type]);
    expect([...exposed.keys()].filter((name) => !documented.some((d) => d.name === name))).toEqual([]);
  });

  it('has the ingest, rejection, lag, watermark, dead-letter, checkpoint and request-latency series', async () => {
    const { app, system } = await openTestApp();
    for (const name of [
      'portrait_ingest_events_total',
      'portrait_ingest_rejected_total',
      'portrait_engine_lag_records',
      'portrait_engine_watermark_delay_seconds',
      'portrait_dead_letters',
      'portrait_checkpoint_duration_seconds',
      'portrait_http_request_duration_seconds',
    ]) {
      expect(documented.map((d) => d.name)).toContain(name);
    }
    await system.definitions.createTag({ id: 'clicks', kind: 'statistic', eventTypes: ['click'], aggregate: 'count', window: { type: 'lifetime' } });
    await system.definitions.setTagStatus('clicks', 'online');
    const t = Date.now();
    const ingest = await app.inject({
      method: 'POST',
      url: '/v1/events?wait=true',
      payload: [
        { type: 'click', user_id: 'a', item_id: 'x', time: t },
        { type: 'click', user_id: 'b', item_id: 'x', time: t },
        { type: 'teleport', user_id: 'a', time: t },
      ],
    });
    expect(ingest.json()).toMatchObject({ accepted: 2, rejected: 1 });
    await system.engine.checkpoint();
    await get(app, '/healthz');
    const text = (await get(app, '/metrics')).body;
    expect(text).toMatch(/^portrait_ingest_events_total 2$/m);
    expect(text).toMatch(/^portrait_ingest_rejected_total\{code="PRT_INGEST_UNKNOWN_EVENT_TYPE"\} 1$/m);
    expect(text).toMatch(/^portrait_dead_letters 1$/m);
    for (let p = 0; p < system.config.partitions; p++) expect(text).toMatch(new RegExp(`^portrait_engine_lag_records\\{partition="${p}"\\} 0$`, 'm'));
    const delays = [...text.matchAll(/^portrait_engine_watermark_delay_seconds\{partition="\d+"\} (\S+)$/gm)].map((m) => Number(m[1]));
    expect(delays.length).toBeGreaterThan(0);
    for (const d of delays) expect(d).toBeGreaterThanOrEqual(0);
    expect(text).toMatch(/^portrait_checkpoint_duration_seconds_count 1$/m);
    // The ingest call's append was one group write per partition it touched, at least one.
    expect(Number(/^portrait_log_write_duration_seconds_count (\d+)$/m.exec(text)?.[1])).toBeGreaterThanOrEqual(1);
    expect(Number(/^portrait_log_write_bytes_total (\d+)$/m.exec(text)?.[1])).toBeGreaterThan(0);
    expect(text).toMatch(/^portrait_checkpoint_duration_seconds_bucket\{le="\+Inf"\} 1$/m);
    expect(text).toMatch(/^portrait_http_request_duration_seconds_bucket\{le="[\d.]+",method="GET",route="\/healthz",status="200"\} \d+$/m);
    expect(text).toMatch(/^portrait_http_request_duration_seconds_count\{method="POST",route="\/v1\/events",status="200"\} 1$/m);
  });
});

describe('GET /openapi.json', () => {
  it('is a valid OpenAPI 3.1 document whose schemas compile', async () => {
    const { app } = await openTestApp();
    const res = await get(app, '/openapi.json');
    expect(res.status).toBe(200);
    const doc = res.json();
    const ajv = new Ajv2020({ strict: false, allErrors: true });
    addFormats.default(ajv);
    const valid = ajv.validate(openApi31, doc);
    expect(valid ? [] : ajv.errors!.map((e) => `${e.instancePath} ${e.message}`)).toEqual([]);

    // every schema inside is a JSON Schema 2020-12 that compiles
    const schemas: Array<[string, unknown]> = [];
    for (const [path, item] of Object.entries(doc.paths as Json)) {
      for (const [method, op] of Object.entries(item as Json)) {
        for (const p of (op as Json).parameters ?? []) schemas.push([`${method} ${path} parameter ${p.name}`, p.schema]);
        for (const [type, media] of Object.entries((op as Json).requestBody?.content ?? {})) schemas.push([`${method} ${path} body ${type}`, (media as Json).schema]);
        for (const [status, response] of Object.entries((op as Json).responses as Json)) {
          for (const media of Object.values((response as Json).content ?? {})) schemas.push([`${method} ${path} ${status}`, (media as Json).schema]);
        }
      }
    }
    expect(schemas.length).toBeGreaterThan(40);
    for (const [where, schema] of schemas) expect(() => ajv.compile(schema as object), where).not.toThrow();
  });

  it('lists every route the app registers, each with a summary and its path parameters', async () => {
    const { app } = await openTestApp();
    const doc = (await get(app, '/openapi.json')).json();
    const documented: string[] = [];
    for (const [path, item] of Object.entries(doc.paths as Json)) {
      for (const [method, op] of Object.entries(item as Json)) {
        documented.push(`${method.toUpperCase()} ${path}`);
        expect((op as Json).summary, `${method} ${path} has no summary`).toEqual(expect.any(String));
        expect((op as Json).tags?.length, `${method} ${path} has no tag`).toBeGreaterThan(0);
        const templated = [...path.matchAll(/\{(\w+)\}/g)].map((m) => m[1]).sort();
        const declared = ((op as Json).parameters ?? []).filter((p: Json) => p.in === 'path').map((p: Json) => p.name).sort();
        expect([path, declared]).toEqual([path, templated]);
        const success = Object.keys((op as Json).responses).filter((s) => s.startsWith('2'));
        expect(success.length, `${method} ${path} has no 2xx response`).toBeGreaterThan(0);
        // routes that read a body describe it; only the lifecycle actions take none
        if (['post', 'put', 'patch'].includes(method) && !/\/(online|offline|archive|start|stop)$/.test(path)) {
          expect((op as Json).requestBody?.content, `${method} ${path} does not describe its request body`).toBeDefined();
        }
      }
    }
    expect(Object.keys(doc.paths['/v1/events'].post.requestBody.content).sort()).toEqual(
      ['application/json', 'application/jsonl', 'application/ndjson', 'application/x-ndjson', 'text/csv', 'text/plain'],
    );
    const routes = registeredRoutes(app);
    expect(routes.length).toBeGreaterThan(20);
    // the document does not describe itself (the route is hidden on purpose)
    expect(documented.sort()).toEqual(routes.filter((r) => r !== 'GET /openapi.json'));
  });

  it('reads the route list correctly (the parser of printRoutes finds nested and custom-method routes)', async () => {
    const { app } = await openTestApp();
    const routes = registeredRoutes(app);
    for (const r of ['GET /v1/profiles', 'GET /v1/profiles/{id}', 'PATCH /v1/profiles/{id}/attributes', 'POST /v1/profiles:batchGet', 'POST /v1/tags:validate', 'POST /v1/tags/{id}/archive', 'GET /metrics']) {
      expect(routes).toContain(r);
    }
    expect(routes).not.toContain('HEAD /healthz');
  });
});

describe('docs/api.md', () => {
  it('has a section for every route the app registers and none for routes that do not exist', async () => {
    const { app } = await openTestApp();
    const sections = [...apiDoc.matchAll(/^### `([A-Z]+ \/\S*)`$/gm)].map((m) => m[1]!).sort();
    expect(new Set(sections).size).toBe(sections.length);
    expect(sections).toEqual(registeredRoutes(app));
  });

  it('names only error codes that exist', async () => {
    const { errorCodes } = await import('../../src/errors/index.js');
    const named = new Set(apiDoc.match(/PRT_[A-Z_]+[A-Z]/g) ?? []);
    expect([...named].filter((c) => !(c in errorCodes))).toEqual([]);
  });
});

describe('unknown routes and system reads', () => {
  it('an unknown route or method -> 404 PRT_SERVING_NOT_FOUND naming the path', async () => {
    const { app } = await openTestApp();
    const res = await app.inject({ method: 'GET', url: '/v2/nothing?x=1' });
    expect(res.statusCode).toBe(404);
    expect(res.json()).toMatchObject({ statusCode: 404, code: 'PRT_SERVING_NOT_FOUND', error: 'Not Found', path: '/v2/nothing' });
    const method = await app.inject({ method: 'DELETE', url: '/v1/tags' });
    expect(method.statusCode).toBe(404);
    expect(method.json().code).toBe('PRT_SERVING_NOT_FOUND');
    const metrics = (await get(app, '/metrics')).body;
    expect(metrics).toMatch(/portrait_http_request_duration_seconds_count\{method="GET",route="unmatched",status="404"\} 1/);
  });

  it('/v1/stats and /v1/catalog describe the engine and the catalog', async () => {
    const { app, system } = await openTestApp();
    const stats = (await get(app, '/v1/stats')).json();
    expect(stats).toMatchObject({ revision: 0, ingest: { accepted: 0 }, engine: { running: true }, profiles: 0, deadLetters: 0 });
    expect(stats.engine.partitions).toHaveLength(system.config.partitions);
    const catalog = (await get(app, '/v1/catalog')).json();
    expect(catalog.catalog.entityKey).toBe('user_id');
    expect(Object.keys(catalog.catalog.types)).toContain('click');
    expect(catalog.schemas.map((s: Json) => s.name)).toEqual(expect.arrayContaining(['taobao-user-behavior', 'ad-click-log']));
  });
});
