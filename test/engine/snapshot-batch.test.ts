import { describe, expect, it } from 'vitest';
import { SnapshotBatch } from '../../src/engine/index.js';

function bytes(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = (i * 31 + seed) & 255;
  return out;
}

describe('SnapshotBatch', () => {
  it('gives back every key and snapshot in order, across chunks, with unicode keys, empty and oversized snapshots', () => {
    const batch = new SnapshotBatch();
    const added: Array<[string, Uint8Array]> = [];
    const scratch = new Uint8Array(3 << 20);
    for (let i = 0; i < 20_000; i++) {
      const key = i % 7 === 0 ? `用户-${i}-ü\u0000x` : i % 11 === 0 ? '' : `u${i}`;
      const n = i === 5_000 ? (2 << 20) + 3 : i % 13 === 0 ? 0 : (i * 37) % 400;
      // The batch copies: the caller's bytes may be overwritten right after.
      const value = bytes(n, i);
      scratch.set(value);
      batch.add(key, scratch.subarray(0, n));
      scratch.fill(0, 0, n);
      added.push([key, value]);
    }
    expect(batch.length).toBe(added.length);
    expect(batch.byteLength).toBe(added.reduce((a, [, v]) => a + v.length, 0));
    const read = [...batch];
    expect(read.length).toBe(added.length);
    for (let i = 0; i < added.length; i++) {
      expect(read[i]![0]).toBe(added[i]![0]);
      expect(Buffer.compare(read[i]![1], added[i]![1])).toBe(0);
    }
    // Iterating again gives the same.
    expect([...batch].map(([k]) => k)).toEqual(added.map(([k]) => k));
  });

  it('is empty when nothing was added', () => {
    const batch = new SnapshotBatch();
    expect(batch.length).toBe(0);
    expect([...batch]).toEqual([]);
  });
});
