import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { Ajv } from 'ajv';
import { ConfigError, showValue } from '../errors/index.js';

/** Everything Portrait can be configured with. */
export interface PortraitConfig {
  /** HTTP port; 0 picks a free one. */
  port: number;
  /** Interface to listen on. */
  host: string;
  /** Folder of the embedded data (log, LMDB, PGlite). */
  dataDir: string;
  /** Log partitions (units of parallelism and state ownership). Fixed once data exists. */
  partitions: number;
  logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
  demo: {
    /** Generate a synthetic event stream and demo tags. */
    enabled: boolean;
    eventsPerSecond: number;
    users: number;
    seed: number;
  };
  ingest: {
    /** Largest accepted request body, bytes. */
    maxBodyBytes: number;
    /** Events further ahead of the wall clock are refused, ms. */
    maxFutureMs: number;
    /** Refuse ingest while the engine is this many records behind. */
    maxLagRecords: number;
    /** Interval of time marks, ms. */
    markIntervalMs: number;
    /** Advance event time with the wall clock after this long without events, ms; 0 = never. */
    idleAdvanceMs: number;
    /** Fields an event type does not declare: keep, drop or reject. */
    additionalFields: 'keep' | 'drop' | 'reject';
  };
  log: {
    segmentBytes: number;
    /** `batch`: group commit with fsync; `always`: fsync every append call alone; `none`: no fsync. */
    fsync: 'batch' | 'always' | 'none';
  };
  engine: {
    outOfOrdernessMs: number;
    allowedLatenessMs: number;
    latePolicy: 'count' | 'deadletter' | 'apply';
    /** Remove an entity's state after this long without events (event time); 0 = keep. */
    stateTtlMs: number;
    /**
     * Partial matches of a decision rule with no `limits.stateTtl`, no window and a sequence
     * without `within` expire after this long without an event of their key (the rule's time);
     * 0 = keep (bounded per key by `maxPartialMatches` only).
     */
    defaultRuleStateTtlMs: number;
    checkpointIntervalMs: number;
    maxBatchRecords: number;
    /** Changed profiles are written to the profile store at most this often, ms (reads through the API are always current). */
    profileFlushIntervalMs: number;
  };
  decisions: {
    /** Append every decision to this NDJSON file; empty for none. */
    file: string;
    /** POST decisions in batches to this URL; empty for none. */
    webhookUrl: string;
    /** Time allowed per webhook request, ms. */
    webhookTimeoutMs: number;
  };
  definitions: {
    /** Where definitions live: the embedded PGlite database in the data dir, or a PostgreSQL server. */
    store: 'pglite' | 'postgres';
    /** Connection string of the PostgreSQL store, e.g. `postgres://postgres@127.0.0.1:5432/portrait`. */
    postgresUrl: string;
    /** Interval of the polling that backs up change pushes (LISTEN/NOTIFY), ms. */
    pollIntervalMs: number;
  };
  serving: {
    /** Largest `ids` list of a batch profile read. */
    maxBatchKeys: number;
    /** Longest wait of an ingest request with `?wait=true`, ms. */
    waitTimeoutMs: number;
  };
}

/** Defaults of every setting (deeply frozen: sections too). */
export const defaultConfig: PortraitConfig = deepFreeze({
  port: 8080,
  host: '127.0.0.1',
  dataDir: './data',
  partitions: 4,
  logLevel: 'info',
  demo: { enabled: false, eventsPerSecond: 200, users: 5_000, seed: 42 },
  ingest: { maxBodyBytes: 10 * 1024 * 1024, maxFutureMs: 3_600_000, maxLagRecords: 5_000_000, markIntervalMs: 200, idleAdvanceMs: 0, additionalFields: 'keep' },
  log: { segmentBytes: 64 * 1024 * 1024, fsync: 'batch' },
  engine: { outOfOrdernessMs: 5_000, allowedLatenessMs: 60_000, latePolicy: 'count', stateTtlMs: 0, defaultRuleStateTtlMs: 604_800_000, checkpointIntervalMs: 10_000, maxBatchRecords: 4_096, profileFlushIntervalMs: 10_000 },
  decisions: { file: '', webhookUrl: '', webhookTimeoutMs: 5_000 },
  definitions: { store: 'pglite', postgresUrl: 'postgres://postgres@127.0.0.1:5432/postgres', pollIntervalMs: 1_000 },
  serving: { maxBatchKeys: 1_000, waitTimeoutMs: 10_000 },
} satisfies PortraitConfig);

const int = (minimum: number, maximum = Number.MAX_SAFE_INTEGER) => ({ type: 'integer', minimum, maximum });

/** JSON Schema of the configuration. */
export const configSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    port: int(0, 65535),
    host: { type: 'string', minLength: 1 },
    dataDir: { type: 'string', minLength: 1 },
    partitions: int(1, 1024),
    logLevel: { enum: ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] },
    demo: {
      type: 'object',
      additionalProperties: false,
      properties: { enabled: { type: 'boolean' }, eventsPerSecond: int(1, 10_000_000), users: int(1, 100_000_000), seed: int(0) },
    },
    ingest: {
      type: 'object',
      additionalProperties: false,
      properties: {
        maxBodyBytes: int(1024, 1024 ** 3),
        maxFutureMs: int(0),
        maxLagRecords: int(1),
        markIntervalMs: int(1, 60_000),
        idleAdvanceMs: int(0),
        additionalFields: { enum: ['keep', 'drop', 'reject'] },
      },
    },
    log: {
      type: 'object',
      additionalProperties: false,
      properties: { segmentBytes: int(4096, 2 ** 31 - 1), fsync: { enum: ['batch', 'always', 'none'] } },
    },
    engine: {
      type: 'object',
      additionalProperties: false,
      properties: {
        outOfOrdernessMs: int(0),
        allowedLatenessMs: int(0),
        latePolicy: { enum: ['count', 'deadletter', 'apply'] },
        stateTtlMs: int(0),
        defaultRuleStateTtlMs: int(0),
        checkpointIntervalMs: int(100),
        maxBatchRecords: int(1, 1_000_000),
        profileFlushIntervalMs: int(1, 3_600_000),
      },
    },
    decisions: {
      type: 'object',
      additionalProperties: false,
      properties: { file: { type: 'string' }, webhookUrl: { type: 'string', pattern: '^(https?://.+)?$' }, webhookTimeoutMs: int(1, 600_000) },
    },
    definitions: {
      type: 'object',
      additionalProperties: false,
      properties: { store: { enum: ['pglite', 'postgres'] }, postgresUrl: { type: 'string', minLength: 1 }, pollIntervalMs: int(50, 3_600_000) },
    },
    serving: { type: 'object', additionalProperties: false, properties: { maxBatchKeys: int(1, 100_000), waitTimeoutMs: int(1, 600_000) } },
  },
} as const;

const ajv = new Ajv({ allErrors: false, strict: false });
const check = ajv.compile(configSchema);

/** Environment variables and the setting each sets. */
export const environmentSettings: Readonly<Record<string, { path: string; type: 'integer' | 'string' | 'boolean' }>> = Object.freeze({
  PORT: { path: 'port', type: 'integer' },
  HOST: { path: 'host', type: 'string' },
  PORTRAIT_DATA_DIR: { path: 'dataDir', type: 'string' },
  PORTRAIT_PARTITIONS: { path: 'partitions', type: 'integer' },
  PORTRAIT_LOG_LEVEL: { path: 'logLevel', type: 'string' },
  PORTRAIT_DEMO: { path: 'demo.enabled', type: 'boolean' },
  PORTRAIT_DEMO_RATE: { path: 'demo.eventsPerSecond', type: 'integer' },
  PORTRAIT_FSYNC: { path: 'log.fsync', type: 'string' },
  PORTRAIT_CHECKPOINT_INTERVAL_MS: { path: 'engine.checkpointIntervalMs', type: 'integer' },
  PORTRAIT_DEFINITION_STORE: { path: 'definitions.store', type: 'string' },
  PORTRAIT_DECISIONS_FILE: { path: 'decisions.file', type: 'string' },
  PORTRAIT_DECISIONS_WEBHOOK: { path: 'decisions.webhookUrl', type: 'string' },
  PORTRAIT_POSTGRES_URL: { path: 'definitions.postgresUrl', type: 'string' },
});

/** Where a setting came from, for error messages. */
type Origin = Map<string, string>;

/**
 * Builds the configuration from defaults, then a JSON file (`file`, or the
 * `PORTRAIT_CONFIG` variable), then environment variables, then `overrides`
 * (e.g. command-line flags). Throws a {@link ConfigError} naming the setting,
 * where it came from and why it is invalid. The result is frozen.
 */
export function loadConfig(options: { file?: string; env?: NodeJS.ProcessEnv; overrides?: Record<string, unknown> } = {}): PortraitConfig {
  const env = options.env ?? {};
  const origin: Origin = new Map();
  const config = structuredClone(defaultConfig) as unknown as Record<string, unknown>;
  const file = options.file ?? env.PORTRAIT_CONFIG;
  if (file !== undefined && file !== '') {
    let parsed: unknown;
    try {
      parsed = JSON.parse(readFileSync(resolve(file), 'utf8'));
    } catch (err: unknown) {
      throw new ConfigError('PRT_CONFIG_INVALID', `configuration file ${file} could not be read as JSON: ${(err as Error).message}`, { subject: file });
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
      throw new ConfigError('PRT_CONFIG_INVALID', `configuration file ${file} must hold a JSON object`, { subject: file });
    }
    merge(config, parsed as Record<string, unknown>, '', origin, `file ${file}`);
  }
  for (const [name, setting] of Object.entries(environmentSettings)) {
    const raw = env[name];
    if (raw === undefined || raw === '') continue;
    setPath(config, setting.path, convertEnv(raw, setting.type), origin, `environment variable ${name}`);
  }
  for (const [path, value] of Object.entries(options.overrides ?? {})) setPath(config, path, value, origin, `option --${path}`);
  if (!check(config)) {
    const e = check.errors![0]!;
    let path = e.instancePath.slice(1).replaceAll('/', '.');
    if (e.keyword === 'additionalProperties') path = `${path ? `${path}.` : ''}${(e.params as { additionalProperty: string }).additionalProperty}`;
    const source = originOf(origin, path);
    const value = getPath(config, path);
    const reason =
      e.keyword === 'additionalProperties'
        ? 'is not a known setting'
        : e.keyword === 'enum'
          ? `must be one of ${(e.params as { allowedValues: unknown[] }).allowedValues.join(', ')}`
          : (e.message ?? 'is invalid');
    throw new ConfigError('PRT_CONFIG_INVALID', `setting "${path}" (from ${source}) ${reason}, got ${showValue(value)}`, { subject: path, path: `/${path.replaceAll('.', '/')}` });
  }
  return deepFreeze(config) as unknown as PortraitConfig;
}

function convertEnv(raw: string, type: 'integer' | 'string' | 'boolean'): unknown {
  if (type === 'string') return raw;
  if (type === 'boolean') {
    if (['1', 'true', 'yes', 'on'].includes(raw.toLowerCase())) return true;
    if (['0', 'false', 'no', 'off'].includes(raw.toLowerCase())) return false;
    return raw;
  }
  return /^-?\d+$/.test(raw.trim()) ? Number(raw) : raw;
}

function merge(target: Record<string, unknown>, source: Record<string, unknown>, prefix: string, origin: Origin, from: string): void {
  for (const [key, value] of Object.entries(source)) {
    const path = prefix ? `${prefix}.${key}` : key;
    const existing = target[key];
    if (typeof value === 'object' && value !== null && !Array.isArray(value) && typeof existing === 'object' && existing !== null && !Array.isArray(existing)) {
      merge(existing as Record<string, unknown>, value as Record<string, unknown>, path, origin, from);
    } else {
      target[key] = value;
      origin.set(path, from);
    }
  }
}

function setPath(target: Record<string, unknown>, path: string, value: unknown, origin: Origin, from: string): void {
  const parts = path.split('.');
  let node = target;
  for (const part of parts.slice(0, -1)) {
    if (node[part] === undefined) node[part] = {};
    // A section an earlier source set to a non-object stays, so validation reports it with its origin.
    if (typeof node[part] !== 'object' || node[part] === null || Array.isArray(node[part])) return;
    node = node[part] as Record<string, unknown>;
  }
  node[parts[parts.length - 1]!] = value;
  origin.set(path, from);
}

/**
 * Where the value at `path` came from: the source that set it, else the source that
 * set a setting below it (a dotted override creating an unknown section), else the
 * source that set a section above it; otherwise the defaults.
 */
function originOf(origin: Origin, path: string): string {
  const exact = origin.get(path);
  if (exact !== undefined) return exact;
  let below: string | undefined;
  for (const [p, from] of origin) if (p.startsWith(`${path}.`)) below = from;
  if (below !== undefined) return below;
  const parts = path.split('.');
  for (let n = parts.length - 1; n > 0; n--) {
    const above = origin.get(parts.slice(0, n).join('.'));
    if (above !== undefined) return above;
  }
  return 'defaults';
}

function getPath(target: Record<string, unknown>, path: string): unknown {
  let node: unknown = target;
  for (const part of path.split('.')) {
    if (typeof node !== 'object' || node === null) return undefined;
    node = (node as Record<string, unknown>)[part];
  }
  return node;
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null) {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}
