import { afterEach, describe, expect, it } from 'vitest';
import { DefinitionService, type DefinitionStore } from '../../src/definitions/index.js';
import { PortraitError } from '../../src/errors/index.js';
import { defaultCatalog } from '../../src/runtime/default-catalog.js';
import { createPgliteDefinitionStore } from '../../src/stores/pglite/index.js';
import { cleanup, tempDir } from '../helpers/system.js';

afterEach(cleanup);

const closers: Array<() => Promise<void>> = [];
afterEach(async () => {
  while (closers.length > 0) await closers.pop()!().catch(() => undefined);
});

/** A clock that moves one second per read, so every write has its own time. */
function steppingClock(start = Date.UTC(2025, 0, 1)): { now(): number } {
  let t = start;
  return { now: () => (t += 1000) };
}

async function openStore(dataDir?: string): Promise<DefinitionStore> {
  const store = await createPgliteDefinitionStore(dataDir === undefined ? {} : { dataDir });
  let closed = false;
  const close = store.close.bind(store);
  store.close = async () => {
    if (closed) return;
    closed = true;
    await close();
  };
  closers.push(() => store.close());
  return store;
}

async function openService(dataDir?: string): Promise<{ service: DefinitionService; store: DefinitionStore }> {
  const store = await openStore(dataDir);
  return { service: await DefinitionService.open(store, defaultCatalog, steppingClock()), store };
}

const clicks = { id: 'clicks_1h', kind: 'statistic', eventTypes: ['click'], aggregate: 'count', window: { type: 'sliding', size: '1h', slide: '1m' } };
const spend = { id: 'spend_30d', kind: 'statistic', eventTypes: ['payment'], aggregate: 'sum', field: 'amount', window: { type: 'sliding', size: '30d', slide: '1d' } };
const highValue = { id: 'high_value', kind: 'rule', condition: 'tags.spend_30d > 10000.0' };
const busy = { id: 'busy', kind: 'rule', condition: 'tags.clicks_1h > 100 && tags.high_value == true' };

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any -- export documents, edited freely

/** The PortraitError `run` rejects with; fails when it resolves. */
async function rejection(run: Promise<unknown>): Promise<PortraitError> {
  try {
    await run;
  } catch (err: unknown) {
    expect(err).toBeInstanceOf(PortraitError);
    return err as PortraitError;
  }
  expect.fail('resolved, expected a PortraitError');
}

describe('DefinitionService: create and validate', () => {
  it('creates a draft at version 1 and refuses the same id again', async () => {
    const { service } = await openService();
    const view = await service.createTag(clicks);
    expect(view).toMatchObject({ id: 'clicks_1h', version: 1, status: 'draft' });
    expect(Date.parse(view.createdAt)).toBeGreaterThan(0);
    const err = await rejection(service.createTag({ ...clicks, description: 'again' }));
    expect(err.code).toBe('PRT_DEF_EXISTS');
    expect(err.subject).toBe('clicks_1h');
    expect(service.revision).toBe(1);
  });

  it('refuses an invalid document before storing anything', async () => {
    const { service } = await openService();
    const err = await rejection(service.createTag({ ...clicks, window: { type: 'tumbling', size: '-5m' } }));
    expect(err.code).toBe('PRT_DEF_INVALID');
    expect(err.path).toBe('/window/size');
    expect(await service.listTags()).toEqual([]);
  });

  it('refuses a rule tag reading a tag that does not exist, or itself (PRT_DEF_DEPENDENCY at /condition)', async () => {
    const { service } = await openService();
    const missing = await rejection(service.createTag(highValue));
    expect(missing).toMatchObject({ code: 'PRT_DEF_DEPENDENCY', path: '/condition', subject: 'high_value' });
    expect(missing.message).toContain('spend_30d');
    const self = await rejection(service.createTag({ id: 'loop', kind: 'rule', condition: 'tags.loop == true' }));
    expect(self).toMatchObject({ code: 'PRT_DEF_DEPENDENCY', path: '/condition' });
    // validate() applies the same checks without storing
    expect((await rejection(service.validate(highValue))).code).toBe('PRT_DEF_DEPENDENCY');
    await service.createTag(spend);
    await expect(service.validate(highValue)).resolves.toMatchObject({ id: 'high_value' });
    await expect(service.createTag(highValue)).resolves.toMatchObject({ status: 'draft' });
  });

  it('unknown ids answer PRT_DEF_NOT_FOUND', async () => {
    const { service } = await openService();
    for (const run of [service.getTag('nope'), service.tagVersions('nope'), service.setTagStatus('nope', 'online'), service.updateTag('nope', { ...clicks, id: 'nope' })]) {
      expect((await rejection(run)).code).toBe('PRT_DEF_NOT_FOUND');
    }
  });
});

describe('DefinitionService: lifecycle draft -> online -> offline -> archived', () => {
  it('allows the documented transitions and refuses the others with PRT_DEF_BAD_TRANSITION', async () => {
    const { service } = await openService();
    await service.createTag(clicks);
    const refuse = async (status: 'draft' | 'online' | 'offline' | 'archived'): Promise<void> => {
      const err = await rejection(service.setTagStatus('clicks_1h', status));
      expect(err.code, `-> ${status}`).toBe('PRT_DEF_BAD_TRANSITION');
      expect(err.path).toBe('/status');
    };
    await refuse('offline'); // draft -> offline
    expect((await service.setTagStatus('clicks_1h', 'online')).status).toBe('online');
    await refuse('archived'); // online -> archived
    await refuse('draft'); // online -> draft
    expect((await service.setTagStatus('clicks_1h', 'online')).status).toBe('online'); // same status: no change
    expect((await service.setTagStatus('clicks_1h', 'offline')).status).toBe('offline');
    await refuse('draft'); // offline -> draft
    expect((await service.setTagStatus('clicks_1h', 'online')).status).toBe('online');
    expect((await service.setTagStatus('clicks_1h', 'offline')).status).toBe('offline');
    expect((await service.setTagStatus('clicks_1h', 'archived')).status).toBe('archived');
    await refuse('online'); // archived -> anything
    await refuse('offline');
    const update = await rejection(service.updateTag('clicks_1h', { ...clicks, description: 'x' }));
    expect(update.code).toBe('PRT_DEF_BAD_TRANSITION');

    await service.createTag(spend);
    expect((await service.setTagStatus('spend_30d', 'archived')).status).toBe('archived'); // draft -> archived
  });

  it('keeps the online set of every revision and tells listeners of each change', async () => {
    const { service } = await openService();
    const heard: number[] = [];
    service.onOnlineChange((revision) => {
      heard.push(revision);
    });
    await service.createTag(clicks); // r1, not online: no notice
    await service.setTagStatus('clicks_1h', 'online'); // r2
    expect(service.currentSet().tags.map((t) => t.id)).toEqual(['clicks_1h']);
    await service.createTag(spend); // r3
    await service.setTagStatus('spend_30d', 'online'); // r4
    await service.setTagStatus('clicks_1h', 'offline'); // r5
    expect(heard).toEqual([2, 4, 5]);
    expect(service.revision).toBe(5);
    expect(service.currentSet().tags.map((t) => t.id)).toEqual(['spend_30d']);
    expect((await service.resolve(4)).tags.map((t) => t.id).sort()).toEqual(['clicks_1h', 'spend_30d']);
    expect((await service.resolve(2)).tags.map((t) => t.id)).toEqual(['clicks_1h']);
    expect((await service.resolve(0)).tags).toEqual([]);
    expect((await rejection(service.resolve(99))).code).toBe('PRT_DEF_NOT_FOUND');
    expect((await service.listTags({ status: 'online' })).map((t) => t.id)).toEqual(['spend_30d']);
    expect((await service.listTags()).map((t) => t.id)).toEqual(['clicks_1h', 'spend_30d']);
  });

  it('puts a rule tag online only when the tags it reads are online', async () => {
    const { service } = await openService();
    await service.createTag(spend);
    await service.createTag(highValue);
    const err = await rejection(service.setTagStatus('high_value', 'online'));
    expect(err).toMatchObject({ code: 'PRT_DEF_DEPENDENCY', path: '/condition', subject: 'high_value' });
    expect(err.message).toContain('spend_30d');
    await service.setTagStatus('spend_30d', 'online');
    await expect(service.setTagStatus('high_value', 'online')).resolves.toMatchObject({ status: 'online' });
  });

  it('refuses to take a tag offline while an online rule tag reads it', async () => {
    const { service } = await openService();
    await service.createTag(spend);
    await service.createTag(clicks);
    await service.createTag(highValue);
    await service.createTag(busy);
    for (const id of ['spend_30d', 'clicks_1h', 'high_value', 'busy']) await service.setTagStatus(id, 'online');
    const spendOff = await rejection(service.setTagStatus('spend_30d', 'offline'));
    expect(spendOff).toMatchObject({ code: 'PRT_DEF_DEPENDENCY', subject: 'spend_30d' });
    expect(spendOff.message).toContain('high_value');
    const hvOff = await rejection(service.setTagStatus('high_value', 'offline'));
    expect(hvOff.message).toContain('busy');
    expect((await service.getTag('spend_30d')).status).toBe('online');
    await service.setTagStatus('busy', 'offline');
    await service.setTagStatus('high_value', 'offline');
    await expect(service.setTagStatus('spend_30d', 'offline')).resolves.toMatchObject({ status: 'offline' });
  });

  it('refuses an update of an online rule that would read an offline tag or close a cycle', async () => {
    const { service } = await openService();
    await service.createTag(spend);
    await service.createTag(clicks);
    await service.createTag(highValue);
    await service.createTag({ id: 'uses_hv', kind: 'rule', condition: 'tags.high_value == true' });
    for (const id of ['spend_30d', 'high_value', 'uses_hv']) await service.setTagStatus(id, 'online');
    const offlineInput = await rejection(service.updateTag('high_value', { ...highValue, condition: 'tags.clicks_1h > 3' }));
    expect(offlineInput).toMatchObject({ code: 'PRT_DEF_DEPENDENCY', path: '/condition' });
    const cycle = await rejection(service.updateTag('high_value', { ...highValue, condition: 'tags.spend_30d > 1.0 && tags.uses_hv == true' }));
    expect(cycle).toMatchObject({ code: 'PRT_DEF_DEPENDENCY', path: '/condition' });
    expect((await service.getTag('high_value')).version).toBe(1);
  });
});

describe('DefinitionService: versions', () => {
  it('stores each update as a new version and lists them oldest first', async () => {
    const { service } = await openService();
    await service.createTag(clicks);
    const v2 = await service.updateTag('clicks_1h', { ...clicks, description: 'Clicks in the last hour.' });
    expect(v2).toMatchObject({ version: 2, status: 'draft', description: 'Clicks in the last hour.' });
    const v3 = await service.updateTag('clicks_1h', { ...clicks, filter: 'attrs.channel == "app"', version: 2 });
    expect(v3.version).toBe(3);
    const versions = await service.tagVersions('clicks_1h');
    expect(versions.map((v) => v.version)).toEqual([1, 2, 3]);
    expect(versions[0]!.document).not.toHaveProperty('description');
    expect(versions[2]!.document).toMatchObject({ filter: 'attrs.channel == "app"' });
    expect(versions[2]!.document).not.toHaveProperty('version');
    expect((await service.getTag('clicks_1h')).version).toBe(3);
    expect(versions[0]!.createdAt).toBeLessThan(versions[2]!.createdAt);
  });

  it('refuses an update whose version is not the stored one (PRT_DEF_VERSION_CONFLICT at /version)', async () => {
    const { service } = await openService();
    await service.createTag(clicks);
    await service.updateTag('clicks_1h', { ...clicks, description: 'a', version: 1 });
    const err = await rejection(service.updateTag('clicks_1h', { ...clicks, description: 'b', version: 1 }));
    expect(err).toMatchObject({ code: 'PRT_DEF_VERSION_CONFLICT', path: '/version', subject: 'clicks_1h' });
    expect((await service.getTag('clicks_1h')).description).toBe('a');
  });

  it('lets exactly one of two concurrent updates from the same version win', async () => {
    const { service } = await openService();
    await service.createTag(clicks);
    const results = await Promise.allSettled([
      service.updateTag('clicks_1h', { ...clicks, description: 'first', version: 1 }),
      service.updateTag('clicks_1h', { ...clicks, description: 'second', version: 1 }),
    ]);
    expect(results.map((r) => r.status).sort()).toEqual(['fulfilled', 'rejected']);
    const failed = results.find((r) => r.status === 'rejected') as PromiseRejectedResult;
    expect((failed.reason as PortraitError).code).toBe('PRT_DEF_VERSION_CONFLICT');
    expect((await service.tagVersions('clicks_1h')).length).toBe(2);
  });

  it('refuses an update that changes the id or the kind', async () => {
    const { service } = await openService();
    await service.createTag(clicks);
    expect(await rejection(service.updateTag('clicks_1h', { ...clicks, id: 'other' }))).toMatchObject({ code: 'PRT_DEF_INVALID', path: '/id' });
    expect(await rejection(service.updateTag('clicks_1h', { id: 'clicks_1h', kind: 'rule', condition: 'true' }))).toMatchObject({ code: 'PRT_DEF_INVALID', path: '/kind' });
  });

  it('switches an online tag to the new version at once; old values stay valid only if the computation is the same', async () => {
    const { service } = await openService();
    const heard: number[] = [];
    service.onOnlineChange((r) => {
      heard.push(r);
    });
    await service.createTag(clicks);
    await service.setTagStatus('clicks_1h', 'online');
    const before = service.currentSet().tags[0]!;
    await service.updateTag('clicks_1h', { ...clicks, description: 'words only' });
    const same = service.currentSet().tags[0]!;
    expect(same.version).toBe(2);
    expect(same.stateId).toBe(before.stateId);
    expect([...service.servingTags().get('clicks_1h')!.versions].sort()).toEqual([1, 2]);

    await service.updateTag('clicks_1h', { ...clicks, window: { type: 'tumbling', size: '1h' } });
    const changed = service.currentSet().tags[0]!;
    expect(changed.version).toBe(3);
    expect(changed.stateId).not.toBe(before.stateId);
    expect([...service.servingTags().get('clicks_1h')!.versions]).toEqual([3]);
    expect(service.servingTags().get('clicks_1h')!.defaultValue).toBe(0);
    expect(heard).toEqual([2, 3, 4]);

    // an update of a tag that is not online does not change the online set
    await service.createTag(spend);
    await service.updateTag('spend_30d', { ...spend, description: 'x' });
    expect(heard).toEqual([2, 3, 4]);
  });
});

describe('DefinitionService: export', () => {
  it('exports every definition with status and full version history as one document', async () => {
    const { service } = await openService();
    await service.createTag(clicks);
    await service.updateTag('clicks_1h', { ...clicks, description: 'v2' });
    await service.setTagStatus('clicks_1h', 'online');
    await service.createTag(spend);
    const exported = await service.exportAll();
    expect(exported).toMatchObject({ format: 'portrait-definitions', formatVersion: 1, revision: 4 });
    expect(Number.isNaN(Date.parse(exported.exportedAt))).toBe(false);
    expect(exported.definitions.map((d) => [d.id, d.kind, d.status, d.version])).toEqual([
      ['clicks_1h', 'tag', 'online', 2],
      ['spend_30d', 'tag', 'draft', 1],
    ]);
    const history = exported.definitions[0]!.versions;
    expect(history.map((v) => v.version)).toEqual([1, 2]);
    expect(history[1]!.document).toMatchObject({ id: 'clicks_1h', description: 'v2' });
    expect(history[0]!.createdAt).toMatch(/^\d{4}-\d\d-\d\dT/);
    // the export round-trips through JSON and each version document is a valid definition again
    const copy = JSON.parse(JSON.stringify(exported)) as typeof exported;
    for (const d of copy.definitions) for (const v of d.versions) await expect(service.validate(v.document)).resolves.toBeDefined();
  });
});

describe('DefinitionService: import restores version histories', () => {
  /** The export as it travels: through JSON. */
  const exportOf = async (service: DefinitionService): Promise<Json> => JSON.parse(JSON.stringify(await service.exportAll())) as Json;
  const historyOf = async (service: DefinitionService, id: string): Promise<Array<[number, string | undefined, string]>> =>
    (await service.tagVersions(id)).map((v) => [v.version, (v.document as { description?: string }).description, new Date(v.createdAt).toISOString()]);

  it('appends the missing versions to a history that is a prefix of the exported one, in one revision', async () => {
    const source = (await openService()).service;
    await source.createTag(clicks);
    const early = await exportOf(source);
    await source.updateTag('clicks_1h', { ...clicks, description: 'v2' });
    await source.updateTag('clicks_1h', { ...clicks, description: 'v3' });
    await source.setTagStatus('clicks_1h', 'online');
    const { service: target, store } = await openService();
    expect(await target.importAll(early)).toEqual({ created: ['tag:clicks_1h'], updated: [], statusChanged: [], diverged: [] });
    const before = target.revision;
    expect(await target.importAll(await exportOf(source))).toEqual({ created: [], updated: ['tag:clicks_1h'], statusChanged: ['tag:clicks_1h'], diverged: [] });
    expect(await historyOf(target, 'clicks_1h')).toEqual(await historyOf(source, 'clicks_1h'));
    expect(await target.getTag('clicks_1h')).toMatchObject({ version: 3, status: 'online', description: 'v3' });
    // One revision for the import, and the engine's set follows it.
    expect((await store.revisionsAfter(before, 10)).map((r) => r.revision)).toEqual([before + 1]);
    expect(target.revision).toBe(before + 1);
    expect(target.currentSet().tags.map((t) => [t.id, t.version])).toEqual([['clicks_1h', 3]]);
  });

  it('keeps a history that diverged from the exported one and adds the exported document as a new version', async () => {
    const source = (await openService()).service;
    await source.createTag(clicks);
    await source.updateTag('clicks_1h', { ...clicks, description: 'from source' });
    const { service: target } = await openService();
    await target.createTag({ ...clicks, description: 'local' });
    const result = await target.importAll(await exportOf(source));
    expect(result).toEqual({ created: [], updated: ['tag:clicks_1h'], statusChanged: [], diverged: ['tag:clicks_1h'] });
    expect((await historyOf(target, 'clicks_1h')).map(([v, d]) => [v, d])).toEqual([
      [1, 'local'],
      [2, 'from source'],
    ]);
    // A target ahead of the export has diverged too: the exported latest document becomes its newest version.
    await source.updateTag('clicks_1h', { ...clicks, description: 'v3' });
    const ahead = (await openService()).service;
    await ahead.importAll(await exportOf(source));
    await ahead.updateTag('clicks_1h', { ...clicks, description: 'v4 local' });
    await source.updateTag('clicks_1h', { ...clicks, description: 'from source' }); // version 4 of the source
    const older = await exportOf(source);
    older.definitions[0].versions.splice(2); // versions 1 and 2: a prefix of the target's history
    expect(await ahead.importAll(older)).toMatchObject({ updated: ['tag:clicks_1h'], diverged: ['tag:clicks_1h'] });
    expect((await historyOf(ahead, 'clicks_1h')).map(([v, d]) => [v, d])).toEqual([
      [1, undefined],
      [2, 'from source'],
      [3, 'v3'],
      [4, 'v4 local'],
      [5, 'from source'],
    ]);
  });

  it('restores an old version that no longer validates (it never runs) but refuses an invalid latest one', async () => {
    const source = (await openService()).service;
    await source.createTag(clicks);
    await source.updateTag('clicks_1h', { ...clicks, description: 'v2' });
    const doc = await exportOf(source);
    doc.definitions[0].versions[0].document.eventTypes = ['teleport'];
    const { service: target } = await openService();
    expect((await target.importAll(doc)).created).toEqual(['tag:clicks_1h']);
    expect(((await target.tagVersions('clicks_1h'))[0]!.document as { eventTypes: string[] }).eventTypes).toEqual(['teleport']);

    doc.definitions[0].versions[1].document.eventTypes = ['teleport'];
    const other = (await openService()).service;
    expect(await rejection(other.importAll(doc))).toMatchObject({ code: 'PRT_DEF_INVALID', path: '/definitions/0/versions/1/document/eventTypes/0' });
    expect(await other.listTags()).toEqual([]);
  });

  it('numbers versions given without numbers from 1, and refuses numbers out of order and unreadable times with their paths', async () => {
    const { service } = await openService();
    const entry = (versions: Json[], extra: Json = {}): Json => ({ format: 'portrait-definitions', formatVersion: 1, definitions: [{ kind: 'tag', id: 'clicks_1h', status: 'draft', versions, ...extra }] });
    const bad = await rejection(
      service.importAll(entry([{ version: 2, document: clicks }, { version: 2, document: clicks, createdAt: 'yesterday' }, { version: 1.5, document: clicks }], { updatedAt: 7 })),
    );
    expect(bad).toMatchObject({ code: 'PRT_DEF_INVALID', path: '/definitions/0/updatedAt' });
    expect(bad.details?.map((d) => d.path)).toEqual(['/definitions/0/updatedAt', '/definitions/0/versions/1/version', '/definitions/0/versions/1/createdAt', '/definitions/0/versions/2/version']);
    expect(service.revision).toBe(0);
    expect((await service.importAll(entry([{ document: clicks }, { document: { ...clicks, description: 'v2' } }]))).created).toEqual(['tag:clicks_1h']);
    expect((await service.tagVersions('clicks_1h')).map((v) => v.version)).toEqual([1, 2]);
  });

  it('leaves an archived definition as it is', async () => {
    const source = (await openService()).service;
    await source.createTag(clicks);
    await source.updateTag('clicks_1h', { ...clicks, description: 'v2' });
    const { service: target } = await openService();
    await target.createTag(clicks);
    await target.setTagStatus('clicks_1h', 'archived');
    const before = target.revision;
    expect(await target.importAll(await exportOf(source))).toEqual({ created: [], updated: [], statusChanged: [], diverged: [] });
    expect(await target.getTag('clicks_1h')).toMatchObject({ version: 1, status: 'archived' });
    expect(target.revision).toBe(before);
  });
});

describe('DefinitionService on PGlite: persistence', () => {
  it('keeps definitions, versions, statuses and revisions across a reopen of the same data dir', async () => {
    const dir = await tempDir('portrait-defs-');
    const first = await openService(dir);
    await first.service.createTag(spend);
    await first.service.setTagStatus('spend_30d', 'online');
    await first.service.createTag(highValue);
    await first.service.setTagStatus('high_value', 'online');
    await first.service.updateTag('spend_30d', { ...spend, window: { type: 'sliding', size: '7d', slide: '1d' } });
    await first.service.createTag(clicks);
    const revision = first.service.revision;
    const set = first.service.currentSet().tags.map((t) => [t.id, t.version, t.stateId]);
    await first.store.close();

    const second = await openService(dir);
    expect(second.service.revision).toBe(revision);
    expect(second.service.currentSet().tags.map((t) => [t.id, t.version, t.stateId])).toEqual(set);
    expect((await second.service.listTags()).map((t) => [t.id, t.status, t.version])).toEqual([
      ['clicks_1h', 'draft', 1],
      ['high_value', 'online', 1],
      ['spend_30d', 'online', 2],
    ]);
    expect((await second.service.tagVersions('spend_30d')).map((v) => (v.document.window as { size: string }).size)).toEqual(['30d', '7d']);
    // the revision counter continues, and rules still guard the online tags they read
    await second.service.setTagStatus('clicks_1h', 'online');
    expect(second.service.revision).toBe(revision + 1);
    expect((await rejection(second.service.setTagStatus('spend_30d', 'offline'))).code).toBe('PRT_DEF_DEPENDENCY');
    expect((await rejection(second.service.createTag(clicks))).code).toBe('PRT_DEF_EXISTS');
  });
});
