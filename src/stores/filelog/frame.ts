import { crc32 as zlibCrc32 } from 'node:zlib';

/**
 * On-disk record framing of a segment file, little-endian:
 * `[u32 length word][u32 CRC-32 (IEEE) of payload][payload]`. The length word
 * holds the payload length in its low 31 bits; its top bit marks the last
 * record of one append call. A crash can tear an append call's frames, so on
 * open the log cuts back to the last marked frame: an append is all or nothing.
 */
export const FRAME_HEADER_BYTES = 8;

/** Largest payload a frame can describe. */
export const MAX_PAYLOAD_BYTES = 0x7fff_ffff;

/** Top bit of the length word: this frame ends an append call. */
export const BATCH_END_FLAG = 0x8000_0000;

/** The payload length of a frame whose length word starts at `at`. */
export function frameLength(bytes: Uint8Array, at: number): number {
  return (bytes[at]! | (bytes[at + 1]! << 8) | (bytes[at + 2]! << 16)) + (bytes[at + 3]! & 0x7f) * 0x1000000;
}

/** Whether the frame whose length word starts at `at` ends an append call. */
export function isBatchEnd(bytes: Uint8Array, at: number): boolean {
  return (bytes[at + 3]! & 0x80) !== 0;
}

/** File-name suffix of segment files. */
export const SEGMENT_SUFFIX = '.seg';

const SEGMENT_NAME = /^(\d{20})\.seg$/;
const PARTITION_NAME = /^partition-(\d+)$/;

/** The segment file name for a base offset: 20 zero-padded digits, e.g. `00000000000000000000.seg`. */
export function segmentFileName(baseOffset: number): string {
  return `${String(baseOffset).padStart(20, '0')}${SEGMENT_SUFFIX}`;
}

/** The base offset a segment file name encodes, or undefined when the name is not a segment's. */
export function parseSegmentFileName(name: string): number | undefined {
  const match = SEGMENT_NAME.exec(name);
  if (match === null) return undefined;
  const base = Number(match[1]);
  return Number.isSafeInteger(base) ? base : undefined;
}

/** The folder name of a partition inside the log directory. */
export function partitionDirName(partition: number): string {
  return `partition-${partition}`;
}

/** The partition number a folder name encodes, or undefined when it is not a partition folder. */
export function parsePartitionDirName(name: string): number | undefined {
  const match = PARTITION_NAME.exec(name);
  if (match === null) return undefined;
  const partition = Number(match[1]);
  return Number.isSafeInteger(partition) && String(partition) === match[1] ? partition : undefined;
}

// Slice-by-8 CRC-32 tables. For the small payloads a log mostly carries
// (tens to hundreds of bytes) this JS loop beats the native zlib binding,
// whose per-call cost dominates there; zlib wins on large buffers.
const TABLE = new Int32Array(256 * 8);
for (let i = 0; i < 256; i++) {
  let c = i;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  TABLE[i] = c;
}
for (let i = 0; i < 256; i++) {
  for (let s = 1; s < 8; s++) {
    const prev = TABLE[(s - 1) * 256 + i]!;
    TABLE[s * 256 + i] = (prev >>> 8) ^ TABLE[prev & 0xff]!;
  }
}

const NATIVE_CRC_MIN_BYTES = 512;

/** CRC-32 (IEEE 802.3, as zlib) of `bytes[start, end)`, as an unsigned 32-bit integer. */
export function crc32(bytes: Uint8Array, start = 0, end = bytes.length): number {
  if (end - start >= NATIVE_CRC_MIN_BYTES) {
    return zlibCrc32(start === 0 && end === bytes.length ? bytes : bytes.subarray(start, end));
  }
  const t = TABLE;
  let c = -1;
  let i = start;
  for (; i + 8 <= end; i += 8) {
    const a = (bytes[i]! | (bytes[i + 1]! << 8) | (bytes[i + 2]! << 16) | (bytes[i + 3]! << 24)) ^ c;
    const b = bytes[i + 4]! | (bytes[i + 5]! << 8) | (bytes[i + 6]! << 16) | (bytes[i + 7]! << 24);
    c =
      t[1792 + (a & 0xff)]! ^
      t[1536 + ((a >>> 8) & 0xff)]! ^
      t[1280 + ((a >>> 16) & 0xff)]! ^
      t[1024 + (a >>> 24)]! ^
      t[768 + (b & 0xff)]! ^
      t[512 + ((b >>> 8) & 0xff)]! ^
      t[256 + ((b >>> 16) & 0xff)]! ^
      t[b >>> 24]!;
  }
  for (; i < end; i++) c = t[(c ^ bytes[i]!) & 0xff]! ^ (c >>> 8);
  return (c ^ -1) >>> 0;
}

/** Reads a little-endian u32 from a byte array. */
export function readU32(bytes: Uint8Array, at: number): number {
  return (bytes[at]! | (bytes[at + 1]! << 8) | (bytes[at + 2]! << 16)) + bytes[at + 3]! * 0x1000000;
}

/** Writes a little-endian u32 into a byte array. */
export function writeU32(bytes: Uint8Array, at: number, value: number): void {
  bytes[at] = value & 0xff;
  bytes[at + 1] = (value >>> 8) & 0xff;
  bytes[at + 2] = (value >>> 16) & 0xff;
  bytes[at + 3] = value >>> 24;
}
