import { open } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { StoreError } from '../../errors/index.js';
import { FRAME_HEADER_BYTES, crc32, frameLength, isBatchEnd, readU32 } from './frame.js';

/** What the log knows about one segment file; the byte and record counts cover durable data only. */
export interface Segment {
  /** Offset of the segment's first record; also its file name. */
  readonly baseOffset: number;
  /** Absolute path of the file. */
  readonly path: string;
  /** Durable bytes: every byte below is a complete, checked frame. */
  bytes: number;
  /** Durable records. */
  recordCount: number;
  /** Sparse index, ascending: record offset → byte position of its frame. */
  readonly indexOffsets: number[];
  readonly indexPositions: number[];
}

/** A torn tail that was cut off a last segment when the log opened. */
export interface RecoveredTail {
  partition: number;
  /** Path of the segment file. */
  segment: string;
  /** File length after the cut: the end of the last intact frame. */
  atByte: number;
  /** Bytes removed. */
  droppedBytes: number;
}

/** How the scan of one segment file went. */
export interface ScanResult {
  segment: Segment;
  recovered: RecoveredTail | undefined;
}

const SCAN_CHUNK_BYTES = 4 * 1024 * 1024;

/** Builds the `PRT_STORE_CORRUPT` error for a bad frame. */
export function corruptSegmentError(partition: number, path: string, atByte: number, reason: string): StoreError {
  return new StoreError(
    'PRT_STORE_CORRUPT',
    `log partition ${partition} segment ${path} is corrupt at byte ${atByte}: ${reason}`,
    { subject: path },
  );
}

/**
 * Reads `length` bytes at `position` into `buffer` from `offset`, looping over
 * short reads. Returns how many bytes were read (fewer only at end of file).
 */
export async function readFully(handle: FileHandle, buffer: Uint8Array, offset: number, length: number, position: number): Promise<number> {
  let done = 0;
  while (done < length) {
    const { bytesRead } = await handle.read(buffer, offset + done, length - done, position + done);
    if (bytesRead === 0) break;
    done += bytesRead;
  }
  return done;
}

/**
 * Scans a segment file frame by frame: checks every length and checksum
 * (without decoding payloads) and builds the sparse index. On the last
 * segment, a torn tail — an incomplete frame at the end, or checksum failures
 * not followed by any intact frame — is cut off the file. Anything else that
 * fails is corruption and throws `PRT_STORE_CORRUPT`.
 */
export async function scanSegment(args: {
  partition: number;
  path: string;
  baseOffset: number;
  isLast: boolean;
  indexIntervalBytes: number;
  fsync: boolean;
}): Promise<ScanResult> {
  const { partition, path, baseOffset, isLast, indexIntervalBytes } = args;
  const handle = await open(path, isLast ? 'r+' : 'r');
  try {
    const size = (await handle.stat()).size;
    const reader = new ChunkReader(handle, size, path, partition);
    const indexOffsets: number[] = [];
    const indexPositions: number[] = [];
    let pos = 0;
    let count = 0;
    let lastIndexPos = -Infinity;
    // End of the last complete append call (its final frame carries the batch-end flag).
    let callEndPos = 0;
    let callEndCount = 0;
    let problem: { reason: string; frameEnd: number | undefined } | undefined;

    while (pos < size) {
      if (size - pos < FRAME_HEADER_BYTES) {
        problem = { reason: `incomplete frame header (${size - pos} of ${FRAME_HEADER_BYTES} bytes)`, frameEnd: undefined };
        break;
      }
      if (pos + FRAME_HEADER_BYTES > reader.end) await reader.load(pos, FRAME_HEADER_BYTES);
      let at = pos - reader.start;
      const len = frameLength(reader.buf, at);
      const frameEnd = pos + FRAME_HEADER_BYTES + len;
      if (frameEnd > size) {
        problem = { reason: `incomplete frame (header announces ${len} payload bytes, ${size - pos - FRAME_HEADER_BYTES} present)`, frameEnd: undefined };
        break;
      }
      if (frameEnd > reader.end) {
        await reader.load(pos, FRAME_HEADER_BYTES + len);
        at = 0;
      }
      if (crc32(reader.buf, at + FRAME_HEADER_BYTES, at + FRAME_HEADER_BYTES + len) !== readU32(reader.buf, at + 4)) {
        problem = { reason: `checksum mismatch in a frame of ${len} payload bytes`, frameEnd };
        break;
      }
      if (count === 0 || pos - lastIndexPos >= indexIntervalBytes) {
        indexOffsets.push(baseOffset + count);
        indexPositions.push(pos);
        lastIndexPos = pos;
      }
      const endsCall = isBatchEnd(reader.buf, at);
      count++;
      pos = frameEnd;
      if (endsCall) {
        callEndPos = pos;
        callEndCount = count;
      }
    }
    if (problem === undefined && pos !== callEndPos) {
      problem = { reason: `the last append call is incomplete (${count - callEndCount} of its records present)`, frameEnd: undefined };
    }

    let recovered: RecoveredTail | undefined;
    if (problem !== undefined) {
      if (!isLast) throw corruptSegmentError(partition, path, pos, `${problem.reason}, in a segment that is not the last`);
      if (problem.frameEnd !== undefined) {
        const intact = await findIntactFrame(reader, problem.frameEnd, size);
        if (intact !== undefined) {
          throw corruptSegmentError(partition, path, pos, `${problem.reason}, followed by an intact frame at byte ${intact}`);
        }
      }
      // Keep only whole append calls: records of a torn call were never acknowledged.
      pos = callEndPos;
      count = callEndCount;
      while (indexOffsets.length > 0 && indexOffsets[indexOffsets.length - 1]! >= baseOffset + count) {
        indexOffsets.pop();
        indexPositions.pop();
      }
      // A crash interrupted the last write: cut the unacknowledged tail so that
      // appends continue at a frame boundary.
      await handle.truncate(pos);
      if (args.fsync) await handle.datasync();
      recovered = { partition, segment: path, atByte: pos, droppedBytes: size - pos };
    }
    return {
      segment: { baseOffset, path, bytes: pos, recordCount: count, indexOffsets, indexPositions },
      recovered,
    };
  } finally {
    await handle.close();
  }
}

// Walks the frame chain from `from` to the end of the file and returns the
// position of the first non-empty frame whose checksum holds. Empty frames do
// not count: a zero-filled tail would read as a run of them.
async function findIntactFrame(reader: ChunkReader, from: number, size: number): Promise<number | undefined> {
  let pos = from;
  while (size - pos >= FRAME_HEADER_BYTES) {
    if (pos + FRAME_HEADER_BYTES > reader.end || pos < reader.start) await reader.load(pos, FRAME_HEADER_BYTES);
    let at = pos - reader.start;
    const len = frameLength(reader.buf, at);
    const frameEnd = pos + FRAME_HEADER_BYTES + len;
    if (frameEnd > size) return undefined;
    if (len > 0) {
      if (frameEnd > reader.end) {
        await reader.load(pos, FRAME_HEADER_BYTES + len);
        at = 0;
      }
      if (crc32(reader.buf, at + FRAME_HEADER_BYTES, at + FRAME_HEADER_BYTES + len) === readU32(reader.buf, at + 4)) return pos;
    }
    pos = frameEnd;
  }
  return undefined;
}

// Sequential reader over one file with a reused buffer (the scan keeps no
// references into it).
class ChunkReader {
  buf: Buffer = Buffer.allocUnsafeSlow(SCAN_CHUNK_BYTES);
  /** File position of buf[0]. */
  start = 0;
  /** File position just past the loaded bytes. */
  end = 0;

  constructor(
    private readonly handle: FileHandle,
    private readonly size: number,
    private readonly path: string,
    private readonly partition: number,
  ) {}

  /** Loads at least `need` bytes at `pos` (the caller checked they exist). */
  async load(pos: number, need: number): Promise<void> {
    if (need > this.buf.length) this.buf = Buffer.allocUnsafeSlow(need);
    const length = Math.min(this.buf.length, this.size - pos);
    const got = await readFully(this.handle, this.buf, 0, length, pos);
    if (got < need) throw corruptSegmentError(this.partition, this.path, pos + got, 'the file shrank while it was being read');
    this.start = pos;
    this.end = pos + got;
  }
}
