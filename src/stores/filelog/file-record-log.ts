import { mkdir, readdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { ConfigError, PortraitError, StoreError } from '../../errors/index.js';
import type { LogEntry, RecordLog } from '../../engine/index.js';
import { acquireDirLock } from './dir-lock.js';
import type { DirLock } from './dir-lock.js';
import { resolveFileRecordLogOptions } from './file-record-log-options.js';
import type { FileRecordLogOptions, ResolvedFileRecordLogOptions } from './file-record-log-options.js';
import { parsePartitionDirName, partitionDirName } from './frame.js';
import { PartitionLog, syncDir, type LogWriteObserver } from './partition-log.js';
import type { RecoveredTail } from './segment-file.js';

// Partitions scanned at once when the log opens; each scan holds a 4 MiB buffer.
const OPEN_CONCURRENCY = 4;

/**
 * The embedded {@link RecordLog}: each partition is a folder of append-only
 * segment files in `options.dir`, written with group commit and read through a
 * cache of recent records and a sparse offset index.
 *
 * Payloads returned by `read` are views into shared buffers: treat them as
 * read-only, and copy one if you keep it long (it holds its whole buffer).
 */
export interface FileRecordLog extends RecordLog {
  /** Absolute path of the log directory. */
  readonly dir: string;
  /** The options in effect, defaults applied. */
  readonly options: Readonly<Required<FileRecordLogOptions>>;
  /**
   * Torn tails cut off last segments when the log opened, left by a crash
   * during a write: the partition, the segment file, the file length after the
   * cut (`atByte`) and how many unacknowledged bytes were dropped. Empty after a
   * clean close.
   */
  readonly recoveredTails: ReadonlyArray<{
    readonly partition: number;
    readonly segment: string;
    readonly atByte: number;
    readonly droppedBytes: number;
  }>;
}

/**
 * Opens (or creates) the file log in `options.dir` and takes its lock.
 *
 * Throws a `PRT_CONFIG_INVALID` error when an option is invalid or
 * `partitionCount` differs from the stored log's, `PRT_STORE_LOCKED` when
 * another live process (or another open log in this one) holds the directory,
 * and `PRT_STORE_CORRUPT` when a segment fails its checks anywhere but in a
 * torn tail, which is cut off. `observer`, when given, is told of every
 * group write (its time and bytes), for metrics.
 *
 * @example
 * ```ts
 * const log = await createFileRecordLog({ dir: 'data/log', partitionCount: 8 });
 * const first = await log.append(0, [bytes]);
 * const entries = await log.read(0, first, 1000);
 * await log.close();
 * ```
 */
export async function createFileRecordLog(options: FileRecordLogOptions, observer?: LogWriteObserver): Promise<FileRecordLog> {
  const resolved = resolveFileRecordLogOptions(options);
  const dir = resolve(resolved.dir);
  try {
    await mkdir(dir, { recursive: true });
  } catch (err: unknown) {
    throw new StoreError('PRT_STORE_UNAVAILABLE', `cannot create log directory ${dir}: ${messageOf(err)}`, { subject: dir }, { cause: err });
  }
  const lock = await acquireDirLock(dir);
  const opened: PartitionLog[] = [];
  try {
    await preparePartitionDirs(dir, resolved);
    const recovered: RecoveredTail[] = [];
    const partitions = new Array<PartitionLog>(resolved.partitionCount);
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < resolved.partitionCount) {
        const p = next++;
        const partition = await PartitionLog.open(p, join(dir, partitionDirName(p)), resolved, recovered, observer);
        opened.push(partition);
        partitions[p] = partition;
      }
    };
    const results = await Promise.allSettled(
      Array.from({ length: Math.min(OPEN_CONCURRENCY, resolved.partitionCount) }, () => worker()),
    );
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed !== undefined) throw failed.reason;
    recovered.sort((a, b) => a.partition - b.partition || a.segment.localeCompare(b.segment));
    return new FileRecordLogImpl(dir, resolved, partitions, lock, recovered);
  } catch (err: unknown) {
    await Promise.allSettled(opened.map((p) => p.close()));
    await lock.release();
    throw err;
  }
}

// Creates the partition folders of a new log, or checks that an existing log
// has exactly the configured partitions.
async function preparePartitionDirs(dir: string, options: ResolvedFileRecordLogOptions): Promise<void> {
  const entries = await readdir(dir, { withFileTypes: true });
  const found = entries
    .filter((e) => e.isDirectory())
    .map((e) => parsePartitionDirName(e.name))
    .filter((p): p is number => p !== undefined)
    .sort((a, b) => a - b);
  if (found.length === 0) {
    for (let p = 0; p < options.partitionCount; p++) await mkdir(join(dir, partitionDirName(p)));
    if (options.fsync !== 'none') await syncDir(dir);
    return;
  }
  const missing = found.findIndex((p, i) => p !== i);
  if (missing !== -1) {
    throw new StoreError(
      'PRT_STORE_CORRUPT',
      `log directory ${dir} lacks the folder ${partitionDirName(missing)} of partition ${missing} (found ${found.length} partition folders)`,
      { subject: dir },
    );
  }
  if (found.length !== options.partitionCount) {
    throw new ConfigError(
      'PRT_CONFIG_INVALID',
      `file record log option /partitionCount is ${options.partitionCount} but the log in ${dir} has ${found.length} partitions; the partition count of a log cannot change`,
      { path: '/partitionCount', subject: 'partitionCount' },
    );
  }
}

class FileRecordLogImpl implements FileRecordLog {
  readonly partitionCount: number;
  private closing: Promise<void> | undefined;

  constructor(
    readonly dir: string,
    readonly options: ResolvedFileRecordLogOptions,
    private readonly partitions: PartitionLog[],
    private readonly lock: DirLock,
    readonly recoveredTails: ReadonlyArray<Readonly<RecoveredTail>>,
  ) {
    this.partitionCount = partitions.length;
  }

  append(partition: number, payloads: ReadonlyArray<Uint8Array>, checksums?: ArrayLike<number>): Promise<number> {
    if (this.closing !== undefined) return Promise.reject(this.closedError());
    const log = this.partitions[partition];
    if (log === undefined || !Number.isInteger(partition)) return Promise.reject(this.noSuchPartition(partition));
    return log.append(payloads, checksums);
  }

  read(partition: number, offset: number, maxEntries: number): Promise<LogEntry[]> {
    if (this.closing !== undefined) return Promise.reject(this.closedError());
    const log = this.partitions[partition];
    if (log === undefined || !Number.isInteger(partition)) return Promise.reject(this.noSuchPartition(partition));
    return log.read(offset, maxEntries);
  }

  endOffset(partition: number): number {
    return this.partition(partition).endOffset();
  }

  startOffset(partition: number): number {
    return this.partition(partition).startOffset();
  }

  truncateBefore(partition: number, offset: number): Promise<void> {
    if (this.closing !== undefined) return Promise.reject(this.closedError());
    const log = this.partitions[partition];
    if (log === undefined || !Number.isInteger(partition)) return Promise.reject(this.noSuchPartition(partition));
    return log.truncateBefore(offset);
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      const results = await Promise.allSettled(this.partitions.map((p) => p.close()));
      await this.lock.release();
      const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (failed !== undefined) throw failed.reason;
    })();
    return this.closing;
  }

  private partition(partition: number): PartitionLog {
    const log = this.partitions[partition];
    if (log === undefined || !Number.isInteger(partition)) throw this.noSuchPartition(partition);
    return log;
  }

  private noSuchPartition(partition: number): PortraitError {
    return new PortraitError(
      'PRT_INTERNAL',
      `log partition ${String(partition)} does not exist; the log in ${this.dir} has partitions 0 to ${this.partitionCount - 1}`,
      { subject: String(partition) },
    );
  }

  private closedError(): StoreError {
    return new StoreError('PRT_STORE_UNAVAILABLE', `record log ${this.dir} is closed`, { subject: this.dir });
  }
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
