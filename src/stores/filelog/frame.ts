import { crc32 } from '../../engine/index.js';

/** The checksum of a frame's payload: CRC-32 (IEEE), as the engine's records carry it. */
export { crc32 };

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
