import { Ajv } from 'ajv';
import { ConfigError, showValue } from '../../errors/index.js';
import type { ErrorDetail } from '../../errors/index.js';

/**
 * When the file log forces appended bytes to stable storage.
 *
 * - `batch`: group commit. Appends that arrive while a write is in flight are
 *   written together in the next write, a synchronous one (the segment is
 *   opened `O_DSYNC`: the write returns once its data is durable, as a write
 *   plus `fdatasync` would). Survives power loss.
 * - `always`: every `append` call gets its own synchronous write.
 * - `none`: write only. Survives `kill -9` (the bytes are in the OS page cache)
 *   but not power loss.
 */
export type FileRecordLogFsync = 'batch' | 'always' | 'none';

/** Options of {@link createFileRecordLog}. */
export interface FileRecordLogOptions {
  /** Folder holding the log: one sub-folder per partition and a `LOCK` file. Created when absent. */
  dir: string;
  /**
   * Number of partitions, at least 1. When `dir` already holds a log, it must
   * equal the number of partitions stored there.
   */
  partitionCount: number;
  /**
   * Size a segment file may reach before the log starts the next one, in bytes.
   * A single record larger than this gets a segment of its own.
   * @defaultValue 67108864 (64 MiB)
   */
  segmentBytes?: number;
  /**
   * Durability policy; see {@link FileRecordLogFsync}.
   * @defaultValue `'batch'`
   */
  fsync?: FileRecordLogFsync;
  /**
   * How long to gather appends into one group before writing, in milliseconds.
   * `0` writes on the next turn of the event loop.
   * @defaultValue 0
   */
  flushDelayMs?: number;
  /**
   * Bytes of recently appended records kept in memory per partition, so a
   * reader just behind the writer does not touch the disk.
   * @defaultValue 16777216 (16 MiB)
   */
  cacheBytesPerPartition?: number;
  /**
   * How much a read fetches from a segment file at once, in bytes.
   * @defaultValue 1048576 (1 MiB)
   */
  readChunkBytes?: number;
  /**
   * Distance between two entries of the in-memory sparse offset index, in
   * bytes of segment file. Smaller finds a record with less scanning and uses
   * more memory (16 bytes per entry).
   * @defaultValue 4096
   */
  indexIntervalBytes?: number;
}

/** Default values of the optional {@link FileRecordLogOptions}. */
export const defaultFileRecordLogOptions = Object.freeze({
  segmentBytes: 64 * 1024 * 1024,
  fsync: 'batch',
  flushDelayMs: 0,
  cacheBytesPerPartition: 16 * 1024 * 1024,
  readChunkBytes: 1024 * 1024,
  indexIntervalBytes: 4096,
} as const satisfies Required<Omit<FileRecordLogOptions, 'dir' | 'partitionCount'>>);

/** Options after defaults are applied and validation passed. */
export type ResolvedFileRecordLogOptions = Readonly<Required<FileRecordLogOptions>>;

/** JSON Schema of {@link FileRecordLogOptions}: the contract the options are validated against. */
export const fileRecordLogOptionsSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['dir', 'partitionCount'],
  properties: {
    dir: { type: 'string', minLength: 1 },
    partitionCount: { type: 'integer', minimum: 1, maximum: 65536 },
    segmentBytes: { type: 'integer', minimum: 1, maximum: 2 ** 40 },
    fsync: { enum: ['batch', 'always', 'none'] },
    flushDelayMs: { type: 'number', minimum: 0, maximum: 60_000 },
    cacheBytesPerPartition: { type: 'integer', minimum: 0, maximum: 2 ** 40 },
    readChunkBytes: { type: 'integer', minimum: 4096, maximum: 1024 * 1024 * 1024 },
    indexIntervalBytes: { type: 'integer', minimum: 1, maximum: 2 ** 40 },
  },
} as const;

const validate = new Ajv({ allErrors: true }).compile(fileRecordLogOptionsSchema);

/**
 * Applies defaults, validates against {@link fileRecordLogOptionsSchema} and
 * freezes the result. Throws a `PRT_CONFIG_INVALID` {@link ConfigError} naming
 * every offending setting.
 */
export function resolveFileRecordLogOptions(options: FileRecordLogOptions): ResolvedFileRecordLogOptions {
  const merged: Record<string, unknown> = { ...defaultFileRecordLogOptions };
  // Explicit `undefined` means "use the default", as for an omitted key.
  for (const [name, value] of Object.entries(options ?? {})) {
    if (value !== undefined) merged[name] = value;
  }
  if (!validate(merged)) {
    const details: ErrorDetail[] = (validate.errors ?? []).map((error) => {
      const path =
        error.keyword === 'required'
          ? `/${String(error.params.missingProperty)}`
          : error.keyword === 'additionalProperties'
            ? `/${String(error.params.additionalProperty)}`
            : error.instancePath || '/';
      const got = error.keyword === 'required' ? '' : `, got ${showValue(valueAt(merged, path))}`;
      return { path, message: `${error.message ?? 'is invalid'}${got}` };
    });
    const first = details[0] ?? { path: '/', message: 'is invalid' };
    throw new ConfigError(
      'PRT_CONFIG_INVALID',
      `file record log option ${first.path} ${first.message}` +
        (details.length > 1 ? ` (and ${details.length - 1} more problem(s))` : ''),
      { path: first.path, subject: first.path.slice(1), details },
    );
  }
  return Object.freeze(merged) as unknown as ResolvedFileRecordLogOptions;
}

function valueAt(object: Record<string, unknown>, path: string): unknown {
  return path === '/' ? object : object[path.slice(1)];
}
