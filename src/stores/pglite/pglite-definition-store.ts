import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
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
  /**
   * Folder for the image of a freshly initialised cluster, made the first time
   * a new database is created and loaded into every later new one (PGlite's
   * `initdb` takes seconds, loading the image under one); `null` turns it off.
   * Default: `$XDG_CACHE_HOME/portrait` or `~/.cache/portrait`.
   */
  templateDir?: string | null;
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
    db = (options.db ?? (await openPgliteDatabase(options.dataDir, options.templateDir))) as unknown as PgliteLike;
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

function defaultTemplateDir(): string {
  return join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'portrait');
}

/** The cluster image file for this PGlite version. */
function templateFile(dir: string): string {
  return join(dir, `pglite-${PGLITE_VERSION}-cluster.tar`);
}

const PGLITE_VERSION = pgliteVersion();

/** The installed PGlite's version (from its package.json, found above its entry point), or 'unknown'. */
function pgliteVersion(): string {
  try {
    let dir = dirname(createRequire(import.meta.url).resolve('@electric-sql/pglite'));
    for (let i = 0; i < 4; i++, dir = dirname(dir)) {
      const file = join(dir, 'package.json');
      if (!existsSync(file)) continue;
      const pkg = JSON.parse(readFileSync(file, 'utf8')) as { name?: unknown; version?: unknown };
      if (pkg.name === '@electric-sql/pglite' && typeof pkg.version === 'string') return pkg.version;
    }
  } catch {
    // no image without a version to name it by
  }
  return 'unknown';
}

/**
 * Opens PGlite on `dataDir` (in memory when undefined). A new database
 * starts from the cluster image in `templateDir` when there is one (a broken
 * image is dropped and the cluster initialised as usual), and a cluster
 * initialised here leaves its image there for the next: written to a temporary name and renamed, so concurrent
 * processes never read half an image. The image is only ever an optimisation;
 * no failure around it stops the store from opening.
 */
export async function openPgliteDatabase(dataDir: string | undefined, templateDir: string | null = defaultTemplateDir()): Promise<PGlite> {
  const fresh = dataDir === undefined || !existsSync(join(dataDir, 'PG_VERSION'));
  if (!fresh || templateDir === null || PGLITE_VERSION === 'unknown') return PGlite.create(dataDir);
  const file = templateFile(templateDir);
  if (existsSync(file)) {
    try {
      const image = new Blob([readFileSync(file)]);
      return await PGlite.create(dataDir, { loadDataDir: image });
    } catch {
      rmSync(file, { force: true });
      if (dataDir !== undefined) for (const entry of readdirSync(dataDir)) rmSync(join(dataDir, entry), { recursive: true, force: true });
    }
  }
  const db = await PGlite.create(dataDir);
  try {
    const image = await db.dumpDataDir('none');
    mkdirSync(templateDir, { recursive: true });
    const tmp = `${file}.${process.pid}.tmp`;
    writeFileSync(tmp, Buffer.from(await image.arrayBuffer()));
    renameSync(tmp, file);
  } catch {
    // No image this time (read-only cache folder, full disk…): the next new database runs initdb too.
  }
  return db;
}
