import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
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
   * Folder for the template of a freshly initialised cluster, made the first
   * time a new database is created and copied into every later new one
   * (PGlite's `initdb` takes seconds, a copy a fraction of one); `null` turns
   * it off. Default: `$XDG_CACHE_HOME/portrait` or `~/.cache/portrait`.
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

/** The closed cluster folder copied into new on-disk databases, for this PGlite version. */
function templateFolder(dir: string): string {
  return join(dir, `pglite-${PGLITE_VERSION}-cluster`);
}

/** A new on-disk database: a copy of the template cluster (made first when missing), else initdb. */
async function openFromClusterCopy(dataDir: string, templateDir: string): Promise<PGlite> {
  const folder = templateFolder(templateDir);
  if (!existsSync(join(folder, 'PG_VERSION'))) {
    const tmp = `${folder}.${process.pid}.tmp`;
    try {
      mkdirSync(templateDir, { recursive: true });
      rmSync(tmp, { recursive: true, force: true });
      const db = await PGlite.create(tmp);
      await db.close();
      renameSync(tmp, folder);
    } catch {
      // Another process made it first, or the cache folder is not writable.
      rmSync(tmp, { recursive: true, force: true });
    }
  }
  if (existsSync(join(folder, 'PG_VERSION'))) {
    try {
      cpSync(folder, dataDir, { recursive: true });
      return await PGlite.create(dataDir);
    } catch {
      rmSync(folder, { recursive: true, force: true });
      for (const entry of readdirSync(dataDir)) rmSync(join(dataDir, entry), { recursive: true, force: true });
    }
  }
  return PGlite.create(dataDir);
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
 * starts from a freshly initialised cluster kept in `templateDir`: on disk,
 * a copy of a closed cluster folder (a native file copy; PGlite's `initdb`
 * takes seconds); in memory, a tar image of one. The first new database
 * leaves the template for the next, made under a temporary name and renamed,
 * so concurrent processes never read half of one. A broken template is
 * dropped and the cluster initialised as usual. The template is only ever an
 * optimisation; no failure around it stops the store from opening.
 */
export async function openPgliteDatabase(dataDir: string | undefined, templateDir: string | null = defaultTemplateDir()): Promise<PGlite> {
  const fresh = dataDir === undefined || !existsSync(join(dataDir, 'PG_VERSION'));
  if (!fresh || templateDir === null || PGLITE_VERSION === 'unknown') return PGlite.create(dataDir);
  if (dataDir !== undefined) return openFromClusterCopy(dataDir, templateDir);
  const file = templateFile(templateDir);
  if (existsSync(file)) {
    try {
      const image = new Blob([readFileSync(file)]);
      return await PGlite.create(dataDir, { loadDataDir: image });
    } catch {
      rmSync(file, { force: true });
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
