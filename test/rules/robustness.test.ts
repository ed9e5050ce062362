import { afterEach, describe, expect, it } from 'vitest';
import { cleanup } from '../helpers/system.js';
import { ev, ManualClock, MINUTE, openRules, SECOND, summary, T0 } from './harness.js';

afterEach(cleanup);

const transfer = (user: string, at: number, amount: number) => ev('transfer', user, at, { to_account: 'acc', amount });

describe('robustness', () => {
  it('a rule whose expression fails at run time is counted and degraded, with the reason, while another rule on the same events keeps deciding', async () => {
    // A manual clock: no time mark is written before the first events, so the partitions do not know the processing time yet when the errors happen.
    const clock = new ManualClock(T0 + 10 * MINUTE);
    const rs = await openRules({}, { clock });
    await rs.addRule({ id: 'reads_missing', key: ['user_id'], ordering: 'arrival', trigger: { eventTypes: ['transfer'] }, condition: { expr: 'event.attrs.no_such_field > 5.0' } });
    await rs.addRule({ id: 'big_amount', key: ['user_id'], ordering: 'arrival', trigger: { eventTypes: ['transfer'] }, condition: { expr: 'event.attrs.amount > 100.0' } });
    await rs.send(transfer('u1', 0, 500), transfer('u2', 1 * SECOND, 50), transfer('u3', 2 * SECOND, 700));
    await rs.mark();

    const bad = await rs.rule('reads_missing');
    expect(bad.runtime.state).toBe('degraded');
    expect(bad.runtime.reason).toContain('no_such_field');
    expect(bad.runtime.counters).toMatchObject({ evaluations: 3, errors: 3, decisions: 0 });
    expect(await rs.decisions('reads_missing')).toEqual([]);
    const good = await rs.rule('big_amount');
    expect(good.runtime.state).toBe('running');
    expect(good.runtime.counters).toMatchObject({ evaluations: 3, errors: 0, decisions: 2 });
    expect((await rs.decisions('big_amount')).map(summary)).toEqual([
      { rule: 'big_amount', version: 1, key: { user_id: 'u1' }, outcome: 'match', trigger: 'event', at: 0, matched: null },
      { rule: 'big_amount', version: 1, key: { user_id: 'u3' }, outcome: 'match', trigger: 'event', at: 2 * SECOND, matched: null },
    ]);
    // The list shows the same state.
    const list = (await rs.app.inject({ method: 'GET', url: '/v1/rules' })).json().items as Array<{ id: string; runtime: { state: string } }>;
    expect(Object.fromEntries(list.map((r) => [r.id, r.runtime.state]))).toEqual({ reads_missing: 'degraded', big_amount: 'running' });

    // Five minutes of processing time without a new error: running again.
    clock.advance(5 * MINUTE);
    await rs.mark();
    expect((await rs.rule('reads_missing')).runtime.state).toBe('running');
  });

  it('limits.maxPartialMatches bounds partial matches per key; the dropped ones are counted', async () => {
    const rs = await openRules();
    await rs.addRule({
      id: 'bounded',
      key: ['user_id'],
      ordering: 'arrival',
      limits: { maxPartialMatches: 2 },
      condition: {
        sequence: { pattern: [{ name: 'fail', eventTypes: ['login'], where: 'event.attrs.success == false' }, { name: 'move', eventTypes: ['transfer'] }], within: '10m' },
      },
    });
    await rs.send(...[0, 1, 2, 3, 4].map((s) => ev('login', 'u1', s * SECOND, { success: false })), transfer('u1', 5 * SECOND, 10));
    // Five partial matches started; the three earliest were dropped: only the last two complete.
    expect((await rs.decisions('bounded')).map((d) => d.matched!.fail!.map((e) => (e.time - T0) / SECOND))).toEqual([[3], [4]]);
    expect((await rs.rule('bounded')).runtime.counters).toMatchObject({ droppedPartialMatches: 3, decisions: 2 });
  });
});
