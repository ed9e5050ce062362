import { join } from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { Ajv } from 'ajv';
import type { FastifyInstance } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { tagDocumentSchema } from '../../src/definitions/index.js';
import { demoTags } from '../../src/runtime/demo-tags.js';
import { cleanup, openTestApp, testConfig } from '../helpers/system.js';

afterEach(cleanup);

const appClicks = {
  id: 'app_clicks',
  kind: 'statistic',
  owner: 'growth',
  eventTypes: ['click'],
  filter: 'attrs.channel == "app"',
  aggregate: 'count',
  window: { type: 'lifetime' },
};

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any -- parsed HTTP bodies

async function call(app: FastifyInstance, method: 'GET' | 'POST' | 'PUT', url: string, payload?: unknown): Promise<{ status: number; body: Json }> {
  const res = await app.inject({ method, url, ...(payload === undefined ? {} : { payload: payload as object }) });
  return { status: res.statusCode, body: res.body === '' ? {} : (res.json() as Json) };
}

function clicksOf(user: string, channel: string, n: number, t: number): Json[] {
  return Array.from({ length: n }, (_, i) => ({ type: 'click', user_id: user, item_id: `i${i}`, channel, time: t + i }));
}

describe('tag lifecycle over HTTP', () => {
  it('create -> online -> events in -> tag on the profile -> offline removes it', async () => {
    const { app } = await openTestApp();
    const created = await call(app, 'POST', '/v1/tags', appClicks);
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ id: 'app_clicks', status: 'draft', version: 1, owner: 'growth' });

    const read = await call(app, 'GET', '/v1/tags/app_clicks');
    expect(read.status).toBe(200);
    expect(read.body).toMatchObject({ id: 'app_clicks', status: 'draft', filter: appClicks.filter });

    const online = await call(app, 'POST', '/v1/tags/app_clicks/online');
    expect(online.status).toBe(200);
    expect(online.body.status).toBe('online');

    const t = Date.now();
    const ingest = await call(app, 'POST', '/v1/events?wait=true', [...clicksOf('u1', 'app', 3, t), ...clicksOf('u1', 'web', 2, t + 10), ...clicksOf('u2', 'web', 1, t)]);
    expect(ingest.body).toMatchObject({ accepted: 6, rejected: 0, visible: true });
    const attrs = await app.inject({ method: 'PATCH', url: '/v1/profiles/u2/attributes?wait=true', payload: { age: 30 } });
    expect(attrs.json()).toMatchObject({ visible: true });

    const u1 = await call(app, 'GET', '/v1/profiles/u1');
    expect(u1.status).toBe(200);
    expect(u1.body.tags.app_clicks).toMatchObject({ value: 3, version: 1 });
    expect(Date.parse(u1.body.tags.app_clicks.updatedAt)).toBe(t + 2);
    // a count shows 0 for an entity none of whose events matched
    expect((await call(app, 'GET', '/v1/profiles/u2')).body.tags.app_clicks).toMatchObject({ value: 0, updatedAt: null });

    const list = await call(app, 'GET', '/v1/tags?status=online');
    expect(list.body.items.map((i: Json) => i.id)).toEqual(['app_clicks']);
    expect(list.body.revision).toBeGreaterThanOrEqual(2);
    expect((await call(app, 'GET', '/v1/tags?status=draft')).body.items).toEqual([]);

    const offline = await call(app, 'POST', '/v1/tags/app_clicks/offline');
    expect(offline.body.status).toBe('offline');
    const after = await call(app, 'GET', '/v1/profiles/u1');
    expect(after.body.tags).not.toHaveProperty('app_clicks');
    const asked = await call(app, 'GET', '/v1/profiles/u1?tags=app_clicks');
    expect(asked.status).toBe(400);
    expect(asked.body).toMatchObject({ code: 'PRT_SERVING_BAD_REQUEST', path: '/query/tags/0' });

    const archived = await call(app, 'POST', '/v1/tags/app_clicks/archive');
    expect(archived.body.status).toBe('archived');
    const again = await call(app, 'POST', '/v1/tags/app_clicks/online');
    expect(again.status).toBe(409);
    expect(again.body.code).toBe('PRT_DEF_BAD_TRANSITION');
  });

  it('an update of an online tag takes effect within one second and old values are not shown', async () => {
    const { app } = await openTestApp();
    await call(app, 'POST', '/v1/tags', appClicks);
    await call(app, 'POST', '/v1/tags/app_clicks/online');
    const t = Date.now();
    await call(app, 'POST', '/v1/events?wait=true', [...clicksOf('u1', 'app', 3, t), ...clicksOf('u1', 'web', 2, t + 10)]);
    expect((await call(app, 'GET', '/v1/profiles/u1')).body.tags.app_clicks).toMatchObject({ value: 3, version: 1 });

    // a change of wording only keeps the computed values, now shown under version 2
    const reworded = await call(app, 'PUT', '/v1/tags/app_clicks', { ...appClicks, description: 'Clicks from the app.', version: 1 });
    expect(reworded.status).toBe(200);
    expect(reworded.body).toMatchObject({ version: 2, status: 'online' });
    expect((await call(app, 'GET', '/v1/profiles/u1')).body.tags.app_clicks).toMatchObject({ value: 3, version: 2 });

    // a change of the computation: count web clicks instead
    const updated = await call(app, 'PUT', '/v1/tags/app_clicks', { ...appClicks, filter: 'attrs.channel == "web"', version: 2 });
    const answeredAt = performance.now();
    expect(updated.status).toBe(200);
    expect(updated.body).toMatchObject({ version: 3, status: 'online', filter: 'attrs.channel == "web"' });

    // at once: the value of the old computation (3 app clicks) is gone
    const right = await call(app, 'GET', '/v1/profiles/u1');
    expect(right.body.tags.app_clicks.version).toBe(3);
    expect(right.body.tags.app_clicks.value).not.toBe(3);

    // events after the update: 5 web clicks and 1 app click. The old filter would give 3 + 1 = 4;
    // the new one gives 5 (state starts empty) or 7 (seeded from the 2 earlier web clicks).
    const later = Date.now();
    const sent = await call(app, 'POST', '/v1/events', [...clicksOf('u1', 'web', 5, later), ...clicksOf('u1', 'app', 1, later + 10)]);
    expect(sent.body.accepted).toBe(6);
    let seen: Json | undefined;
    const seenValues = new Set<unknown>();
    while (performance.now() - answeredAt < 1500) {
      seen = (await call(app, 'GET', '/v1/profiles/u1')).body.tags.app_clicks;
      seenValues.add(seen?.value);
      if (seen?.value === 5 || seen?.value === 7) break;
      await new Promise((r) => setTimeout(r, 10));
    }
    const elapsed = performance.now() - answeredAt;
    expect(seen).toMatchObject({ version: 3 });
    expect([5, 7]).toContain(seen!.value);
    expect(elapsed, 'the new version took effect later than 1000 ms after the update answer').toBeLessThan(1000);
    // while waiting, no value of the old computation was ever shown
    expect(seenValues.has(3)).toBe(false);
    expect(seenValues.has(4)).toBe(false);
  });

  it('an update of the window takes effect at once too', async () => {
    const { app } = await openTestApp();
    const spend = { id: 'spend_window', kind: 'statistic', eventTypes: ['payment'], aggregate: 'sum', field: 'amount', window: { type: 'lifetime' } };
    await call(app, 'POST', '/v1/tags', spend);
    await call(app, 'POST', '/v1/tags/spend_window/online');
    const t = Date.now();
    const pay = (amount: number, time: number): Json => ({ type: 'payment', user_id: 'p', order_id: 'o', amount, success: true, time });
    await call(app, 'POST', '/v1/events?wait=true', [pay(100, t - 3 * 3_600_000), pay(20, t)]);
    expect((await call(app, 'GET', '/v1/profiles/p')).body.tags.spend_window.value).toBe(120);
    const updated = await call(app, 'PUT', '/v1/tags/spend_window', { ...spend, window: { type: 'sliding', size: '1h', slide: '1m' } });
    expect(updated.body.version).toBe(2);
    expect((await call(app, 'GET', '/v1/profiles/p')).body.tags.spend_window).toMatchObject({ value: 0, version: 2 });
    await call(app, 'POST', '/v1/events?wait=true', [pay(7, Date.now())]);
    expect((await call(app, 'GET', '/v1/profiles/p')).body.tags.spend_window).toMatchObject({ version: 2 });
    expect([7, 27]).toContain((await call(app, 'GET', '/v1/profiles/p')).body.tags.spend_window.value);
  });

  it('a rule tag over a statistic: online order is enforced and the value follows the input', async () => {
    const { app } = await openTestApp();
    await call(app, 'POST', '/v1/tags', appClicks);
    const rule = { id: 'app_fan', kind: 'rule', condition: 'tags.app_clicks >= 2' };
    const missing = await call(app, 'POST', '/v1/tags', { ...rule, condition: 'tags.nope >= 2' });
    expect(missing.status).toBe(409);
    expect(missing.body).toMatchObject({ code: 'PRT_DEF_DEPENDENCY', path: '/condition' });
    expect((await call(app, 'POST', '/v1/tags', rule)).status).toBe(201);
    const tooEarly = await call(app, 'POST', '/v1/tags/app_fan/online');
    expect(tooEarly.status).toBe(409);
    expect(tooEarly.body.code).toBe('PRT_DEF_DEPENDENCY');
    await call(app, 'POST', '/v1/tags/app_clicks/online');
    expect((await call(app, 'POST', '/v1/tags/app_fan/online')).status).toBe(200);
    await call(app, 'POST', '/v1/events?wait=true', clicksOf('f', 'app', 2, Date.now()));
    expect((await call(app, 'GET', '/v1/profiles/f')).body.tags).toMatchObject({ app_clicks: { value: 2 }, app_fan: { value: true } });
    const blocked = await call(app, 'POST', '/v1/tags/app_clicks/offline');
    expect(blocked.status).toBe(409);
    expect(blocked.body.code).toBe('PRT_DEF_DEPENDENCY');
  });
});

describe('tag definition errors over HTTP', () => {
  it('answers with the code and the field path', async () => {
    const { app } = await openTestApp();
    const bad = await call(app, 'POST', '/v1/tags', { ...appClicks, window: { type: 'tumbling', size: '-5m' }, eventTypes: ['teleport'] });
    expect(bad.status).toBe(400);
    expect(bad.body.code).toBe('PRT_DEF_INVALID');
    expect(bad.body.details.map((d: Json) => d.path).sort()).toEqual(['/eventTypes/0', '/window/size']);

    const cel = await call(app, 'POST', '/v1/tags', { ...appClicks, filter: 'attrs.channel ==' });
    expect(cel.status).toBe(400);
    expect(cel.body).toMatchObject({ code: 'PRT_DEF_EXPRESSION', path: '/filter' });

    expect((await call(app, 'POST', '/v1/tags', appClicks)).status).toBe(201);
    const dup = await call(app, 'POST', '/v1/tags', appClicks);
    expect(dup.status).toBe(409);
    expect(dup.body.code).toBe('PRT_DEF_EXISTS');

    await call(app, 'PUT', '/v1/tags/app_clicks', { ...appClicks, description: 'v2' });
    const stale = await call(app, 'PUT', '/v1/tags/app_clicks', { ...appClicks, description: 'v3', version: 1 });
    expect(stale.status).toBe(409);
    expect(stale.body).toMatchObject({ code: 'PRT_DEF_VERSION_CONFLICT', path: '/version' });

    const renamed = await call(app, 'PUT', '/v1/tags/app_clicks', { ...appClicks, id: 'other' });
    expect(renamed.status).toBe(400);
    expect(renamed.body).toMatchObject({ code: 'PRT_DEF_INVALID', path: '/id' });

    const transition = await call(app, 'POST', '/v1/tags/app_clicks/offline');
    expect(transition.status).toBe(409);
    expect(transition.body).toMatchObject({ code: 'PRT_DEF_BAD_TRANSITION', path: '/status' });

    for (const [method, url] of [['GET', '/v1/tags/nope'], ['POST', '/v1/tags/nope/online'], ['GET', '/v1/tags/nope/versions'], ['PUT', '/v1/tags/nope']] as const) {
      const res = await call(app, method, url, method === 'PUT' ? { ...appClicks, id: 'nope' } : undefined);
      expect([url, res.status, res.body.code]).toEqual([url, 404, 'PRT_DEF_NOT_FOUND']);
    }
  });

  it('checks request shape: path id, status filter, body', async () => {
    const { app } = await openTestApp();
    const longId = await call(app, 'GET', `/v1/tags/${'a'.repeat(65)}`);
    expect(longId.status).toBe(400);
    expect(longId.body).toMatchObject({ code: 'PRT_SERVING_BAD_REQUEST', path: '/params/id' });
    const status = await call(app, 'GET', '/v1/tags?status=alive');
    expect(status.status).toBe(400);
    expect(status.body).toMatchObject({ code: 'PRT_SERVING_BAD_REQUEST', path: '/query/status' });
    const notJson = await app.inject({ method: 'POST', url: '/v1/tags', payload: '{"id":', headers: { 'content-type': 'application/json' } });
    expect(notJson.statusCode).toBe(400);
    expect(notJson.json()).toMatchObject({ code: 'PRT_SERVING_BAD_REQUEST', path: '/body' });
    const array = await call(app, 'POST', '/v1/tags', [appClicks]);
    expect(array.status).toBe(400);
    expect(array.body.code).toBe('PRT_SERVING_BAD_REQUEST');
    const empty = await app.inject({ method: 'POST', url: '/v1/tags', headers: { 'content-type': 'application/json' } });
    expect(empty.statusCode).toBe(400);
  });
});

describe('POST /v1/tags:validate', () => {
  it('validates without storing, with the same errors as create', async () => {
    const { app } = await openTestApp();
    const ok = await call(app, 'POST', '/v1/tags:validate', { ...appClicks, status: 'online' });
    expect(ok.status).toBe(200);
    expect(ok.body.valid).toBe(true);
    expect(ok.body.document).toMatchObject({ id: 'app_clicks', filter: appClicks.filter });
    expect(ok.body.document).not.toHaveProperty('status');
    expect((await call(app, 'GET', '/v1/tags/app_clicks')).status).toBe(404);

    const { field: _f, ...noField } = { ...appClicks, aggregate: 'sum', field: 'x' };
    const bad = await call(app, 'POST', '/v1/tags:validate', noField);
    expect(bad.status).toBe(400);
    expect(bad.body).toMatchObject({ code: 'PRT_DEF_INVALID', path: '/field' });

    const rule = await call(app, 'POST', '/v1/tags:validate', { id: 'r', kind: 'rule', condition: 'tags.app_clicks > 1 &&' });
    expect(rule.body).toMatchObject({ code: 'PRT_DEF_EXPRESSION', path: '/condition' });

    const dependency = await call(app, 'POST', '/v1/tags:validate', { id: 'r', kind: 'rule', condition: 'tags.app_clicks > 1' });
    expect(dependency.status).toBe(409);
    expect(dependency.body.code).toBe('PRT_DEF_DEPENDENCY');
  });
});

describe('versions and export', () => {
  it('lists versions oldest first and exports every definition with its history', async () => {
    const { app } = await openTestApp();
    await call(app, 'POST', '/v1/tags', appClicks);
    await call(app, 'PUT', '/v1/tags/app_clicks', { ...appClicks, window: { type: 'tumbling', size: '1d' } });
    await call(app, 'POST', '/v1/tags/app_clicks/online');
    await call(app, 'POST', '/v1/tags', { id: 'logins', kind: 'statistic', eventTypes: ['login'], aggregate: 'count', window: { type: 'lifetime' } });

    const versions = await call(app, 'GET', '/v1/tags/app_clicks/versions');
    expect(versions.status).toBe(200);
    expect(versions.body.items.map((v: Json) => [v.version, v.document.window.type])).toEqual([
      [1, 'lifetime'],
      [2, 'tumbling'],
    ]);
    expect(Number.isNaN(Date.parse(versions.body.items[0].createdAt))).toBe(false);

    const exported = await call(app, 'GET', '/v1/definitions:export');
    expect(exported.status).toBe(200);
    expect(exported.body).toMatchObject({ format: 'portrait-definitions', formatVersion: 1 });
    expect(exported.body.revision).toBe((await call(app, 'GET', '/v1/tags')).body.revision);
    expect(exported.body.definitions.map((d: Json) => [d.id, d.status, d.version, d.versions.length])).toEqual([
      ['app_clicks', 'online', 2, 2],
      ['logins', 'draft', 1, 1],
    ]);
  });
});

describe('GET /v1/schemas/tag-definition.json', () => {
  it('publishes the JSON Schema that create enforces', async () => {
    const { app } = await openTestApp();
    const res = await call(app, 'GET', '/v1/schemas/tag-definition.json');
    expect(res.status).toBe(200);
    expect(res.body).toEqual(JSON.parse(JSON.stringify(tagDocumentSchema)));
    const check = new Ajv({ strict: false }).compile(res.body);
    for (const doc of demoTags) expect(check(doc), doc.id).toBe(true);
    expect(check({ ...appClicks, window: { type: 'tumbling', size: '-5m' } })).toBe(false);
    expect(check({ ...appClicks, colour: 'red' })).toBe(false);
  });
});

describe('a tag edited into an invalid state in the store', () => {
  it('is not computed, and GET /v1/tags/{id} shows it as invalid with the reason until a valid version is stored', async () => {
    const config = await testConfig();
    const logins = { id: 'logins', kind: 'statistic', eventTypes: ['login'], aggregate: 'count', window: { type: 'lifetime' } };
    const first = await openTestApp(config);
    for (const doc of [appClicks, logins]) {
      expect((await call(first.app, 'POST', '/v1/tags', doc)).status).toBe(201);
      expect((await call(first.app, 'POST', `/v1/tags/${doc.id}/online`)).status).toBe(200);
    }
    const t = Date.now();
    await call(first.app, 'POST', '/v1/events?wait=true', clicksOf('u1', 'app', 2, t));
    expect((await call(first.app, 'GET', '/v1/profiles/u1')).body.tags.app_clicks).toMatchObject({ value: 2 });
    expect((await call(first.app, 'GET', '/v1/tags/app_clicks')).body).not.toHaveProperty('invalid');
    await first.system.close();

    // Someone with database access stores version 2, reading an event type the catalog does not have.
    const db = await PGlite.create(join(config.dataDir, 'definitions'));
    try {
      await db.query(`insert into portrait_definition_versions (kind, id, version, document, created_at)
        select kind, id, 2, jsonb_set(document, '{eventTypes}', '["teleport"]'), 0 from portrait_definition_versions where kind = 'tag' and id = 'app_clicks' and version = 1`);
      await db.query(`update portrait_definitions set version = 2, updated_at = $1 where kind = 'tag' and id = 'app_clicks'`, [Date.now()]);
    } finally {
      await db.close();
    }

    const { app } = await openTestApp(config);
    const read = await call(app, 'GET', '/v1/tags/app_clicks');
    expect(read.status).toBe(200);
    expect(read.body).toMatchObject({ id: 'app_clicks', version: 2, status: 'online', eventTypes: ['teleport'], invalid: { code: 'PRT_DEF_INVALID' } });
    expect(read.body.invalid.reason).toContain('/eventTypes/0');
    expect((await call(app, 'GET', '/v1/tags/logins')).body).not.toHaveProperty('invalid');
    expect((await call(app, 'GET', '/v1/tags')).body.items.map((i: Json) => [i.id, i.invalid?.code ?? null])).toEqual([
      ['app_clicks', 'PRT_DEF_INVALID'],
      ['logins', null],
    ]);
    const metrics = (await app.inject({ method: 'GET', url: '/metrics' })).body;
    expect(metrics).toMatch(/^portrait_definitions_invalid\{kind="tag"\} 1$/m);
    // Not computed: the profile no longer shows it, the valid tag still counts.
    const sent = await call(app, 'POST', '/v1/events?wait=true', [...clicksOf('u1', 'app', 1, t + 10), { type: 'login', user_id: 'u1', success: true, time: t + 20 }]);
    expect(sent.body).toMatchObject({ accepted: 2, rejected: 0, visible: true });
    const profile = (await call(app, 'GET', '/v1/profiles/u1')).body;
    expect(profile.tags).not.toHaveProperty('app_clicks');
    expect(profile.tags.logins).toMatchObject({ value: 1 });

    // What GET showed, with the field fixed, is accepted back (read-only fields included) and runs again.
    const fixed = await call(app, 'PUT', '/v1/tags/app_clicks', { ...read.body, eventTypes: ['click'] });
    expect(fixed.status, JSON.stringify(fixed.body)).toBe(200);
    expect(fixed.body).toMatchObject({ version: 3, status: 'online' });
    expect((await call(app, 'GET', '/v1/tags/app_clicks')).body).not.toHaveProperty('invalid');
    expect((await app.inject({ method: 'GET', url: '/metrics' })).body).toMatch(/^portrait_definitions_invalid\{kind="tag"\} 0$/m);
  });
});
