import { crc32 as zlibCrc32 } from 'node:zlib';

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
