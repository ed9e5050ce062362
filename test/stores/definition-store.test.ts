import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createPgliteDefinitionStore, openPgliteDatabase } from '../../src/stores/pglite/index.js';
import { createPostgresDefinitionStore } from '../../src/stores/postgres/index.js';
import { createTestDatabase, postgresAvailable, runSql } from '../helpers/postgres.js';
import { describeDefinitionStore } from './definition-store.conformance.js';

describeDefinitionStore('PGlite', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'portrait-pglite-'));
  const db = await openPgliteDatabase(join(dir, 'db'));
  const store = await createPgliteDefinitionStore({ db });
  return {
    store,
    // The same database, used directly, as an operator with a SQL console would.
    sql: async (text, params) => (await db.query<Record<string, unknown>>(text, params)).rows,
    dispose: async () => {
      await store.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
});

describeDefinitionStore(
  'PostgreSQL',
  async () => {
    const db = await createTestDatabase();
    const store = await createPostgresDefinitionStore({ connectionString: db.url });
    return {
      store,
      sql: (text, params) => runSql(db.url, text, params),
      dispose: async () => {
        await store.close();
        await db.drop();
      },
    };
  },
  postgresAvailable,
);
