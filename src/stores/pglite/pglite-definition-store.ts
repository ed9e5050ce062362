import { mkdirSync } from 'node:fs';
import { PGlite } from '@electric-sql/pglite';
import type { DefinitionStore } from '../../definitions/index.js';
import { StoreError } from '../../errors/index.js';
import { createSqlDefinitionStore, DEFINITIONS_CHANNEL, type SqlClient } from '../sql/index.js';

/** Options of {@link createPgliteDefinitionStore}. */
export interface PgliteDefinitionStoreOptions {
  /** Folder where PGlite keeps its database; omit for an in-memory database. */
  dataDir?: string;
  /** A PGlite instance to use instead of opening one (the store closes it). */
  db?: PGlite;
}

interface PgliteLike {
  query<R>(sql: string, params?: unknown[]): Promise<{ rows: R[] }>;
  exec(sql: string): Promise<unknown>;
  transaction<T>(fn: (tx: { query<R>(sql: string, params?: unknown[]): Promise<{ rows: R[] }> }) => Promise<T>): Promise<T>;
  listen(channel: string, callback: (payload: string) => void): Promise<() => Promise<void>>;
  close(): Promise<void>;
}

/**
 * The embedded definition store: PostgreSQL compiled to WebAssembly (PGlite),
 * persisted to a folder, running the same SQL as the PostgreSQL store.
 */
export async function createPgliteDefinitionStore(options: PgliteDefinitionStoreOptions = {}): Promise<DefinitionStore> {
  let db: PgliteLike;
  const where = options.dataDir ?? 'memory';
  try {
    if (options.dataDir !== undefined) mkdirSync(options.dataDir, { recursive: true });
    db = (options.db ?? (await PGlite.create(options.dataDir))) as unknown as PgliteLike;
  } catch (err: unknown) {
    throw new StoreError('PRT_STORE_UNAVAILABLE', `PGlite definition store at ${where} could not be opened: ${(err as Error).message}`, { subject: where }, { cause: err });
  }
  const client = (q: { query<R>(sql: string, params?: unknown[]): Promise<{ rows: R[] }> }): SqlClient => ({
    // PGlite runs multi-statement text only through exec.
    query: async <R>(sql: string, params?: unknown[]) => (params === undefined && sql.includes(';') ? ((await db.exec(sql)), { rows: [] as R[] }) : q.query<R>(sql, params)),
    transaction: <T>(fn: (tx: SqlClient) => Promise<T>) => db.transaction((tx) => fn(client(tx))),
  });
  return createSqlDefinitionStore(client(db), {
    name: `PGlite at ${where}`,
    listen: (onPayload) => db.listen(DEFINITIONS_CHANNEL, onPayload),
    close: () => db.close(),
  });
}
