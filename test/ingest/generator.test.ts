import { describe, it, expect } from 'vitest';
import v8 from 'node:v8';
import vm from 'node:vm';
import { validateEvent, defaultEventLimits } from '../../src/ingest/catalog.js';
import { demoCatalog, taobaoCatalog } from '../../src/ingest/demo-catalog.js';
import {
  EventGenerator,
  createEventGenerator,
  defaultGeneratorOptions,
  taobaoStyleEvents,
} from '../../src/ingest/generator.js';
import type { Event } from '../../src/engine/index.js';
import { PortraitError } from '../../src/errors/index.js';

const farFutureNow = Date.UTC(2100, 0, 1);

function flat(event: Event): Record<string, unknown> {
  return { type: event.type, time: event.time, user_id: event.key, ...event.attrs };
}

/** Share of events produced by the most active 1 % of the users that appear. */
function topPercentShare(events: readonly Event[]): number {
  const perUser = new Map<string, number>();
  for (const e of events) perUser.set(e.key, (perUser.get(e.key) ?? 0) + 1);
  const counts = [...perUser.values()].sort((a, b) => b - a);
  const top = Math.max(1, Math.floor(counts.length / 100));
  let sum = 0;
  for (let i = 0; i < top; i++) sum += counts[i] ?? 0;
  return sum / events.length;
}

describe('EventGenerator', () => {
  it('is deterministic: same seed, same events; other seed, other events', () => {
    const a = new EventGenerator({ seed: 42 }).take(10_000);
    const b = createEventGenerator({ seed: 42 }).take(10_000);
    const c = new EventGenerator({ seed: 43 }).take(10_000);
    expect(b).toEqual(a);
    expect(c).not.toEqual(a);
    expect(c.map((e) => e.key)).not.toEqual(a.map((e) => e.key));
  });

  it('is iterable and yields the same sequence as next()', () => {
    const taken = new EventGenerator({ seed: 5 }).take(1_000);
    const iterated: Event[] = [];
    for (const event of new EventGenerator({ seed: 5 })) {
      iterated.push(event);
      if (iterated.length === 1_000) break;
    }
    expect(iterated).toEqual(taken);
  });

  it('produces events that all validate against demoCatalog with declared fields only', () => {
    const gen = new EventGenerator({ seed: 7, fraudFraction: 0.05 });
    const seen = new Set<string>();
    for (let i = 0; i < 50_000; i++) {
      const event = gen.next();
      const validated = validateEvent(flat(event), demoCatalog, defaultEventLimits, farFutureNow, '');
      expect(validated).toEqual(event);
      const spec = demoCatalog.types[event.type];
      expect(spec).toBeDefined();
      expect(Object.keys(event.attrs).sort()).toEqual(Object.keys(spec?.fields ?? {}).sort());
      expect(Number.isInteger(event.time)).toBe(true);
      seen.add(event.type);
    }
    // Every demo type except the Taobao dataset ones shows up.
    const expected = Object.keys(demoCatalog.types).filter((t) => !['pv', 'cart', 'fav', 'buy'].includes(t));
    expect([...seen].sort()).toEqual(expected.sort());
  });

  it('advances event time at eventsPerSecond from startTime', () => {
    const startTime = Date.UTC(2024, 5, 1);
    const events = new EventGenerator({ seed: 3, startTime, eventsPerSecond: 500, outOfOrderFraction: 0 }).take(50_000);
    expect(events[0]?.time).toBeGreaterThanOrEqual(startTime);
    expect(events[0]?.time).toBeLessThan(startTime + 100);
    for (let i = 1; i < events.length; i++) expect(events[i]!.time >= events[i - 1]!.time).toBe(true);
    const spanMs = events[events.length - 1]!.time - startTime;
    expect(spanMs / events.length).toBeGreaterThan(2 * 0.97);
    expect(spanMs / events.length).toBeLessThan(2 * 1.03);
  });

  it('shifts the configured fraction of events back, by at most maxOutOfOrderMs and never before startTime', () => {
    const startTime = Date.UTC(2024, 0, 1);
    for (const fraction of [0.01, 0.05, 0.2]) {
      const gen = new EventGenerator({ seed: 11, startTime, eventsPerSecond: 1_000, outOfOrderFraction: fraction, maxOutOfOrderMs: 5_000 });
      let max = -Infinity;
      let late = 0;
      const n = 50_000;
      for (let i = 0; i < n; i++) {
        const { time } = gen.next();
        expect(time).toBeGreaterThanOrEqual(startTime);
        if (time < max) {
          late++;
          expect(max - time).toBeLessThanOrEqual(5_000);
        } else {
          max = time;
        }
      }
      expect(Math.abs(late / n - fraction)).toBeLessThan(0.005);
    }
  });

  it('keeps causal order inside sessions: payment after its order, approval after its application', () => {
    const events = new EventGenerator({ seed: 13, outOfOrderFraction: 0.1 }).take(100_000);
    const orderTime = new Map<string, number>();
    const loanTime = new Map<string, number>();
    let payments = 0;
    let approvals = 0;
    for (const e of events) {
      if (e.type === 'order_created') orderTime.set(e.attrs.order_id as string, e.time);
      else if (e.type === 'loan_application') loanTime.set(e.attrs.loan_id as string, e.time);
      else if (e.type === 'payment') {
        const t = orderTime.get(e.attrs.order_id as string);
        if (t !== undefined) {
          payments++;
          expect(e.time).toBeGreaterThan(t);
        }
      } else if (e.type === 'loan_approved') {
        const t = loanTime.get(e.attrs.loan_id as string);
        if (t !== undefined) {
          approvals++;
          expect(e.time).toBeGreaterThan(t);
        }
      }
    }
    expect(payments).toBeGreaterThan(100);
    expect(approvals).toBeGreaterThan(10);
  });

  it('gives unique order and loan ids', () => {
    const events = new EventGenerator({ seed: 17, fraudFraction: 0.05 }).take(100_000);
    const orders = events.filter((e) => e.type === 'order_created').map((e) => e.attrs.order_id);
    const loans = events.filter((e) => e.type === 'loan_application').map((e) => e.attrs.loan_id);
    expect(orders.length).toBeGreaterThan(100);
    expect(new Set(orders).size).toBe(orders.length);
    expect(new Set(loans).size).toBe(loans.length);
  });

  it('produces realistic amounts, with some large transfers', () => {
    const events = new EventGenerator({ seed: 19, fraudFraction: 0 }).take(200_000);
    const transfers = events.filter((e) => e.type === 'transfer').map((e) => e.attrs.amount as number);
    expect(transfers.length).toBeGreaterThan(1_000);
    const sorted = [...transfers].sort((a, b) => a - b);
    const median = sorted[sorted.length >> 1]!;
    expect(median).toBeGreaterThan(50);
    expect(median).toBeLessThan(1_000);
    const large = transfers.filter((a) => a > 10_000).length / transfers.length;
    expect(large).toBeGreaterThan(0.005);
    expect(large).toBeLessThan(0.1);
    for (const a of transfers) expect(a).toBeGreaterThan(0);
  });

  it('skews user activity: the top 1 % of users produce far more than 1 % of events', () => {
    const skewed = new EventGenerator({ seed: 23, skew: 1.1 }).take(100_000);
    expect(topPercentShare(skewed)).toBeGreaterThan(0.2);
    const flatUsers = new EventGenerator({ seed: 23, skew: 0 }).take(100_000);
    expect(topPercentShare(flatUsers)).toBeLessThan(0.05);
  });

  it('keeps a stable home device and city per user', () => {
    const events = new EventGenerator({ seed: 29, fraudFraction: 0 }).take(100_000);
    const devicesByUser = new Map<string, Map<string, number>>();
    for (const e of events) {
      if (e.type !== 'login') continue;
      const device = e.attrs.device_id as string;
      const perUser = devicesByUser.get(e.key) ?? new Map<string, number>();
      perUser.set(device, (perUser.get(device) ?? 0) + 1);
      devicesByUser.set(e.key, perUser);
    }
    let logins = 0;
    let fromTopDevice = 0;
    for (const perUser of devicesByUser.values()) {
      const counts = [...perUser.values()];
      logins += counts.reduce((a, b) => a + b, 0);
      fromTopDevice += Math.max(...counts);
    }
    expect(fromTopDevice / logins).toBeGreaterThan(0.85);
    expect(fromTopDevice / logins).toBeLessThan(0.99);
  });

  describe('fraud patterns', () => {
    interface Findings {
      bruteForce: boolean;
      couponFarm: boolean;
      unpaidOrder: boolean;
      rapidTransfersFromNewDevice: boolean;
    }

    function findPatterns(events: readonly Event[]): Findings {
      // ≥ 5 failed logins of one user from one device within 2 minutes.
      const failed = new Map<string, number[]>();
      let bruteForce = false;
      // ≥ 5 accounts claiming coupons from one device within 10 minutes.
      const claims = new Map<string, Array<{ time: number; key: string }>>();
      let couponFarm = false;
      const unpaid = new Set<string>();
      const ordered = new Set<string>();
      // Most used login device per user, and transfers per (user, device).
      const loginDevices = new Map<string, Map<string, number>>();
      const transfers = new Map<string, number[]>();
      for (const e of events) {
        if (e.type === 'login') {
          const device = e.attrs.device_id as string;
          const perUser = loginDevices.get(e.key) ?? new Map<string, number>();
          perUser.set(device, (perUser.get(device) ?? 0) + 1);
          loginDevices.set(e.key, perUser);
          if (e.attrs.success === false) {
            const id = `${e.key}|${device}`;
            const times = failed.get(id) ?? [];
            times.push(e.time);
            failed.set(id, times);
            const recent = times.filter((t) => Math.abs(e.time - t) <= 120_000);
            if (recent.length >= 5) bruteForce = true;
          }
        } else if (e.type === 'coupon_claim') {
          const device = e.attrs.device_id as string;
          const list = claims.get(device) ?? [];
          list.push({ time: e.time, key: e.key });
          claims.set(device, list);
          const accounts = new Set(list.filter((c) => Math.abs(e.time - c.time) <= 600_000).map((c) => c.key));
          if (accounts.size >= 5) couponFarm = true;
        } else if (e.type === 'order_created') {
          ordered.add(e.attrs.order_id as string);
          unpaid.add(e.attrs.order_id as string);
        } else if (e.type === 'payment') {
          unpaid.delete(e.attrs.order_id as string);
        } else if (e.type === 'transfer') {
          const id = `${e.key}|${e.attrs.device_id as string}`;
          const times = transfers.get(id) ?? [];
          times.push(e.time);
          transfers.set(id, times);
        }
      }
      let rapidTransfersFromNewDevice = false;
      for (const [id, times] of transfers) {
        const [key, device] = id.split('|') as [string, string];
        const perUser = loginDevices.get(key);
        if (perUser === undefined) continue;
        let home = '';
        let best = 0;
        for (const [d, c] of perUser) {
          if (c > best) {
            best = c;
            home = d;
          }
        }
        if (device === home || best < 3) continue;
        times.sort((a, b) => a - b);
        for (let i = 2; i < times.length; i++) {
          if (times[i]! - times[i - 2]! <= 60_000) rapidTransfersFromNewDevice = true;
        }
      }
      return { bruteForce, couponFarm, unpaidOrder: unpaid.size > 0 && ordered.size > 0, rapidTransfersFromNewDevice };
    }

    it('appear when fraudFraction > 0', () => {
      const events = new EventGenerator({ seed: 31, fraudFraction: 0.03 }).take(200_000);
      expect(findPatterns(events)).toEqual({ bruteForce: true, couponFarm: true, unpaidOrder: true, rapidTransfersFromNewDevice: true });
    });

    it('the abusive bursts do not appear without fraud (uniform users)', () => {
      const events = new EventGenerator({ seed: 31, fraudFraction: 0, skew: 0 }).take(200_000);
      const found = findPatterns(events);
      expect(found.bruteForce).toBe(false);
      expect(found.couponFarm).toBe(false);
      // Some honest orders stay unpaid too.
      expect(found.unpaidOrder).toBe(true);
    });
  });

  it('keeps memory bounded over 2 million events', () => {
    v8.setFlagsFromString('--expose-gc');
    const gc = vm.runInNewContext('gc') as () => void;
    const gen = new EventGenerator({ seed: 37, eventsPerSecond: 1_000, fraudFraction: 0.02 });
    for (let i = 0; i < 200_000; i++) gen.next();
    gc();
    const before = process.memoryUsage().heapUsed;
    let checksum = 0;
    for (let i = 0; i < 2_000_000; i++) checksum += gen.next().time & 1;
    gc();
    const growth = process.memoryUsage().heapUsed - before;
    expect(checksum).toBeGreaterThan(0);
    expect(gen.activeSessions).toBeLessThanOrEqual(defaultGeneratorOptions.maxActiveSessions);
    expect(growth).toBeLessThan(30 * 1024 * 1024);
  });

  it('rejects invalid options with the field path', () => {
    const cases: Array<[Record<string, unknown>, string]> = [
      [{ users: 0 }, '/users'],
      [{ eventsPerSecond: 0 }, '/eventsPerSecond'],
      [{ outOfOrderFraction: 1.5 }, '/outOfOrderFraction'],
      [{ seed: 1.5 }, '/seed'],
      [{ skew: -1 }, '/skew'],
    ];
    for (const [options, path] of cases) {
      let caught: unknown;
      try {
        new EventGenerator(options);
      } catch (err: unknown) {
        caught = err;
      }
      expect(caught).toBeInstanceOf(PortraitError);
      expect((caught as PortraitError).code).toBe('PRT_CONFIG_INVALID');
      expect((caught as PortraitError).path).toBe(path);
    }
  });
});

describe('taobaoStyleEvents', () => {
  const options = { seed: 1, users: 100_000, startTime: Date.UTC(2017, 10, 25), count: 300_000, eventsPerSecond: 10_000 };

  it('matches the Taobao dataset type shares and validates against taobaoCatalog', () => {
    const counts: Record<string, number> = { pv: 0, cart: 0, fav: 0, buy: 0 };
    let n = 0;
    let previous = options.startTime;
    for (const event of taobaoStyleEvents(options)) {
      counts[event.type] = (counts[event.type] ?? 0) + 1;
      expect(event.time).toBeGreaterThanOrEqual(previous);
      previous = event.time;
      if (n % 97 === 0) expect(validateEvent(flat(event), taobaoCatalog, defaultEventLimits, farFutureNow, '')).toEqual(event);
      n++;
    }
    expect(n).toBe(options.count);
    const total = 0.89 + 0.055 + 0.03 + 0.022;
    expect(Math.abs(counts.pv! / n - 0.89 / total)).toBeLessThan(0.005);
    expect(Math.abs(counts.cart! / n - 0.055 / total)).toBeLessThan(0.003);
    expect(Math.abs(counts.fav! / n - 0.03 / total)).toBeLessThan(0.002);
    expect(Math.abs(counts.buy! / n - 0.022 / total)).toBeLessThan(0.002);
    const meanGapMs = (previous - options.startTime) / n;
    expect(meanGapMs).toBeGreaterThan(0.1 * 0.97);
    expect(meanGapMs).toBeLessThan(0.1 * 1.03);
  });

  it('is deterministic, skews users and keeps one category per item', () => {
    const a = [...taobaoStyleEvents({ ...options, count: 50_000 })];
    const b = [...taobaoStyleEvents({ ...options, count: 50_000 })];
    const c = [...taobaoStyleEvents({ ...options, count: 50_000, seed: 2 })];
    expect(b).toEqual(a);
    expect(c).not.toEqual(a);
    expect(topPercentShare(a)).toBeGreaterThan(0.1);
    const categoryOf = new Map<string, string>();
    for (const e of a) {
      const item = e.attrs.item_id as string;
      const category = e.attrs.category_id as string;
      expect(categoryOf.get(item) ?? category).toBe(category);
      categoryOf.set(item, category);
    }
  });

  it('checks its options when called', () => {
    expect(() => taobaoStyleEvents({ ...options, users: -1 })).toThrow(/\/users/);
  });
});
