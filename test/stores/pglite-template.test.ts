import { existsSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { DefinitionStore } from '../../src/definitions/index.js';
import { createPgliteDefinitionStore } from '../../src/stores/pglite/index.js';
import { cleanup, tempDir } from '../helpers/system.js';

afterEach(cleanup);

const rule = { id: 'r1', key: ['user_id'], condition: { expr: 'event.attrs.amount > 10' } };

async function roundTrip(store: DefinitionStore): Promise<void> {
  await store.write({ kind: 'rule', id: 'r1', expectedVersion: 0, document: rule, status: 'online', at: 1 });
}

/** Writes a rule into a new store, reads it back and closes the store. */
async function writesAndReads(store: DefinitionStore): Promise<void> {
  try {
    await roundTrip(store);
    expect((await store.list('rule')).map((d) => d.id)).toEqual(['r1']);
  } finally {
    await store.close();
  }
}

/** The template of on-disk databases: a closed cluster folder. */
function folder(dir: string): string | undefined {
  return existsSync(dir) ? readdirSync(dir).find((f) => /^pglite-.+-cluster$/.test(f)) : undefined;
}

/** The template of in-memory databases: a tar image. */
function image(dir: string): string | undefined {
  return existsSync(dir) ? readdirSync(dir).find((f) => f.endsWith('-cluster.tar')) : undefined;
}

describe('PGlite cluster template', () => {
  it('is made by the first new database, and a database copied from it stores and keeps definitions', async () => {
    const templateDir = join(await tempDir(), 'cache');
    const first = await createPgliteDefinitionStore({ dataDir: join(await tempDir(), 'defs'), templateDir });
    await roundTrip(first);
    await first.close();
    expect(folder(templateDir)).toMatch(/^pglite-.+-cluster$/);
    // Only the finished folder is left (no temporary one), and nothing written later reaches it.
    expect(readdirSync(templateDir)).toEqual([folder(templateDir)]);

    const dataDir = join(await tempDir(), 'defs');
    const second = await createPgliteDefinitionStore({ dataDir, templateDir });
    expect(await second.list('rule')).toEqual([]);
    await roundTrip(second);
    await second.close();
    const reopened = await createPgliteDefinitionStore({ dataDir, templateDir });
    try {
      expect((await reopened.list('rule')).map((d) => d.id)).toEqual(['r1']);
      expect((await reopened.latestRevision())?.revision).toBe(1);
    } finally {
      await reopened.close();
    }
  });

  it('drops a broken template and initialises the cluster as usual', async () => {
    const templateDir = join(await tempDir(), 'cache');
    const first = await createPgliteDefinitionStore({ dataDir: join(await tempDir(), 'defs'), templateDir });
    await first.close();
    const cluster = join(templateDir, folder(templateDir)!);
    // A cluster whose catalog is gone cannot start.
    rmSync(join(cluster, 'global'), { recursive: true, force: true });
    await writesAndReads(await createPgliteDefinitionStore({ dataDir: join(await tempDir(), 'defs'), templateDir }));
    // The broken template was dropped (the next new database makes a good one).
    expect(folder(templateDir)).toBeUndefined();
  });

  it('gives in-memory databases a tar image of a fresh cluster, and drops a broken one', async () => {
    const templateDir = join(await tempDir(), 'cache');
    const first = await createPgliteDefinitionStore({ templateDir });
    await first.close();
    expect(image(templateDir)).toMatch(/^pglite-.+-cluster\.tar$/);
    await writesAndReads(await createPgliteDefinitionStore({ templateDir }));
    writeFileSync(join(templateDir, image(templateDir)!), 'not a tar archive');
    await writesAndReads(await createPgliteDefinitionStore({ templateDir }));
    // A good image took the broken one's place.
    expect(readdirSync(templateDir).filter((f) => f.endsWith('.tar'))).toHaveLength(1);
  });

  it('opens with no image folder at all', async () => {
    await writesAndReads(await createPgliteDefinitionStore({ dataDir: join(await tempDir(), 'defs'), templateDir: null }));
  });
});
