import type { EntitySnapshot, EntitySnapshots } from './ports.js';

const CHUNK_BYTES = 1 << 20;

/**
 * The entity snapshots of one partition's checkpoint, packed one after the
 * other (key length, key, snapshot length, snapshot) into large chunks. A
 * checkpoint holds its snapshots from the moment each is encoded until the
 * commit, often a second or more: as one key string, one pair and one byte
 * view per entry, tens of thousands of them lived through young collections,
 * were moved to the old generation and died there, and brought the next full
 * collection sooner. Packed, holding them costs no object per entry;
 * iterating makes each `[key, snapshot]` pair as it is read (the snapshot is a
 * view into the batch).
 */
export class SnapshotBatch implements EntitySnapshots {
  private readonly chunks: Buffer[] = [];
  private readonly ends: number[] = [];
  private chunk: Buffer | undefined;
  private pos = 0;
  /** Entries added. */
  length = 0;
  /** Snapshot bytes added (keys not counted). */
  byteLength = 0;

  /** Adds a copy of `snapshot` under `key` (the bytes may be reused once this returns). */
  add(key: string, snapshot: Uint8Array): void {
    const room = 8 + key.length * 3 + snapshot.length;
    let chunk = this.chunk;
    if (chunk === undefined || this.pos + room > chunk.length) {
      chunk = this.chunk = Buffer.allocUnsafeSlow(Math.max(CHUNK_BYTES, room));
      this.chunks.push(chunk);
      this.ends.push(0);
      this.pos = 0;
    }
    let p = this.pos;
    const keyBytes = chunk.write(key, p + 4, 'utf8');
    chunk.writeUInt32LE(keyBytes, p);
    p += 4 + keyBytes;
    chunk.writeUInt32LE(snapshot.length, p);
    chunk.set(snapshot, p + 4);
    this.pos = p + 4 + snapshot.length;
    this.ends[this.ends.length - 1] = this.pos;
    this.length++;
    this.byteLength += snapshot.length;
  }

  *[Symbol.iterator](): Iterator<[string, EntitySnapshot]> {
    const { chunks, ends } = this;
    for (let c = 0; c < chunks.length; c++) {
      const chunk = chunks[c]!;
      const end = ends[c]!;
      let p = 0;
      while (p < end) {
        const keyBytes = chunk.readUInt32LE(p);
        const key = chunk.toString('utf8', p + 4, p + 4 + keyBytes);
        p += 4 + keyBytes;
        const n = chunk.readUInt32LE(p);
        yield [key, chunk.subarray(p + 4, p + 4 + n)];
        p += 4 + n;
      }
    }
  }
}
