import { afterEach, describe, expect, it } from 'vitest';
import { cleanup, openTestApp, testConfig } from '../helpers/system.js';

afterEach(cleanup);

const now = () => Date.now();

describe('POST /v1/events', () => {
  it('accepts a JSON array, makes it visible with ?wait=true, and counts it', async () => {
    const { app, system } = await openTestApp();
    await system.definitions.createTag({ id: 'clicks', kind: 'statistic', eventTypes: ['click'], aggregate: 'count', window: { type: 'lifetime' } });
    await system.definitions.setTagStatus('clicks', 'online');
    const t = now();
    const res = await app.inject({
      method: 'POST',
      url: '/v1/events?wait=true',
      payload: [
        { type: 'click', user_id: 'a', time: t, item_id: 'i1' },
        { type: 'click', user_id: 'a', time: t + 1, item_id: 'i2' },
        { type: 'click', user_id: 'b', time: t + 2, item_id: 'i3' },
      ],
    });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({ accepted: 3, rejected: 0, visible: true });
    const a = await app.inject({ method: 'GET', url: '/v1/profiles/a' });
    expect(a.json().tags.clicks.value).toBe(2);
    const metrics = await app.inject({ method: 'GET', url: '/metrics' });
    expect(metrics.body).toMatch(/portrait_ingest_events_total 3/);
  });

  it('accepts NDJSON and refuses only the bad lines, naming line and field', async () => {
    const { app, system } = await openTestApp();
    const t = now();
    const body = [
      JSON.stringify({ type: 'click', user_id: 'a', time: t, item_id: 'x' }),
      '{not json',
      JSON.stringify({ type: 'click', time: t, item_id: 'x' }),
      JSON.stringify({ type: 'transfer', user_id: 'a', time: t, to_account: 'z', amount: 'ten' }),
      JSON.stringify({ type: 'teleport', user_id: 'a', time: t }),
      JSON.stringify({ type: 'click', user_id: 'a', time: t + 10 * 86_400_000, item_id: 'x' }),
      JSON.stringify({ type: 'click', user_id: 'a', time: 'yesterday', item_id: 'x' }),
    ].join('\n');
    const res = await app.inject({ method: 'POST', url: '/v1/events', payload: body, headers: { 'content-type': 'application/x-ndjson' } });
    expect(res.statusCode).toBe(200);
    const json = res.json();
    expect(json.accepted).toBe(1);
    expect(json.rejected).toBe(6);
    expect(json.errors.map((e: { code: string; path: string }) => [e.code, e.path])).toEqual([
      ['PRT_INGEST_BAD_JSON', '/line/2'],
      ['PRT_INGEST_MISSING_FIELD', '/line/3/user_id'],
      ['PRT_INGEST_WRONG_TYPE', '/line/4/amount'],
      ['PRT_INGEST_UNKNOWN_EVENT_TYPE', '/line/5/type'],
      ['PRT_INGEST_FUTURE_EVENT', '/line/6/time'],
      ['PRT_INGEST_BAD_TIME', '/line/7/time'],
    ]);
    expect(system.ingestor.rejectedTotal()).toBe(6);
    const dead = (await app.inject({ method: 'GET', url: '/v1/deadletters' })).json();
    expect(dead.total).toBe(6);
    expect(dead.items.map((l: { code: string }) => l.code).sort()).toContain('PRT_INGEST_WRONG_TYPE');
    const metrics = (await app.inject({ method: 'GET', url: '/metrics' })).body;
    expect(metrics).toMatch(/portrait_ingest_rejected_total\{code="PRT_INGEST_BAD_JSON"\} 1/);
    expect(metrics).toMatch(/portrait_dead_letters 6/);
  });

  it('takes names every object inherits (constructor, toString, __proto__) as plain names', async () => {
    const { app } = await openTestApp();
    const t = now();
    const body = [
      JSON.stringify({ type: 'constructor', user_id: 'a', time: t, x: 1 }),
      JSON.stringify({ type: 'toString', user_id: 'a', time: t }),
      '{"type":"login","user_id":"a","time":' + t + ',"success":true,"constructor":"c","__proto__":"p"}',
    ].join('\n');
    const res = await app.inject({ method: 'POST', url: '/v1/events', payload: body, headers: { 'content-type': 'application/x-ndjson' } });
    expect(res.statusCode).toBe(200);
    const json = res.json();
    expect(json.errors.map((e: { code: string; path: string }) => [e.code, e.path])).toEqual([
      ['PRT_INGEST_UNKNOWN_EVENT_TYPE', '/line/1/type'],
      ['PRT_INGEST_UNKNOWN_EVENT_TYPE', '/line/2/type'],
    ]);
    // Undeclared fields are kept (the demo catalog's `additionalFields: keep`), these two as well.
    expect(json.accepted).toBe(1);
  });

  it('answers 400 with the field when every event is bad', async () => {
    const { app } = await openTestApp();
    const res = await app.inject({ method: 'POST', url: '/v1/events', payload: { type: 'click', user_id: 7.5e400 } });
    expect(res.statusCode).toBe(400);
    const one = await app.inject({ method: 'POST', url: '/v1/events', payload: { type: 'login', user_id: 'a', time: now() } });
    expect(one.statusCode).toBe(400);
    expect(one.json()).toMatchObject({ code: 'PRT_INGEST_MISSING_FIELD', path: '/success' });
  });

  it('refuses a body that is not JSON, with 400 and the code', async () => {
    const { app } = await openTestApp();
    const res = await app.inject({ method: 'POST', url: '/v1/events', payload: '[{"type":', headers: { 'content-type': 'application/json' } });
    expect(res.statusCode).toBe(400);
    expect(res.json().code).toBe('PRT_INGEST_BAD_JSON');
  });

  it('refuses an oversized body with 413 and counts nothing accepted', async () => {
    const { app, system } = await openTestApp(await testConfig({ 'ingest.maxBodyBytes': 2048 }));
    const events = Array.from({ length: 100 }, (_, i) => ({ type: 'click', user_id: `u${i}`, item_id: 'x', time: now() }));
    const res = await app.inject({ method: 'POST', url: '/v1/events', payload: events });
    expect(res.statusCode).toBe(413);
    expect(res.json().code).toBe('PRT_INGEST_BODY_TOO_LARGE');
    expect(system.ingestor.counters.accepted).toBe(0);
  });

  it('refuses an unsupported content type with 415', async () => {
    const { app } = await openTestApp();
    const res = await app.inject({ method: 'POST', url: '/v1/events', payload: '<xml/>', headers: { 'content-type': 'application/xml' } });
    expect(res.statusCode).toBe(415);
    expect(res.json().code).toBe('PRT_INGEST_UNSUPPORTED_MEDIA');
  });

  it('maps CSV through a named schema and refuses an unknown schema', async () => {
    const { app } = await openTestApp();
    const csv = '1,100,7,pv,1511658000\n2,101,7,buy,1511658001\n3,bad-row\n';
    const res = await app.inject({ method: 'POST', url: '/v1/events?schema=taobao-user-behavior', payload: csv, headers: { 'content-type': 'text/csv' } });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({ accepted: 2, rejected: 1 });
    expect(res.json().errors[0]).toMatchObject({ code: 'PRT_INGEST_BAD_CSV', path: '/line/3' });
    const unknown = await app.inject({ method: 'POST', url: '/v1/events?schema=nope', payload: csv, headers: { 'content-type': 'text/csv' } });
    expect(unknown.statusCode).toBe(400);
    expect(unknown.json()).toMatchObject({ code: 'PRT_INGEST_UNKNOWN_SCHEMA', path: '/query/schema' });
  });

  it('refuses new events with 503 while the engine lags too far behind', async () => {
    const { app, system } = await openTestApp(await testConfig({ 'ingest.maxLagRecords': 5 }), { start: false });
    const events = Array.from({ length: 10 }, (_, i) => ({ type: 'click', user_id: `u${i}`, item_id: 'x', time: now() }));
    expect((await app.inject({ method: 'POST', url: '/v1/events', payload: events })).statusCode).toBe(200);
    const res = await app.inject({ method: 'POST', url: '/v1/events', payload: events });
    expect(res.statusCode).toBe(503);
    expect(res.json().code).toBe('PRT_INGEST_OVERLOADED');
    expect(system.ingestor.counters.overloaded).toBe(1);
  });
});
