import { afterEach, describe, expect, it } from 'vitest';
import { cleanup } from '../helpers/system.js';
import { ev, MINUTE, openRules, SECOND, summary } from './harness.js';

afterEach(cleanup);

const failedLogin = (user: string, at: number) => ev('login', user, at, { success: false });
const transfer = (user: string, at: number) => ev('transfer', user, at, { to_account: 'acc', amount: 10 });
const order = (user: string, at: number) => ev('order_created', user, at, { order_id: `o-${user}`, amount: 10, item_count: 1 });

const rules = [
  {
    id: 'fail_then_move',
    key: ['user_id'],
    condition: { sequence: { pattern: [{ name: 'fail', eventTypes: ['login'], where: 'event.attrs.success == false' }, { name: 'move', eventTypes: ['transfer'] }], within: '30m' } },
  },
  {
    id: 'unpaid',
    key: ['user_id'],
    condition: {
      sequence: {
        pattern: [
          { name: 'created', eventTypes: ['order_created'] },
          { name: 'paid', eventTypes: ['payment'], contiguity: 'notFollowedBy' },
        ],
        within: '15m',
      },
    },
  },
];

describe.each([
  ['with a final checkpoint', true],
  ['without a final checkpoint (the log replays)', false],
])('rule state survives a restart, %s', (_name, checkpoint) => {
  it('a partial match begun before close completes after reopening, with exactly one decision each', async () => {
    // Checkpoints only when asked, so what the reopened engine replays is known.
    const first = await openRules({ 'engine.checkpointIntervalMs': 3_600_000 });
    for (const rule of rules) await first.addRule(rule);
    // "done" completes before the restart; "pending", "late_pending" and "unpaid" leave partial matches.
    await first.send(failedLogin('done', 0), transfer('done', 1 * SECOND), failedLogin('pending', 2 * SECOND), order('unpaid', 3 * SECOND));
    // A checkpoint while those events wait in the ordering buffers; everything after it is only in the log.
    await first.system.engine.checkpoint();
    await first.advanceTo(10 * SECOND);
    await first.send(failedLogin('late_pending', 20 * SECOND));
    await first.advanceTo(30 * SECOND);
    const before = await first.decisions('fail_then_move');
    expect(before.map(summary)).toEqual([
      { rule: 'fail_then_move', version: 1, key: { user_id: 'done' }, outcome: 'match', trigger: 'event', at: 1 * SECOND, matched: { fail: [0], move: [1 * SECOND] } },
    ]);
    await first.system.close({ checkpoint });

    const second = await openRules({}, { config: first.config });
    await second.settle();
    const replayed = second.system.engine.stats().partitions.reduce((n, p) => n + p.events, 0);
    if (checkpoint) expect(replayed).toBe(0);
    // The buffered events come from the checkpoint; the records after it (two bystander events, late_pending's login, marks) replay,
    // and releasing the buffers on replay decides "done" again.
    else expect(replayed).toBe(3);
    // The replay (if any) repeats the decision of "done" under the same id: it is stored once.
    expect((await second.decisions('fail_then_move')).map((d) => d.id)).toEqual(before.map((d) => d.id));
    await second.send(transfer('pending', 1 * MINUTE), transfer('late_pending', 1 * MINUTE + SECOND));
    await second.advanceTo(16 * MINUTE);
    expect((await second.decisions('fail_then_move')).map(summary)).toEqual([
      { rule: 'fail_then_move', version: 1, key: { user_id: 'done' }, outcome: 'match', trigger: 'event', at: 1 * SECOND, matched: { fail: [0], move: [1 * SECOND] } },
      { rule: 'fail_then_move', version: 1, key: { user_id: 'pending' }, outcome: 'match', trigger: 'event', at: 1 * MINUTE, matched: { fail: [2 * SECOND], move: [1 * MINUTE] } },
      { rule: 'fail_then_move', version: 1, key: { user_id: 'late_pending' }, outcome: 'match', trigger: 'event', at: 1 * MINUTE + SECOND, matched: { fail: [20 * SECOND], move: [1 * MINUTE + SECOND] } },
    ]);
    // The absence timer armed before the restart fires after it.
    expect((await second.decisions('unpaid')).map(summary)).toEqual([
      { rule: 'unpaid', version: 1, key: { user_id: 'unpaid' }, outcome: 'match', trigger: 'timer', at: 15 * MINUTE + 3 * SECOND, matched: { created: [3 * SECOND] } },
    ]);
    const total = await second.app.inject({ method: 'GET', url: '/v1/decisions?limit=1000' });
    expect(total.json().items).toHaveLength(4);
  });
});

describe('a rule stopped and started again starts without its old partial matches, across a restart too', () => {
  it('the key is snapshotted again when the rule leaves, so a restore cannot bring the dropped partial match back', async () => {
    const first = await openRules({ 'engine.checkpointIntervalMs': 3_600_000 });
    await first.addRule(rules[0]!);
    // A second rule of the same key space keeps the key's state alive while the first is stopped.
    await first.addRule({ id: 'many_logins', key: ['user_id'], condition: { aggregate: { fn: 'count', eventTypes: ['login'], window: { type: 'lifetime' } }, op: '>=', value: 1000 } });
    await first.send(failedLogin('u', 0));
    await first.advanceTo(10 * SECOND); // the login leaves the ordering buffer: a partial match of fail_then_move waits
    await first.system.engine.checkpoint(); // its snapshot holds that partial match
    await first.system.definitions.setRuleStatus('fail_then_move', 'offline');
    await first.settle();
    await first.system.definitions.setRuleStatus('fail_then_move', 'online'); // same version, same computation, no partial match
    await first.settle();
    await first.system.engine.checkpoint();
    await first.system.close({ checkpoint: false });

    const second = await openRules({}, { config: first.config });
    await second.settle();
    await second.send(transfer('u', 1 * MINUTE));
    await second.advanceTo(2 * MINUTE);
    expect(await second.decisions('fail_then_move')).toEqual([]);
    // The rule itself runs: a new failed login then a transfer match.
    await second.send(failedLogin('u', 3 * MINUTE), transfer('u', 4 * MINUTE));
    await second.advanceTo(5 * MINUTE);
    expect((await second.decisions('fail_then_move')).map(summary)).toEqual([
      { rule: 'fail_then_move', version: 1, key: { user_id: 'u' }, outcome: 'match', trigger: 'event', at: 4 * MINUTE, matched: { fail: [3 * MINUTE], move: [4 * MINUTE] } },
    ]);
  });
});
