import { afterEach, describe, expect, it } from 'vitest';
import { createTestDatabase, postgresAvailable, runSql } from '../helpers/postgres.js';
import { cleanup } from '../helpers/system.js';
import { ev, openRules, SECOND, T0 } from './harness.js';

afterEach(cleanup);

async function poll<T>(read: () => Promise<T>, ok: (value: T) => boolean, timeoutMs: number): Promise<number> {
  const start = Date.now();
  for (;;) {
    const value = await read();
    if (ok(value)) return Date.now() - start;
    if (Date.now() - start > timeoutMs) throw new Error(`not reached within ${timeoutMs} ms; last value ${JSON.stringify(value)}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

const transfer = (user: string, at: number) => ev('transfer', user, at, { to_account: 'acc', amount: 10 });

describe.skipIf(!postgresAvailable)('rules in PostgreSQL, changed with SQL behind the API', () => {
  it('a new version inserted and a status set offline are followed by the running engine within a second', async () => {
    const db = await createTestDatabase();
    try {
      // Polling every 30 s: only the LISTEN/NOTIFY push can make it within a second.
      const rs = await openRules({ 'definitions.store': 'postgres', 'definitions.postgresUrl': db.url, 'definitions.pollIntervalMs': 30_000 });
      await rs.addRule({ id: 'many_transfers', key: ['user_id'], ordering: 'arrival', condition: { aggregate: { fn: 'count', eventTypes: ['transfer'], window: { type: 'lifetime' } }, op: '>=', value: 3 } });
      await rs.send(transfer('u1', 0), transfer('u1', 1 * SECOND));
      expect(await rs.decisions('many_transfers')).toEqual([]);
      const engineVersion = async () => (await rs.rule('many_transfers')).runtime.counters?.version;

      // An operator stores version 2 with threshold 2 directly in the database.
      await runSql(
        db.url,
        `insert into portrait_definition_versions (kind, id, version, document, created_at)
           select kind, id, 2, jsonb_set(document, '{condition,value}', '2'), $1 from portrait_definition_versions where kind = 'rule' and id = 'many_transfers' and version = 1`,
        [Date.now()],
      );
      await runSql(db.url, `update portrait_definitions set version = 2, updated_at = $1 where kind = 'rule' and id = 'many_transfers'`, [Date.now()]);
      expect(await poll(engineVersion, (v) => v === 2, 5_000)).toBeLessThan(1_000);
      // Only the threshold changed: the key's count (aggregate state, shared by identity) carries on, and version 2 decides from 2 up.
      await rs.send(transfer('u1', 2 * SECOND), transfer('u1', 3 * SECOND));
      const decided = await rs.decisions('many_transfers');
      expect(decided.map((d) => [d.version, d.key.user_id, (d.time - T0) / SECOND, d.aggregates[0]])).toEqual([
        [2, 'u1', 2, 3],
        [2, 'u1', 3, 4],
      ]);

      // Stopped with SQL: the engine drops it within a second and it decides nothing more.
      await runSql(db.url, `update portrait_definitions set status = 'offline', updated_at = $1 where kind = 'rule' and id = 'many_transfers'`, [Date.now()]);
      expect(await poll(async () => (await rs.rule('many_transfers')).runtime, (r) => r.state === 'stopped' && r.counters === undefined, 5_000)).toBeLessThan(1_000);
      await rs.send(transfer('u1', 4 * SECOND), transfer('u1', 5 * SECOND), transfer('u1', 6 * SECOND));
      expect(await rs.decisions('many_transfers')).toHaveLength(2);
    } finally {
      await cleanup();
      await db.drop();
    }
  });
});
