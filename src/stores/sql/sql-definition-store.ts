import type {
  DefinitionKind,
  DefinitionStore,
  DefinitionWrite,
  OnlineEntry,
  RevisionRecord,
  StoredDefinition,
  StoredVersion,
  DefinitionStatus,
  RestoredVersion,
} from '../../definitions/index.js';
import { DefinitionError, NotFoundError, PortraitError, showValue, StoreError } from '../../errors/index.js';

/**
 * The part of a PostgreSQL client the definition store uses. PGlite (embedded)
 * and node-postgres (distributed) both fit behind it, so both run the same SQL.
 */
export interface SqlClient {
  query<R = Record<string, unknown>>(sql: string, params?: unknown[]): Promise<{ rows: R[] }>;
  /** Runs `fn` in one transaction; commits when it resolves, rolls back when it throws. */
  transaction<T>(fn: (tx: SqlClient) => Promise<T>): Promise<T>;
}

/** The channel revisions are announced on (`NOTIFY portrait_definitions, '<revision>'`). */
export const DEFINITIONS_CHANNEL = 'portrait_definitions';

/**
 * Creates the tables and the trigger if they do not exist. The trigger records
 * a revision — the full online set after the change — and announces it on
 * {@link DEFINITIONS_CHANNEL} for every change of `portrait_definitions`,
 * whoever makes it: another process, or an operator with SQL. The store's own
 * writes switch it off for their transaction and record one revision per
 * write or batch with `portrait_record_batch_revision`, at the write's time.
 */
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
create or replace function portrait_record_revision() returns trigger language plpgsql as $$
declare
  next_revision integer;
  online_set jsonb;
  changed record;
  changed_status text;
  changed_at double precision;
begin
  -- Writes through the store record one revision per write or batch themselves (portrait_record_batch_revision).
  if coalesce(current_setting('portrait.batch', true), '') = 'on' then
    return null;
  end if;
  if tg_op = 'DELETE' then
    changed := old;
    changed_status := 'deleted';
    changed_at := extract(epoch from clock_timestamp()) * 1000;
  else
    changed := new;
    changed_status := new.status;
    changed_at := new.updated_at;
  end if;
  -- Taking the counter row serialises writers, so revisions are gapless and ordered.
  update portrait_revision_counter set revision = revision + 1 returning revision into next_revision;
  select coalesce(jsonb_agg(jsonb_build_object('kind', d.kind, 'id', d.id, 'version', d.version) order by d.kind, d.id), '[]'::jsonb)
    into online_set from portrait_definitions d where d.status = 'online';
  insert into portrait_revisions (revision, at, kind, id, version, status, online)
    values (next_revision, changed_at, changed.kind, changed.id, changed.version, changed_status, online_set);
  perform pg_notify('${DEFINITIONS_CHANNEL}', next_revision::text);
  return null;
end $$;
create or replace function portrait_record_batch_revision(p_at double precision, p_kind text, p_id text, p_version integer, p_status text)
returns integer language plpgsql as $$
declare
  next_revision integer;
  online_set jsonb;
begin
  update portrait_revision_counter set revision = revision + 1 returning revision into next_revision;
  select coalesce(jsonb_agg(jsonb_build_object('kind', d.kind, 'id', d.id, 'version', d.version) order by d.kind, d.id), '[]'::jsonb)
    into online_set from portrait_definitions d where d.status = 'online';
  insert into portrait_revisions (revision, at, kind, id, version, status, online)
    values (next_revision, p_at, p_kind, p_id, p_version, p_status, online_set);
  perform pg_notify('${DEFINITIONS_CHANNEL}', next_revision::text);
  return next_revision;
end $$;
create or replace trigger portrait_definitions_revision after insert or update or delete on portrait_definitions
  for each row execute function portrait_record_revision();
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
  status: DefinitionStatus | 'deleted';
  online: OnlineEntry[];
}

/** Options of {@link createSqlDefinitionStore}. */
export interface SqlDefinitionStoreOptions {
  /** Describes the backend in error messages, e.g. `PGlite at ./data/sql`. */
  name: string;
  /** Subscribes to {@link DEFINITIONS_CHANNEL}; resolves with an unsubscribe function. */
  listen(onPayload: (payload: string) => void): Promise<() => Promise<void>>;
  close(): Promise<void>;
}

/** A {@link DefinitionStore} over any PostgreSQL-dialect {@link SqlClient}. */
export async function createSqlDefinitionStore(client: SqlClient, options: SqlDefinitionStoreOptions): Promise<DefinitionStore> {
  const wrap = async <T>(what: string, run: () => Promise<T>): Promise<T> => {
    try {
      return await run();
    } catch (err: unknown) {
      throw mapStoreError(err, options.name, what);
    }
  };
  await wrap('create its tables', () => client.query(definitionSchemaSql));

  const selectDefinition = `
    select d.kind, d.id, d.version, d.status, d.created_at, d.updated_at, v.document
    from portrait_definitions d
    join portrait_definition_versions v on v.kind = d.kind and v.id = d.id and v.version = d.version`;

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
          const { definitions, revision } = await applyBatch(tx, [change]);
          return { definition: definitions[0]!, revision: revision! };
        }),
      ),
    writeBatch: (changes: ReadonlyArray<DefinitionWrite>) => wrap('write a batch of definitions', () => client.transaction((tx) => applyBatch(tx, changes))),
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
    watch: (listener) =>
      wrap('listen for changes', () =>
        options.listen((payload) => {
          const revision = Number(payload);
          if (Number.isSafeInteger(revision) && revision > 0) listener(revision);
        }),
      ),
    close: () => options.close(),
  };
}

/**
 * Applies changes in the caller's transaction and records one revision for all
 * of them, carrying the last change's time (none when `changes` is empty).
 */
async function applyBatch(tx: SqlClient, changes: ReadonlyArray<DefinitionWrite>): Promise<{ definitions: StoredDefinition[]; revision: RevisionRecord | undefined }> {
  // The row trigger stays quiet; the revision is recorded once, below.
  await tx.query("select set_config('portrait.batch', 'on', true)");
  const definitions: StoredDefinition[] = [];
  for (const change of changes) definitions.push(await applyWrite(tx, change));
  const last = definitions[definitions.length - 1];
  if (last === undefined) return { definitions, revision: undefined };
  const lastChange = changes[changes.length - 1]!;
  await tx.query('select portrait_record_batch_revision($1, $2, $3, $4, $5)', [lastChange.at, last.kind, last.id, last.version, lastChange.delete === true ? 'deleted' : last.status]);
  return { definitions, revision: await lastRevision(tx) };
}

async function applyWrite(tx: SqlClient, change: DefinitionWrite): Promise<StoredDefinition> {
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
    throw new DefinitionError('PRT_DEF_VERSION_CONFLICT', `${change.kind} "${change.id}" is at version ${row.version}, not ${change.expectedVersion}`, { subject: change.id, path: '/version' });
  }
  if (change.delete === true) {
    const document = await documentOf(tx, change.kind, change.id, row!.version);
    await tx.query('delete from portrait_definitions where kind = $1 and id = $2', [change.kind, change.id]);
    return { kind: change.kind, id: change.id, version: row!.version, status: row!.status, document, createdAt: Number(row!.created_at), updatedAt: change.at };
  }
  let version = change.expectedVersion;
  if (change.restore !== undefined && change.restore.length > 0) version = await restoreVersions(tx, change, change.restore);
  if (change.document !== undefined) {
    // A definition deleted earlier keeps its versions; a new one with its id continues the numbering.
    const top = await tx.query<{ top: number | null }>('select max(version) as top from portrait_definition_versions where kind = $1 and id = $2', [change.kind, change.id]);
    version = Math.max(change.expectedVersion, top.rows[0]?.top ?? 0) + 1;
    await tx.query('insert into portrait_definition_versions (kind, id, version, document, created_at) values ($1, $2, $3, $4::jsonb, $5)', [
      change.kind,
      change.id,
      version,
      JSON.stringify(change.document),
      change.at,
    ]);
  }
  const status: DefinitionStatus = change.status ?? row?.status ?? 'draft';
  const createdAt = row === undefined ? (change.createdAt ?? change.at) : Number(row.created_at);
  const updatedAt = change.updatedAt ?? change.at;
  if (row === undefined) {
    await tx.query('insert into portrait_definitions (kind, id, version, status, created_at, updated_at) values ($1, $2, $3, $4, $5, $6)', [change.kind, change.id, version, status, createdAt, updatedAt]);
  } else {
    await tx.query('update portrait_definitions set version = $3, status = $4, updated_at = $5 where kind = $1 and id = $2', [change.kind, change.id, version, status, updatedAt]);
  }
  const definition: StoredDefinition = {
    kind: change.kind,
    id: change.id,
    version,
    status,
    document: change.document ?? (await documentOf(tx, change.kind, change.id, version)),
    createdAt,
    updatedAt,
  };
  return definition;
}

/**
 * Stores restored versions under their own numbers and returns the last one's.
 * A number already stored must hold an equal document (jsonb equality: key
 * order and number spelling aside); a new one must be above every stored
 * number, so a restore never fills a gap or rewrites history.
 */
async function restoreVersions(tx: SqlClient, change: DefinitionWrite, versions: ReadonlyArray<RestoredVersion>): Promise<number> {
  const { kind, id } = change;
  const top = (await tx.query<{ top: number | null }>('select max(version) as top from portrait_definition_versions where kind = $1 and id = $2', [kind, id])).rows[0]?.top ?? 0;
  let previous = 0;
  for (const [i, v] of versions.entries()) {
    if (!Number.isSafeInteger(v.version) || v.version <= previous) {
      throw new DefinitionError('PRT_DEF_INVALID', `${kind} "${id}" restored version /restore/${i}/version must be an integer above ${previous}, got ${showValue(v.version)}`, { subject: id, path: `/restore/${i}/version` });
    }
    previous = v.version;
    if (v.version > top) {
      await tx.query('insert into portrait_definition_versions (kind, id, version, document, created_at) values ($1, $2, $3, $4::jsonb, $5)', [kind, id, v.version, JSON.stringify(v.document), v.createdAt]);
      continue;
    }
    const stored = await tx.query<{ same: boolean }>('select document = $4::jsonb as same from portrait_definition_versions where kind = $1 and id = $2 and version = $3', [kind, id, v.version, JSON.stringify(v.document)]);
    const same = stored.rows[0]?.same;
    if (same !== true) {
      const reason = same === undefined ? `is missing from its stored history, which is at version ${top}; versions are only restored above it` : 'is stored with another document';
      throw new DefinitionError('PRT_DEF_VERSION_CONFLICT', `${kind} "${id}" version ${v.version} ${reason}`, { subject: id, path: `/restore/${i}` });
    }
  }
  if (previous < top) {
    throw new DefinitionError('PRT_DEF_VERSION_CONFLICT', `${kind} "${id}" cannot be restored to version ${previous}: version ${top} is stored`, { subject: id, path: `/restore/${versions.length - 1}/version` });
  }
  return previous;
}

async function documentOf(tx: SqlClient, kind: DefinitionKind, id: string, version: number): Promise<Record<string, unknown>> {
  const { rows } = await tx.query<{ document: Record<string, unknown> }>('select document from portrait_definition_versions where kind = $1 and id = $2 and version = $3', [kind, id, version]);
  if (rows[0] === undefined) throw new StoreError('PRT_STORE_CORRUPT', `${kind} "${id}" version ${version} has no stored document`, { subject: id });
  return rows[0].document;
}

/** The revision the trigger recorded for this transaction's last change (the counter row is locked by it). */
async function lastRevision(tx: SqlClient): Promise<RevisionRecord> {
  const { rows } = await tx.query<RevisionRow>('select r.* from portrait_revisions r join portrait_revision_counter c on r.revision = c.revision');
  if (rows[0] === undefined) throw new StoreError('PRT_STORE_CORRUPT', 'the definition store recorded no revision for a change; is the trigger portrait_definitions_revision missing?');
  return toRevision(rows[0]);
}

function toDefinition(row: DefinitionRow): StoredDefinition {
  return {
    kind: row.kind,
    id: row.id,
    version: row.version,
    status: row.status,
    document: row.document,
    createdAt: Number(row.created_at),
    updatedAt: Number(row.updated_at),
  };
}

function toRevision(row: RevisionRow): RevisionRecord {
  return {
    revision: row.revision,
    at: Number(row.at),
    kind: row.kind,
    id: row.id,
    version: row.version,
    status: row.status,
    online: row.online,
  };
}

/** Maps a backend failure to a Portrait error, in one place for every SQL backend. */
function mapStoreError(err: unknown, name: string, what: string): PortraitError {
  if (err instanceof PortraitError) return err;
  const code = (err as { code?: unknown }).code;
  // 23505 unique_violation: two writers created the same id at once; 40001 serialization_failure.
  if (code === '23505') return new DefinitionError('PRT_DEF_EXISTS', `definition store (${name}): ${(err as Error).message}`, { subject: name });
  if (code === '40001' || code === '40P01') {
    return new DefinitionError('PRT_DEF_VERSION_CONFLICT', `definition store (${name}) could not ${what} because of a concurrent change; retry`, { subject: name });
  }
  return new StoreError('PRT_STORE_UNAVAILABLE', `definition store (${name}) failed to ${what}: ${(err as Error).message}`, { subject: name }, { cause: err });
}
