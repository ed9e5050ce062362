import { constants as fsConstants } from 'node:fs';
import { open, readdir, unlink } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { PortraitError, StoreError } from '../../errors/index.js';
import type { LogEntry } from '../../engine/index.js';
import type { ResolvedFileRecordLogOptions } from './file-record-log-options.js';
import { BATCH_END_FLAG, FRAME_HEADER_BYTES, MAX_PAYLOAD_BYTES, crc32, frameLength, parseSegmentFileName, readU32, segmentFileName, writeU32 } from './frame.js';
import { corruptSegmentError, readFully, scanSegment } from './segment-file.js';
import type { RecoveredTail, Segment } from './segment-file.js';

// Appended frames are encoded straight into blocks of this size; one write
// takes whole runs of them, and the cache keeps them after the write.
const BLOCK_BYTES = 256 * 1024;
// Bookkeeping charged per cache entry on top of its bytes.
const CACHE_ENTRY_OVERHEAD_BYTES = 64;

/** Frames encoded but not yet durable: a run of one block that belongs to one segment. */
interface Chunk {
  readonly segmentBase: number;
  readonly block: Buffer;
  readonly start: number;
  end: number;
  readonly firstOffset: number;
  count: number;
  /** Byte position of the run in its segment file. */
  readonly segmentPos: number;
  /** Sparse index points of the run, flattened (offset, position) pairs. */
  readonly index: number[];
}

/** An append call waiting for its records to become durable. */
interface Waiter {
  readonly first: number;
  /** Offset just past the call's last record. */
  readonly end: number;
  readonly resolve: (first: number) => void;
  readonly reject: (err: unknown) => void;
}

/** Durable frames kept in memory: `count` records from `firstOffset`, framed as on disk. */
interface CacheEntry {
  readonly firstOffset: number;
  readonly count: number;
  readonly frames: Buffer;
}

/** Bytes most recently fetched from a segment file, for the next sequential read. */
interface DiskChunk {
  readonly segment: Segment;
  /** File position of buf[0]. */
  readonly filePos: number;
  readonly buf: Buffer;
}

/** Told of each group write the log's partitions make (for metrics). */
export interface LogWriteObserver {
  /**
   * One write of appended frames to the active segment has returned: `seconds`
   * from handing it to the file system until it returned (durable when the log
   * syncs), `bytes` written.
   */
  onWrite(partition: number, seconds: number, bytes: number): void;
}

/**
 * One partition of the file log: its segment files, the group-commit writer
 * of its active (last) segment, the cache of recent records and the readers.
 */
export class PartitionLog {
  private readonly fsync: boolean;
  private readonly cacheBudgetBytes: number;

  // Durable state.
  private durableEnd: number;
  private active: { segment: Segment; handle: FileHandle };

  // Encoding state: offsets are assigned, and frames encoded, at call time.
  private nextOffset: number;
  private projectedSegmentBase: number;
  private projectedSegmentBytes: number;
  private projectedLastIndexPos: number;
  private block: Buffer | undefined;
  private blockFill = 0;
  private openChunk: Chunk | undefined;
  private queue: Chunk[] = [];
  private waiters: Waiter[] = [];
  private waitersHead = 0;

  // Flush loop state.
  private scheduled = false;
  private flushing = false;
  private idleWaiters: Array<() => void> = [];
  private failure: StoreError | undefined;
  private closed = false;

  // Read state.
  private cache: CacheEntry[] = [];
  private cacheHead = 0;
  private cacheBytes = 0;
  private cacheHint: { offset: number; entry: CacheEntry; pos: number } | undefined;
  private diskHint: { offset: number; segment: Segment; pos: number } | undefined;
  private diskChunk: DiskChunk | undefined;

  private constructor(
    readonly partition: number,
    private readonly dir: string,
    private readonly options: ResolvedFileRecordLogOptions,
    private segments: Segment[],
    activeHandle: FileHandle,
    private readonly observer: LogWriteObserver | undefined,
  ) {
    this.fsync = options.fsync !== 'none';
    this.cacheBudgetBytes = options.cacheBytesPerPartition;
    const last = segments[segments.length - 1]!;
    this.active = { segment: last, handle: activeHandle };
    this.durableEnd = last.baseOffset + last.recordCount;
    this.nextOffset = this.durableEnd;
    this.projectedSegmentBase = last.baseOffset;
    this.projectedSegmentBytes = last.bytes;
    const points = last.indexPositions.length;
    this.projectedLastIndexPos = points > 0 ? last.indexPositions[points - 1]! : -Infinity;
  }

  /**
   * Opens the partition stored in `dir` (creating its first segment when there
   * is none): scans every segment, cuts a torn tail off the last one, and
   * checks that segments follow each other without gaps.
   */
  static async open(
    partition: number,
    dir: string,
    options: ResolvedFileRecordLogOptions,
    recovered: RecoveredTail[],
    observer?: LogWriteObserver,
  ): Promise<PartitionLog> {
    const fsync = options.fsync !== 'none';
    const bases = (await readdir(dir))
      .map(parseSegmentFileName)
      .filter((base): base is number => base !== undefined)
      .sort((a, b) => a - b);
    const segments: Segment[] = [];
    if (bases.length === 0) {
      const path = join(dir, segmentFileName(0));
      const handle = await open(path, 'wx');
      await handle.close();
      if (fsync) await syncDir(dir);
      segments.push({ baseOffset: 0, path, bytes: 0, recordCount: 0, indexOffsets: [], indexPositions: [] });
    } else {
      for (let i = 0; i < bases.length; i++) {
        const baseOffset = bases[i]!;
        const path = join(dir, segmentFileName(baseOffset));
        const previous = segments[segments.length - 1];
        if (previous !== undefined && previous.baseOffset + previous.recordCount !== baseOffset) {
          throw corruptSegmentError(
            partition,
            path,
            0,
            `the previous segment ends at offset ${previous.baseOffset + previous.recordCount} but this one starts at ${baseOffset}`,
          );
        }
        const result = await scanSegment({
          partition,
          path,
          baseOffset,
          isLast: i === bases.length - 1,
          indexIntervalBytes: options.indexIntervalBytes,
          fsync,
        });
        if (result.recovered !== undefined) recovered.push(result.recovered);
        segments.push(result.segment);
      }
    }
    const handle = await open(segments[segments.length - 1]!.path, writeFlags(fsync, false));
    return new PartitionLog(partition, dir, options, segments, handle, observer);
  }

  /** Offset the next durable record gets; offsets below are readable. */
  endOffset(): number {
    return this.durableEnd;
  }

  /** Lowest offset still stored. */
  startOffset(): number {
    return this.segments[0]!.baseOffset;
  }

  /** See `RecordLog.append`. */
  append(payloads: ReadonlyArray<Uint8Array>, checksums?: ArrayLike<number>): Promise<number> {
    if (this.failure !== undefined) return Promise.reject(this.failure);
    if (this.closed) return Promise.reject(this.closedError());
    if (!Array.isArray(payloads)) {
      return Promise.reject(new PortraitError('PRT_INTERNAL', `log partition ${this.partition} append expects an array of byte arrays`));
    }
    for (let i = 0; i < payloads.length; i++) {
      const payload = payloads[i];
      if (!(payload instanceof Uint8Array) || payload.length > MAX_PAYLOAD_BYTES) {
        return Promise.reject(
          new PortraitError(
            'PRT_INTERNAL',
            `log partition ${this.partition} append: payload ${i} must be a Uint8Array of at most ${MAX_PAYLOAD_BYTES} bytes`,
            { path: `/${i}` },
          ),
        );
      }
    }
    if (checksums !== undefined && checksums.length !== payloads.length) {
      return Promise.reject(new PortraitError('PRT_INTERNAL', `log partition ${this.partition} append: ${checksums.length} checksums for ${payloads.length} payloads`));
    }
    const first = this.nextOffset;
    if (payloads.length === 0 && this.waitersHead === this.waiters.length) return Promise.resolve(first);
    // One append call never spans two segments, so cutting a torn tail back to the
    // last call boundary never needs to touch an earlier segment.
    let callBytes = 0;
    for (let i = 0; i < payloads.length; i++) callBytes += FRAME_HEADER_BYTES + payloads[i]!.length;
    if (this.projectedSegmentBytes > 0 && this.projectedSegmentBytes + callBytes > this.options.segmentBytes) this.rollProjected();
    const last = payloads.length - 1;
    for (let i = 0; i < payloads.length; i++) {
      const payload = payloads[i]!;
      this.encode(payload, i === last, checksums === undefined ? crc32(payload) : checksums[i]!);
    }
    // With fsync 'always' every call is written and synced on its own.
    if (this.options.fsync === 'always') this.openChunk = undefined;
    const end = this.nextOffset;
    const promise = new Promise<number>((resolve, reject) => {
      this.waiters.push({ first, end, resolve, reject });
    });
    this.schedule();
    return promise;
  }

  /** See `RecordLog.read`. */
  async read(offset: number, maxEntries: number): Promise<LogEntry[]> {
    if (this.closed) throw this.closedError();
    if (!Number.isSafeInteger(offset) || offset < 0) {
      throw new PortraitError('PRT_INTERNAL', `log partition ${this.partition} read: offset must be a non-negative integer, got ${String(offset)}`);
    }
    const start = this.startOffset();
    if (offset < start) {
      throw new StoreError(
        'PRT_STORE_UNAVAILABLE',
        `log partition ${this.partition} offset ${offset} was truncated; the oldest stored offset is ${start}`,
        { subject: `partition ${this.partition}` },
      );
    }
    const available = this.durableEnd - offset;
    const wanted = Math.floor(maxEntries);
    if (!(wanted > 0) || available <= 0) return [];
    const count = Math.min(wanted, available);
    const cacheStart = this.cacheHead < this.cache.length ? this.cache[this.cacheHead]!.firstOffset : Infinity;
    return offset >= cacheStart ? this.readCache(offset, count) : this.readDisk(offset, count);
  }

  /** See `RecordLog.truncateBefore`. */
  async truncateBefore(offset: number): Promise<void> {
    if (this.closed) throw this.closedError();
    // Never the last segment: it is the one being written.
    let drop = 0;
    while (drop < this.segments.length - 1 && this.segments[drop + 1]!.baseOffset <= offset) drop++;
    if (drop === 0) return;
    const removed = this.segments.slice(0, drop);
    this.segments = this.segments.slice(drop);
    if (this.diskHint !== undefined && removed.includes(this.diskHint.segment)) this.diskHint = undefined;
    if (this.diskChunk !== undefined && removed.includes(this.diskChunk.segment)) this.diskChunk = undefined;
    for (const segment of removed) {
      await unlink(segment.path).catch((err: unknown) => {
        if (errorCode(err) !== 'ENOENT') {
          throw new StoreError('PRT_STORE_UNAVAILABLE', `cannot delete log segment ${segment.path}: ${messageOf(err)}`, { subject: segment.path }, { cause: err });
        }
      });
    }
  }

  /** Waits for accepted appends, then syncs and closes the active segment. */
  async close(): Promise<void> {
    this.closed = true;
    await this.drain();
    try {
      if (this.fsync && this.failure === undefined) await this.active.handle.datasync();
    } finally {
      await this.active.handle.close();
      this.cache = [];
      this.cacheHead = 0;
      this.cacheBytes = 0;
      this.cacheHint = undefined;
      this.diskChunk = undefined;
      this.diskHint = undefined;
    }
  }

  // ---- writing -------------------------------------------------------------

  /** Starts the next segment at the next offset (for the next append call). */
  private rollProjected(): void {
    this.projectedSegmentBase = this.nextOffset;
    this.projectedSegmentBytes = 0;
    this.projectedLastIndexPos = -Infinity;
    this.openChunk = undefined;
  }

  private encode(payload: Uint8Array, endsCall: boolean, checksum: number): void {
    const len = payload.length;
    const frameBytes = FRAME_HEADER_BYTES + len;
    const offset = this.nextOffset;
    let block = this.block;
    if (block === undefined || block.length - this.blockFill < frameBytes) {
      block = Buffer.allocUnsafeSlow(Math.max(BLOCK_BYTES, frameBytes));
      this.block = block;
      this.blockFill = 0;
      this.openChunk = undefined;
    }
    let chunk = this.openChunk;
    if (chunk === undefined) {
      chunk = {
        segmentBase: this.projectedSegmentBase,
        block,
        start: this.blockFill,
        end: this.blockFill,
        firstOffset: offset,
        count: 0,
        segmentPos: this.projectedSegmentBytes,
        index: [],
      };
      this.openChunk = chunk;
      this.queue.push(chunk);
    }
    const pos = this.projectedSegmentBytes;
    if (pos === 0 || pos - this.projectedLastIndexPos >= this.options.indexIntervalBytes) {
      chunk.index.push(offset, pos);
      this.projectedLastIndexPos = pos;
    }
    const at = this.blockFill;
    writeU32(block, at, endsCall ? (len | BATCH_END_FLAG) >>> 0 : len);
    writeU32(block, at + 4, checksum);
    block.set(payload, at + FRAME_HEADER_BYTES);
    this.blockFill = at + frameBytes;
    chunk.end = this.blockFill;
    chunk.count++;
    this.projectedSegmentBytes = pos + frameBytes;
    this.nextOffset = offset + 1;
  }

  private schedule(): void {
    if (this.scheduled || this.flushing) return;
    this.scheduled = true;
    const run = (): void => {
      this.scheduled = false;
      void this.runFlushes();
    };
    // Waiting a moment gathers more concurrent appends into one write + fsync.
    if (this.options.flushDelayMs > 0) setTimeout(run, this.options.flushDelayMs);
    else setImmediate(run);
  }

  private async runFlushes(): Promise<void> {
    this.flushing = true;
    try {
      // Appends that arrive while a group is being written form the next group.
      while (this.queue.length > 0 && this.failure === undefined) await this.flushOnce();
    } catch (err: unknown) {
      this.fail(err);
    } finally {
      this.flushing = false;
      const idle = this.idleWaiters;
      this.idleWaiters = [];
      for (const notify of idle) notify();
    }
  }

  private async flushOnce(): Promise<void> {
    let take = this.queue.length;
    if (this.options.fsync === 'always') {
      // Chunks never span two calls in this mode; take the first call's.
      const end = this.waiters[this.waitersHead]?.end ?? Infinity;
      take = 0;
      while (take < this.queue.length && this.queue[take]!.firstOffset < end) take++;
      take = Math.max(take, 1);
    }
    const group = this.queue.slice(0, take);
    this.queue = this.queue.slice(take);
    if (this.openChunk !== undefined && group.includes(this.openChunk)) this.openChunk = undefined;

    let i = 0;
    while (i < group.length) {
      const segmentBase = group[i]!.segmentBase;
      let j = i + 1;
      while (j < group.length && group[j]!.segmentBase === segmentBase) j++;
      const run = group.slice(i, j);
      i = j;

      if (segmentBase !== this.active.segment.baseOffset) await this.roll(segmentBase);
      const { segment, handle } = this.active;
      if (run[0]!.segmentPos !== segment.bytes) {
        throw new PortraitError(
          'PRT_INTERNAL',
          `log partition ${this.partition} segment ${segment.path}: write position ${run[0]!.segmentPos} does not follow the durable end ${segment.bytes}`,
        );
      }
      const started = this.observer === undefined ? 0 : performance.now();
      await writeFully(
        handle,
        run.map((c) => c.block.subarray(c.start, c.end)),
        segment.bytes,
      );
      if (this.observer !== undefined) {
        let bytes = 0;
        for (const chunk of run) bytes += chunk.end - chunk.start;
        this.observer.onWrite(this.partition, (performance.now() - started) / 1000, bytes);
      }
      // The active segment is opened O_DSYNC when syncing: each write returns once its data is
      // durable, one call (and one thread-pool round trip) instead of a write and an fdatasync.

      for (const chunk of run) {
        segment.bytes += chunk.end - chunk.start;
        segment.recordCount += chunk.count;
        for (let k = 0; k < chunk.index.length; k += 2) {
          segment.indexOffsets.push(chunk.index[k]!);
          segment.indexPositions.push(chunk.index[k + 1]!);
        }
        this.addToCache(chunk);
        this.durableEnd = chunk.firstOffset + chunk.count;
      }
      this.resolveWaiters();
    }
  }

  private async roll(baseOffset: number): Promise<void> {
    const path = join(this.dir, segmentFileName(baseOffset));
    const handle = await open(path, writeFlags(this.fsync, true));
    try {
      // The new file's directory entry must survive power loss too.
      if (this.fsync) await syncDir(this.dir);
    } catch (err: unknown) {
      await handle.close();
      throw err;
    }
    const segment: Segment = { baseOffset, path, bytes: 0, recordCount: 0, indexOffsets: [], indexPositions: [] };
    const previous = this.active.handle;
    this.segments.push(segment);
    this.active = { segment, handle };
    // The previous segment was synced when its last run was written.
    await previous.close();
  }

  private resolveWaiters(): void {
    const waiters = this.waiters;
    let head = this.waitersHead;
    while (head < waiters.length && waiters[head]!.end <= this.durableEnd) {
      const waiter = waiters[head]!;
      head++;
      waiter.resolve(waiter.first);
    }
    if (head === waiters.length) {
      this.waiters = [];
      head = 0;
    } else if (head > 1024 && head * 2 > waiters.length) {
      this.waiters = waiters.slice(head);
      head = 0;
    }
    this.waitersHead = head;
  }

  private fail(err: unknown): void {
    const path = this.active.segment.path;
    this.failure =
      err instanceof PortraitError
        ? err
        : new StoreError(
            'PRT_STORE_UNAVAILABLE',
            `log partition ${this.partition} failed writing segment ${path}: ${messageOf(err)}; reopen the log to recover`,
            { subject: path },
            { cause: err },
          );
    const waiters = this.waiters.slice(this.waitersHead);
    this.waiters = [];
    this.waitersHead = 0;
    this.queue = [];
    this.openChunk = undefined;
    this.block = undefined;
    for (const waiter of waiters) waiter.reject(this.failure);
  }

  private drain(): Promise<void> {
    if (!this.scheduled && !this.flushing) return Promise.resolve();
    return new Promise<void>((resolve) => {
      this.idleWaiters.push(resolve);
    }).then(() => this.drain());
  }

  // ---- cache ---------------------------------------------------------------

  private addToCache(chunk: Chunk): void {
    const bytes = chunk.end - chunk.start + CACHE_ENTRY_OVERHEAD_BYTES;
    if (bytes > this.cacheBudgetBytes) {
      // The cache holds a suffix of the log; what does not fit empties it.
      this.cache = [];
      this.cacheHead = 0;
      this.cacheBytes = 0;
      this.cacheHint = undefined;
      return;
    }
    this.cache.push({ firstOffset: chunk.firstOffset, count: chunk.count, frames: chunk.block.subarray(chunk.start, chunk.end) });
    this.cacheBytes += bytes;
    while (this.cacheBytes > this.cacheBudgetBytes) {
      const evicted = this.cache[this.cacheHead]!;
      this.cacheHead++;
      this.cacheBytes -= evicted.frames.length + CACHE_ENTRY_OVERHEAD_BYTES;
    }
    if (this.cacheHead > 1024 && this.cacheHead * 2 > this.cache.length) {
      this.cache = this.cache.slice(this.cacheHead);
      this.cacheHead = 0;
    }
  }

  private readCache(offset: number, count: number): LogEntry[] {
    const cache = this.cache;
    let index = this.findCacheEntry(offset);
    let entry = cache[index]!;
    let pos: number;
    let cur: number;
    const hint = this.cacheHint;
    if (hint !== undefined && hint.offset === offset && hint.entry === entry) {
      pos = hint.pos;
      cur = offset;
    } else {
      pos = 0;
      cur = entry.firstOffset;
      const frames = entry.frames;
      while (cur < offset) {
        pos += FRAME_HEADER_BYTES + frameLength(frames, pos);
        cur++;
      }
    }
    const out: LogEntry[] = new Array<LogEntry>(count);
    let n = 0;
    let entryEnd = entry.firstOffset + entry.count;
    let frames = entry.frames;
    while (n < count) {
      if (cur === entryEnd) {
        index++;
        entry = cache[index]!;
        frames = entry.frames;
        entryEnd = entry.firstOffset + entry.count;
        pos = 0;
      }
      const len = frameLength(frames, pos);
      const payloadAt = pos + FRAME_HEADER_BYTES;
      out[n++] = { offset: cur, payload: frames.subarray(payloadAt, payloadAt + len) };
      pos = payloadAt + len;
      cur++;
    }
    this.cacheHint = { offset: cur, entry, pos };
    return out;
  }

  private findCacheEntry(offset: number): number {
    let lo = this.cacheHead;
    let hi = this.cache.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >>> 1;
      if (this.cache[mid]!.firstOffset <= offset) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }

  // ---- disk reads ----------------------------------------------------------

  private async readDisk(offset: number, count: number): Promise<LogEntry[]> {
    let segment = this.segmentFor(offset);
    let pos: number;
    let cur: number;
    const hint = this.diskHint;
    if (hint !== undefined && hint.offset === offset && hint.segment === segment) {
      pos = hint.pos;
      cur = offset;
    } else {
      const point = floorIndex(segment.indexOffsets, offset);
      cur = segment.indexOffsets[point]!;
      pos = segment.indexPositions[point]!;
    }
    let chunk = this.diskChunk !== undefined && this.diskChunk.segment === segment ? this.diskChunk : undefined;
    const handles = new Map<Segment, FileHandle>();
    const out: LogEntry[] = [];
    try {
      while (out.length < count) {
        if (pos >= segment.bytes) {
          const next = this.segmentFor(cur);
          if (next === segment || next.baseOffset !== cur) {
            throw corruptSegmentError(this.partition, segment.path, pos, `segment ends at offset ${cur} but the next one does not start there`);
          }
          segment = next;
          pos = 0;
          chunk = undefined;
        }
        if (chunk === undefined || pos < chunk.filePos || pos + FRAME_HEADER_BYTES > chunk.filePos + chunk.buf.length) {
          chunk = await this.fetch(segment, pos, FRAME_HEADER_BYTES, handles);
        }
        let at = pos - chunk.filePos;
        const len = frameLength(chunk.buf, at);
        const frameEnd = pos + FRAME_HEADER_BYTES + len;
        if (frameEnd > segment.bytes) {
          throw corruptSegmentError(this.partition, segment.path, pos, `frame of ${len} payload bytes runs past the end of the segment (${segment.bytes} bytes)`);
        }
        if (frameEnd > chunk.filePos + chunk.buf.length) {
          chunk = await this.fetch(segment, pos, FRAME_HEADER_BYTES + len, handles);
          at = 0;
        }
        if (cur >= offset) {
          const buf = chunk.buf;
          const payloadAt = at + FRAME_HEADER_BYTES;
          if (crc32(buf, payloadAt, payloadAt + len) !== readU32(buf, at + 4)) {
            throw corruptSegmentError(this.partition, segment.path, pos, `checksum mismatch in the frame of offset ${cur}`);
          }
          out.push({ offset: cur, payload: buf.subarray(payloadAt, payloadAt + len) });
        }
        cur++;
        pos = frameEnd;
      }
    } finally {
      for (const handle of handles.values()) await handle.close();
    }
    this.diskHint = { offset: cur, segment, pos };
    this.diskChunk = chunk;
    return out;
  }

  private segmentFor(offset: number): Segment {
    const segments = this.segments;
    let lo = 0;
    let hi = segments.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >>> 1;
      if (segments[mid]!.baseOffset <= offset) lo = mid;
      else hi = mid - 1;
    }
    const segment = segments[lo]!;
    if (segment.baseOffset > offset) throw this.truncatedError(offset);
    return segment;
  }

  // Reads a fresh buffer (payloads handed out are views into it) holding at
  // least `need` bytes at `pos`, and up to `readChunkBytes`.
  private async fetch(segment: Segment, pos: number, need: number, handles: Map<Segment, FileHandle>): Promise<DiskChunk> {
    let handle = handles.get(segment);
    if (handle === undefined) {
      try {
        handle = await open(segment.path, 'r');
      } catch (err: unknown) {
        if (errorCode(err) === 'ENOENT' && !this.segments.includes(segment)) throw this.truncatedError(segment.baseOffset);
        throw new StoreError('PRT_STORE_UNAVAILABLE', `cannot open log segment ${segment.path}: ${messageOf(err)}`, { subject: segment.path }, { cause: err });
      }
      handles.set(segment, handle);
    }
    const length = Math.min(Math.max(this.options.readChunkBytes, need), segment.bytes - pos);
    const buf = Buffer.allocUnsafeSlow(length);
    const got = await readFully(handle, buf, 0, length, pos);
    if (got < need) {
      throw corruptSegmentError(this.partition, segment.path, pos + got, `the file ends before its ${segment.bytes} durable bytes`);
    }
    return { segment, filePos: pos, buf: got === length ? buf : buf.subarray(0, got) };
  }

  private truncatedError(offset: number): StoreError {
    return new StoreError(
      'PRT_STORE_UNAVAILABLE',
      `log partition ${this.partition} offset ${offset} was truncated; the oldest stored offset is ${this.startOffset()}`,
      { subject: `partition ${this.partition}` },
    );
  }

  private closedError(): StoreError {
    return new StoreError('PRT_STORE_UNAVAILABLE', `log partition ${this.partition} in ${this.dir} is closed`, {
      subject: `partition ${this.partition}`,
    });
  }
}

/** Syncs a directory so that entries created or removed in it are durable. */
export async function syncDir(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

async function writeFully(handle: FileHandle, buffers: Buffer[], position: number): Promise<void> {
  let pending = buffers;
  let pos = position;
  for (;;) {
    const { bytesWritten } = await handle.writev(pending, pos);
    pos += bytesWritten;
    let written = bytesWritten;
    let i = 0;
    while (i < pending.length && written >= pending[i]!.length) {
      written -= pending[i]!.length;
      i++;
    }
    if (i === pending.length) return;
    if (bytesWritten === 0) throw new Error(`write of ${pending.length} buffers at byte ${pos} made no progress`);
    pending = [pending[i]!.subarray(written), ...pending.slice(i + 1)];
  }
}

function floorIndex(sorted: number[], value: number): number {
  let lo = 0;
  let hi = sorted.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >>> 1;
    if (sorted[mid]! <= value) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

function errorCode(err: unknown): string | undefined {
  return typeof err === 'object' && err !== null && 'code' in err ? String((err as { code: unknown }).code) : undefined;
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * Open flags of the segment being written: read-write (a new one created
 * exclusively), and O_DSYNC when appends must be durable, so a write returns
 * only once its data (and the size change) is on stable storage.
 */
function writeFlags(fsync: boolean, create: boolean): number {
  const c = fsConstants;
  return c.O_RDWR | (create ? c.O_CREAT | c.O_EXCL : 0) | (fsync ? c.O_DSYNC : 0);
}
