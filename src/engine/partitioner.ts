/**
 * The partition of an entity key: FNV-1a over the key's UTF-16 code units,
 * modulo the partition count. Ingest and engine must agree on it, so it lives
 * here and nowhere else.
 */
export function partitionOf(key: string, partitionCount: number): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) {
    h ^= key.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return (h >>> 0) % partitionCount;
}
