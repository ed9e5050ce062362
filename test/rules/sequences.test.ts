import { afterEach, describe, expect, it } from 'vitest';
import { cleanup } from '../helpers/system.js';
import { ev, ManualClock, MINUTE, openRules, SECOND, summary, T0 } from './harness.js';

afterEach(cleanup);

const failedLogin = (user: string, at: number) => ev('login', user, at, { success: false, device_id: 'd1' });
const goodLogin = (user: string, at: number) => ev('login', user, at, { success: true, device_id: 'd1' });
const transfer = (user: string, at: number, amount: number) => ev('transfer', user, at, { to_account: 'acc', amount });

describe('sequences, decided in event-time order', () => {
  it('did A: one decision per event that satisfies the stage', async () => {
    const rs = await openRules();
    await rs.addRule({ id: 'big_transfer', key: ['user_id'], condition: { sequence: { pattern: [{ name: 'big', eventTypes: ['transfer'], where: 'event.attrs.amount > 10000.0' }] } } });
    await rs.send(transfer('u1', 0, 500), transfer('u1', 10 * SECOND, 20_000));
    // Nothing is decided before the watermark (stream time − 5 s) passes the event.
    expect(await rs.decisions('big_transfer')).toEqual([]);
    await rs.send(transfer('u2', 20 * SECOND, 15_000));
    await rs.advanceTo(26 * SECOND);
    const all = await rs.decisions('big_transfer');
    expect(all.map(summary)).toEqual([
      { rule: 'big_transfer', version: 1, key: { user_id: 'u1' }, outcome: 'match', trigger: 'event', at: 10 * SECOND, matched: { big: [10 * SECOND] } },
      { rule: 'big_transfer', version: 1, key: { user_id: 'u2' }, outcome: 'match', trigger: 'event', at: 20 * SECOND, matched: { big: [20 * SECOND] } },
    ]);
    expect(all[1]!.entity).toBe('u2');
    expect(all[1]!.event).toMatchObject({ type: 'transfer', key: 'u2', attrs: { amount: 15_000, to_account: 'acc' } });
    expect(all[1]!.matched!.big![0]!.attrs.amount).toBe(15_000);
  });
});

describe('contiguity: next, followedBy, followedByAny over the same stream', () => {
  it('an intervening event of a type the pattern reads breaks next; events of other types are not seen', async () => {
    const rs = await openRules();
    const pattern = (contiguity: string) => [
      { name: 'fail', eventTypes: ['login'], where: 'event.attrs.success == false' },
      { name: 'move', eventTypes: ['transfer'], contiguity },
    ];
    for (const c of ['next', 'followedBy', 'followedByAny']) {
      await rs.addRule({ id: `seq_${c.toLowerCase()}`, key: ['user_id'], condition: { sequence: { pattern: pattern(c) } } });
    }
    await rs.send(
      // u1: a successful login (a login, which the pattern reads) comes between the failure and the transfers.
      failedLogin('u1', 0),
      goodLogin('u1', 1 * SECOND),
      transfer('u1', 2 * SECOND, 100),
      transfer('u1', 3 * SECOND, 200),
      // u2: a page view (a type no stage reads) comes between: the rule never sees it.
      failedLogin('u2', 0),
      ev('page_view', 'u2', 1 * SECOND, { page: 'home', channel: 'app' }),
      transfer('u2', 2 * SECOND, 300),
    );
    await rs.advanceTo(10 * SECOND);
    const m = (rule: string, user: string, fail: number, move: number) => ({
      rule, version: 1, key: { user_id: user }, outcome: 'match', trigger: 'event', at: move, matched: { fail: [fail], move: [move] },
    });
    expect((await rs.decisions('seq_next')).map(summary)).toEqual([m('seq_next', 'u2', 0, 2 * SECOND)]);
    expect((await rs.decisions('seq_followedby')).map(summary)).toEqual([m('seq_followedby', 'u1', 0, 2 * SECOND), m('seq_followedby', 'u2', 0, 2 * SECOND)]);
    const any = (await rs.decisions('seq_followedbyany')).map(summary);
    expect(any).toHaveLength(3);
    expect(any).toEqual(
      expect.arrayContaining([m('seq_followedbyany', 'u1', 0, 2 * SECOND), m('seq_followedbyany', 'u1', 0, 3 * SECOND), m('seq_followedbyany', 'u2', 0, 2 * SECOND)]),
    );
  });
});

describe('within, timeouts and absences', () => {
  const pattern = [
    { name: 'fail', eventTypes: ['login'], where: 'event.attrs.success == false' },
    { name: 'move', eventTypes: ['transfer'] },
  ];

  it('A then B within N: inside matches; at or past N does not; on: "timeout" reports the partial match when N runs out, by timer', async () => {
    const rs = await openRules();
    await rs.addRule({ id: 'within_10m', key: ['user_id'], condition: { sequence: { pattern, within: '10m' } } });
    await rs.addRule({ id: 'timed_out', key: ['user_id'], condition: { sequence: { pattern, within: '10m' }, on: 'timeout' } });
    // Within a partition the watermark is shared by all keys: events are sent in time order.
    await rs.send(failedLogin('inside', 0), failedLogin('edge', 0), failedLogin('outside', 0));
    // "quiet" starts a partial match and then sends nothing at all.
    await rs.send(failedLogin('quiet', 2 * MINUTE));
    await rs.send(transfer('inside', 10 * MINUTE - 1, 100), transfer('edge', 10 * MINUTE, 100), transfer('outside', 11 * MINUTE, 100));
    await rs.advanceTo(12 * MINUTE + 5 * SECOND - 1);
    expect((await rs.decisions('within_10m')).map(summary)).toEqual([
      { rule: 'within_10m', version: 1, key: { user_id: 'inside' }, outcome: 'match', trigger: 'event', at: 10 * MINUTE - 1, matched: { fail: [0], move: [10 * MINUTE - 1] } },
    ]);
    const timeout = (user: string, start: number) => ({ rule: 'timed_out', version: 1, key: { user_id: user }, outcome: 'timeout', at: start + 10 * MINUTE, matched: { fail: [start] } });
    // "edge" and "outside" time out at 10 min (their transfers came too late); the transfer exactly at 10 min is too late too.
    const early = await rs.decisions('timed_out');
    expect(early.map(summary).map(({ trigger: _t, ...rest }) => rest)).toEqual([timeout('edge', 0), timeout('outside', 0)]);
    // "quiet" has no further event: the watermark (stream time − 5 s) reaching 12 min fires its timer, not before.
    await rs.advanceTo(12 * MINUTE + 5 * SECOND);
    const all = await rs.decisions('timed_out');
    expect(all).toHaveLength(3);
    const quiet = all.find((d) => d.key.user_id === 'quiet')!;
    expect(summary(quiet)).toEqual({ ...timeout('quiet', 2 * MINUTE), trigger: 'timer' });
    expect(quiet.event).toBeNull();
    expect(quiet.entity).toBe('quiet');
  });

  it('A and not B within N, decided by an event-time timer with no further event of the key', async () => {
    const rs = await openRules();
    await rs.addRule({
      id: 'unpaid_order',
      key: ['user_id'],
      condition: {
        sequence: {
          pattern: [
            { name: 'created', eventTypes: ['order_created'] },
            { name: 'paid', eventTypes: ['payment'], contiguity: 'notFollowedBy', where: 'event.attrs.order_id == matched.created[0].attrs.order_id && event.attrs.success' },
          ],
          within: '15m',
        },
      },
    });
    const order = (user: string, id: string, at: number) => ev('order_created', user, at, { order_id: id, amount: 99.5, item_count: 1 });
    const payment = (user: string, id: string, at: number, success = true) => ev('payment', user, at, { order_id: id, amount: 99.5, success });
    await rs.send(order('never_paid', 'o1', 0), order('paid', 'o2', 0), order('paid_other', 'o3', 0), order('failed_payment', 'o4', 0));
    await rs.send(payment('paid', 'o2', 5 * MINUTE), payment('paid_other', 'o9', 5 * MINUTE), payment('failed_payment', 'o4', 6 * MINUTE, false));
    await rs.advanceTo(15 * MINUTE + 5 * SECOND - 1);
    expect(await rs.decisions('unpaid_order')).toEqual([]);
    await rs.advanceTo(15 * MINUTE + 5 * SECOND);
    const decided = await rs.decisions('unpaid_order');
    const absent = (user: string) => ({ rule: 'unpaid_order', version: 1, key: { user_id: user }, outcome: 'match', trigger: 'timer', at: 15 * MINUTE, matched: { created: [0] } });
    expect(decided.map(summary)).toEqual(expect.arrayContaining([absent('never_paid'), absent('paid_other'), absent('failed_payment')]));
    expect(decided).toHaveLength(3);
    expect(decided.find((d) => d.key.user_id === 'never_paid')!.matched!.created![0]!.attrs.order_id).toBe('o1');
  });
});

describe('processing time', () => {
  it('A and not B within N, decided by a processing-time timer that marks carrying the clock fire', async () => {
    const P0 = T0 + 60 * MINUTE;
    const clock = new ManualClock(P0);
    const rs = await openRules({}, { clock });
    await rs.addRule({
      id: 'unpaid_processing',
      key: ['user_id'],
      time: 'processing',
      condition: {
        sequence: {
          pattern: [
            { name: 'created', eventTypes: ['order_created'] },
            { name: 'paid', eventTypes: ['payment'], contiguity: 'notFollowedBy', where: 'event.attrs.order_id == matched.created[0].attrs.order_id' },
          ],
          within: '15m',
        },
      },
    });
    await rs.mark();
    // Event times are 20 min off the processing times: a processing-time rule only looks at when events are processed.
    const at = (offset: number) => P0 - 20 * MINUTE - T0 + offset;
    await rs.send(
      ev('order_created', 'never_paid', at(0), { order_id: 'o1', amount: 10, item_count: 1 }),
      ev('order_created', 'paid', at(0), { order_id: 'o2', amount: 10, item_count: 1 }),
    );
    clock.set(P0 + 5 * MINUTE);
    await rs.mark();
    await rs.send(ev('payment', 'paid', at(1), { order_id: 'o2', amount: 10, success: true }));
    clock.set(P0 + 15 * MINUTE - 1);
    await rs.mark();
    expect(await rs.decisions('unpaid_processing')).toEqual([]);
    clock.set(P0 + 15 * MINUTE);
    await rs.mark();
    const decided = await rs.decisions('unpaid_processing');
    expect(decided).toHaveLength(1);
    expect(decided[0]).toMatchObject({ ruleId: 'unpaid_processing', version: 1, key: { user_id: 'never_paid' }, entity: 'never_paid', outcome: 'match', trigger: 'timer', time: P0 + 15 * MINUTE, processingTime: P0 + 15 * MINUTE });
    // In a processing-time rule an event's time is the processing time it was taken at.
    expect(decided[0]!.matched!.created!.map((e) => [e.time, e.attrs.order_id])).toEqual([[P0, 'o1']]);
  });

  // The partition drops an event more than engine.allowedLatenessMs behind its event-time
  // watermark for tags, but a processing-time rule still takes it.
  it('a processing-time rule sees an event whose event time is far behind the watermark', async () => {
    const P0 = T0 + 60 * MINUTE;
    const clock = new ManualClock(P0);
    const rs = await openRules({}, { clock });
    await rs.addRule({
      id: 'unpaid_processing',
      key: ['user_id'],
      time: 'processing',
      condition: {
        sequence: {
          pattern: [
            { name: 'created', eventTypes: ['order_created'] },
            { name: 'paid', eventTypes: ['payment'], contiguity: 'notFollowedBy', where: 'event.attrs.order_id == matched.created[0].attrs.order_id' },
          ],
          within: '15m',
        },
      },
    });
    await rs.mark();
    await rs.send(ev('order_created', 'paid', 30 * MINUTE, { order_id: 'o2', amount: 10, item_count: 1 }));
    clock.set(P0 + 5 * MINUTE);
    await rs.mark();
    // The payment's event time is 30 min behind the order's (a device with a wrong clock).
    await rs.send(ev('payment', 'paid', 0, { order_id: 'o2', amount: 10, success: true }));
    clock.set(P0 + 15 * MINUTE);
    await rs.mark();
    expect(await rs.decisions('unpaid_processing')).toEqual([]);
  });
});

describe('did not do A within a window', () => {
  it('count == 0 over a window, evaluated when the trigger event comes', async () => {
    const rs = await openRules();
    await rs.addRule({
      id: 'login_without_payment',
      key: ['user_id'],
      trigger: { eventTypes: ['login'] },
      condition: { aggregate: { fn: 'count', eventTypes: ['payment'], window: { type: 'sliding', size: '1h', slide: '5m' } }, op: '==', value: 0 },
    });
    await rs.send(
      ev('payment', 'payer', 0, { order_id: 'o1', amount: 5, success: true }),
      ev('payment', 'old_payer', 0, { order_id: 'o2', amount: 5, success: true }),
    );
    await rs.send(goodLogin('payer', 30 * MINUTE), goodLogin('never_paid', 30 * MINUTE));
    await rs.send(goodLogin('old_payer', 70 * MINUTE));
    await rs.advanceTo(80 * MINUTE);
    const none = (user: string, at: number) => ({ rule: 'login_without_payment', version: 1, key: { user_id: user }, outcome: 'match', trigger: 'event', at, matched: null });
    const decided = await rs.decisions('login_without_payment');
    expect(decided.map(summary)).toEqual([none('never_paid', 30 * MINUTE), none('old_payer', 70 * MINUTE)]);
    expect(decided.map((d) => d.aggregates)).toEqual([[0], [0]]);
  });
});

describe('repetitions, iterative conditions and after-match skip', () => {
  it('times n, times {min,max}, oneOrMore with until, optional, inner consecutive; conditions reading matched events; noSkip versus skipPastLastEvent', async () => {
    const rs = await openRules();
    const fail = { name: 'fail', eventTypes: ['login'], where: 'event.attrs.success == false' };
    await rs.addRule({ id: 'times3', key: ['user_id'], condition: { sequence: { pattern: [{ ...fail, times: 3 }], within: '2m' } } });
    await rs.addRule({ id: 'times3_skip', key: ['user_id'], condition: { sequence: { pattern: [{ ...fail, times: 3 }], within: '2m', skip: 'skipPastLastEvent' } } });
    await rs.addRule({ id: 'times_range', key: ['user_id'], condition: { sequence: { pattern: [{ ...fail, times: { min: 2, max: 3 } }, { name: 'move', eventTypes: ['transfer'] }] } } });
    await rs.addRule({
      id: 'until_big',
      key: ['user_id'],
      condition: {
        sequence: {
          pattern: [
            { name: 'login', eventTypes: ['login'], where: 'event.attrs.success' },
            { name: 'carts', eventTypes: ['add_to_cart'], oneOrMore: true, until: 'event.attrs.price >= 1000.0' },
            { name: 'big', eventTypes: ['add_to_cart'], where: 'event.attrs.price >= 1000.0' },
          ],
        },
      },
    });
    await rs.addRule({
      id: 'optional_coupon',
      key: ['user_id'],
      condition: {
        sequence: {
          pattern: [
            { name: 'created', eventTypes: ['order_created'] },
            { name: 'coupon', eventTypes: ['coupon_claim'], optional: true },
            { name: 'paid', eventTypes: ['payment'] },
          ],
        },
      },
    });
    const loop = (inner: string) => ({
      sequence: {
        pattern: [
          { name: 'click', eventTypes: ['click'] },
          { name: 'cheap', eventTypes: ['add_to_cart'], where: 'event.attrs.price < 100.0', oneOrMore: true, inner },
          { name: 'order', eventTypes: ['order_created'] },
        ],
      },
    });
    await rs.addRule({ id: 'loop_relaxed', key: ['user_id'], condition: loop('relaxed') });
    await rs.addRule({ id: 'loop_consecutive', key: ['user_id'], condition: loop('consecutive') });
    const larger = (skip: string) => ({
      sequence: {
        pattern: [
          { name: 'first', eventTypes: ['transfer'] },
          { name: 'second', eventTypes: ['transfer'], where: 'event.attrs.amount > matched.first[0].attrs.amount' },
        ],
        within: '10m',
        skip,
      },
    });
    await rs.addRule({ id: 'larger_noskip', key: ['user_id'], condition: larger('noSkip') });
    await rs.addRule({ id: 'larger_skip', key: ['user_id'], condition: larger('skipPastLastEvent') });

    // Each user's story starts at its own base, later than the previous one, so no event is behind a watermark.
    const A = 0;
    await rs.send(...[0, 10, 20, 30, 40, 50].map((s) => failedLogin('six', A + s * SECOND)));
    const B = 10 * MINUTE;
    await rs.send(failedLogin('slow', B), failedLogin('slow', B + MINUTE), failedLogin('slow', B + 2 * MINUTE));
    const C = 20 * MINUTE;
    await rs.send(failedLogin('range', C), failedLogin('range', C + 10 * SECOND), failedLogin('range', C + 20 * SECOND), transfer('range', C + 30 * SECOND, 1));
    const D = 30 * MINUTE;
    const cart = (user: string, at: number, price: number) => ev('add_to_cart', user, at, { item_id: `i${price}`, price, quantity: 1 });
    await rs.send(goodLogin('shopper', D), cart('shopper', D + 1 * SECOND, 10), cart('shopper', D + 2 * SECOND, 20), cart('shopper', D + 3 * SECOND, 1000), cart('shopper', D + 4 * SECOND, 2000));
    const E = 40 * MINUTE;
    await rs.send(
      ev('order_created', 'opt', E, { order_id: 'o1', amount: 30, item_count: 1 }),
      ev('coupon_claim', 'opt', E + SECOND, { campaign_id: 'c1', coupon_id: 'k1', device_id: 'd1' }),
      ev('payment', 'opt', E + 2 * SECOND, { order_id: 'o1', amount: 30, success: true }),
    );
    const F = 50 * MINUTE;
    await rs.send(
      ev('click', 'looper', F, { item_id: 'i1' }),
      cart('looper', F + 1 * SECOND, 500),
      cart('looper', F + 2 * SECOND, 10),
      cart('looper', F + 3 * SECOND, 20),
      cart('looper', F + 4 * SECOND, 30),
      cart('looper', F + 5 * SECOND, 500),
      cart('looper', F + 6 * SECOND, 40),
      ev('order_created', 'looper', F + 7 * SECOND, { order_id: 'o2', amount: 100, item_count: 4 }),
    );
    const G = 60 * MINUTE;
    await rs.send(transfer('grow', G, 100), transfer('grow', G + MINUTE, 50), transfer('grow', G + 2 * MINUTE, 200));
    await rs.advanceTo(G + 3 * MINUTE);

    /** Matched events of a rule's decisions for one user, as `stage: [offset from base in s]`. */
    const matches = async (rule: string, user: string, base: number) =>
      (await rs.decisions(rule))
        .filter((d) => d.key.user_id === user)
        .map((d) => {
          expect(d).toMatchObject({ ruleId: rule, version: 1, outcome: 'match', trigger: 'event' });
          return Object.fromEntries(Object.entries(d.matched!).map(([stage, events]) => [stage, events.map((e) => (e.time - (base + T0)) / SECOND)]));
        });
    const sorted = <T>(list: T[]) => [...list].sort((a, b) => (JSON.stringify(a) < JSON.stringify(b) ? -1 : 1));

    // times(3), relaxed inner contiguity: four overlapping matches over six events; skipPastLastEvent: two.
    expect(await matches('times3', 'six', A)).toEqual([{ fail: [0, 10, 20] }, { fail: [10, 20, 30] }, { fail: [20, 30, 40] }, { fail: [30, 40, 50] }]);
    expect(await matches('times3_skip', 'six', A)).toEqual([{ fail: [0, 10, 20] }, { fail: [30, 40, 50] }]);
    // Three failures spanning exactly 2 min are not within 2 min.
    expect(await matches('times3', 'slow', B)).toEqual([]);
    // times {2,3} followed by a transfer.
    expect(sorted(await matches('times_range', 'range', C))).toEqual(sorted([{ fail: [0, 10], move: [30] }, { fail: [0, 10, 20], move: [30] }, { fail: [10, 20], move: [30] }]));
    // oneOrMore until price >= 1000: the 1000 ends the loop (not taken by it) and completes; nothing more after it.
    expect(sorted(await matches('until_big', 'shopper', D))).toEqual(sorted([{ login: [0], carts: [1, 2], big: [3] }, { login: [0], carts: [1], big: [3] }]));
    // An optional stage: with and without the coupon.
    expect(sorted(await matches('optional_coupon', 'opt', E))).toEqual(sorted([{ created: [0], coupon: [1], paid: [2] }, { created: [0], paid: [2] }]));
    // Inner contiguity: relaxed skips the expensive cart inside the loop, consecutive stops at it.
    expect(sorted(await matches('loop_relaxed', 'looper', F))).toEqual(
      sorted([{ click: [0], cheap: [2], order: [7] }, { click: [0], cheap: [2, 3], order: [7] }, { click: [0], cheap: [2, 3, 4], order: [7] }, { click: [0], cheap: [2, 3, 4, 6], order: [7] }]),
    );
    expect(sorted(await matches('loop_consecutive', 'looper', F))).toEqual(sorted([{ click: [0], cheap: [2], order: [7] }, { click: [0], cheap: [2, 3], order: [7] }, { click: [0], cheap: [2, 3, 4], order: [7] }]));
    // "a transfer larger than the first": 50 is not larger than 100, 200 is; noSkip also matches 50 → 200.
    expect(await matches('larger_noskip', 'grow', G)).toEqual([{ first: [0], second: [120] }, { first: [60], second: [120] }]);
    expect(await matches('larger_skip', 'grow', G)).toEqual([{ first: [0], second: [120] }]);
    const grow = (await rs.decisions('larger_skip'))[0]!;
    expect(grow.matched!.first![0]!.attrs.amount).toBe(100);
    expect(grow.matched!.second![0]!.attrs.amount).toBe(200);
  });
});
