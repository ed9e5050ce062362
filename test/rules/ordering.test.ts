import { afterEach, describe, expect, it } from 'vitest';
import { cleanup } from '../helpers/system.js';
import { ev, openRules, SECOND, summary, T0 } from './harness.js';

afterEach(cleanup);

const failedLogin = (user: string, at: number) => ev('login', user, at, { success: false });
const transfer = (user: string, at: number, amount: number) => ev('transfer', user, at, { to_account: 'acc', amount });
const nextPattern = {
  sequence: {
    pattern: [
      { name: 'fail', eventTypes: ['login'], where: 'event.attrs.success == false' },
      { name: 'move', eventTypes: ['transfer'], contiguity: 'next' },
    ],
    within: '1m',
  },
};

describe('event-time order versus arrival order', () => {
  it('an out-of-order pair is matched in time order by an event-time rule, not by an arrival rule; arrival rules decide before the watermark', async () => {
    const rs = await openRules();
    await rs.addRule({ id: 'by_time', key: ['user_id'], condition: nextPattern });
    await rs.addRule({ id: 'by_arrival', key: ['user_id'], ordering: 'arrival', condition: nextPattern });
    // u1's transfer arrives before the failed login that happened a second earlier.
    await rs.send(transfer('u1', 1 * SECOND, 100), failedLogin('u1', 0));
    // u2's arrive in order: the arrival rule decides at once, the event-time rule once the watermark passes.
    await rs.send(failedLogin('u2', 2 * SECOND), transfer('u2', 3 * SECOND, 100));
    expect((await rs.decisions('by_arrival')).map(summary)).toEqual([
      { rule: 'by_arrival', version: 1, key: { user_id: 'u2' }, outcome: 'match', trigger: 'event', at: 3 * SECOND, matched: { fail: [2 * SECOND], move: [3 * SECOND] } },
    ]);
    expect(await rs.decisions('by_time')).toEqual([]);
    await rs.advanceTo(8 * SECOND);
    expect((await rs.decisions('by_time')).map(summary)).toEqual([
      { rule: 'by_time', version: 1, key: { user_id: 'u1' }, outcome: 'match', trigger: 'event', at: 1 * SECOND, matched: { fail: [0], move: [1 * SECOND] } },
      { rule: 'by_time', version: 1, key: { user_id: 'u2' }, outcome: 'match', trigger: 'event', at: 3 * SECOND, matched: { fail: [2 * SECOND], move: [3 * SECOND] } },
    ]);
    expect((await rs.decisions('by_arrival')).map((d) => d.key.user_id)).toEqual(['u2']);
  });

  it('an event behind the watermark is dropped by an event-time rule and counted as late; one exactly at it is in order; an arrival rule takes both', async () => {
    const rs = await openRules();
    const big = { sequence: { pattern: [{ name: 'big', eventTypes: ['transfer'], where: 'event.attrs.amount > 10000.0' }] } };
    await rs.addRule({ id: 'big_by_time', key: ['user_id'], condition: big });
    await rs.addRule({ id: 'big_by_arrival', key: ['user_id'], ordering: 'arrival', condition: big });
    await rs.send(transfer('u1', 0, 20_000));
    await rs.advanceTo(30 * SECOND); // watermark 25 s in every partition
    // 10 s behind the watermark (within the engine's allowed lateness, so the partition applies it), and exactly at it.
    await rs.send(transfer('u1', 15 * SECOND, 30_000), transfer('u2', 25 * SECOND, 40_000));
    await rs.advanceTo(60 * SECOND);
    expect((await rs.decisions('big_by_time')).map(summary)).toEqual([
      { rule: 'big_by_time', version: 1, key: { user_id: 'u1' }, outcome: 'match', trigger: 'event', at: 0, matched: { big: [0] } },
      { rule: 'big_by_time', version: 1, key: { user_id: 'u2' }, outcome: 'match', trigger: 'event', at: 25 * SECOND, matched: { big: [25 * SECOND] } },
    ]);
    expect((await rs.decisions('big_by_arrival')).map((d) => [d.key.user_id, d.time - T0])).toEqual([
      ['u1', 0],
      ['u1', 15 * SECOND],
      ['u2', 25 * SECOND],
    ]);
    const view = await rs.rule('big_by_time');
    expect(view.runtime.state).toBe('running');
    expect(view.runtime.counters).toMatchObject({ late: 1, decisions: 2 });
    expect((await rs.rule('big_by_arrival')).runtime.counters).toMatchObject({ late: 0, decisions: 3 });
  });

  it('with engine.outOfOrdernessMs 0 (watermark = stream time) an event-time rule decides each event as it comes', async () => {
    const rs = await openRules({ 'engine.outOfOrdernessMs': 0 });
    await rs.addRule({ id: 'fail_then_move', key: ['user_id'], condition: nextPattern });
    await rs.send(failedLogin('u1', 0), transfer('u1', 1 * SECOND, 100));
    // No later event is needed: the newest event is at the watermark, not behind it.
    expect((await rs.decisions('fail_then_move')).map(summary)).toEqual([
      { rule: 'fail_then_move', version: 1, key: { user_id: 'u1' }, outcome: 'match', trigger: 'event', at: 1 * SECOND, matched: { fail: [0], move: [1 * SECOND] } },
    ]);
    expect((await rs.rule('fail_then_move')).runtime.counters).toMatchObject({ late: 0 });
  });
});
