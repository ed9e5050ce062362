import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cleanup } from '../helpers/system.js';
import { ev, openRules, SECOND, T0, type EventInput, type RuleSystem, type StoredDecision } from './harness.js';

/**
 * Every sequence construct and aggregate predicate of an event-time rule,
 * fed events out of order and late.
 *
 * Each case is one rule and one story: events in time order, the order in
 * which the same events arrive shuffled (within engine.outOfOrdernessMs of the
 * newest event so far, so none is late), and the decisions the semantics give,
 * written out by hand. One user sends the story in time order, another in
 * the shuffled order, both in one request. Then:
 *
 * 1. Time moves to 1 ms before the watermark reaches the last decision, then
 *    to it, by a bystander's event and a time mark alone: no event of either
 *    key comes after the story, so the last decision (the last event's match,
 *    an absence, a timeout) is made by the watermark, at its own time.
 * 2. Both users' decisions equal the hand-written list (so each other), and
 *    no event was late.
 * 3. Time moves to `late.at`; then, in one request, each user sends
 *    `late.events`, among which events more than engine.allowedLatenessMs
 *    behind the watermark. Each such event would change the decisions if it
 *    were taken (a match it would complete or prevent, an aggregate it would
 *    push over or under the threshold). Under the default late policy
 *    (`count`) it is dropped: the decisions are those of the on-time events
 *    alone (`late.decisions`), the rule counts it in `runtime.counters.late`
 *    and the engine in `portrait_engine_late_events_total` and
 *    `portrait_engine_late_dropped_total`.
 *
 * Times are in seconds from the start of the case's own hour of event time.
 */

const OUT_OF_ORDERNESS_S = 5;
const ALLOWED_LATENESS_S = 60;
const USERS = ['ordered', 'shuffled'] as const;

/** Seconds for `minutes` min `seconds` s. */
const m = (minutes: number, seconds = 0): number => minutes * 60 + seconds;

// Event builders; `at` in seconds.
const failed = (user: string, at: number) => ev('login', user, at * SECOND, { success: false });
const login = (user: string, at: number) => ev('login', user, at * SECOND, { success: true });
const transfer = (user: string, at: number, amount = 100, to = 'acc') => ev('transfer', user, at * SECOND, { to_account: to, amount });
const order = (user: string, at: number, orderId: string, amount = 30, shop = 's1') => ev('order_created', user, at * SECOND, { order_id: orderId, shop_id: shop, amount, item_count: 1 });
const payment = (user: string, at: number, orderId: string, success: boolean) => ev('payment', user, at * SECOND, { order_id: orderId, amount: 30, success });
const coupon = (user: string, at: number) => ev('coupon_claim', user, at * SECOND, { campaign_id: 'c1', coupon_id: 'k1' });
const click = (user: string, at: number) => ev('click', user, at * SECOND, { item_id: 'i1' });
const cart = (user: string, at: number, price: number) => ev('add_to_cart', user, at * SECOND, { item_id: `i${price}`, price, quantity: 1 });

/** A decision as the cases write it: the key without `user_id`, times in seconds. */
interface Expected {
  key: Record<string, unknown>;
  outcome: 'match' | 'timeout';
  trigger: 'event' | 'timer';
  at: number;
  matched: Record<string, number[]> | null;
  aggregates: Array<number | null>;
}

/** A sequence completed by an event. */
const match = (at: number, matched: Record<string, number[]>): Expected => ({ key: {}, outcome: 'match', trigger: 'event', at, matched, aggregates: [] });
/** A trailing absence decided by a timer. */
const absence = (at: number, matched: Record<string, number[]>): Expected => ({ key: {}, outcome: 'match', trigger: 'timer', at, matched, aggregates: [] });
/** A partial match timed out, by a timer. */
const timedOut = (at: number, matched: Record<string, number[]>): Expected => ({ key: {}, outcome: 'timeout', trigger: 'timer', at, matched, aggregates: [] });
/** An aggregate predicate true on the event at `at`, with the aggregate's value. */
const reached = (at: number, value: number, key: Record<string, unknown> = {}): Expected => ({ key, outcome: 'match', trigger: 'event', at, matched: null, aggregates: [value] });

interface DisorderCase {
  /** Also the rule id. */
  id: string;
  key?: string[];
  condition: Record<string, unknown>;
  /** One user's events, in time order. */
  story: (user: string) => EventInput[];
  /** The shuffled arrival order, as indices into the story. */
  arrival: number[];
  /** The decisions of the story, by the semantics. */
  decisions: Expected[];
  late: {
    /** Time moves here first (watermark `at` − 5 s). */
    at: number;
    /** Sent in this order; events more than the allowed lateness behind the watermark are late. */
    events: (user: string) => EventInput[];
    /** The decisions of the on-time events alone. */
    decisions: Expected[];
  };
}

const fail = { name: 'fail', eventTypes: ['login'], where: 'event.attrs.success == false' };
const move = { name: 'move', eventTypes: ['transfer'] };
const sliding = { type: 'sliding', size: '10m', slide: '1m' };

const cases: DisorderCase[] = [
  {
    id: 'seq_next',
    condition: { sequence: { pattern: [fail, { ...move, contiguity: 'next' }] } },
    // The success at 11 comes between the failure at 10 and the transfer at 12 in time, though it arrives first.
    story: (u) => [failed(u, 0), transfer(u, 1), failed(u, 10), login(u, 11), transfer(u, 12), failed(u, 20), transfer(u, 21)],
    arrival: [1, 0, 3, 4, 2, 6, 5],
    decisions: [match(1, { fail: [0], move: [1] }), match(21, { fail: [20], move: [21] })],
    late: {
      at: m(5),
      // A login between the failure and the transfer would break `next`.
      events: (u) => [failed(u, m(5)), login(u, m(5) - 70), transfer(u, m(5, 1))],
      decisions: [match(m(5, 1), { fail: [m(5)], move: [m(5, 1)] })],
    },
  },
  {
    id: 'seq_followed_by',
    condition: { sequence: { pattern: [fail, { ...move, contiguity: 'followedBy' }] } },
    // Relaxed: the success at 1 is skipped; the first transfer after a failure is taken, the one at 3 is not.
    story: (u) => [failed(u, 0), login(u, 1), transfer(u, 2), transfer(u, 3), failed(u, 10), failed(u, 11), transfer(u, 12)],
    arrival: [2, 0, 1, 3, 5, 6, 4],
    decisions: [match(2, { fail: [0], move: [2] }), match(12, { fail: [10], move: [12] }), match(12, { fail: [11], move: [12] })],
    late: {
      at: m(5),
      // The late failure would pair with the transfer at 5:00.
      events: (u) => [failed(u, m(5) - 70), transfer(u, m(5)), failed(u, m(5, 1)), transfer(u, m(5, 2))],
      decisions: [match(m(5, 2), { fail: [m(5, 1)], move: [m(5, 2)] })],
    },
  },
  {
    id: 'seq_followed_by_any',
    condition: { sequence: { pattern: [fail, { ...move, contiguity: 'followedByAny' }], within: '2m' } },
    // Non-deterministic: the failure at 0 pairs with every later transfer.
    story: (u) => [failed(u, 0), transfer(u, 1), transfer(u, 3), failed(u, 5), transfer(u, 6)],
    arrival: [1, 0, 2, 4, 3],
    decisions: [match(1, { fail: [0], move: [1] }), match(3, { fail: [0], move: [3] }), match(6, { fail: [0], move: [6] }), match(6, { fail: [5], move: [6] })],
    late: {
      at: m(5),
      // The late failure would pair with both transfers (70 s and 72 s later, within 2 min).
      events: (u) => [failed(u, m(5) - 70), transfer(u, m(5)), failed(u, m(5, 1)), transfer(u, m(5, 2))],
      decisions: [match(m(5, 2), { fail: [m(5, 1)], move: [m(5, 2)] })],
    },
  },
  {
    id: 'seq_not_followed_by_middle',
    condition: {
      sequence: {
        pattern: [fail, { name: 'good', eventTypes: ['login'], where: 'event.attrs.success', contiguity: 'notFollowedBy' }, move],
      },
    },
    // The success at 11 lies between the failure at 10 and the transfer at 12: no match from 10.
    story: (u) => [failed(u, 0), transfer(u, 2), failed(u, 10), login(u, 11), transfer(u, 12), failed(u, 20), transfer(u, 22)],
    arrival: [1, 0, 3, 4, 2, 6, 5],
    decisions: [match(2, { fail: [0], move: [2] }), match(22, { fail: [20], move: [22] })],
    late: {
      at: m(5),
      // A success between the failure and the transfer would prevent the match.
      events: (u) => [failed(u, m(5)), login(u, m(5) - 70), transfer(u, m(5, 1))],
      decisions: [match(m(5, 1), { fail: [m(5)], move: [m(5, 1)] })],
    },
  },
  {
    id: 'seq_not_followed_by_trailing',
    condition: {
      sequence: {
        pattern: [
          { name: 'created', eventTypes: ['order_created'] },
          { name: 'paid', eventTypes: ['payment'], contiguity: 'notFollowedBy', where: 'event.attrs.order_id == matched.created[0].attrs.order_id && event.attrs.success' },
        ],
        within: '1m',
      },
    },
    // o1 is paid at 3 (arriving before its creation). o2's payment fails. o3's payment has an
    // event time before o3's creation (it arrives after it): it does not pay the order created later.
    story: (u) => [order(u, 0, 'o1'), payment(u, 3, 'o1', true), order(u, 20, 'o2'), payment(u, 22, 'o2', false), payment(u, 38, 'o3', true), order(u, 40, 'o3')],
    arrival: [1, 0, 3, 2, 5, 4],
    decisions: [absence(80, { created: [20] }), absence(100, { created: [40] })],
    late: {
      at: m(5),
      // The late payment would pay o9.
      events: (u) => [order(u, m(5), 'o9'), payment(u, m(5) - 70, 'o9', true)],
      decisions: [absence(m(6), { created: [m(5)] })],
    },
  },
  {
    id: 'seq_within_timeout',
    condition: { sequence: { pattern: [fail, move], within: '1m' }, on: 'timeout' },
    // The transfer at 2 completes the failure at 0 (it arrives first); the failures at 10 and 13 get no transfer.
    story: (u) => [failed(u, 0), transfer(u, 2), failed(u, 10), failed(u, 13)],
    arrival: [1, 0, 3, 2],
    decisions: [timedOut(70, { fail: [10] }), timedOut(73, { fail: [13] })],
    late: {
      at: m(5),
      // The late transfer would complete the failure at 5:00 before it runs out.
      events: (u) => [failed(u, m(5)), transfer(u, m(5) - 70)],
      decisions: [timedOut(m(6), { fail: [m(5)] })],
    },
  },
  {
    id: 'seq_times',
    condition: { sequence: { pattern: [{ ...fail, times: 3 }], within: '1m' } },
    // Relaxed inner contiguity: the success at 2 is skipped.
    story: (u) => [failed(u, 0), failed(u, 1), login(u, 2), failed(u, 3), failed(u, 4)],
    arrival: [1, 0, 3, 2, 4],
    decisions: [match(3, { fail: [0, 1, 3] }), match(4, { fail: [1, 3, 4] })],
    late: {
      at: m(5),
      // The late failure would make 5:00, late, 5:01 a third failure.
      events: (u) => [failed(u, m(5)), failed(u, m(5) - 70), failed(u, m(5, 1)), failed(u, m(5, 2))],
      decisions: [match(m(5, 2), { fail: [m(5), m(5, 1), m(5, 2)] })],
    },
  },
  {
    id: 'seq_times_range',
    condition: { sequence: { pattern: [{ ...fail, times: { min: 2, max: 3 } }, move], within: '1m' } },
    story: (u) => [failed(u, 0), failed(u, 1), failed(u, 2), transfer(u, 4)],
    arrival: [1, 0, 3, 2],
    decisions: [match(4, { fail: [0, 1], move: [4] }), match(4, { fail: [0, 1, 2], move: [4] }), match(4, { fail: [1, 2], move: [4] })],
    late: {
      at: m(5),
      // The late failure would add runs of two and three failures.
      events: (u) => [failed(u, m(5)), failed(u, m(5) - 70), failed(u, m(5, 1)), transfer(u, m(5, 2))],
      decisions: [match(m(5, 2), { fail: [m(5), m(5, 1)], move: [m(5, 2)] })],
    },
  },
  {
    id: 'seq_one_or_more_until',
    condition: {
      sequence: {
        pattern: [
          { name: 'login', eventTypes: ['login'], where: 'event.attrs.success' },
          { name: 'carts', eventTypes: ['add_to_cart'], oneOrMore: true, until: 'event.attrs.price >= 1000.0' },
          { name: 'big', eventTypes: ['add_to_cart'], where: 'event.attrs.price >= 1000.0' },
        ],
        within: '1m',
      },
    },
    // The big cart at 3 ends the loop (not taken by it) and is the last stage.
    story: (u) => [login(u, 0), cart(u, 1, 10), cart(u, 2, 20), cart(u, 3, 1000)],
    arrival: [1, 0, 3, 2],
    decisions: [match(3, { login: [0], carts: [1], big: [3] }), match(3, { login: [0], carts: [1, 2], big: [3] })],
    late: {
      at: m(5),
      // The late big cart would end the loop and complete at once.
      events: (u) => [login(u, m(5)), cart(u, m(5, 1), 10), cart(u, m(5) - 70, 1000), cart(u, m(5, 2), 1500)],
      decisions: [match(m(5, 2), { login: [m(5)], carts: [m(5, 1)], big: [m(5, 2)] })],
    },
  },
  {
    id: 'seq_optional',
    condition: {
      sequence: {
        pattern: [
          { name: 'created', eventTypes: ['order_created'] },
          { name: 'coupon', eventTypes: ['coupon_claim'], optional: true },
          { name: 'paid', eventTypes: ['payment'] },
        ],
        within: '1m',
      },
    },
    // Each order matches with and without its coupon.
    story: (u) => [order(u, 0, 'o1'), coupon(u, 1), payment(u, 2, 'o1', true), order(u, 10, 'o2'), coupon(u, 11), payment(u, 12, 'o2', true)],
    arrival: [1, 0, 2, 3, 5, 4],
    decisions: [
      match(2, { created: [0], coupon: [1], paid: [2] }),
      match(2, { created: [0], paid: [2] }),
      match(12, { created: [10], coupon: [11], paid: [12] }),
      match(12, { created: [10], paid: [12] }),
    ],
    late: {
      at: m(5),
      // The late coupon would add a match with a coupon.
      events: (u) => [order(u, m(5), 'o9'), coupon(u, m(5) - 70), payment(u, m(5, 1), 'o9', true)],
      decisions: [match(m(5, 1), { created: [m(5)], paid: [m(5, 1)] })],
    },
  },
  {
    id: 'seq_consecutive',
    condition: {
      sequence: {
        pattern: [
          { name: 'click', eventTypes: ['click'] },
          { name: 'cheap', eventTypes: ['add_to_cart'], where: 'event.attrs.price < 100.0', oneOrMore: true, inner: 'consecutive' },
          { name: 'order', eventTypes: ['order_created'] },
        ],
        within: '1m',
      },
    },
    // The expensive cart at 3 ends the run of cheap carts: the one at 4 is not taken.
    story: (u) => [click(u, 0), cart(u, 1, 10), cart(u, 2, 20), cart(u, 3, 500), cart(u, 4, 30), order(u, 5, 'o1')],
    arrival: [0, 2, 1, 4, 3, 5],
    decisions: [match(5, { click: [0], cheap: [1], order: [5] }), match(5, { click: [0], cheap: [1, 2], order: [5] })],
    late: {
      at: m(5),
      // The late expensive cart would break the run between 5:01 and 5:02.
      events: (u) => [click(u, m(5)), cart(u, m(5, 1), 10), cart(u, m(5) - 70, 500), cart(u, m(5, 2), 30), order(u, m(5, 3), 'o9')],
      decisions: [match(m(5, 3), { click: [m(5)], cheap: [m(5, 1)], order: [m(5, 3)] }), match(m(5, 3), { click: [m(5)], cheap: [m(5, 1), m(5, 2)], order: [m(5, 3)] })],
    },
  },
  {
    id: 'seq_where_matched',
    condition: {
      sequence: {
        pattern: [
          { name: 'first', eventTypes: ['transfer'] },
          { name: 'second', eventTypes: ['transfer'], where: 'event.attrs.amount > matched.first[0].attrs.amount' },
        ],
        within: '1m',
      },
    },
    // "A transfer larger than the first": amounts 100, 50, 200, 300, 250, 400.
    story: (u) => [transfer(u, 0, 100), transfer(u, 1, 50), transfer(u, 2, 200), transfer(u, 10, 300), transfer(u, 11, 250), transfer(u, 12, 400)],
    arrival: [1, 0, 2, 4, 3, 5],
    decisions: [
      match(2, { first: [0], second: [2] }),
      match(2, { first: [1], second: [2] }),
      match(10, { first: [2], second: [10] }),
      match(12, { first: [10], second: [12] }),
      match(12, { first: [11], second: [12] }),
    ],
    late: {
      at: m(5),
      // The late 500 would be larger than the 100 at 5:00.
      events: (u) => [transfer(u, m(5), 100), transfer(u, m(5) - 70, 500), transfer(u, m(5, 1), 300)],
      decisions: [match(m(5, 1), { first: [m(5)], second: [m(5, 1)] })],
    },
  },
  {
    id: 'agg_sum_sliding',
    condition: { aggregate: { fn: 'sum', field: 'amount', eventTypes: ['transfer'], window: sliding }, op: '>=', value: 500 },
    // At 10:01 the window is [1m, 11m): the first three transfers left it.
    story: (u) => [transfer(u, 0, 100), transfer(u, 1, 200), transfer(u, 2, 250), transfer(u, m(9), 300), transfer(u, m(10, 1), 50), transfer(u, m(10, 2), 200)],
    arrival: [2, 0, 1, 3, 5, 4],
    // Running sums: 100, 300, 550, 850, 350, 550.
    decisions: [reached(2, 550), reached(m(9), 850), reached(m(10, 2), 550)],
    late: {
      at: m(25),
      // The late 1000 lies in the window [16m, 26m) of the transfers at 25:00 and 25:01.
      events: (u) => [transfer(u, m(25) - 70, 1000), transfer(u, m(25), 10), transfer(u, m(25, 1), 600)],
      decisions: [reached(m(25, 1), 610)],
    },
  },
  {
    id: 'agg_count_tumbling',
    condition: { aggregate: { fn: 'count', eventTypes: ['transfer'], window: { type: 'tumbling', size: '10m' } }, op: '>=', value: 3 },
    // Windows [0, 10m) and [10m, 20m).
    story: (u) => [transfer(u, m(9, 57)), transfer(u, m(9, 58)), transfer(u, m(9, 59)), transfer(u, m(10, 1)), transfer(u, m(10, 2)), transfer(u, m(10, 3))],
    arrival: [1, 3, 0, 2, 5, 4],
    // Running counts: 1, 2, 3, then 1, 2, 3 in the next window.
    decisions: [reached(m(9, 59), 3), reached(m(10, 3), 3)],
    late: {
      at: m(15),
      // The late transfer lies in the window [10m, 20m).
      events: (u) => [transfer(u, m(15) - 70), transfer(u, m(15))],
      decisions: [reached(m(15), 4)],
    },
  },
  {
    id: 'agg_distinct',
    condition: { aggregate: { fn: 'distinct', field: 'to_account', eventTypes: ['transfer'], window: sliding }, op: '>=', value: 3 },
    // Accounts a, b, a, c, d: distinct 1, 2, 2, 3, 4.
    story: (u) => [transfer(u, 0, 10, 'a'), transfer(u, 1, 10, 'b'), transfer(u, 2, 10, 'a'), transfer(u, 3, 10, 'c'), transfer(u, 4, 10, 'd')],
    arrival: [3, 0, 1, 4, 2],
    decisions: [reached(3, 3), reached(4, 4)],
    late: {
      at: m(25),
      // The late account e would make f, g three distinct accounts.
      events: (u) => [transfer(u, m(25) - 70, 10, 'e'), transfer(u, m(25), 10, 'f'), transfer(u, m(25, 1), 10, 'g'), transfer(u, m(25, 2), 10, 'h')],
      decisions: [reached(m(25, 2), 3)],
    },
  },
  {
    id: 'agg_two_field_key',
    key: ['user_id', 'shop_id'],
    condition: { aggregate: { fn: 'sum', field: 'amount', eventTypes: ['order_created'], window: sliding }, op: '>=', value: 1000 },
    // Per shop: s1 600 + 500, s2 700 + 400.
    story: (u) => [order(u, 0, 'o1', 600, 's1'), order(u, 1, 'o2', 700, 's2'), order(u, 2, 'o3', 500, 's1'), order(u, 3, 'o4', 400, 's2')],
    arrival: [3, 0, 2, 1],
    decisions: [reached(2, 1100, { shop_id: 's1' }), reached(3, 1100, { shop_id: 's2' })],
    late: {
      at: m(25),
      // The late 5000 in s1 would reach the threshold with the 600 alone.
      events: (u) => [order(u, m(25) - 70, 'o5', 5000, 's1'), order(u, m(25), 'o6', 600, 's1'), order(u, m(25, 1), 'o7', 500, 's1')],
      decisions: [reached(m(25, 1), 1100, { shop_id: 's1' })],
    },
  },
];

/** One user's decisions of a rule as the cases write them, in a canonical order. */
async function decided(rs: RuleSystem, ruleId: string, user: string, base: number): Promise<Expected[]> {
  const all = await rs.decisions(ruleId);
  return canonical(all.filter((d) => d.key.user_id === user).map((d) => normalize(d, base)));
}

/** A stored decision as the cases write it, times in seconds from `base`. */
function normalize(d: StoredDecision, base: number): Expected {
  const seconds = (time: number): number => (time - T0) / SECOND - base;
  const { user_id: _user, ...key } = d.key;
  let matched: Record<string, number[]> | null = null;
  if (d.matched !== null) {
    matched = {};
    for (const [stage, events] of Object.entries(d.matched)) matched[stage] = events.map((e) => seconds(e.time));
  }
  return { key, outcome: d.outcome, trigger: d.trigger, at: seconds(d.time), matched, aggregates: d.aggregates };
}

function canonical(list: Expected[]): Expected[] {
  const text = (d: Expected): string => JSON.stringify([d.key, d.matched, d.outcome]);
  return [...list].sort((a, b) => a.at - b.at || (text(a) < text(b) ? -1 : text(a) > text(b) ? 1 : 0));
}

/** The two users' streams, one event of each in turn. */
function interleave(first: EventInput[], second: EventInput[]): EventInput[] {
  const out: EventInput[] = [];
  for (let i = 0; i < first.length; i++) out.push(first[i]!, second[i]!);
  return out;
}

/** Throws when an event arrives behind the watermark (the newest time before it minus the bound). */
function expectWithinBound(events: EventInput[]): void {
  let newest = -Infinity;
  for (const e of events) {
    if (e.time < newest - OUT_OF_ORDERNESS_S * SECOND) throw new Error(`event at ${(e.time - T0) / SECOND} s arrives after ${(newest - T0) / SECOND} s: beyond the out-of-orderness bound`);
    newest = Math.max(newest, e.time);
  }
}

/** Sum over partitions of an engine counter from `GET /metrics`. */
async function engineCounter(rs: RuleSystem, name: string): Promise<number> {
  const res = await rs.app.inject({ method: 'GET', url: '/metrics' });
  expect(res.statusCode).toBe(200);
  let total = 0;
  for (const line of res.body.split('\n')) if (line.startsWith(`${name}{`)) total += Number(line.slice(line.lastIndexOf(' ') + 1));
  return total;
}

/** Late events counted by the rule and, over all partitions, by the engine (behind the watermark, and dropped). */
async function lateCounts(rs: RuleSystem, ruleId: string): Promise<{ rule: number; engine: number; engineDropped: number }> {
  const view = await rs.rule(ruleId);
  return {
    rule: view.runtime.counters!.late!,
    engine: await engineCounter(rs, 'portrait_engine_late_events_total'),
    engineDropped: await engineCounter(rs, 'portrait_engine_late_dropped_total'),
  };
}

describe('event-time rules over out-of-order and late events', () => {
  it('the shuffled arrival orders are out of order', () => {
    for (const c of cases) {
      const times = c.arrival.map((i) => c.story('u')[i]!.time);
      expect([...c.arrival].sort((a, b) => a - b), c.id).toEqual(c.story('u').map((_, i) => i));
      expect(times.some((t, i) => i > 0 && t < times[i - 1]!), c.id).toBe(true);
    }
  });

  // One system runs every case: each case has its own rule, its own users and its own hour of
  // event time, later than every earlier case's.
  let rs: RuleSystem;
  beforeAll(async () => {
    rs = await openRules();
    expect(rs.config.engine.outOfOrdernessMs).toBe(OUT_OF_ORDERNESS_S * SECOND);
    expect(rs.config.engine.allowedLatenessMs).toBe(ALLOWED_LATENESS_S * SECOND);
    expect(rs.config.engine.latePolicy).toBe('count');
  });
  afterAll(cleanup);

  cases.forEach((c, index) => {
    it(c.id, async () => {
      const base = (index + 1) * 3600;
      const user = (name: (typeof USERS)[number]) => `${c.id}_${name}`;
      const events = (list: EventInput[]) => list.map((e) => ({ ...e, time: e.time + base * SECOND }));
      const advanceTo = (at: number) => rs.advanceTo(Math.round((base + at) * SECOND));
      const decisionsOf = (name: (typeof USERS)[number]) => decided(rs, c.id, user(name), base);
      await rs.addRule({ id: c.id, key: c.key ?? ['user_id'], condition: c.condition });
      const lateBefore = await lateCounts(rs, c.id);
      expect(lateBefore.rule).toBe(0);
      const expected = canonical(c.decisions);

      // The same story, in time order and shuffled, in one request.
      const story = events(c.story(user('ordered')));
      const shuffled = c.arrival.map((i) => events(c.story(user('shuffled')))[i]!);
      const both = interleave(story, shuffled);
      expectWithinBound(both);
      await rs.send(...both);

      // 1. The last decision comes from the watermark alone, at its own time.
      const end = (story.at(-1)!.time - T0) / SECOND - base;
      const last = expected.at(-1)!.at;
      expect(last, 'the story ends with a decision').toBeGreaterThanOrEqual(end);
      const decidedBy = (watermark: number) => expected.filter((d) => d.at <= watermark);
      expect(decidedBy(last - 0.001), 'a decision at the last time').not.toEqual(expected);
      await advanceTo(last + OUT_OF_ORDERNESS_S - 0.001);
      for (const name of USERS) expect(await decisionsOf(name), `${name}, watermark 1 ms before ${last} s`).toEqual(decidedBy(last - 0.001));
      await advanceTo(last + OUT_OF_ORDERNESS_S);
      for (const name of USERS) expect(await decisionsOf(name), `${name}, watermark at ${last} s`).toEqual(expected);

      // 2. Both orders give the hand-written decisions, and no event was late.
      expect(c.late.at, 'the late phase starts after the story').toBeGreaterThanOrEqual(last + OUT_OF_ORDERNESS_S);
      await advanceTo(c.late.at);
      const inOrder = await decisionsOf('ordered');
      expect(inOrder, 'time order').toEqual(expected);
      expect(await decisionsOf('shuffled'), 'shuffled').toEqual(inOrder);
      expect(await lateCounts(rs, c.id), 'no event of the story is late').toEqual(lateBefore);

      // 3. Late events are dropped and counted; the on-time events decide as if they never came.
      const lateEvents = c.late.events(user('ordered'));
      const watermark = c.late.at - OUT_OF_ORDERNESS_S;
      const tooLate = lateEvents.filter((e) => (e.time - T0) / SECOND < watermark - ALLOWED_LATENESS_S).length;
      expect(tooLate, 'late events in the late phase').toBeGreaterThan(0);
      expect(lateEvents.filter((e) => (e.time - T0) / SECOND < watermark).length, 'every event behind the watermark is beyond the allowed lateness').toBe(tooLate);
      await rs.send(...events(interleave(lateEvents, c.late.events(user('shuffled')))));
      const lastTime = Math.max(...lateEvents.map((e) => (e.time - T0) / SECOND), ...c.late.decisions.map((d) => d.at));
      await advanceTo(lastTime + m(20));
      const withLate = canonical([...c.decisions, ...c.late.decisions]);
      for (const name of USERS) expect(await decisionsOf(name), `${name} after late events`).toEqual(withLate);
      expect(await lateCounts(rs, c.id), 'late events counted').toEqual({
        rule: 2 * tooLate,
        engine: lateBefore.engine + 2 * tooLate,
        engineDropped: lateBefore.engineDropped + 2 * tooLate,
      });
    });
  });
});
