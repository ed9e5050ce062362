import type {
  DefinitionKind,
  DefinitionStore,
  DefinitionWrite,
  OnlineEntry,
  RevisionRecord,
  StoredDefinition,
  StoredVersion,
  DefinitionStatus,
} from '../../definitions/index.js';
import { DefinitionError, NotFoundError, PortraitError, StoreError } from '../../errors/index.js';

/**
 * The part of a PostgreSQL client the definition store uses. PGlite (embedded)
 * and node-postgres (distributed) both fit behind it, so both run the same SQL.
 */
export interface SqlClient {
  query<R = Record<string, unknown>>(sql: string, params?: unknown[]): Promise<{ rows: R[] }>;
  /** Runs `fn` in one transaction; commits when it resolves, rolls back when it throws. */
  transaction<T>(fn: (tx: SqlClient) => Promise<T>): Promise<T>;
}

/** Creates the tables if they do not exist. */
export const definitionSchemaSql = `
create table if not exists portrait_definitions (
  kind text not null,
  id text not null,
  version integer not null,
  status text not null,
  created_at double precision not null,
  updated_at double precision not null,
  primary key (kind, id)
);
create table if not exists portrait_definition_versions (
  kind text not null,
  id text not null,
  version integer not null,
  document jsonb not null,
  created_at double precision not null,
  primary key (kind, id, version)
);
create table if not exists portrait_revisions (
  revision integer primary key,
  at double precision not null,
  kind text not null,
  id text not null,
  version integer not null,
  status text not null,
  online jsonb not null
);
create table if not exists portrait_revision_counter (
  singleton boolean primary key default true check (singleton),
  revision integer not null
);
insert into portrait_revision_counter (singleton, revision) values (true, 0) on conflict do nothing;
`;

interface DefinitionRow {
  kind: DefinitionKind;
  id: string;
  version: number;
  status: DefinitionStatus;
  created_at: number;
  updated_at: number;
  document: Record<string, unknown>;
}

interface RevisionRow {
  revision: number;
  at: number;
  kind: DefinitionKind;
  id: string;
  version: number;
  status: DefinitionStatus;
  online: OnlineEntry[];
}

/** Options of {@link createSqlDefinitionStore}. */
export interface SqlDefinitionStoreOptions {
  /** Describes the backend in error messages, e.g. `PGlite at ./data/sql`. */
  name: string;
  /** Called once a write has committed, with its revision (e.g. to notify listeners). */
  afterCommit?: (tx: SqlClient, revision: RevisionRecord) => Promise<void>;
  close(): Promise<void>;
}

/** A {@link DefinitionStore} over any PostgreSQL-dialect {@link SqlClient}. */
export async function createSqlDefinitionStore(client: SqlClient, options: SqlDefinitionStoreOptions): Promise<DefinitionStore> {
  const wrap = async <T>(what: string, run: () => Promise<T>): Promise<T> => {
    try {
      return await run();
    } catch (err: unknown) {
      if (err instanceof PortraitError) throw err;
      throw new StoreError('PRT_STORE_UNAVAILABLE', `definition store (${options.name}) failed to ${what}: ${(err as Error).message}`, { subject: options.name }, { cause: err });
    }
  };
  await wrap('create its tables', () => client.query(definitionSchemaSql));

  const selectDefinition = `
    select d.kind, d.id, d.version, d.status, d.created_at, d.updated_at, v.document
    from portrait_definitions d
    join portrait_definition_versions v on v.kind = d.kind and v.id = d.id and v.version = d.version`;

  const toDefinition = (row: DefinitionRow): StoredDefinition => ({
    kind: row.kind,
    id: row.id,
    version: row.version,
    status: row.status,
    document: row.document,
    createdAt: Number(row.created_at),
    updatedAt: Number(row.updated_at),
  });
  const toRevision = (row: RevisionRow): RevisionRecord => ({
    revision: row.revision,
    at: Number(row.at),
    kind: row.kind,
    id: row.id,
    version: row.version,
    status: row.status,
    online: row.online,
  });

  return {
    list: (kind) =>
      wrap('list definitions', async () => {
        const { rows } = await client.query<DefinitionRow>(`${selectDefinition} where d.kind = $1 order by d.id`, [kind]);
        return rows.map(toDefinition);
      }),
    get: (kind, id) =>
      wrap('read a definition', async () => {
        const { rows } = await client.query<DefinitionRow>(`${selectDefinition} where d.kind = $1 and d.id = $2`, [kind, id]);
        return rows[0] === undefined ? undefined : toDefinition(rows[0]);
      }),
    versions: (kind, id) =>
      wrap('read versions', async () => {
        const { rows } = await client.query<{ version: number; document: Record<string, unknown>; created_at: number }>(
          'select version, document, created_at from portrait_definition_versions where kind = $1 and id = $2 order by version',
          [kind, id],
        );
        return rows.map((r): StoredVersion => ({ kind, id, version: r.version, document: r.document, createdAt: Number(r.created_at) }));
      }),
    getVersion: (kind, id, version) =>
      wrap('read a version', async () => {
        const { rows } = await client.query<{ document: Record<string, unknown>; created_at: number }>(
          'select document, created_at from portrait_definition_versions where kind = $1 and id = $2 and version = $3',
          [kind, id, version],
        );
        const r = rows[0];
        return r === undefined ? undefined : { kind, id, version, document: r.document, createdAt: Number(r.created_at) };
      }),
    write: (change: DefinitionWrite) =>
      wrap('write a definition', () =>
        client.transaction(async (tx) => {
          // Taking the counter row first serialises writers, so revisions are gapless and ordered.
          const counter = await tx.query<{ revision: number }>('update portrait_revision_counter set revision = revision + 1 returning revision');
          const revision = counter.rows[0]!.revision;
          const current = await tx.query<{ version: number; status: DefinitionStatus; created_at: number }>(
            'select version, status, created_at from portrait_definitions where kind = $1 and id = $2 for update',
            [change.kind, change.id],
          );
          const row = current.rows[0];
          if (change.expectedVersion === 0 && row !== undefined) {
            throw new DefinitionError('PRT_DEF_EXISTS', `${change.kind} "${change.id}" already exists (version ${row.version})`, { subject: change.id });
          }
          if (change.expectedVersion !== 0 && row === undefined) {
            throw new NotFoundError('PRT_DEF_NOT_FOUND', `${change.kind} "${change.id}" does not exist`, { subject: change.id });
          }
          if (row !== undefined && row.version !== change.expectedVersion) {
            throw new DefinitionError('PRT_DEF_VERSION_CONFLICT', `${change.kind} "${change.id}" is at version ${row.version}, not ${change.expectedVersion}`, { subject: change.id });
          }
          const version = change.document === undefined ? change.expectedVersion : change.expectedVersion + 1;
          const status: DefinitionStatus = change.status ?? row?.status ?? 'draft';
          if (change.document !== undefined) {
            await tx.query('insert into portrait_definition_versions (kind, id, version, document, created_at) values ($1, $2, $3, $4::jsonb, $5)', [
              change.kind,
              change.id,
              version,
              JSON.stringify(change.document),
              change.at,
            ]);
          }
          if (row === undefined) {
            await tx.query('insert into portrait_definitions (kind, id, version, status, created_at, updated_at) values ($1, $2, $3, $4, $5, $5)', [
              change.kind,
              change.id,
              version,
              status,
              change.at,
            ]);
          } else {
            await tx.query('update portrait_definitions set version = $3, status = $4, updated_at = $5 where kind = $1 and id = $2', [change.kind, change.id, version, status, change.at]);
          }
          const previous = await tx.query<{ online: OnlineEntry[] }>('select online from portrait_revisions where revision = $1', [revision - 1]);
          const online = (previous.rows[0]?.online ?? []).filter((e) => !(e.kind === change.kind && e.id === change.id));
          if (status === 'online') online.push({ kind: change.kind, id: change.id, version });
          online.sort((a, b) => (a.kind === b.kind ? (a.id < b.id ? -1 : a.id > b.id ? 1 : 0) : a.kind < b.kind ? -1 : 1));
          await tx.query('insert into portrait_revisions (revision, at, kind, id, version, status, online) values ($1, $2, $3, $4, $5, $6, $7::jsonb)', [
            revision,
            change.at,
            change.kind,
            change.id,
            version,
            status,
            JSON.stringify(online),
          ]);
          const record: RevisionRecord = { revision, at: change.at, kind: change.kind, id: change.id, version, status, online };
          if (options.afterCommit !== undefined) await options.afterCommit(tx, record);
          const definition: StoredDefinition = {
            kind: change.kind,
            id: change.id,
            version,
            status,
            document: change.document ?? (await tx.query<{ document: Record<string, unknown> }>(
              'select document from portrait_definition_versions where kind = $1 and id = $2 and version = $3',
              [change.kind, change.id, version],
            )).rows[0]!.document,
            createdAt: row === undefined ? change.at : Number(row.created_at),
            updatedAt: change.at,
          };
          return { definition, revision: record };
        }),
      ),
    latestRevision: () =>
      wrap('read the latest revision', async () => {
        const { rows } = await client.query<RevisionRow>('select * from portrait_revisions order by revision desc limit 1');
        return rows[0] === undefined ? undefined : toRevision(rows[0]);
      }),
    getRevision: (revision) =>
      wrap('read a revision', async () => {
        const { rows } = await client.query<RevisionRow>('select * from portrait_revisions where revision = $1', [revision]);
        return rows[0] === undefined ? undefined : toRevision(rows[0]);
      }),
    revisionsAfter: (revision, limit) =>
      wrap('read revisions', async () => {
        const { rows } = await client.query<RevisionRow>('select * from portrait_revisions where revision > $1 order by revision limit $2', [revision, limit]);
        return rows.map(toRevision);
      }),
    close: () => options.close(),
  };
}
