import type { FastifyInstance } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { cleanup, openTestApp, testConfig } from '../helpers/system.js';

afterEach(cleanup);

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any -- parsed HTTP bodies

async function call(app: FastifyInstance, method: 'GET' | 'POST' | 'PATCH', url: string, payload?: unknown): Promise<{ status: number; body: Json }> {
  const res = await app.inject({ method, url, ...(payload === undefined ? {} : { payload: payload as object }) });
  return { status: res.statusCode, body: res.json() as Json };
}

/** An app with two online tags (`clicks`, `logins`) and profiles a (3 clicks, 1 login), b (1 click), c (2 logins). */
async function appWithProfiles(overrides: Record<string, unknown> = {}): Promise<FastifyInstance> {
  const { app, system } = await openTestApp(await testConfig(overrides));
  await system.definitions.createTag({ id: 'clicks', kind: 'statistic', eventTypes: ['click'], aggregate: 'count', window: { type: 'lifetime' } });
  await system.definitions.createTag({ id: 'logins', kind: 'statistic', eventTypes: ['login'], aggregate: 'count', window: { type: 'lifetime' } });
  await system.definitions.createTag({ id: 'last_device', kind: 'statistic', eventTypes: ['login'], aggregate: 'latest', field: 'device_id', window: { type: 'lifetime' } });
  for (const id of ['clicks', 'logins', 'last_device']) await system.definitions.setTagStatus(id, 'online');
  const t = Date.now();
  const click = (user: string, i: number): Json => ({ type: 'click', user_id: user, item_id: `i${i}`, time: t + i });
  const login = (user: string, i: number): Json => ({ type: 'login', user_id: user, success: true, device_id: `d-${user}`, time: t + i });
  const res = await call(app, 'POST', '/v1/events?wait=true', [click('a', 0), click('a', 1), click('a', 2), login('a', 3), click('b', 4), login('c', 5), login('c', 6)]);
  expect(res.body).toMatchObject({ accepted: 7, visible: true });
  return app;
}

describe('GET /v1/profiles/:id', () => {
  it('returns every online tag and the attributes', async () => {
    const app = await appWithProfiles();
    await call(app, 'PATCH', '/v1/profiles/a/attributes?wait=true', { age: 31 });
    const a = await call(app, 'GET', '/v1/profiles/a');
    expect(a.status).toBe(200);
    expect(a.body.id).toBe('a');
    expect(Object.keys(a.body.tags).sort()).toEqual(['clicks', 'last_device', 'logins']);
    expect(a.body.tags.clicks).toMatchObject({ value: 3, version: 1 });
    expect(a.body.tags.logins.value).toBe(1);
    expect(a.body.tags.last_device.value).toBe('d-a');
    expect(a.body.attributes.age.value).toBe(31);
    expect(Number.isNaN(Date.parse(a.body.attributes.age.updatedAt))).toBe(false);
    // b never logged in: counts default to 0, a latest value is absent
    const b = await call(app, 'GET', '/v1/profiles/b');
    expect(b.body.tags.logins).toEqual({ value: 0, updatedAt: null, version: 1 });
    expect(b.body.tags).not.toHaveProperty('last_device');
  });

  it('?tags= limits the tags returned, in any order and with blanks ignored', async () => {
    const app = await appWithProfiles();
    const one = await call(app, 'GET', '/v1/profiles/a?tags=logins');
    expect(Object.keys(one.body.tags)).toEqual(['logins']);
    const two = await call(app, 'GET', '/v1/profiles/a?tags=logins,,clicks');
    expect(Object.keys(two.body.tags).sort()).toEqual(['clicks', 'logins']);
  });

  it('?tags= with a tag that is not online -> 400 naming /query/tags/<index>', async () => {
    const app = await appWithProfiles();
    const unknown = await call(app, 'GET', '/v1/profiles/a?tags=nope');
    expect(unknown.status).toBe(400);
    expect(unknown.body).toMatchObject({ code: 'PRT_SERVING_BAD_REQUEST', path: '/query/tags/0' });
    const second = await call(app, 'GET', '/v1/profiles/a?tags=clicks,nope');
    expect(second.body.path).toBe('/query/tags/1');
    // also for an id that has no profile: the request is wrong before the lookup
    expect((await call(app, 'GET', '/v1/profiles/zz?tags=nope')).status).toBe(400);
    expect((await call(app, 'GET', '/v1/profiles/a?colour=red')).body).toMatchObject({ code: 'PRT_SERVING_BAD_REQUEST', path: '/query/colour' });
  });

  it('a missing profile -> 404 PRT_PROFILE_NOT_FOUND at /params/id', async () => {
    const app = await appWithProfiles();
    const res = await call(app, 'GET', '/v1/profiles/zz');
    expect(res.status).toBe(404);
    expect(res.body).toMatchObject({ statusCode: 404, code: 'PRT_PROFILE_NOT_FOUND', error: 'Not Found', path: '/params/id' });
    const long = await call(app, 'GET', `/v1/profiles/${'x'.repeat(257)}`);
    expect(long.status).toBe(400);
    expect(long.body).toMatchObject({ code: 'PRT_SERVING_BAD_REQUEST', path: '/params/id' });
    const huge = await call(app, 'GET', `/v1/profiles/${'x'.repeat(5000)}`);
    expect(huge.status).toBe(400);
    expect(huge.body).toMatchObject({ code: 'PRT_SERVING_BAD_REQUEST', path: '/params' });
    const badEncoding = await call(app, 'GET', '/v1/profiles/%E0%A4%A');
    expect(badEncoding.status).toBe(400);
    expect(badEncoding.body).toMatchObject({ code: 'PRT_SERVING_BAD_REQUEST', path: '/params' });
  });

  it('reads ids as long as ingest accepts (256 characters), also when they need URL encoding', async () => {
    const app = await appWithProfiles();
    for (const id of ['k'.repeat(256), 'é'.repeat(256)]) {
      const t = Date.now();
      const sent = await call(app, 'POST', '/v1/events?wait=true', { type: 'click', user_id: id, item_id: 'x', time: t });
      expect(sent.body.accepted).toBe(1);
      const res = await call(app, 'GET', `/v1/profiles/${encodeURIComponent(id)}`);
      expect(res.status).toBe(200);
      expect(res.body.id).toBe(id);
      expect(res.body.tags.clicks.value).toBe(1);
    }
  });

  it('serves ids that need URL encoding', async () => {
    const app = await appWithProfiles();
    await call(app, 'PATCH', `/v1/profiles/${encodeURIComponent('user/7 ä')}/attributes?wait=true`, { age: 5 });
    const res = await call(app, 'GET', `/v1/profiles/${encodeURIComponent('user/7 ä')}`);
    expect(res.status).toBe(200);
    expect(res.body.id).toBe('user/7 ä');
  });
});

describe('POST /v1/profiles:batchGet', () => {
  it('returns found profiles in the order asked and lists missing ids', async () => {
    const app = await appWithProfiles();
    const res = await call(app, 'POST', '/v1/profiles:batchGet', { ids: ['c', 'nobody', 'a', 'b', 'ghost'] });
    expect(res.status).toBe(200);
    expect(res.body.profiles.map((p: Json) => p.id)).toEqual(['c', 'a', 'b']);
    expect(res.body.missing).toEqual(['nobody', 'ghost']);
    expect(res.body.profiles[0].tags.logins.value).toBe(2);
    const subset = await call(app, 'POST', '/v1/profiles:batchGet', { ids: ['a'], tags: ['clicks'] });
    expect(Object.keys(subset.body.profiles[0].tags)).toEqual(['clicks']);
  });

  it('refuses more ids than serving.maxBatchKeys, naming /body/ids', async () => {
    const app = await appWithProfiles({ 'serving.maxBatchKeys': 3 });
    expect((await call(app, 'POST', '/v1/profiles:batchGet', { ids: ['a', 'b', 'c'] })).status).toBe(200);
    const res = await call(app, 'POST', '/v1/profiles:batchGet', { ids: ['a', 'b', 'c', 'd'] });
    expect(res.status).toBe(400);
    expect(res.body).toMatchObject({ code: 'PRT_SERVING_BAD_REQUEST', path: '/body/ids' });
  });

  it('checks the body shape with paths', async () => {
    const app = await appWithProfiles();
    const cases: Array<[unknown, string]> = [
      [{}, '/body/ids'],
      [{ ids: [] }, '/body/ids'],
      [{ ids: ['a', ''] }, '/body/ids/1'],
      [{ ids: [['a', 'b']] }, '/body/ids/0'],
      [{ ids: ['a'], tags: ['nope'] }, '/body/tags/0'],
      [{ ids: ['a'], extra: 1 }, '/body/extra'],
    ];
    // ajv coerces a lone string to a one-element list (coerceTypes: 'array'); docs/api.md says so
    expect((await call(app, 'POST', '/v1/profiles:batchGet', { ids: 'a' })).body.profiles.map((p: Json) => p.id)).toEqual(['a']);
    for (const [body, path] of cases) {
      const res = await call(app, 'POST', '/v1/profiles:batchGet', body);
      expect([JSON.stringify(body), res.status, res.body.code, res.body.path]).toEqual([JSON.stringify(body), 400, 'PRT_SERVING_BAD_REQUEST', path]);
    }
  });
});

describe('PATCH /v1/profiles/:id/attributes', () => {
  it('upserts attributes, null removes one, and a new id gets a profile', async () => {
    const { app } = await openTestApp();
    const set = await call(app, 'PATCH', '/v1/profiles/n1/attributes?wait=true', { age: 28, city: 'Shanghai', vip: false });
    expect(set.status).toBe(200);
    expect(set.body).toMatchObject({ id: 'n1', visible: true });
    expect(set.body.updated.sort()).toEqual(['age', 'city', 'vip']);
    const p1 = await call(app, 'GET', '/v1/profiles/n1');
    expect(p1.body.attributes).toMatchObject({ age: { value: 28 }, city: { value: 'Shanghai' }, vip: { value: false } });

    const merge = await call(app, 'PATCH', '/v1/profiles/n1/attributes?wait=true', { city: null, age: 29 });
    expect(merge.status).toBe(200);
    const p2 = await call(app, 'GET', '/v1/profiles/n1');
    expect(p2.body.attributes).not.toHaveProperty('city');
    expect(p2.body.attributes).toMatchObject({ age: { value: 29 }, vip: { value: false } });
  });

  it('refuses bad names and values with 400 and the path', async () => {
    const { app } = await openTestApp();
    const cases: Array<[unknown, string, string]> = [
      [{ 'bad-name': 1 }, '/body/bad-name', 'PRT_INGEST_WRONG_TYPE'],
      [{ '9lives': 1 }, '/body/9lives', 'PRT_INGEST_WRONG_TYPE'],
      [{ ['a'.repeat(65)]: 1 }, `/body/${'a'.repeat(65)}`, 'PRT_INGEST_WRONG_TYPE'],
      [{ age: { years: 3 } }, '/body/age', 'PRT_SERVING_BAD_REQUEST'],
      [{ age: [30, 31] }, '/body/age', 'PRT_SERVING_BAD_REQUEST'],
      [{ note: 'x'.repeat(4097) }, '/body/note', 'PRT_INGEST_WRONG_TYPE'],
      [{}, '/body', 'PRT_INGEST_MISSING_FIELD'],
      [[{ age: 1 }], '/body', 'PRT_SERVING_BAD_REQUEST'],
    ];
    for (const [body, path, code] of cases) {
      const res = await call(app, 'PATCH', '/v1/profiles/n1/attributes', body);
      expect([JSON.stringify(body).slice(0, 40), res.status, res.body.code, res.body.path]).toEqual([JSON.stringify(body).slice(0, 40), 400, code, path]);
    }
    expect((await call(app, 'GET', '/v1/profiles/n1')).status).toBe(404);
  });

  it('POST /v1/attributes upserts many profiles and names the bad item', async () => {
    const { app, system } = await openTestApp();
    const ok = await call(app, 'POST', '/v1/attributes', { items: [{ id: 'm1', attributes: { age: 1 } }, { id: 'm2', attributes: { age: 2 } }] });
    expect(ok).toEqual({ status: 200, body: { updated: 2 } });
    const bad = await call(app, 'POST', '/v1/attributes', { items: [{ id: 'm1', attributes: { age: 1 } }, { id: 'm2', attributes: { 'no good': 2 } }] });
    expect(bad.status).toBe(400);
    expect(bad.body.path).toBe('/body/items/1/attributes/no good');
    await system.ingestor.mark();
    await system.engine.drain();
    expect((await call(app, 'GET', '/v1/profiles/m2')).body.attributes.age.value).toBe(2);
  });
});

describe('GET /v1/profiles', () => {
  it('lists ids in id order, a page at a time, with the total', async () => {
    const app = await appWithProfiles();
    const all = await call(app, 'GET', '/v1/profiles');
    expect(all).toEqual({ status: 200, body: { total: 3, ids: ['a', 'b', 'c'] } });
    const page1 = await call(app, 'GET', '/v1/profiles?limit=2');
    expect(page1.body).toEqual({ total: 3, ids: ['a', 'b'] });
    const page2 = await call(app, 'GET', '/v1/profiles?limit=2&after=b');
    expect(page2.body).toEqual({ total: 3, ids: ['c'] });
    expect((await call(app, 'GET', '/v1/profiles?after=c')).body.ids).toEqual([]);
  });

  it('refuses a bad limit or an unknown parameter, naming /query/…', async () => {
    const app = await appWithProfiles();
    for (const [url, path] of [
      ['/v1/profiles?limit=0', '/query/limit'],
      ['/v1/profiles?limit=1001', '/query/limit'],
      ['/v1/profiles?limit=ten', '/query/limit'],
      ['/v1/profiles?page=2', '/query/page'],
    ] as const) {
      const res = await call(app, 'GET', url);
      expect([url, res.status, res.body.code, res.body.path]).toEqual([url, 400, 'PRT_SERVING_BAD_REQUEST', path]);
    }
  });
});
