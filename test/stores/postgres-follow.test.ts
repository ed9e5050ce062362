import { afterEach, describe, expect, it } from 'vitest';
import { cleanup, openTestApp, testConfig } from '../helpers/system.js';
import { createTestDatabase, postgresAvailable, runSql } from '../helpers/postgres.js';

afterEach(cleanup);

async function poll<T>(read: () => Promise<T>, ok: (value: T) => boolean, timeoutMs: number): Promise<{ value: T; ms: number }> {
  const start = Date.now();
  for (;;) {
    const value = await read();
    if (ok(value)) return { value, ms: Date.now() - start };
    if (Date.now() - start > timeoutMs) throw new Error(`not reached within ${timeoutMs} ms; last value ${JSON.stringify(value)}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe.skipIf(!postgresAvailable)('definitions in PostgreSQL, changed behind the API', () => {
  it('the running engine follows a row changed with SQL within a second', async () => {
    const db = await createTestDatabase();
    try {
      const { app } = await openTestApp(await testConfig({ 'definitions.store': 'postgres', 'definitions.postgresUrl': db.url, 'definitions.pollIntervalMs': 5_000 }));
      const tag = { id: 'big_clicks', kind: 'statistic', eventTypes: ['transfer'], filter: 'attrs.amount >= 100', aggregate: 'count', window: { type: 'lifetime' } };
      expect((await app.inject({ method: 'POST', url: '/v1/tags', payload: tag })).statusCode).toBe(201);
      expect((await app.inject({ method: 'POST', url: '/v1/tags/big_clicks/online' })).statusCode).toBe(200);
      const t = Date.now();
      const send = (amount: number, dt: number) =>
        app.inject({ method: 'POST', url: '/v1/events?wait=true', payload: { type: 'transfer', user_id: 'u', to_account: 'z', amount, time: t + dt } });
      await send(50, 0);
      await send(150, 1);
      const read = async () => (await app.inject({ method: 'GET', url: '/v1/profiles/u' })).json().tags.big_clicks?.value as number | undefined;
      expect(await read()).toBe(1);

      // An operator stores version 2 with a lower threshold directly in the database.
      await runSql(db.url, `insert into portrait_definition_versions (kind, id, version, document, created_at)
        select kind, id, 2, jsonb_set(document, '{filter}', '"attrs.amount >= 10"'), 0 from portrait_definition_versions where id = 'big_clicks' and version = 1`);
      await runSql(db.url, `update portrait_definitions set version = 2, updated_at = $1 where id = 'big_clicks'`, [Date.now()]);
      // The service follows the push, and the engine switches at the next log position.
      const followed = await poll(async () => (await app.inject({ method: 'GET', url: '/v1/tags/big_clicks' })).json().version as number, (v) => v === 2, 5_000);
      expect(followed.ms).toBeLessThan(1_000);
      // Values of the old computation are no longer shown; the new one starts empty and counts under the new filter.
      expect(await read()).toBe(0);
      await send(20, 2);
      await send(30, 3);
      expect(await read()).toBe(2);

      // Taking it offline with SQL removes it from profiles.
      await runSql(db.url, `update portrait_definitions set status = 'offline', updated_at = $1 where id = 'big_clicks'`, [Date.now()]);
      const gone = await poll(read, (v) => v === undefined, 2_000);
      expect(gone.ms).toBeLessThan(1_000);
    } finally {
      await cleanup();
      await db.drop();
    }
  });

  it('a change whose notification is lost (the listening connection terminated) is picked up by polling within the interval, applied once', async () => {
    const db = await createTestDatabase();
    try {
      const pollIntervalMs = 400;
      const { app, system } = await openTestApp(await testConfig({ 'definitions.store': 'postgres', 'definitions.postgresUrl': db.url, 'definitions.pollIntervalMs': pollIntervalMs }));
      const tag = { id: 'big_clicks', kind: 'statistic', eventTypes: ['transfer'], filter: 'attrs.amount >= 100', aggregate: 'count', window: { type: 'lifetime' } };
      expect((await app.inject({ method: 'POST', url: '/v1/tags', payload: tag })).statusCode).toBe(201);
      expect((await app.inject({ method: 'POST', url: '/v1/tags/big_clicks/online' })).statusCode).toBe(200);
      const applied: number[] = [];
      system.definitions.onOnlineChange((revision) => void applied.push(revision));
      const start = system.definitions.revision;
      const storeRevision = async () => (await runSql<{ revision: number }>(db.url, 'select revision from portrait_revision_counter'))[0]!.revision;
      expect(await storeRevision()).toBe(start);

      // The store's LISTEN connection is killed; it reconnects only after a second, so the next NOTIFY reaches nobody.
      const listening = `select pid from pg_stat_activity where datname = current_database() and query ilike 'listen %'`;
      const killed = await runSql<{ pid: number }>(db.url, listening);
      expect(killed).toHaveLength(1);
      await runSql(db.url, 'select pg_terminate_backend($1)', [killed[0]!.pid]);
      await poll(() => runSql(db.url, listening), (rows) => rows.length === 0, 2_000);

      // Another connection takes the tag offline.
      await runSql(db.url, `update portrait_definitions set status = 'offline', updated_at = $1 where id = 'big_clicks'`, [Date.now()]);
      expect(await storeRevision()).toBe(start + 1);
      // Still no listener after the change: its notification was delivered to no one.
      expect(await runSql(db.url, listening)).toHaveLength(0);
      const followed = await poll(async () => system.definitions.revision, (r) => r === start + 1, 5_000);
      expect(followed.ms).toBeLessThan(pollIntervalMs + 300);
      expect((await app.inject({ method: 'GET', url: '/v1/tags/big_clicks' })).json().status).toBe('offline');
      expect(system.definitions.currentSet().tags).toEqual([]);

      // The listener reconnects; later polls and the reconnection apply nothing again.
      await poll(() => runSql(db.url, listening), (rows) => rows.length === 1, 5_000);
      await new Promise((r) => setTimeout(r, 3 * pollIntervalMs));
      expect(applied).toEqual([start + 1]);

      // Pushes are back: later changes are applied once each, in order.
      await runSql(db.url, `update portrait_definitions set status = 'online', updated_at = $1 where id = 'big_clicks'`, [Date.now()]);
      await poll(async () => system.definitions.revision, (r) => r === start + 2, 5_000);
      await runSql(db.url, `update portrait_definitions set status = 'offline', updated_at = $1 where id = 'big_clicks'`, [Date.now()]);
      await poll(async () => system.definitions.revision, (r) => r === start + 3, 5_000);
      await new Promise((r) => setTimeout(r, 3 * pollIntervalMs));
      expect(applied).toEqual([start + 1, start + 2, start + 3]);
      expect(system.definitions.revision).toBe(await storeRevision());
    } finally {
      await cleanup();
      await db.drop();
    }
  });
});
