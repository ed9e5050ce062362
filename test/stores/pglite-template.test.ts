import { existsSync, readdirSync, writeFileSync } from 'node:fs';
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

function image(dir: string): string | undefined {
  return existsSync(dir) ? readdirSync(dir).find((f) => f.endsWith('-cluster.tar')) : undefined;
}

describe('PGlite cluster image', () => {
  it('is made by the first new database, and a database started from it stores and keeps definitions', async () => {
    const templateDir = join(await tempDir(), 'cache');
    const first = await createPgliteDefinitionStore({ dataDir: join(await tempDir(), 'defs'), templateDir });
    await first.close();
    expect(image(templateDir)).toMatch(/^pglite-.+-cluster\.tar$/);

    const dataDir = join(await tempDir(), 'defs');
    const second = await createPgliteDefinitionStore({ dataDir, templateDir });
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

  it('drops a broken image and initialises the cluster as usual', async () => {
    const templateDir = join(await tempDir(), 'cache');
    const first = await createPgliteDefinitionStore({ dataDir: join(await tempDir(), 'defs'), templateDir });
    await first.close();
    const file = join(templateDir, image(templateDir)!);
    writeFileSync(file, 'not a tar archive');
    const store = await createPgliteDefinitionStore({ dataDir: join(await tempDir(), 'defs'), templateDir });
    try {
      await roundTrip(store);
      expect((await store.list('rule')).map((d) => d.id)).toEqual(['r1']);
    } finally {
      await store.close();
    }
    // A good image took the broken one's place.
    expect(readdirSync(templateDir)).toHaveLength(1);
  });

  it('opens with no image folder at all', async () => {
    const store = await createPgliteDefinitionStore({ dataDir: join(await tempDir(), 'defs'), templateDir: null });
    try {
      await roundTrip(store);
      expect((await store.list('rule')).map((d) => d.id)).toEqual(['r1']);
    } finally {
      await store.close();
    }
  });
});
