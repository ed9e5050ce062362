import { randomUUID } from 'node:crypto';
import pg from 'pg';

/** Server the PostgreSQL tests use: `PORTRAIT_TEST_POSTGRES_URL`, or the local default. */
export const postgresServerUrl = process.env.PORTRAIT_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

async function probe(): Promise<string | undefined> {
  const client = new pg.Client({ connectionString: postgresServerUrl, connectionTimeoutMillis: 3_000 });
  try {
    await client.connect();
    await client.query('select 1');
    return undefined;
  } catch (err: unknown) {
    return (err as Error).message;
  } finally {
    await client.end().catch(() => undefined);
  }
}

const problem = await probe();
if (problem !== undefined) {
  const message = `PostgreSQL is not reachable at ${postgresServerUrl} (${problem})`;
  // In CI a missing service is a failure; elsewhere the PostgreSQL tests are skipped, loudly.
  if (process.env.CI === 'true') throw new Error(`${message}; .ci/run must provide it`);
  process.stderr.write(`\n!!! SKIPPING PostgreSQL tests: ${message}\n\n`);
}

/** True when the PostgreSQL tests can run. */
export const postgresAvailable = problem === undefined;

/** Creates a fresh database for one test; returns its URL and a function that drops it. */
export async function createTestDatabase(): Promise<{ url: string; drop: () => Promise<void> }> {
  const name = `portrait_test_${randomUUID().replaceAll('-', '')}`;
  const admin = new pg.Client({ connectionString: postgresServerUrl, connectionTimeoutMillis: 5_000 });
  await admin.connect();
  try {
    await admin.query(`create database ${name}`);
  } finally {
    await admin.end();
  }
  const url = new URL(postgresServerUrl);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    drop: async () => {
      const c = new pg.Client({ connectionString: postgresServerUrl, connectionTimeoutMillis: 5_000 });
      await c.connect();
      try {
        await c.query(`drop database if exists ${name} with (force)`);
      } finally {
        await c.end();
      }
    },
  };
}

/** Runs SQL against a database URL on a short-lived connection. */
export async function runSql<R = Record<string, unknown>>(url: string, text: string, params: unknown[] = []): Promise<R[]> {
  const c = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5_000 });
  await c.connect();
  try {
    return (await c.query(text, params)).rows as R[];
  } finally {
    await c.end();
  }
}
