import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { DefinitionStore } from '../../src/definitions/index.js';
import { PortraitError } from '../../src/errors/index.js';

/** A store under test, with raw SQL access to it for edits made behind the API. */
export interface StoreFixture {
  store: DefinitionStore;
  /** Runs SQL as an operator would, outside the store's API. */
  sql(text: string, params?: unknown[]): Promise<Array<Record<string, unknown>>>;
  dispose(): Promise<void>;
}

const doc = (n: number) => ({ id: 'x', kind: 'statistic', note: `v${n}` });

async function codeOf(p: Promise<unknown>): Promise<string | undefined> {
  try {
    await p;
    return undefined;
  } catch (err: unknown) {
    if (err instanceof PortraitError) return err.code;
    throw err;
  }
}

async function until(check: () => boolean, timeoutMs = 5_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > end) throw new Error('condition not reached in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** The conformance suite every definition store adapter must pass. */
export function describeDefinitionStore(name: string, factory: () => Promise<StoreFixture>, enabled = true): void {
  describe.skipIf(!enabled)(`definition store conformance: ${name}`, () => {
    let fx: StoreFixture;
    beforeEach(async () => {
      fx = await factory();
    });
    afterEach(async () => {
      await fx.dispose();
    });

    it('creates, reads, lists and versions definitions', async () => {
      const { store } = fx;
      const first = await store.write({ kind: 'tag', id: 'x', expectedVersion: 0, document: doc(1), status: 'draft', at: 1000 });
      expect(first.definition).toMatchObject({ kind: 'tag', id: 'x', version: 1, status: 'draft', createdAt: 1000, updatedAt: 1000 });
      expect(first.revision).toMatchObject({ revision: 1, id: 'x', version: 1, status: 'draft', online: [] });
      await store.write({ kind: 'rule', id: 'r', expectedVersion: 0, document: { id: 'r' }, at: 1001 });
      const second = await store.write({ kind: 'tag', id: 'x', expectedVersion: 1, document: doc(2), at: 2000 });
      expect(second.definition).toMatchObject({ version: 2, createdAt: 1000, updatedAt: 2000, document: doc(2) });
      expect((await store.get('tag', 'x'))?.document).toEqual(doc(2));
      expect((await store.list('tag')).map((d) => d.id)).toEqual(['x']);
      expect((await store.list('rule')).map((d) => d.id)).toEqual(['r']);
      expect((await store.versions('tag', 'x')).map((v) => [v.version, v.document])).toEqual([[1, doc(1)], [2, doc(2)]]);
      expect((await store.getVersion('tag', 'x', 1))?.document).toEqual(doc(1));
      expect(await store.getVersion('tag', 'x', 9)).toBeUndefined();
      expect(await store.get('tag', 'nope')).toBeUndefined();
    });

    it('refuses a create of an existing id, an update of a missing one and a stale version', async () => {
      const { store } = fx;
      await store.write({ kind: 'tag', id: 'x', expectedVersion: 0, document: doc(1), at: 1 });
      expect(await codeOf(store.write({ kind: 'tag', id: 'x', expectedVersion: 0, document: doc(1), at: 2 }))).toBe('PRT_DEF_EXISTS');
      expect(await codeOf(store.write({ kind: 'tag', id: 'y', expectedVersion: 1, document: doc(1), at: 2 }))).toBe('PRT_DEF_NOT_FOUND');
      await store.write({ kind: 'tag', id: 'x', expectedVersion: 1, document: doc(2), at: 3 });
      expect(await codeOf(store.write({ kind: 'tag', id: 'x', expectedVersion: 1, document: doc(3), at: 4 }))).toBe('PRT_DEF_VERSION_CONFLICT');
      // A refused write records no revision.
      expect((await store.latestRevision())?.revision).toBe(2);
    });

    it('records gapless revisions, each with the whole online set', async () => {
      const { store } = fx;
      await store.write({ kind: 'tag', id: 'b', expectedVersion: 0, document: doc(1), at: 1 });
      await store.write({ kind: 'tag', id: 'a', expectedVersion: 0, document: doc(1), at: 2 });
      await store.write({ kind: 'tag', id: 'b', expectedVersion: 1, status: 'online', at: 3 });
      await store.write({ kind: 'tag', id: 'a', expectedVersion: 1, status: 'online', at: 4 });
      await store.write({ kind: 'tag', id: 'b', expectedVersion: 1, document: doc(2), at: 5 });
      await store.write({ kind: 'tag', id: 'a', expectedVersion: 1, status: 'offline', at: 6 });
      const all = await store.revisionsAfter(0, 100);
      expect(all.map((r) => r.revision)).toEqual([1, 2, 3, 4, 5, 6]);
      expect(all.map((r) => r.online)).toEqual([
        [],
        [],
        [{ kind: 'tag', id: 'b', version: 1 }],
        [{ kind: 'tag', id: 'a', version: 1 }, { kind: 'tag', id: 'b', version: 1 }],
        [{ kind: 'tag', id: 'a', version: 1 }, { kind: 'tag', id: 'b', version: 2 }],
        [{ kind: 'tag', id: 'b', version: 2 }],
      ]);
      expect((await store.getRevision(4))?.at).toBe(4);
      expect((await store.revisionsAfter(4, 1)).map((r) => r.revision)).toEqual([5]);
      expect((await store.latestRevision())?.revision).toBe(6);
    });

    it('deletes a definition and continues its version numbering when the id is created again', async () => {
      const { store } = fx;
      await store.write({ kind: 'rule', id: 'r', expectedVersion: 0, document: doc(1), status: 'online', at: 1 });
      await store.write({ kind: 'rule', id: 'r', expectedVersion: 1, document: doc(2), at: 2 });
      const deleted = await store.write({ kind: 'rule', id: 'r', expectedVersion: 2, delete: true, at: 3 });
      expect(deleted.revision).toMatchObject({ id: 'r', status: 'deleted', online: [] });
      expect(await store.get('rule', 'r')).toBeUndefined();
      expect((await store.versions('rule', 'r')).length).toBe(2);
      const again = await store.write({ kind: 'rule', id: 'r', expectedVersion: 0, document: doc(3), at: 4 });
      expect(again.definition.version).toBe(3);
    });

    it('lets exactly one of two writers with the same expected version win', async () => {
      const { store } = fx;
      await store.write({ kind: 'tag', id: 'x', expectedVersion: 0, document: doc(1), at: 1 });
      const results = await Promise.allSettled([
        store.write({ kind: 'tag', id: 'x', expectedVersion: 1, document: doc(2), at: 2 }),
        store.write({ kind: 'tag', id: 'x', expectedVersion: 1, document: doc(3), at: 2 }),
      ]);
      expect(results.filter((r) => r.status === 'fulfilled').length).toBe(1);
      const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      expect((failed?.reason as PortraitError).code).toBe('PRT_DEF_VERSION_CONFLICT');
    });

    it('serialises concurrent writers into consecutive revisions, each recorded once', async () => {
      const { store } = fx;
      const writes = Array.from({ length: 12 }, (_, i) => store.write({ kind: 'tag', id: `t${i}`, expectedVersion: 0, document: doc(i), status: 'online', at: i }));
      const revisions = (await Promise.all(writes)).map((w) => w.revision.revision).sort((a, b) => a - b);
      expect(revisions).toEqual(Array.from({ length: 12 }, (_, i) => i + 1));
      const last = await store.latestRevision();
      expect(last?.online.length).toBe(12);
    });

    it('writes a batch in one transaction as one revision, or nothing at all', async () => {
      const { store } = fx;
      await store.write({ kind: 'tag', id: 'a', expectedVersion: 0, document: doc(1), at: 1 });
      const batch = await store.writeBatch([
        { kind: 'rule', id: 'r1', expectedVersion: 0, document: { id: 'r1' }, status: 'online', at: 2 },
        { kind: 'rule', id: 'r2', expectedVersion: 0, document: { id: 'r2' }, status: 'offline', at: 2 },
        { kind: 'tag', id: 'a', expectedVersion: 1, document: doc(2), status: 'online', at: 2 },
      ]);
      expect(batch.definitions.map((d) => [d.kind, d.id, d.version, d.status])).toEqual([
        ['rule', 'r1', 1, 'online'],
        ['rule', 'r2', 1, 'offline'],
        ['tag', 'a', 2, 'online'],
      ]);
      expect(batch.revision).toMatchObject({ revision: 2, online: [{ kind: 'rule', id: 'r1', version: 1 }, { kind: 'tag', id: 'a', version: 2 }] });
      expect((await store.revisionsAfter(0, 10)).map((r) => r.revision)).toEqual([1, 2]);
      // A conflict in the middle of a batch rolls all of it back and records no revision.
      expect(
        await codeOf(
          store.writeBatch([
            { kind: 'rule', id: 'r3', expectedVersion: 0, document: { id: 'r3' }, status: 'online', at: 3 },
            { kind: 'rule', id: 'r1', expectedVersion: 7, status: 'offline', at: 3 },
          ]),
        ),
      ).toBe('PRT_DEF_VERSION_CONFLICT');
      expect(await store.get('rule', 'r3')).toBeUndefined();
      expect((await store.latestRevision())?.revision).toBe(2);
      expect(await store.writeBatch([])).toEqual({ definitions: [], revision: undefined });
      // Writes outside a batch record their own revisions again.
      expect((await store.write({ kind: 'rule', id: 'r2', expectedVersion: 1, status: 'online', at: 4 })).revision.revision).toBe(3);
    });

    it('restores versions under their own numbers, with their times, in one revision', async () => {
      const { store } = fx;
      await store.write({ kind: 'tag', id: 'other', expectedVersion: 0, document: doc(1), status: 'online', at: 10 });
      const batch = await store.writeBatch([
        {
          kind: 'rule',
          id: 'x',
          expectedVersion: 0,
          restore: [
            { version: 1, document: doc(1), createdAt: 100 },
            { version: 2, document: doc(2), createdAt: 200 },
            { version: 3, document: doc(3), createdAt: 300 },
          ],
          status: 'online',
          createdAt: 100,
          updatedAt: 400,
          at: 1000,
        },
        { kind: 'tag', id: 'x', expectedVersion: 0, restore: [{ version: 1, document: doc(1), createdAt: 110 }, { version: 2, document: doc(2), createdAt: 210 }], status: 'offline', at: 1000 },
      ]);
      expect(batch.definitions.map((d) => [d.kind, d.id, d.version, d.status, d.document, d.createdAt, d.updatedAt])).toEqual([
        ['rule', 'x', 3, 'online', doc(3), 100, 400],
        ['tag', 'x', 2, 'offline', doc(2), 1000, 1000],
      ]);
      expect(await store.get('rule', 'x')).toMatchObject({ version: 3, status: 'online', document: doc(3), createdAt: 100, updatedAt: 400 });
      expect((await store.versions('rule', 'x')).map((v) => [v.version, v.document, v.createdAt])).toEqual([
        [1, doc(1), 100],
        [2, doc(2), 200],
        [3, doc(3), 300],
      ]);
      expect((await store.versions('tag', 'x')).map((v) => [v.version, v.createdAt])).toEqual([
        [1, 110],
        [2, 210],
      ]);
      // One revision for the whole batch, at the write's time (not the restored times), with the restored version online.
      expect(batch.revision).toMatchObject({ revision: 2, at: 1000, online: [{ kind: 'rule', id: 'x', version: 3 }, { kind: 'tag', id: 'other', version: 1 }] });
      expect((await store.revisionsAfter(0, 10)).map((r) => r.revision)).toEqual([1, 2]);
      // A single write records its revision at `at` too, whatever `updatedAt` it stores.
      const single = await store.write({ kind: 'rule', id: 'x', expectedVersion: 3, status: 'offline', updatedAt: 500, at: 2000 });
      expect(single.definition).toMatchObject({ updatedAt: 500, createdAt: 100 });
      expect(single.revision).toMatchObject({ revision: 3, at: 2000, status: 'offline', online: [{ kind: 'tag', id: 'other', version: 1 }] });
    });

    it('restores onto a stored history only above it, keeping the versions it already holds', async () => {
      const { store } = fx;
      await store.write({ kind: 'rule', id: 'x', expectedVersion: 0, document: doc(1), status: 'online', at: 10 });
      await store.write({ kind: 'rule', id: 'x', expectedVersion: 1, document: doc(2), at: 20 });
      const appended = await store.write({
        kind: 'rule',
        id: 'x',
        expectedVersion: 2,
        restore: [
          // Equal documents (key order aside) are kept as stored, their times included.
          { version: 1, document: { note: 'v1', kind: 'statistic', id: 'x' }, createdAt: 999 },
          { version: 2, document: doc(2), createdAt: 999 },
          { version: 4, document: doc(4), createdAt: 400 },
        ],
        at: 30,
      });
      expect(appended.definition).toMatchObject({ version: 4, status: 'online', document: doc(4), createdAt: 10, updatedAt: 30 });
      expect((await store.versions('rule', 'x')).map((v) => [v.version, v.createdAt])).toEqual([
        [1, 10],
        [2, 20],
        [4, 400],
      ]);
      expect(appended.revision).toMatchObject({ revision: 3, online: [{ kind: 'rule', id: 'x', version: 4 }] });
      // A document after the restored versions takes the next number.
      const withDocument = await store.write({ kind: 'rule', id: 'x', expectedVersion: 4, restore: [{ version: 5, document: doc(5), createdAt: 500 }], document: doc(6), at: 40 });
      expect(withDocument.definition).toMatchObject({ version: 6, document: doc(6) });

      const refused = async (restore: Array<{ version: number; document: Record<string, unknown>; createdAt: number }>): Promise<string | undefined> =>
        codeOf(store.writeBatch([{ kind: 'tag', id: 'y', expectedVersion: 0, document: doc(1), at: 50 }, { kind: 'rule', id: 'x', expectedVersion: 6, restore, at: 50 }]));
      // A stored number with another document, a number missing below the stored ones, a restore ending below the newest stored version.
      expect(await refused([{ version: 1, document: doc(9), createdAt: 1 }, { version: 7, document: doc(7), createdAt: 1 }])).toBe('PRT_DEF_VERSION_CONFLICT');
      expect(await refused([{ version: 3, document: doc(3), createdAt: 1 }, { version: 7, document: doc(7), createdAt: 1 }])).toBe('PRT_DEF_VERSION_CONFLICT');
      expect(await refused([{ version: 1, document: doc(1), createdAt: 1 }])).toBe('PRT_DEF_VERSION_CONFLICT');
      // Numbers must be positive and increasing.
      expect(await refused([{ version: 8, document: doc(8), createdAt: 1 }, { version: 7, document: doc(7), createdAt: 1 }])).toBe('PRT_DEF_INVALID');
      expect(await refused([{ version: 0, document: doc(0), createdAt: 1 }])).toBe('PRT_DEF_INVALID');
      // Refused batches wrote nothing and recorded no revision.
      expect(await store.get('tag', 'y')).toBeUndefined();
      expect((await store.versions('rule', 'x')).map((v) => v.version)).toEqual([1, 2, 4, 5, 6]);
      expect((await store.latestRevision())?.revision).toBe(4);
    });

    it('restores a deleted definition onto the versions it left', async () => {
      const { store } = fx;
      await store.write({ kind: 'rule', id: 'x', expectedVersion: 0, document: doc(1), at: 10 });
      await store.write({ kind: 'rule', id: 'x', expectedVersion: 1, document: doc(2), at: 20 });
      await store.write({ kind: 'rule', id: 'x', expectedVersion: 2, delete: true, at: 30 });
      const same = [
        { version: 1, document: doc(1), createdAt: 1 },
        { version: 2, document: doc(2), createdAt: 2 },
      ];
      // The whole history is already stored: the definition comes back at version 2, no version is added.
      const back = await store.write({ kind: 'rule', id: 'x', expectedVersion: 0, restore: same, status: 'offline', createdAt: 5, at: 40 });
      expect(back.definition).toMatchObject({ version: 2, status: 'offline', document: doc(2), createdAt: 5, updatedAt: 40 });
      expect((await store.versions('rule', 'x')).map((v) => [v.version, v.createdAt])).toEqual([
        [1, 10],
        [2, 20],
      ]);
      await store.write({ kind: 'rule', id: 'x', expectedVersion: 2, delete: true, at: 50 });
      expect(await codeOf(store.write({ kind: 'rule', id: 'x', expectedVersion: 0, restore: [{ version: 1, document: doc(7), createdAt: 1 }], at: 60 }))).toBe('PRT_DEF_VERSION_CONFLICT');
      expect(await store.get('rule', 'x')).toBeUndefined();
    });

    it('pushes revisions to watchers, also for changes made with SQL behind the API', async () => {
      const { store, sql } = fx;
      const seen: number[] = [];
      const stop = await store.watch((r) => seen.push(r));
      await store.write({ kind: 'tag', id: 'x', expectedVersion: 0, document: doc(1), at: 1 });
      await until(() => seen.includes(1));
      await sql(`update portrait_definitions set status = 'online', updated_at = 5 where kind = 'tag' and id = 'x'`);
      await until(() => seen.includes(2));
      const latest = await store.latestRevision();
      expect(latest).toMatchObject({ revision: 2, status: 'online', at: 5, online: [{ kind: 'tag', id: 'x', version: 1 }] });
      await stop();
      await store.write({ kind: 'tag', id: 'x', expectedVersion: 1, document: doc(2), at: 6 });
      await new Promise((r) => setTimeout(r, 200));
      expect(seen).toEqual([1, 2]);
    });
  });
}
