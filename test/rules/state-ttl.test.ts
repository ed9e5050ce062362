import { afterEach, describe, expect, it } from 'vitest';
import { cleanup } from '../helpers/system.js';
import { ev, MINUTE, openRules, SECOND, summary } from './harness.js';

afterEach(cleanup);

const failedLogin = (user: string, at: number) => ev('login', user, at, { success: false, device_id: 'd1' });
const transfer = (user: string, at: number, amount: number) => ev('transfer', user, at, { to_account: 'acc', amount });

/** A failed login followed, at any later time, by a transfer: a sequence without `within`. */
const failThenMove = (id: string, extra: Record<string, unknown> = {}) => ({
  id,
  key: ['user_id'],
  condition: { sequence: { pattern: [{ name: 'fail', eventTypes: ['login'], where: 'event.attrs.success == false' }, { name: 'move', eventTypes: ['transfer'] }] } },
  ...extra,
});

const USERS = Array.from({ length: 40 }, (_, i) => `u${i}`);

describe('state TTL of sequences', () => {
  it('limits.stateTtl frees every key whose partial match saw no event for that long, counts the partial matches, and a later event starts afresh', async () => {
    const rs = await openRules();
    await rs.addRule(failThenMove('ttl_seq', { limits: { stateTtl: '10m' } }));
    // Every key starts a partial match that never completes.
    await rs.send(...USERS.map((u, i) => failedLogin(u, i * SECOND)));
    // One more key completes its match before the TTL runs out.
    await rs.send(failedLogin('kept', 1 * MINUTE), transfer('kept', 9 * MINUTE, 10));
    await rs.advanceTo(9 * MINUTE + 10 * SECOND);
    expect((await rs.rule('ttl_seq')).runtime.counters).toMatchObject({ keys: USERS.length, decisions: 1, expiredPartialMatches: 0 });

    // Watermark past 10 minutes after every key's latest event.
    await rs.advanceTo(30 * MINUTE);
    expect((await rs.rule('ttl_seq')).runtime.counters).toMatchObject({ keys: 0, expiredPartialMatches: USERS.length, droppedPartialMatches: 0, decisions: 1 });

    // A transfer that would have completed the expired partial match completes nothing.
    await rs.send(transfer('u0', 31 * MINUTE, 10));
    await rs.advanceTo(40 * MINUTE);
    expect((await rs.decisions('ttl_seq')).map(summary)).toEqual([
      { rule: 'ttl_seq', version: 1, key: { user_id: 'kept' }, outcome: 'match', trigger: 'event', at: 9 * MINUTE, matched: { fail: [1 * MINUTE], move: [9 * MINUTE] } },
    ]);
    // A new partial match starts afresh and completes as usual.
    await rs.send(failedLogin('u0', 41 * MINUTE), transfer('u0', 42 * MINUTE, 10));
    await rs.advanceTo(50 * MINUTE);
    expect((await rs.decisions('ttl_seq')).map((d) => d.key)).toEqual([{ user_id: 'kept' }, { user_id: 'u0' }]);
  });

  it('an event after the TTL finds the partial match gone even before a timer has seen the key (arrival order)', async () => {
    const rs = await openRules();
    await rs.addRule(failThenMove('ttl_arrival', { ordering: 'arrival', limits: { stateTtl: '10m' } }));
    await rs.send(failedLogin('u1', 0), failedLogin('u2', 0));
    // Each key's next event comes straight after a long gap: no watermark in between.
    await rs.send(transfer('u1', 20 * MINUTE, 10), transfer('u2', 5 * MINUTE, 10));
    expect((await rs.decisions('ttl_arrival')).map((d) => [d.key.user_id, d.time - d.matched!.fail![0]!.time])).toEqual([['u2', 5 * MINUTE]]);
    expect((await rs.rule('ttl_arrival')).runtime.counters).toMatchObject({ expiredPartialMatches: 1, decisions: 1 });
  });

  it('rules sharing one sequence computation each expire their partial matches at their own stateTtl', async () => {
    const rs = await openRules();
    await rs.addRule(failThenMove('short_ttl', { limits: { stateTtl: '10m' } }));
    await rs.addRule(failThenMove('long_ttl', { limits: { stateTtl: '1h' } }));
    expect((await rs.rule('long_ttl')).runtime.counters).toMatchObject({ sharedWith: 2 });
    await rs.send(failedLogin('u1', 0), failedLogin('u2', 0));
    await rs.advanceTo(30 * MINUTE);
    expect((await rs.rule('short_ttl')).runtime.counters).toMatchObject({ expiredPartialMatches: 2, keys: 2 });
    expect((await rs.rule('long_ttl')).runtime.counters).toMatchObject({ expiredPartialMatches: 0, keys: 2 });
    await rs.send(transfer('u1', 31 * MINUTE, 10));
    await rs.advanceTo(2 * 60 * MINUTE);
    expect(await rs.decisions('short_ttl')).toEqual([]);
    expect((await rs.decisions('long_ttl')).map((d) => d.key)).toEqual([{ user_id: 'u1' }]);
    // u2's partial match outlived the longer TTL too; u1's completed.
    expect((await rs.rule('long_ttl')).runtime.counters).toMatchObject({ expiredPartialMatches: 1, keys: 0 });
  });

  it('engine.defaultRuleStateTtlMs bounds a sequence without `within` or `limits.stateTtl`; 0 keeps its partial matches', async () => {
    const bounded = await openRules({ 'engine.defaultRuleStateTtlMs': 10 * MINUTE });
    await bounded.addRule(failThenMove('no_limits'));
    await bounded.send(failedLogin('u1', 0), failedLogin('u2', 0));
    await bounded.advanceTo(30 * MINUTE);
    expect((await bounded.rule('no_limits')).runtime.counters).toMatchObject({ keys: 0, expiredPartialMatches: 2 });

    const unbounded = await openRules({ 'engine.defaultRuleStateTtlMs': 0 });
    await unbounded.addRule(failThenMove('no_limits'));
    await unbounded.send(failedLogin('u1', 0), failedLogin('u2', 0));
    await unbounded.advanceTo(30 * MINUTE);
    expect((await unbounded.rule('no_limits')).runtime.counters).toMatchObject({ keys: 2, expiredPartialMatches: 0 });
    await unbounded.send(transfer('u1', 31 * MINUTE, 10));
    await unbounded.advanceTo(40 * MINUTE);
    expect((await unbounded.decisions('no_limits')).map((d) => d.key)).toEqual([{ user_id: 'u1' }]);
  });
});
