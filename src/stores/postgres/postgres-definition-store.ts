import pg from 'pg';
import type { DefinitionStore } from '../../definitions/index.js';
import { StoreError } from '../../errors/index.js';
import { createSqlDefinitionStore, DEFINITIONS_CHANNEL, type SqlClient } from '../sql/index.js';

/** Options of {@link createPostgresDefinitionStore}. */
export interface PostgresDefinitionStoreOptions {
  /** Connection string, e.g. `postgres://postgres@127.0.0.1:5432/portrait`. */
  connectionString: string;
  /** Connections in the pool. @defaultValue 4 */
  maxConnections?: number;
  /** Time allowed to connect, ms. @defaultValue 5000 */
  connectTimeoutMs?: number;
  /** Time allowed per statement, ms. @defaultValue 10000 */
  statementTimeoutMs?: number;
  /** Delay before the listening connection reconnects after it drops, ms. @defaultValue 1000 */
  reconnectDelayMs?: number;
}

/**
 * The distributed definition store: the same SQL as the embedded store on a
 * PostgreSQL server. Changes are pushed to watchers with LISTEN/NOTIFY on a
 * dedicated connection that reconnects when dropped (pushes lost meanwhile are
 * caught by the caller's polling).
 */
export async function createPostgresDefinitionStore(options: PostgresDefinitionStoreOptions): Promise<DefinitionStore> {
  const where = redact(options.connectionString);
  const connectTimeoutMs = options.connectTimeoutMs ?? 5_000;
  const statementTimeoutMs = options.statementTimeoutMs ?? 10_000;
  const config = { connectionString: options.connectionString, connectionTimeoutMillis: connectTimeoutMs, statement_timeout: statementTimeoutMs, query_timeout: statementTimeoutMs + 1_000 };
  const pool = new pg.Pool({ ...config, max: options.maxConnections ?? 4 });
  // An idle client's error (server restart) must not crash the process; the next query reconnects.
  pool.on('error', () => undefined);
  try {
    await pool.query('select 1');
  } catch (err: unknown) {
    await pool.end().catch(() => undefined);
    throw new StoreError('PRT_STORE_UNAVAILABLE', `PostgreSQL definition store at ${where} could not be reached: ${(err as Error).message}`, { subject: where }, { cause: err });
  }
  const asClient = (q: { query: pg.Pool['query'] | pg.PoolClient['query'] }): SqlClient => ({
    query: async <R>(sql: string, params?: unknown[]) => {
      const result = await (q.query as (text: string, values?: unknown[]) => Promise<pg.QueryResult>)(sql, params);
      return { rows: (Array.isArray(result) ? [] : result.rows) as R[] };
    },
    transaction: async <T>(fn: (tx: SqlClient) => Promise<T>): Promise<T> => {
      const conn = await pool.connect();
      try {
        await conn.query('begin');
        const out = await fn(asClient(conn));
        await conn.query('commit');
        return out;
      } catch (err: unknown) {
        await conn.query('rollback').catch(() => undefined);
        throw err;
      } finally {
        conn.release();
      }
    },
  });
  const listeners = new Set<pg.Client>();
  let closed = false;
  const listen = async (onPayload: (payload: string) => void): Promise<() => Promise<void>> => {
    let client: pg.Client | undefined;
    let stopped = false;
    let timer: NodeJS.Timeout | undefined;
    const connect = async (): Promise<void> => {
      const c = new pg.Client(config);
      c.on('notification', (msg) => {
        if (msg.channel === DEFINITIONS_CHANNEL && msg.payload !== undefined) onPayload(msg.payload);
      });
      c.on('error', () => {
        listeners.delete(c);
        void c.end().catch(() => undefined);
        if (!stopped && !closed) timer = setTimeout(() => void connect().catch(retry), options.reconnectDelayMs ?? 1_000);
      });
      await c.connect();
      await c.query(`listen ${DEFINITIONS_CHANNEL}`);
      client = c;
      listeners.add(c);
    };
    const retry = (): void => {
      if (!stopped && !closed) timer = setTimeout(() => void connect().catch(retry), options.reconnectDelayMs ?? 1_000);
    };
    await connect();
    return async () => {
      stopped = true;
      clearTimeout(timer);
      if (client !== undefined) {
        listeners.delete(client);
        await client.end().catch(() => undefined);
      }
    };
  };
  return createSqlDefinitionStore(asClient(pool), {
    name: `PostgreSQL at ${where}`,
    listen,
    async close() {
      closed = true;
      await Promise.allSettled([...listeners].map((c) => c.end()));
      await pool.end();
    },
  });
}

function redact(connectionString: string): string {
  return connectionString.replace(/\/\/([^:@/]+):[^@/]*@/, '//$1:***@');
}
