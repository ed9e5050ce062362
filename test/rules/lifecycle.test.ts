import { afterEach, describe, expect, it } from 'vitest';
import { cleanup } from '../helpers/system.js';
import { ev, openRules, SECOND, T0, type RuleSystem } from './harness.js';

afterEach(cleanup);

const failedLogin = (user: string, at: number) => ev('login', user, at, { success: false });
const transfer = (user: string, at: number, amount = 100) => ev('transfer', user, at, { to_account: 'acc', amount });

const thresholdRule = (value: number) => ({
  id: 'many_transfers',
  description: 'N transfers, ever',
  key: ['user_id'],
  ordering: 'arrival',
  condition: { aggregate: { fn: 'count', eventTypes: ['transfer'], window: { type: 'lifetime' } }, op: '>=', value },
});
const sequenceRule = (within: string, description = 'a failed login, then a transfer') => ({
  id: 'fail_then_move',
  description,
  key: ['user_id'],
  ordering: 'arrival',
  condition: { sequence: { pattern: [{ name: 'fail', eventTypes: ['login'], where: 'event.attrs.success == false' }, { name: 'move', eventTypes: ['transfer'] }], within } },
});
const bigRule = { id: 'big_transfer', key: ['user_id'], ordering: 'arrival', condition: { sequence: { pattern: [{ name: 'big', eventTypes: ['transfer'], where: 'event.attrs.amount > 10000.0' }] } } };

async function put(rs: RuleSystem, doc: Record<string, unknown>, expectedVersion: number): Promise<void> {
  const res = await rs.app.inject({ method: 'PUT', url: `/v1/rules/${String(doc.id)}`, payload: doc });
  expect(res.statusCode, res.body).toBe(200);
  expect(res.json().version).toBe(expectedVersion);
}

const brief = (d: { ruleId: string; version: number; key: Record<string, unknown>; time: number; aggregates: Array<number | null> }) => [d.ruleId, d.version, d.key.user_id, (d.time - T0) / SECOND];

describe('rule lifecycle while events flow', () => {
  it('update (new version), stop, delete mid-stream; partial matches of a replaced computation are dropped', async () => {
    const rs = await openRules();
    await rs.addRule(thresholdRule(3));
    await rs.addRule(sequenceRule('30m'));
    await rs.addRule(bigRule);

    await rs.send(transfer('u1', 0), transfer('u1', 1 * SECOND), transfer('u1', 2 * SECOND, 20_000), failedLogin('u2', 3 * SECOND));
    expect((await rs.decisions('many_transfers')).map(brief)).toEqual([['many_transfers', 1, 'u1', 2]]);
    expect((await rs.decisions('big_transfer')).map(brief)).toEqual([['big_transfer', 1, 'u1', 2]]);
    expect(await rs.decisions('fail_then_move')).toEqual([]); // u2's partial match waits

    // Threshold 3 → 5: version 2. The aggregate is the same (events, function, window), so the key's
    // window carries on under the new threshold; only partial matches belong to a rule version.
    await put(rs, thresholdRule(5), 2);
    // within 30m → 20m: version 2; u2's partial match, begun under version 1, is dropped.
    await put(rs, sequenceRule('20m'), 2);
    const stopped = await rs.app.inject({ method: 'POST', url: '/v1/rules/big_transfer/stop' });
    expect(stopped.json()).toMatchObject({ status: 'offline', version: 1 });
    expect((await rs.rule('big_transfer')).runtime.state).toBe('stopped');

    await rs.send(transfer('u2', 4 * SECOND), failedLogin('u3', 5 * SECOND), transfer('u3', 6 * SECOND, 50_000));
    await rs.send(...[7, 8, 9, 10, 11].map((s) => transfer('u1', s * SECOND)));
    expect((await rs.decisions('fail_then_move')).map(brief)).toEqual([['fail_then_move', 2, 'u3', 6]]);
    // u1 had 3 transfers; the 4th (7 s) is below 5, the 5th (8 s) and later reach it.
    expect((await rs.decisions('many_transfers')).map(brief)).toEqual([
      ['many_transfers', 1, 'u1', 2],
      ['many_transfers', 2, 'u1', 8],
      ['many_transfers', 2, 'u1', 9],
      ['many_transfers', 2, 'u1', 10],
      ['many_transfers', 2, 'u1', 11],
    ]);
    expect((await rs.decisions('many_transfers'))[1]!.aggregates).toEqual([5]);
    // The stopped rule decided nothing on the 50 000 transfer.
    expect((await rs.decisions('big_transfer')).map(brief)).toEqual([['big_transfer', 1, 'u1', 2]]);

    // A new version that changes only the description keeps the computation, so the partial match of version 2 completes under version 3.
    await rs.send(failedLogin('u4', 12 * SECOND));
    await put(rs, sequenceRule('20m', 'reworded'), 3);
    await rs.send(transfer('u4', 13 * SECOND));
    expect((await rs.decisions('fail_then_move')).map(brief)).toEqual([
      ['fail_then_move', 2, 'u3', 6],
      ['fail_then_move', 3, 'u4', 13],
    ]);
    // Counters carry across versions.
    expect((await rs.rule('fail_then_move')).runtime.counters).toMatchObject({ version: 3, decisions: 2 });

    // Delete: the rule is gone (its decisions stay for audit), a new rule may reuse the id later.
    const deleted = await rs.app.inject({ method: 'DELETE', url: '/v1/rules/big_transfer' });
    expect(deleted.statusCode, deleted.body).toBe(200);
    const gone = await rs.app.inject({ method: 'GET', url: '/v1/rules/big_transfer' });
    expect(gone.statusCode).toBe(404);
    expect(gone.json().code).toBe('PRT_DEF_NOT_FOUND');
    expect(await rs.decisions('big_transfer')).toHaveLength(1);
    const list = (await rs.app.inject({ method: 'GET', url: '/v1/rules' })).json().items as Array<{ id: string }>;
    expect(list.map((r) => r.id).sort()).toEqual(['fail_then_move', 'many_transfers']);
  });

  it('export, then import into a fresh system: every version under its number, the same statuses, the latest version runs, and a second export is the same', async () => {
    const source = await openRules();
    await source.addRule(thresholdRule(3));
    await put(source, thresholdRule(5), 2);
    await put(source, thresholdRule(4), 3);
    await source.addRule(sequenceRule('30m'), { start: false }); // a draft
    await source.addRule(bigRule);
    expect((await source.app.inject({ method: 'POST', url: '/v1/rules/big_transfer/stop' })).statusCode).toBe(200); // offline
    const tag = { id: 'transfers_seen', kind: 'statistic', eventTypes: ['transfer'], aggregate: 'count', window: { type: 'lifetime' } };
    expect((await source.app.inject({ method: 'POST', url: '/v1/tags', payload: tag })).statusCode).toBe(201);
    expect((await source.app.inject({ method: 'PUT', url: '/v1/tags/transfers_seen', payload: { ...tag, description: 'every transfer' } })).json()).toMatchObject({ version: 2 });
    expect((await source.app.inject({ method: 'POST', url: '/v1/tags/transfers_seen/online' })).statusCode).toBe(200);
    const doc = await exportOf(source);
    expect(doc.definitions.map((d) => [d.id, d.status, d.version, d.versions.map((v) => v.version)])).toEqual([
      ['transfers_seen', 'online', 2, [1, 2]],
      ['big_transfer', 'offline', 1, [1]],
      ['fail_then_move', 'draft', 1, [1]],
      ['many_transfers', 'online', 3, [1, 2, 3]],
    ]);

    const target = await openRules();
    const imported = await target.app.inject({ method: 'POST', url: '/v1/definitions:import', payload: doc });
    expect(imported.statusCode, imported.body).toBe(200);
    expect(imported.json()).toEqual({ created: ['tag:transfers_seen', 'rule:big_transfer', 'rule:fail_then_move', 'rule:many_transfers'], updated: [], statusChanged: [], diverged: [] });
    // Every version under its number, with its document and creation time.
    for (const [kind, id] of [['rules', 'many_transfers'], ['tags', 'transfers_seen'], ['rules', 'big_transfer']] as const) {
      const versions = async (rs: RuleSystem): Promise<unknown> => (await rs.app.inject({ method: 'GET', url: `/v1/${kind}/${id}/versions` })).json().items;
      expect(await versions(target)).toEqual(await versions(source));
    }
    expect(await rulesOf(target)).toEqual(await rulesOf(source));
    expect((await target.rule('many_transfers')).version).toBe(3);
    // The engine runs version 3 (threshold 4).
    await target.send(...[0, 1, 2, 3].map((s) => transfer('u1', s * SECOND)));
    expect((await target.decisions('many_transfers')).map((d) => [d.version, (d.time - T0) / SECOND, d.aggregates[0]])).toEqual([[3, 3, 4]]);
    // A second export equals the first, but for its own time and revision.
    const again = await exportOf(target);
    const { exportedAt: _a, revision: _r, ...first } = doc as unknown as Record<string, unknown>;
    const { exportedAt: _b, revision: _s, ...second } = again as unknown as Record<string, unknown>;
    expect(second).toEqual(first);
    // Importing the same export again changes nothing.
    const twice = await target.app.inject({ method: 'POST', url: '/v1/definitions:import', payload: doc });
    expect(twice.json()).toEqual({ created: [], updated: [], statusChanged: [], diverged: [] });
  });

  // Import restores a state: a rule exported as offline is created and left offline, never run in between.
  it('export, then import: a stopped (offline) rule is imported as offline', async () => {
    const source = await openRules();
    await source.addRule(bigRule);
    expect((await source.app.inject({ method: 'POST', url: '/v1/rules/big_transfer/stop' })).statusCode).toBe(200);
    const target = await openRules();
    const imported = await target.app.inject({ method: 'POST', url: '/v1/definitions:import', payload: await exportOf(source) });
    expect(imported.statusCode, imported.body).toBe(200);
    expect(await rulesOf(target)).toEqual(await rulesOf(source));
  });
});

async function exportOf(rs: RuleSystem): Promise<{ definitions: Array<{ id: string; status: string; version: number; versions: Array<{ version: number }> }> }> {
  const exported = await rs.app.inject({ method: 'GET', url: '/v1/definitions:export' });
  expect(exported.statusCode).toBe(200);
  return exported.json();
}

/** Rules as GET /v1/rules lists them, without version and times, with the run-time state. */
async function rulesOf(rs: RuleSystem): Promise<Array<Record<string, unknown>>> {
  const items = (await rs.app.inject({ method: 'GET', url: '/v1/rules' })).json().items as Array<Record<string, unknown>>;
  return items
    .map(({ version: _v, createdAt: _c, updatedAt: _u, runtime, ...rest }): Record<string, unknown> => ({ ...rest, state: (runtime as { state: string }).state }))
    .sort((a, b) => String(a.id).localeCompare(String(b.id)));
}
