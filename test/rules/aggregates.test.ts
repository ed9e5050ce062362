import { afterEach, describe, expect, it } from 'vitest';
import { partitionOf } from '../../src/engine/index.js';
import { cleanup } from '../helpers/system.js';
import { ev, MINUTE, openRules, SECOND, T0 } from './harness.js';

afterEach(cleanup);

const transfer = (user: string, at: number, amount: number, to: string) => ev('transfer', user, at, { to_account: to, amount });
const sliding = { type: 'sliding', size: '10m', slide: '1m' };

describe('aggregate predicates: every part is data', () => {
  it('fn (count, sum, avg, min, max, distinct), window (sliding, tumbling), op (>, >=, <, <=, ==, !=) and threshold', async () => {
    const rs = await openRules();
    const rules: Array<[string, Record<string, unknown>, string, number]> = [
      ['count_gt', { fn: 'count', window: sliding }, '>', 2],
      ['count_lt', { fn: 'count', window: sliding }, '<', 2],
      ['sum_ge', { fn: 'sum', field: 'amount', window: sliding }, '>=', 700],
      ['avg_lt', { fn: 'avg', field: 'amount', window: sliding }, '<', 200],
      ['min_le', { fn: 'min', field: 'amount', window: sliding }, '<=', 50],
      ['max_eq', { fn: 'max', field: 'amount', window: sliding }, '==', 300],
      ['distinct_ne', { fn: 'distinct', field: 'to_account', window: sliding }, '!=', 2],
      ['count_sliding_ge', { fn: 'count', window: sliding }, '>=', 2],
      ['count_tumbling_ge', { fn: 'count', window: { type: 'tumbling', size: '10m' } }, '>=', 2],
    ];
    for (const [id, aggregate, op, value] of rules) {
      await rs.addRule({ id, key: ['user_id'], condition: { aggregate: { ...aggregate, eventTypes: ['transfer'] }, op, value } });
    }
    // T0 is on the hour: the tumbling windows are [0, 10m) and [10m, 20m).
    await rs.send(transfer('agg', 8 * MINUTE, 100, 'a'), transfer('agg', 9 * MINUTE, 300, 'b'), transfer('agg', 10 * MINUTE, 300, 'b'), transfer('agg', 11 * MINUTE, 50, 'c'));
    await rs.advanceTo(12 * MINUTE);
    // Running values after each transfer: count 1 2 3 4; sum 100 400 700 750; avg 100 200 233.3 187.5;
    // min 100 100 100 50; max 100 300 300 300; distinct 1 2 2 3; tumbling count 1 2 1 2.
    const expected: Record<string, Array<[number, number]>> = {
      count_gt: [[10, 3], [11, 4]],
      count_lt: [[8, 1]],
      sum_ge: [[10, 700], [11, 750]],
      avg_lt: [[8, 100], [11, 187.5]],
      min_le: [[11, 50]],
      max_eq: [[9, 300], [10, 300], [11, 300]],
      distinct_ne: [[8, 1], [11, 3]],
      count_sliding_ge: [[9, 2], [10, 3], [11, 4]],
      count_tumbling_ge: [[9, 2], [11, 2]],
    };
    for (const [id, list] of Object.entries(expected)) {
      const decided = await rs.decisions(id);
      for (const d of decided) expect(d).toMatchObject({ ruleId: id, version: 1, key: { user_id: 'agg' }, entity: 'agg', outcome: 'match', trigger: 'event', matched: null });
      expect(decided.map((d) => [(d.time - T0) / MINUTE, d.aggregates[0]]), id).toEqual(list);
    }
  });

  it('a lifetime aggregate keeps counting across a quiet spell longer than another window of the rule', async () => {
    const rs = await openRules();
    await rs.addRule({
      id: 'third_transfer_ever',
      key: ['user_id'],
      condition: {
        all: [
          { aggregate: { fn: 'count', eventTypes: ['transfer'], window: { type: 'lifetime' } }, op: '==', value: 3 },
          { aggregate: { fn: 'sum', field: 'amount', eventTypes: ['transfer'], window: sliding }, op: '>', value: 100 },
        ],
      },
    });
    await rs.send(transfer('u1', 0, 10, 'a'), transfer('u1', 1 * MINUTE, 10, 'a'));
    // 29 quiet minutes: the sliding window empties, the lifetime count must not.
    await rs.advanceTo(20 * MINUTE);
    await rs.send(transfer('u1', 30 * MINUTE, 500, 'a'));
    await rs.advanceTo(31 * MINUTE);
    const decided = await rs.decisions('third_transfer_ever');
    expect(decided.map((d) => [(d.time - T0) / MINUTE, d.aggregates])).toEqual([[30, [3, 500]]]);
  });

  it('sum(amount) over 10 min keyed by {user_id, shop_id} >= 5000', async () => {
    const rs = await openRules();
    await rs.addRule({
      id: 'shop_spend',
      key: ['user_id', 'shop_id'],
      condition: { aggregate: { fn: 'sum', field: 'amount', eventTypes: ['order_created'], window: sliding }, op: '>=', value: 5000 },
    });
    const order = (user: string, shop: string, at: number, amount: number) => ev('order_created', user, at, { order_id: `o${at}`, shop_id: shop, amount, item_count: 1 });
    await rs.send(order('buyer', 's1', 20 * MINUTE, 3000), order('buyer', 's2', 21 * MINUTE, 3000), order('buyer', 's1', 22 * MINUTE, 2500), order('other', 's1', 23 * MINUTE, 3000));
    // 13 min later the first two s1 orders left the window: 100 alone, then 100 + 4900 = 5000.
    await rs.send(order('buyer', 's1', 34 * MINUTE, 100), order('buyer', 's1', 35 * MINUTE, 4900));
    await rs.advanceTo(40 * MINUTE);
    const decided = await rs.decisions('shop_spend');
    expect(decided.map((d) => ({ key: d.key, entity: d.entity, at: (d.time - T0) / MINUTE, sum: d.aggregates[0] }))).toEqual([
      { key: { user_id: 'buyer', shop_id: 's1' }, entity: 'buyer', at: 22, sum: 5500 },
      { key: { user_id: 'buyer', shop_id: 's1' }, entity: 'buyer', at: 35, sum: 5000 },
    ]);
  });

  it('a rule keyed by device_id counts claims from users in other partitions (ingest re-keying)', async () => {
    const rs = await openRules({ partitions: 4 });
    await rs.addRule({
      id: 'device_claims',
      key: ['device_id'],
      condition: { aggregate: { fn: 'count', eventTypes: ['coupon_claim'], window: sliding }, op: '>=', value: 3 },
    });
    await rs.addRule({
      id: 'device_coupons',
      key: ['device_id'],
      condition: { aggregate: { fn: 'distinct', field: 'coupon_id', eventTypes: ['coupon_claim'], window: sliding }, op: '>=', value: 3 },
    });
    const users = ['ua', 'ub', 'uc', 'ud'];
    // The users live in four different partitions; the device's state lives in one of them.
    expect(new Set(users.map((u) => partitionOf(u, 4))).size).toBe(4);
    const claim = (user: string, at: number, coupon: string, device: string | null) => ev('coupon_claim', user, at, { campaign_id: 'c1', coupon_id: coupon, device_id: device });
    await rs.send(
      claim('ua', 0, 'k1', 'dev1'),
      claim('ub', 1 * SECOND, 'k1', 'dev1'),
      claim('ua', 1500, 'k9', 'dev2'),
      claim('uc', 2 * SECOND, 'k2', 'dev1'),
      claim('ud', 3 * SECOND, 'k3', 'dev1'),
      claim('ub', 4 * SECOND, 'k4', null),
    );
    await rs.advanceTo(10 * SECOND);
    const home = partitionOf('dev1', 4);
    const claims = await rs.decisions('device_claims');
    expect(claims.map((d) => ({ key: d.key, entity: d.entity, at: d.time - T0, count: d.aggregates[0], partition: d.partition }))).toEqual([
      { key: { device_id: 'dev1' }, entity: 'uc', at: 2 * SECOND, count: 3, partition: home },
      { key: { device_id: 'dev1' }, entity: 'ud', at: 3 * SECOND, count: 4, partition: home },
    ]);
    const coupons = await rs.decisions('device_coupons');
    expect(coupons.map((d) => ({ key: d.key, entity: d.entity, at: d.time - T0, distinct: d.aggregates[0] }))).toEqual([{ key: { device_id: 'dev1' }, entity: 'ud', at: 3 * SECOND, distinct: 3 }]);
    // The claim without a device is counted once, not decided.
    expect((await rs.rule('device_claims')).runtime.counters).toMatchObject({ missingKey: 1, decisions: 2, keys: 2 });
  });
});
