import { join } from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { afterEach, describe, expect, it } from 'vitest';
import { createTestDatabase, postgresAvailable, runSql } from '../helpers/postgres.js';
import { cleanup, testConfig } from '../helpers/system.js';
import { ev, openRules, SECOND, T0, type RuleSystem } from './harness.js';

afterEach(cleanup);

const transfer = (user: string, at: number, amount = 100) => ev('transfer', user, at, { to_account: 'acc', amount });

/** Decides on every transfer from the second on, per user: its lifetime window must survive anything refused. */
const twoTransfers = (extra: Record<string, unknown> = {}) => ({
  id: 'two_transfers',
  key: ['user_id'],
  ordering: 'arrival',
  condition: { aggregate: { fn: 'count', eventTypes: ['transfer'], window: { type: 'lifetime' } }, op: '>=', value: 2 },
  ...extra,
});
const bigTransfer = (id: string) => ({
  id,
  key: ['user_id'],
  ordering: 'arrival',
  condition: { sequence: { pattern: [{ name: 'big', eventTypes: ['transfer'], where: 'event.attrs.amount > 10000.0' }] } },
});

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any -- parsed HTTP bodies

const brief = (d: { ruleId: string; version: number; key: Record<string, unknown>; time: number }) => [d.ruleId, d.version, d.key.user_id, (d.time - T0) / SECOND];

async function get(rs: RuleSystem, url: string): Promise<Json> {
  const res = await rs.app.inject({ method: 'GET', url });
  expect(res.statusCode, res.body).toBe(200);
  return res.json() as Json;
}

/** What the store holds, as an export shows it, without the export's own time. */
async function storeState(rs: RuleSystem): Promise<Json> {
  const { exportedAt: _at, ...rest } = await get(rs, '/v1/definitions:export');
  return rest;
}

async function metric(rs: RuleSystem, series: string): Promise<number | undefined> {
  const text = (await rs.app.inject({ method: 'GET', url: '/metrics' })).body;
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

describe('an invalid rule is never partly applied: update', () => {
  it.each<[string, Record<string, unknown>, string, string]>([
    ['a schema error', twoTransfers({ condition: { aggregate: { fn: 'count', eventTypes: ['transfer'], window: { type: 'tumbling', size: '-5m' } }, op: '>=', value: 2 } }), 'PRT_DEF_INVALID', '/condition/aggregate/window/size'],
    ['an unknown event type', twoTransfers({ condition: { aggregate: { fn: 'count', eventTypes: ['teleport'], window: { type: 'lifetime' } }, op: '>=', value: 2 } }), 'PRT_DEF_INVALID', '/condition/aggregate/eventTypes/0'],
    ['an expression that does not compile', twoTransfers({ condition: { all: [twoTransfers().condition, { expr: 'event.attrs.amount >' }] } }), 'PRT_DEF_EXPRESSION', '/condition/all/1/expr'],
  ])('PUT of a version with %s: refused, nothing stored, the old version keeps running with its state', async (_name, doc, code, path) => {
    const rs = await openRules();
    await rs.addRule(twoTransfers());
    await rs.send(transfer('u1', 0));
    const before = await storeState(rs);

    const res = await rs.app.inject({ method: 'PUT', url: '/v1/rules/two_transfers', payload: doc });
    expect(res.statusCode, res.body).toBe(400);
    expect(res.json()).toMatchObject({ code, path });

    // Nothing stored: no version 2, no new revision.
    expect(await storeState(rs)).toEqual(before);
    expect((await get(rs, '/v1/rules/two_transfers/versions')).items.map((v: Json) => v.version)).toEqual([1]);
    expect(await get(rs, '/v1/rules/two_transfers')).toMatchObject({ version: 1, status: 'online', runtime: { state: 'running' } });
    // Version 1 keeps deciding, on the window it had: the second transfer reaches 2.
    await rs.send(transfer('u1', 1 * SECOND), transfer('u2', 2 * SECOND));
    expect((await rs.decisions('two_transfers')).map(brief)).toEqual([['two_transfers', 1, 'u1', 1]]);
    expect((await rs.decisions('two_transfers'))[0]!.aggregates).toEqual([2]);
  });
});

describe('an invalid rule is never partly applied: import', () => {
  /** A target with one online rule, and the export of a source with three (one also in the target, with another threshold). */
  async function setUp(): Promise<{ target: RuleSystem; exported: Json }> {
    const source = await openRules();
    await source.addRule(twoTransfers({ condition: { ...twoTransfers().condition, value: 3 } }));
    await source.addRule(bigTransfer('big_a'));
    await source.addRule(bigTransfer('big_b'), { start: false });
    const exported = await get(source, '/v1/definitions:export');
    expect(exported.definitions.map((d: Json) => d.id)).toEqual(['big_a', 'big_b', 'two_transfers']);
    const target = await openRules();
    await target.addRule(twoTransfers());
    return { target, exported };
  }

  const edits: Array<[string, (doc: Json) => void, string]> = [
    ['an unknown status', (doc) => (doc.definitions[1].status = 'bogus'), '/definitions/1/status'],
    ['a missing status', (doc) => delete doc.definitions[1].status, '/definitions/1/status'],
    ['a latest version whose document.id is another id', (doc) => (doc.definitions[1].versions[0].document.id = 'big_c'), '/definitions/1/versions/0/document/id'],
    [
      'an older version whose document.id is another id',
      (doc) => {
        doc.definitions[1].versions[0].version = 2;
        doc.definitions[1].versions.unshift({ version: 1, createdAt: doc.exportedAt, document: { ...bigTransfer('big_c') } });
      },
      '/definitions/1/versions/0/document/id',
    ],
    ['versions out of order', (doc) => doc.definitions[1].versions.unshift({ version: 3, createdAt: doc.exportedAt, document: { ...bigTransfer('big_b') } }), '/definitions/1/versions/1/version'],
    ['a version time that is not a date', (doc) => (doc.definitions[1].versions[0].createdAt = 'yesterday'), '/definitions/1/versions/0/createdAt'],
    ['an entry twice', (doc) => doc.definitions.push(structuredClone(doc.definitions[0])), '/definitions/3/id'],
    ['an unknown kind', (doc) => (doc.definitions[1].kind = 'rules'), '/definitions/1/kind'],
    ['an invalid latest document', (doc) => (doc.definitions[1].versions[0].document.condition.sequence.pattern[0].eventTypes = ['teleport']), '/definitions/1/versions/0/document/condition/sequence/pattern/0/eventTypes/0'],
  ];

  it.each(edits)('an import with %s among valid entries is refused with its path, and nothing changes', async (_name, edit, path) => {
    const { target, exported } = await setUp();
    const before = await storeState(target);
    const bad = structuredClone(exported);
    edit(bad);
    const res = await target.app.inject({ method: 'POST', url: '/v1/definitions:import', payload: bad });
    expect(res.statusCode, res.body).toBe(400);
    expect(res.json()).toMatchObject({ code: 'PRT_DEF_INVALID', path });
    expect(res.json().message).toContain(path);
    expect(await storeState(target)).toEqual(before);
    // The target's rule still runs as it was (threshold 2), and none of the import's rules runs.
    await target.send(transfer('u1', 0, 20_000), transfer('u1', 1 * SECOND, 20_000));
    expect((await target.decisions('two_transfers')).map(brief)).toEqual([['two_transfers', 1, 'u1', 1]]);
    expect(await target.decisions('big_a')).toEqual([]);

    // The same document without the bad edit is imported whole.
    const good = await target.app.inject({ method: 'POST', url: '/v1/definitions:import', payload: exported });
    expect(good.statusCode, good.body).toBe(200);
    // two_transfers has a version 1 of its own in the target: its history is kept and the exported document becomes version 2.
    expect(good.json()).toEqual({ created: ['rule:big_a', 'rule:big_b'], updated: ['rule:two_transfers'], statusChanged: [], diverged: ['rule:two_transfers'] });
    expect((await get(target, '/v1/rules/two_transfers/versions')).items.map((v: Json) => v.version)).toEqual([1, 2]);
  });

  it('every problem of every entry is listed in details', async () => {
    const { target, exported } = await setUp();
    const bad = structuredClone(exported);
    bad.definitions[0].status = 'bogus';
    bad.definitions[2].versions[0].document.id = 'other';
    const res = await target.app.inject({ method: 'POST', url: '/v1/definitions:import', payload: bad });
    expect(res.statusCode, res.body).toBe(400);
    expect(res.json().path).toBe('/definitions/0/status');
    expect(res.json().details.map((d: Json) => d.path)).toEqual(['/definitions/0/status', '/definitions/2/versions/0/document/id']);
  });
});

describe('a rule edited into an invalid state in the store does not run, and says so', () => {
  it('PGlite: a version written with SQL while the system was down shows as invalid with its reason, is counted, and a valid PUT restarts it', async () => {
    const config = await testConfig();
    const first = await openRules({}, { config });
    await first.addRule(bigTransfer('big_a'));
    await first.addRule(bigTransfer('big_b'));
    await first.addRule(bigTransfer('big_c'));
    await first.send(transfer('u1', 0, 20_000));
    expect((await first.decisions('big_a')).map(brief)).toEqual([['big_a', 1, 'u1', 0]]);
    await first.system.close();

    // Someone with database access stores version 2 of two rules: one reads an event type the
    // catalog does not have, the other's document names another rule.
    const db = await PGlite.create(join(config.dataDir, 'definitions'));
    try {
      await db.query(`insert into portrait_definition_versions (kind, id, version, document, created_at)
        select kind, id, 2, jsonb_set(document, '{condition,sequence,pattern,0,eventTypes}', '["teleport"]'), 0 from portrait_definition_versions where id = 'big_a' and version = 1`);
      await db.query(`insert into portrait_definition_versions (kind, id, version, document, created_at)
        select kind, id, 2, jsonb_set(document, '{id}', '"big_z"'), 0 from portrait_definition_versions where id = 'big_b' and version = 1`);
      await db.query(`update portrait_definitions set version = 2, updated_at = $1 where id in ('big_a', 'big_b')`, [Date.now()]);
    } finally {
      await db.close();
    }

    const rs = await openRules({}, { config });
    const a = await get(rs, '/v1/rules/big_a');
    expect(a).toMatchObject({ id: 'big_a', version: 2, status: 'online', runtime: { state: 'invalid' } });
    expect(a.runtime.reason).toContain('/condition/sequence/pattern/0/eventTypes/0');
    const b = await get(rs, '/v1/rules/big_b');
    expect(b).toMatchObject({ version: 2, status: 'online', runtime: { state: 'invalid' } });
    expect(b.runtime.reason).toContain('/id');
    expect((await get(rs, '/v1/rules')).items.map((r: Json) => [r.id, r.runtime.state])).toEqual([
      ['big_a', 'invalid'],
      ['big_b', 'invalid'],
      ['big_c', 'running'],
    ]);
    expect(await metric(rs, 'portrait_definitions_invalid{kind="rule"}')).toBe(2);
    expect(await metric(rs, 'portrait_definitions_invalid{kind="tag"}')).toBe(0);

    // Neither runs, under its own id or the one its document names; the valid rule does.
    await rs.send(transfer('u2', 1 * SECOND, 30_000));
    expect((await rs.decisions('big_a')).map(brief)).toEqual([['big_a', 1, 'u1', 0]]);
    expect((await rs.decisions('big_b')).map(brief)).toEqual([['big_b', 1, 'u1', 0]]);
    expect(await rs.decisions('big_z')).toEqual([]);
    expect((await rs.decisions('big_c')).map(brief)).toEqual([
      ['big_c', 1, 'u1', 0],
      ['big_c', 1, 'u2', 1],
    ]);

    // A valid version runs again; taking the other offline clears its state too.
    const put = await rs.app.inject({ method: 'PUT', url: '/v1/rules/big_a', payload: bigTransfer('big_a') });
    expect(put.statusCode, put.body).toBe(200);
    expect((await rs.app.inject({ method: 'POST', url: '/v1/rules/big_b/stop' })).statusCode).toBe(200);
    expect((await get(rs, '/v1/rules')).items.map((r: Json) => [r.id, r.version, r.runtime.state])).toEqual([
      ['big_a', 3, 'running'],
      ['big_b', 2, 'stopped'],
      ['big_c', 1, 'running'],
    ]);
    expect(await metric(rs, 'portrait_definitions_invalid{kind="rule"}')).toBe(0);
    await rs.send(transfer('u3', 2 * SECOND, 40_000));
    expect((await rs.decisions('big_a')).map(brief)).toEqual([
      ['big_a', 1, 'u1', 0],
      ['big_a', 3, 'u3', 2],
    ]);
  });

  it.skipIf(!postgresAvailable)('PostgreSQL: a version written with SQL while the system runs is followed, shown as invalid and no longer run', async () => {
    const db = await createTestDatabase();
    try {
      const rs = await openRules({ 'definitions.store': 'postgres', 'definitions.postgresUrl': db.url });
      await rs.addRule(bigTransfer('big_a'));
      await rs.send(transfer('u1', 0, 20_000));
      await runSql(db.url, `insert into portrait_definition_versions (kind, id, version, document, created_at)
        select kind, id, 2, jsonb_set(document, '{condition,sequence,pattern,0,where}', '"event.attrs.amount >"'), 0 from portrait_definition_versions where id = 'big_a' and version = 1`);
      await runSql(db.url, `update portrait_definitions set version = 2, updated_at = $1 where id = 'big_a'`, [Date.now()]);
      // Followed once the service shows it and the engine runs the revision that left it out.
      const deadline = Date.now() + 5_000;
      const followed = (rule: Json): boolean => rule.runtime.state === 'invalid' && rs.system.engine.revision() >= rs.system.definitions.revision;
      let rule = await get(rs, '/v1/rules/big_a');
      while (!followed(rule) && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 20));
        await rs.settle();
        rule = await get(rs, '/v1/rules/big_a');
      }
      expect(rule).toMatchObject({ version: 2, status: 'online', runtime: { state: 'invalid' } });
      expect(rs.system.engine.revision()).toBe(rs.system.definitions.revision);
      expect(rule.runtime.reason).toContain('/condition/sequence/pattern/0/where');
      await rs.send(transfer('u2', 1 * SECOND, 30_000));
      expect((await rs.decisions('big_a')).map(brief)).toEqual([['big_a', 1, 'u1', 0]]);
    } finally {
      await cleanup();
      await db.drop();
    }
  });
});
