import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { open as openEnv } from 'lmdb';
import { afterEach, describe, expect, it } from 'vitest';
import type { EntitySnapshot, PartitionCheckpointChange, PartitionCheckpointMeta } from '../../src/engine/index.js';
import { createLmdbStore, type LmdbStore } from '../../src/stores/lmdb/index.js';

const opened: Array<{ store: LmdbStore; dir: string }> = [];

afterEach(async () => {
  for (const { store, dir } of opened.splice(0)) {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

function open(options: { decisionWriteDelayMs?: number } = {}): LmdbStore {
  const dir = mkdtempSync(join(tmpdir(), 'portrait-lmdb-ckpt-'));
  const store = createLmdbStore({ path: join(dir, 'lmdb'), mapSizeBytes: 1 << 30, ...options });
  opened.push({ store, dir });
  return store;
}

function meta(partition: number, checkpointId: number, offset: number): PartitionCheckpointMeta {
  return { partition, checkpointId, offset } as PartitionCheckpointMeta;
}

function bytes(n: number, fill: number): EntitySnapshot {
  return new Uint8Array(n).fill(fill) as EntitySnapshot;
}

function change(partition: number, checkpointId: number, upserts: Array<[string, EntitySnapshot]>, deletes: string[] = []): PartitionCheckpointChange {
  return { meta: meta(partition, checkpointId, checkpointId * 100), upserts, deletes };
}

function stored(store: LmdbStore, partition: number): Map<string, number> {
  const out = new Map<string, number>();
  for (const [key, value] of store.checkpoints.entities(partition)) out.set(key, value[0]!);
  return out;
}

describe('LMDB checkpoint commit', () => {
  it('writes a large checkpoint (many slices) whole, with deletes and every partition meta', async () => {
    const store = open();
    const first = Array.from({ length: 20_000 }, (_, i): [string, EntitySnapshot] => [`k${i}`, bytes(300, 1)]);
    await store.checkpoints.commit([change(0, 1, first), change(1, 1, [['only', bytes(10, 7)]])]);
    const second = Array.from({ length: 20_000 }, (_, i): [string, EntitySnapshot] => [`k${i}`, bytes(300, 2)]).slice(5);
    await store.checkpoints.commit([change(0, 2, second, ['k0', 'k1', 'k2', 'k3', 'k4']), change(1, 2, [])]);
    const p0 = stored(store, 0);
    expect(p0.size).toBe(19_995);
    expect(p0.has('k0')).toBe(false);
    expect([...p0.values()].every((v) => v === 2)).toBe(true);
    expect(stored(store, 1)).toEqual(new Map([['only', 7]]));
    expect(store.checkpoints.loadMeta(0)).toMatchObject({ checkpointId: 2, offset: 200 });
    expect(store.checkpoints.loadMeta(1)).toMatchObject({ checkpointId: 2, offset: 200 });
  });

  it('applies nothing of a checkpoint with a key LMDB would refuse: the previous one stays whole', async () => {
    const store = open();
    await store.checkpoints.commit([change(0, 1, [['a', bytes(10, 1)], ['b', bytes(10, 1)]])]);
    // Thousands of good writes come before the key over LMDB's size limit.
    const upserts = Array.from({ length: 5_000 }, (_, i): [string, EntitySnapshot] => [`n${i}`, bytes(200, 2)]);
    upserts.unshift(['a', bytes(10, 2)]);
    upserts.push(['x'.repeat(3_000), bytes(10, 2)]);
    await expect(store.checkpoints.commit([change(0, 2, upserts, ['b'])])).rejects.toThrow(/checkpoint commit/);
    expect(stored(store, 0)).toEqual(new Map([['a', 1], ['b', 1]]));
    expect(store.checkpoints.loadMeta(0)).toMatchObject({ checkpointId: 1 });
    // The store goes on: the next checkpoint commits.
    await store.checkpoints.commit([change(0, 3, [['a', bytes(10, 3)]])]);
    expect(stored(store, 0)).toEqual(new Map([['a', 3], ['b', 1]]));
    expect(store.checkpoints.loadMeta(0)).toMatchObject({ checkpointId: 3 });
  });

  it('keeps writes other code makes while a checkpoint is being written', async () => {
    const store = open();
    const upserts = Array.from({ length: 30_000 }, (_, i): [string, EntitySnapshot] => [`k${i}`, bytes(200, 1)]);
    const commit = store.checkpoints.commit([change(0, 1, upserts)]);
    // The commit writes in paced slices; these land while its transaction is open.
    await new Promise((resolve) => setTimeout(resolve, 2));
    store.profiles.writeProfiles([['during-commit', bytes(20, 9)]]);
    await commit;
    await store.profiles.flushed();
    expect(store.profiles.listProfileIds(10)).toEqual(['during-commit']);
    expect(stored(store, 0).size).toBe(30_000);
  });
  it('a checkpoint commit writes the decisions held for the next write first, so a replay past its records loses none', async () => {
    const store = open({ decisionWriteDelayMs: 60_000 });
    const event = { type: 'login', time: 5, key: 'u1', attrs: {} };
    const d = { id: 'r1:1:0:7:0', ruleId: 'r1', version: 1, key: { user_id: 'u1' }, entity: 'u1', outcome: 'match' as const, trigger: 'event' as const, time: 5, processingTime: 6, event, matched: null, aggregates: [], partition: 0, offset: 7 };
    expect(store.decisions.addNew([d]).length).toBe(1);
    await store.checkpoints.commit([change(0, 1, [['a', bytes(4, 1)]])]);
    // Read through a second handle of the environment: what is committed, without the store's own reads (which write what is held).
    const env = openEnv({ path: join(opened.at(-1)!.dir, 'lmdb'), maxDbs: 16, compression: false });
    const blocks = env.openDB({ name: 'decision-blocks', encoding: 'binary' });
    expect(blocks.getCount()).toBe(1);
    await env.close();
    expect(stored(store, 0)).toEqual(new Map([['a', 1]]));
  });
});
