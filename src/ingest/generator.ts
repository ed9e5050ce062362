import type { AttrValue, Event } from '../engine/index.js';
import { ConfigError, PortraitError, showValue } from '../errors/index.js';

// ---------------------------------------------------------------------------
// Options
// ---------------------------------------------------------------------------

/** Options of {@link EventGenerator}. */
export interface GeneratorOptions {
  /**
   * PRNG seed, a safe integer. The same options always give exactly the same
   * event sequence.
   * @defaultValue 1
   */
  seed: number;
  /**
   * Number of distinct users (`u0` … `u<users-1>`).
   * @defaultValue 10000
   */
  users: number;
  /**
   * Event time of the first event, epoch ms. No event is ever earlier.
   * @defaultValue 1704067200000 (2024-01-01T00:00:00Z)
   */
  startTime: number;
  /**
   * Event-time rate, events per second of event time: the mean spacing of
   * event times is `1000 / eventsPerSecond` ms. This is not a wall-clock rate;
   * the generator produces events as fast as it is called.
   * @defaultValue 200
   */
  eventsPerSecond: number;
  /**
   * Fraction of events, 0..1, whose time is shifted back (arrives out of order).
   * @defaultValue 0.02
   */
  outOfOrderFraction: number;
  /**
   * Largest backwards shift of an out-of-order event, ms. A shifted event is
   * never earlier than `startTime` nor than the previous event of its session.
   * @defaultValue 5000
   */
  maxOutOfOrderMs: number;
  /**
   * Zipf exponent of user activity: the user of rank k starts sessions with
   * weight k^-skew; 0 makes all users equally active. With skew above 1 the
   * most active user has about 1/ζ(skew) of all sessions (≈ 9.5 % at 1.1).
   * @defaultValue 1.1
   */
  skew: number;
  /**
   * Size of the device pool (`d0` … `d<devices-1>`). Home devices are drawn
   * from it, so fewer devices than users means some devices are shared.
   * @defaultValue 8000
   */
  devices: number;
  /**
   * Fraction of sessions, 0..1, that follow abusive patterns: bursts of failed
   * logins (brute force), coupon claims from one device across many accounts
   * (coupon farming), orders never paid (inventory hoarding), and rapid large
   * transfers from a new device (account takeover).
   * @defaultValue 0.01
   */
  fraudFraction: number;
  /**
   * Most sessions in progress at once; bounds memory however many events are
   * generated. When the pool is full, the earliest pending session acts
   * early, so session gaps shrink at high `eventsPerSecond`.
   * @defaultValue 10000
   */
  maxActiveSessions: number;
  /**
   * Event time simulated and discarded before the first event, ms, so the
   * stream starts in steady state (sessions already under way) instead of
   * with a burst of session starts. At most `20 × maxActiveSessions` events
   * are simulated. 0 disables the warm-up.
   * @defaultValue 900000 (15 minutes)
   */
  warmUpMs: number;
}

/** Defaults of {@link GeneratorOptions}. */
export const defaultGeneratorOptions: Readonly<GeneratorOptions> = Object.freeze({
  seed: 1,
  users: 10_000,
  startTime: Date.UTC(2024, 0, 1),
  eventsPerSecond: 200,
  outOfOrderFraction: 0.02,
  maxOutOfOrderMs: 5_000,
  skew: 1.1,
  devices: 8_000,
  fraudFraction: 0.01,
  maxActiveSessions: 10_000,
  warmUpMs: 900_000,
});

/** Options of {@link taobaoStyleEvents}. */
export interface TaobaoStyleOptions {
  /** PRNG seed, a safe integer. */
  seed: number;
  /** Number of distinct users (`u0` … `u<users-1>`). */
  users: number;
  /** Event time of the first event, epoch ms. */
  startTime: number;
  /** Number of events to produce. */
  count: number;
  /** Event-time rate: mean spacing of event times is `1000 / eventsPerSecond` ms. */
  eventsPerSecond: number;
  /**
   * Zipf exponent of user activity.
   * @defaultValue 0.8
   */
  skew?: number;
}

const MAX_USERS = 20_000_000;

function invalid(name: string, rule: string, value: unknown): never {
  throw new ConfigError('PRT_CONFIG_INVALID', `generator option /${name} must be ${rule}, got ${showValue(value)}`, { path: `/${name}` });
}

function checkInteger(name: string, value: unknown, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min || value > max) {
    invalid(name, `an integer from ${min} to ${max}`, value);
  }
  return value;
}

function checkNumber(name: string, value: unknown, min: number, max: number, minExclusive = false): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value > max || (minExclusive ? value <= min : value < min)) {
    invalid(name, minExclusive ? `a number above ${min} and at most ${max}` : `a number from ${min} to ${max}`, value);
  }
  return value;
}

function resolveGeneratorOptions(options: Partial<GeneratorOptions>): Readonly<GeneratorOptions> {
  const o: GeneratorOptions = { ...defaultGeneratorOptions, ...options };
  checkInteger('seed', o.seed, Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER);
  checkInteger('users', o.users, 1, MAX_USERS);
  checkNumber('startTime', o.startTime, 0, 8.64e15);
  checkNumber('eventsPerSecond', o.eventsPerSecond, 0, 1e9, true);
  checkNumber('outOfOrderFraction', o.outOfOrderFraction, 0, 1);
  checkInteger('maxOutOfOrderMs', o.maxOutOfOrderMs, 0, 365 * 86_400_000);
  checkNumber('skew', o.skew, 0, 10);
  checkInteger('devices', o.devices, 1, MAX_USERS);
  checkNumber('fraudFraction', o.fraudFraction, 0, 1);
  checkInteger('maxActiveSessions', o.maxActiveSessions, 1, 10_000_000);
  checkNumber('warmUpMs', o.warmUpMs, 0, 365 * 86_400_000);
  return Object.freeze(o);
}

// ---------------------------------------------------------------------------
// Randomness
// ---------------------------------------------------------------------------

/** 32-bit integer hash (lowbias32), for stable per-user and per-item attributes. */
function mix32(x: number): number {
  x = Math.imul(x ^ (x >>> 16), 0x7feb352d);
  x = Math.imul(x ^ (x >>> 15), 0x846ca68b);
  return (x ^ (x >>> 16)) >>> 0;
}

const TWO_POW_32 = 4_294_967_296;

/** sfc32: a small, fast PRNG with 128 bits of state; Math.random is never used. */
class Sfc32 {
  private a: number;
  private b: number;
  private c: number;
  private d: number;

  constructor(seed: number) {
    const lo = seed >>> 0;
    const hi = Math.floor(seed / TWO_POW_32) >>> 0;
    this.a = mix32(lo ^ 0x9e3779b9);
    this.b = mix32(hi ^ 0x243f6a88);
    this.c = mix32((lo + 0x85a308d3) | 0);
    this.d = 1;
    for (let i = 0; i < 16; i++) this.u32();
  }

  u32(): number {
    const a = this.a;
    const b = this.b;
    const c = this.c;
    const t = (((a + b) | 0) + this.d) | 0;
    this.d = (this.d + 1) | 0;
    this.a = b ^ (b >>> 9);
    this.b = (c + (c << 3)) | 0;
    this.c = (((c << 21) | (c >>> 11)) + t) | 0;
    return t >>> 0;
  }

  /** Uniform in [0, 1). */
  float(): number {
    return this.u32() / TWO_POW_32;
  }

  /** Uniform integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.float() * n);
  }

  /** Uniform in [min, max). */
  between(min: number, max: number): number {
    return min + this.float() * (max - min);
  }

  /** Log-uniform in [min, max): spreads waits over orders of magnitude. */
  logUniform(min: number, max: number): number {
    return min * Math.exp(this.float() * Math.log(max / min));
  }

  /** Log-normal with the given median and log-space standard deviation. */
  logNormal(median: number, sigma: number): number {
    const u = 1 - this.float();
    const v = this.float();
    return median * Math.exp(sigma * Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v));
  }
}

/**
 * Zipf sampler over ranks 0..n-1 (weight (k+1)^-exponent) using Walker's
 * alias method: O(1) per sample, 12 bytes per rank.
 */
class ZipfSampler {
  private readonly n: number;
  private readonly prob: Float64Array;
  private readonly alias: Int32Array;

  constructor(n: number, exponent: number) {
    this.n = n;
    const prob = new Float64Array(n);
    let sum = 0;
    for (let k = 0; k < n; k++) {
      const w = exponent === 0 ? 1 : Math.pow(k + 1, -exponent);
      prob[k] = w;
      sum += w;
    }
    const scale = n / sum;
    const small = new Int32Array(n);
    const large = new Int32Array(n);
    let ns = 0;
    let nl = 0;
    for (let k = 0; k < n; k++) {
      const p = prob[k]! * scale;
      prob[k] = p;
      if (p < 1) small[ns++] = k;
      else large[nl++] = k;
    }
    const alias = new Int32Array(n);
    while (ns > 0 && nl > 0) {
      const l = small[--ns]!;
      const g = large[--nl]!;
      alias[l] = g;
      const rest = prob[g]! + prob[l]! - 1;
      prob[g] = rest;
      if (rest < 1) small[ns++] = g;
      else large[nl++] = g;
    }
    // Leftovers are 1 up to rounding error.
    while (nl > 0) prob[large[--nl]!] = 1;
    while (ns > 0) prob[small[--ns]!] = 1;
    this.prob = prob;
    this.alias = alias;
  }

  sample(rng: Sfc32): number {
    const i = (rng.float() * this.n) | 0;
    return rng.float() < this.prob[i]! ? i : this.alias[i]!;
  }
}

function gcd(a: number, b: number): number {
  while (b !== 0) {
    const t = a % b;
    a = b;
    b = t;
  }
  return a;
}

/**
 * Maps activity rank to user number by a seeded affine permutation, so the
 * busiest user is not always `u0` and neighbours in rank are spread out.
 */
class RankPermutation {
  private readonly n: number;
  private readonly stride: number;
  private readonly offset: number;

  constructor(n: number, hash: number) {
    this.n = n;
    let stride = Math.max(1, Math.floor(n * 0.6180339887)) + (hash % 7);
    while (gcd(stride, n) !== 1) stride++;
    this.stride = stride % n === 0 ? 1 : stride;
    this.offset = hash % n;
  }

  map(rank: number): number {
    return (rank * this.stride + this.offset) % this.n;
  }
}

function round2(x: number): number {
  const r = Math.round(x * 100) / 100;
  return r < 0.01 ? 0.01 : r;
}

/** Lazily filled cache of `${prefix}${n}` strings for a bounded id space. */
class IdStrings {
  private readonly prefix: string;
  private readonly cache: Array<string | undefined>;

  constructor(prefix: string, size: number) {
    this.prefix = prefix;
    this.cache = new Array<string | undefined>(size);
  }

  get(n: number): string {
    let s = this.cache[n];
    if (s === undefined) {
      s = this.prefix + n;
      this.cache[n] = s;
    }
    return s;
  }
}

// ---------------------------------------------------------------------------
// Session model
// ---------------------------------------------------------------------------

const CITIES = [
  'Shanghai', 'Beijing', 'Shenzhen', 'Guangzhou', 'Hangzhou', 'Chengdu', 'Wuhan', 'Nanjing',
  'Chongqing', 'Suzhou', "Xi'an", 'Tianjin', 'Changsha', 'Zhengzhou', 'Qingdao', 'Xiamen',
] as const;
const CHANNELS = ['app', 'web', 'mini_program', 'h5'] as const;
const METHODS = ['card', 'wallet', 'bank_transfer', 'credit'] as const;
const OTHER_PAGES = ['home', 'search', 'category', 'promo', 'cart'] as const;
const TERMS = [3, 6, 12, 24, 36] as const;

const CAMPAIGNS = 24;
const MULE_ACCOUNTS = 64;
const LOGIN_FAILURE_RATE = 0.04;
const PAYMENT_FAILURE_RATE = 0.04;
const UNPAID_RATE = 0.12;
const MAX_PENDING_SHIFTS = 64;

// Salts of the per-entity hashes.
const SALT_HOME = 0x1b873593;
const SALT_CITY = 0x2c1b3c6d;
const SALT_CHANNEL = 0x297a2d39;
const SALT_METHOD = 0x7ed55d16;
const SALT_IP = 0x165667b1;
const SALT_PAYEE = 0x5bd1e995;
const SALT_CATEGORY = 0x68e31da4;
const SALT_SHOP = 0x3c6ef372;
const SALT_PRICE = 0x27d4eb2f;
const SALT_RANK = 0x61c88647;

// Session states: what the session emits next.
const S_DONE = 0;
const S_REGISTER = 1;
const S_LOGIN = 2;
const S_BROWSE = 3;
const S_ITEM_VIEW = 4;
const S_CART = 5;
const S_COUPON = 6;
const S_ORDER = 7;
const S_PAY = 8;
const S_REFUND = 9;
const S_TRANSFER = 10;
const S_LOAN_APP = 11;
const S_LOAN_OK = 12;
const S_REPAY = 13;
const S_BRUTE = 14;
const S_FARM = 15;
const S_HOARD = 16;

/** One session in progress. Objects are pooled and reused; every field is a primitive. */
class Session {
  state = S_DONE;
  afterLogin = S_DONE;
  fraud = false;
  /** User number, or -1 for device-centred sessions (coupon farming). */
  user = -1;
  key = '';
  device = 0;
  deviceId = '';
  channel = '';
  ip = '';
  /** Event time (float ms) at which the next event is due. */
  due = 0;
  /** Wait before the next event, ms; set by each step. */
  delay = 0;
  /** Emitted time of the previous event, ms. */
  lastTime = -1;
  /** Steps left in the current phase (page views, transfers, claims, orders…). */
  count = 0;
  attempts = 0;
  item = 0;
  shop = 0;
  cartTotal = 0;
  cartQty = 0;
  couponId: string | null = null;
  order = 0;
  orderId = '';
  amount = 0;
  term = 0;
  campaign = '';
}

/** Binary min-heap of sessions by `due`. */
class SessionHeap {
  readonly items: Session[] = [];

  get size(): number {
    return this.items.length;
  }

  peek(): Session | undefined {
    return this.items[0];
  }

  push(s: Session): void {
    const a = this.items;
    let i = a.length;
    a.push(s);
    const due = s.due;
    while (i > 0) {
      const p = (i - 1) >> 1;
      const parent = a[p]!;
      if (parent.due <= due) break;
      a[i] = parent;
      i = p;
    }
    a[i] = s;
  }

  pop(): Session {
    const a = this.items;
    const top = a[0]!;
    const last = a.pop()!;
    const n = a.length;
    if (n > 0) {
      const due = last.due;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        if (l >= n) break;
        const r = l + 1;
        let c = l;
        let child = a[l]!;
        if (r < n) {
          const right = a[r]!;
          if (right.due < child.due) {
            c = r;
            child = right;
          }
        }
        if (due <= child.due) break;
        a[i] = child;
        i = c;
      }
      a[i] = last;
    }
    return top;
  }
}

/**
 * A seeded, deterministic stream of realistic e-commerce and fintech user
 * events for the demo, tests and benchmarks. Every event validates against
 * `demoCatalog` (`src/ingest/demo-catalog.ts`).
 *
 * Users act in sessions that interleave: shopping (optional login → page
 * views and clicks → sometimes add_to_cart → sometimes order_created →
 * usually a payment within minutes, some orders never paid), fintech (login,
 * mostly successful → transfers, loan applications and approvals,
 * repayments), after-sales refunds, and — for `fraudFraction` of sessions —
 * brute-force login bursts, coupon farming from one device, unpaid-order
 * hoarding and account takeover with rapid transfers from a new device.
 * Each user has a stable home device, city, channel and payees.
 *
 * Event times advance by exponential gaps averaging `1000 / eventsPerSecond`
 * ms; `outOfOrderFraction` of events are shifted back by up to
 * `maxOutOfOrderMs`. Events of one session have non-decreasing times. Memory is
 * bounded by `users`, `devices` and `maxActiveSessions`, not by how many
 * events are drawn. The first minutes of event time are a warm-up in which the
 * session pool fills up.
 *
 * @example
 * ```ts
 * const gen = new EventGenerator({ seed: 7, users: 1000 });
 * const first = gen.take(100);
 * for (const event of gen) { if (event.time > end) break; }
 * ```
 */
export class EventGenerator implements Iterable<Event> {
  /** The resolved, frozen options. */
  readonly options: Readonly<GeneratorOptions>;

  private readonly rng: Sfc32;
  private readonly users: number;
  private readonly devices: number;
  private readonly salt: number;
  private readonly meanGapMs: number;
  private readonly startTime: number;
  private shiftOdds: number;
  private pendingShifts = 0;
  private maxTime = -1;
  private readonly maxShiftMs: number;
  private readonly fraud: number;
  private readonly maxActive: number;
  private clock: number;

  private readonly userRanks: ZipfSampler;
  private readonly rankToUser: RankPermutation;
  private readonly itemRanks: ZipfSampler;
  private readonly itemToId: RankPermutation;
  private readonly itemPrice: Float64Array;
  private readonly categories: number;
  private readonly shops: number;
  private readonly accounts: number;

  private readonly userIds: IdStrings;
  private readonly deviceIds: IdStrings;
  private readonly itemIds: IdStrings;
  private readonly categoryIds: IdStrings;
  private readonly shopIds: IdStrings;
  private readonly campaignIds: IdStrings;
  private readonly muleIds: IdStrings;

  // Mutable per-user state, bounded by `users`.
  private readonly registered: Uint8Array;
  private readonly lastPaidOrder: Float64Array;
  private readonly lastPaidAmount: Float64Array;
  private readonly loan: Float64Array;
  private readonly loanInstalment: Float64Array;
  private readonly loanLeft: Uint8Array;

  private readonly heap = new SessionHeap();
  private readonly free: Session[] = [];
  private orderSeq = 0;
  private loanSeq = 0;
  private couponSeq = 0;
  private emitted = 0;

  constructor(options: Partial<GeneratorOptions> = {}) {
    const o = resolveGeneratorOptions(options);
    this.options = o;
    this.rng = new Sfc32(o.seed);
    this.salt = this.rng.u32();
    this.users = o.users;
    this.devices = o.devices;
    this.meanGapMs = 1000 / o.eventsPerSecond;
    this.startTime = Math.floor(o.startTime);
    this.clock = this.startTime;
    this.shiftOdds = o.maxOutOfOrderMs > 0 ? o.outOfOrderFraction : 0;
    this.maxShiftMs = o.maxOutOfOrderMs;
    this.fraud = o.fraudFraction;
    this.maxActive = o.maxActiveSessions;

    this.userRanks = new ZipfSampler(o.users, o.skew);
    this.rankToUser = new RankPermutation(o.users, mix32(this.salt ^ SALT_RANK));
    const items = Math.min(100_000, Math.max(1_000, o.users));
    this.itemRanks = new ZipfSampler(items, 0.9);
    this.itemToId = new RankPermutation(items, mix32(this.salt ^ SALT_RANK ^ 1));
    this.itemPrice = new Float64Array(items);
    const priceRng = new Sfc32(mix32(this.salt ^ SALT_PRICE));
    for (let i = 0; i < items; i++) this.itemPrice[i] = round2(priceRng.logNormal(39, 1.0));
    this.categories = Math.min(2_000, Math.max(20, Math.floor(items / 50)));
    this.shops = Math.max(10, Math.floor(items / 20));
    this.accounts = o.users * 3;

    this.userIds = new IdStrings('u', o.users);
    this.deviceIds = new IdStrings('d', o.devices);
    this.itemIds = new IdStrings('i', items);
    this.categoryIds = new IdStrings('cat', this.categories);
    this.shopIds = new IdStrings('s', this.shops);
    this.campaignIds = new IdStrings('camp', CAMPAIGNS);
    this.muleIds = new IdStrings('m', MULE_ACCOUNTS);

    this.registered = new Uint8Array(o.users);
    this.lastPaidOrder = new Float64Array(o.users);
    this.lastPaidAmount = new Float64Array(o.users);
    this.loan = new Float64Array(o.users);
    this.loanInstalment = new Float64Array(o.users);
    this.loanLeft = new Uint8Array(o.users);
    this.warmUp(o.warmUpMs);
  }

  /**
   * Runs the simulation for `durationMs` of event time, discarding events,
   * then moves the sessions under way back so the first real event is at
   * `startTime`.
   */
  private warmUp(durationMs: number): void {
    if (durationMs <= 0) return;
    const shiftOdds = this.shiftOdds;
    this.shiftOdds = 0;
    const end = this.startTime + durationMs;
    const limit = 20 * this.maxActive;
    for (let i = 0; i < limit && this.clock < end; i++) this.next();
    this.shiftOdds = shiftOdds;
    const offset = this.clock - this.startTime;
    for (const s of this.heap.items) {
      s.due -= offset;
      s.lastTime = -1;
    }
    this.clock = this.startTime;
    this.maxTime = -1;
    this.emitted = 0;
  }

  /** Sessions currently in progress (at most `maxActiveSessions`). */
  get activeSessions(): number {
    return this.heap.size;
  }

  /** Number of events returned so far. */
  get count(): number {
    return this.emitted;
  }

  /** Returns the next event. */
  next(): Event {
    const rng = this.rng;
    this.clock += -Math.log(1 - rng.float()) * this.meanGapMs;
    const now = this.clock;
    const heap = this.heap;
    const top = heap.peek();
    let s: Session;
    if (top !== undefined && (top.due <= now || heap.size >= this.maxActive)) s = heap.pop();
    else s = this.startSession();

    let time = Math.floor(now);
    if (this.shiftOdds > 0) {
      if (rng.float() < this.shiftOdds && this.pendingShifts < MAX_PENDING_SHIFTS) this.pendingShifts++;
      if (this.pendingShifts > 0) {
        // A shift may not reach before the session's previous event or startTime; when
        // that leaves no room, the shift is owed and paid by a later event, so the
        // realised out-of-order fraction matches the option.
        let shifted = time - 1 - rng.int(this.maxShiftMs);
        let earliest = s.lastTime + 1;
        if (earliest < this.startTime) earliest = this.startTime;
        if (shifted < earliest) shifted = earliest;
        if (shifted < this.maxTime) {
          time = shifted;
          this.pendingShifts--;
        }
      }
    }
    if (time > this.maxTime) this.maxTime = time;
    s.lastTime = time;

    const event = this.step(s, time);
    if (s.state === S_DONE) {
      this.releaseSession(s);
    } else {
      s.due = now + s.delay;
      heap.push(s);
    }
    this.emitted++;
    return event;
  }

  private releaseSession(s: Session): void {
    s.state = S_DONE;
    this.free.push(s);
  }

  /** Returns the next `n` events. */
  take(n: number): Event[] {
    const out: Event[] = [];
    for (let i = 0; i < n; i++) out.push(this.next());
    return out;
  }

  /** Iterates forever over {@link EventGenerator.next}; break out of the loop to stop. */
  *[Symbol.iterator](): Generator<Event, never, undefined> {
    for (;;) yield this.next();
  }

  // --- per-entity stable attributes --------------------------------------

  private hash(n: number, salt: number): number {
    return mix32((Math.imul(n, 0x9e3779b1) ^ this.salt ^ salt) | 0);
  }

  private homeDevice(user: number): number {
    return this.hash(user, SALT_HOME) % this.devices;
  }

  private city(user: number): string {
    // Squaring skews towards the first (largest) cities.
    const h = this.hash(user, SALT_CITY) / TWO_POW_32;
    return CITIES[Math.floor(h * h * CITIES.length)]!;
  }

  private homeIp(user: number): string {
    const h = this.hash(user, SALT_IP);
    return `${100 + (h >>> 24) % 100}.${(h >>> 16) & 255}.${(h >>> 8) & 255}.${h & 255}`;
  }

  private randomIp(): string {
    const h = this.rng.u32();
    return `${1 + (h >>> 24) % 223}.${(h >>> 16) & 255}.${(h >>> 8) & 255}.${h & 255}`;
  }

  private categoryOf(item: number): number {
    return this.hash(item, SALT_CATEGORY) % this.categories;
  }

  private shopOf(item: number): number {
    return this.hash(item, SALT_SHOP) % this.shops;
  }

  private payee(user: number, j: number): string {
    return `a${this.hash(user * 4 + j, SALT_PAYEE) % this.accounts}`;
  }

  private sampleUser(): number {
    return this.rankToUser.map(this.userRanks.sample(this.rng));
  }

  private sampleItem(): number {
    return this.itemToId.map(this.itemRanks.sample(this.rng));
  }

  // --- sessions ------------------------------------------------------------

  private startSession(): Session {
    const rng = this.rng;
    const s = this.free.pop() ?? new Session();
    s.lastTime = -1;
    s.attempts = 0;
    s.cartTotal = 0;
    s.cartQty = 0;
    s.couponId = null;
    s.fraud = false;
    s.afterLogin = S_DONE;
    if (rng.float() < this.fraud) this.startFraud(s);
    else this.startNormal(s);
    return s;
  }

  private startNormal(s: Session): void {
    const rng = this.rng;
    const user = this.sampleUser();
    s.user = user;
    s.key = this.userIds.get(user);
    s.device = rng.float() < 0.93 ? this.homeDevice(user) : rng.int(this.devices);
    s.deviceId = this.deviceIds.get(s.device);
    const preferred = this.hash(user, SALT_CHANNEL) % CHANNELS.length;
    s.channel = CHANNELS[rng.float() < 0.85 ? preferred : rng.int(CHANNELS.length)]!;
    s.ip = rng.float() < 0.9 ? this.homeIp(user) : this.randomIp();

    let needLogin = true;
    const mode = rng.float();
    if (mode < 0.08 && this.lastPaidOrder[user]! > 0) {
      s.afterLogin = S_REFUND;
    } else if (mode < 0.36) {
      if (this.loanLeft[user]! > 0 && rng.float() < 0.25) {
        s.afterLogin = S_REPAY;
      } else if (rng.float() < 0.2) {
        s.afterLogin = S_LOAN_APP;
      } else {
        s.afterLogin = S_TRANSFER;
        s.count = 1 + (rng.float() < 0.35 ? 1 : 0) + (rng.float() < 0.1 ? 1 : 0);
      }
    } else {
      s.afterLogin = S_BROWSE;
      s.count = 2 + Math.floor(-Math.log(1 - rng.float()) * 5);
      needLogin = rng.float() < 0.45;
    }
    if (this.registered[user] === 0) s.state = S_REGISTER;
    else s.state = needLogin ? S_LOGIN : s.afterLogin;
  }

  private startFraud(s: Session): void {
    const rng = this.rng;
    s.fraud = true;
    const kind = rng.float();
    if (kind < 0.25) {
      // Coupon farming: one device claims a campaign's coupons for many accounts.
      s.user = -1;
      s.device = rng.int(this.devices);
      s.deviceId = this.deviceIds.get(s.device);
      s.campaign = this.campaignIds.get(rng.int(CAMPAIGNS));
      s.count = 5 + rng.int(16);
      s.state = S_FARM;
      return;
    }
    const user = this.sampleUser();
    s.user = user;
    s.key = this.userIds.get(user);
    s.channel = CHANNELS[rng.int(CHANNELS.length)]!;
    if (kind < 0.55) {
      // Brute force: a burst of failed logins from a foreign device, sometimes breaking in.
      s.device = rng.int(this.devices);
      s.ip = this.randomIp();
      s.count = 6 + rng.int(10);
      s.state = S_BRUTE;
    } else if (kind < 0.8) {
      // Account takeover: a successful login from a new device, then rapid transfers.
      s.device = rng.int(this.devices);
      s.ip = this.randomIp();
      s.afterLogin = S_TRANSFER;
      s.count = 3 + rng.int(4);
      s.state = S_LOGIN;
    } else {
      // Inventory hoarding: several orders in a row, none ever paid.
      s.device = this.homeDevice(user);
      s.ip = this.homeIp(user);
      s.afterLogin = S_HOARD;
      s.count = 3 + rng.int(6);
      s.state = S_LOGIN;
    }
    s.deviceId = this.deviceIds.get(s.device);
  }

  /** Emits the session's next event and moves it to its next state and delay. */
  private step(s: Session, time: number): Event {
    const rng = this.rng;
    switch (s.state) {
      case S_REGISTER: {
        this.registered[s.user] = 1;
        s.state = S_LOGIN;
        s.delay = rng.between(5_000, 60_000);
        return { type: 'register', time, key: s.key, attrs: { device_id: s.deviceId, channel: s.channel, city: this.city(s.user) } };
      }
      case S_LOGIN: {
        const success = s.fraud || rng.float() >= LOGIN_FAILURE_RATE;
        if (success) {
          s.state = s.afterLogin;
          s.delay = s.fraud ? rng.between(1_000, 6_000) : rng.logUniform(2_000, 30_000);
        } else if (++s.attempts < 3) {
          s.delay = rng.between(3_000, 20_000);
        } else {
          s.state = S_DONE;
        }
        return this.login(s, time, success);
      }
      case S_BRUTE: {
        if (--s.count > 0) {
          s.delay = rng.between(1_000, 8_000);
        } else if (rng.float() < 0.35) {
          s.state = S_LOGIN;
          s.afterLogin = S_TRANSFER;
          s.count = 2 + rng.int(3);
          s.delay = rng.between(1_000, 5_000);
        } else {
          s.state = S_DONE;
        }
        return this.login(s, time, false);
      }
      case S_BROWSE: {
        if (rng.float() < 0.6) {
          s.item = this.sampleItem();
          if (rng.float() < 0.5) {
            s.state = S_ITEM_VIEW;
            s.delay = rng.between(300, 3_000);
            return { type: 'click', time, key: s.key, attrs: { item_id: this.itemIds.get(s.item), category_id: this.categoryIds.get(this.categoryOf(s.item)), channel: s.channel } };
          }
          return this.itemView(s, time);
        }
        const page = OTHER_PAGES[rng.int(OTHER_PAGES.length)]!;
        const category = page === 'category' ? this.categoryIds.get(this.categoryOf(this.sampleItem())) : null;
        this.afterView(s, false);
        return { type: 'page_view', time, key: s.key, attrs: { page, item_id: null, category_id: category, channel: s.channel } };
      }
      case S_ITEM_VIEW:
        return this.itemView(s, time);
      case S_CART: {
        const item = s.item;
        const price = this.itemPrice[item]!;
        const r = rng.float();
        const quantity = r < 0.8 ? 1 : r < 0.95 ? 2 : 3 + rng.int(3);
        if (s.cartQty === 0) s.shop = this.shopOf(item);
        s.cartTotal += price * quantity;
        s.cartQty += quantity;
        this.nextView(s);
        return {
          type: 'add_to_cart',
          time,
          key: s.key,
          attrs: { item_id: this.itemIds.get(item), category_id: this.categoryIds.get(this.categoryOf(item)), shop_id: this.shopIds.get(this.shopOf(item)), price, quantity },
        };
      }
      case S_COUPON: {
        const couponId = `c${++this.couponSeq}`;
        s.couponId = couponId;
        s.state = S_ORDER;
        s.delay = rng.logUniform(5_000, 60_000);
        return { type: 'coupon_claim', time, key: s.key, attrs: { campaign_id: this.campaignIds.get(rng.int(CAMPAIGNS)), coupon_id: couponId, device_id: s.deviceId } };
      }
      case S_ORDER: {
        const total = s.cartTotal;
        const discount = s.couponId === null ? 0 : Math.min(5 + total * 0.1, total * 0.5);
        s.order = ++this.orderSeq;
        s.orderId = `o${s.order}`;
        s.amount = round2(total - discount);
        if (rng.float() < UNPAID_RATE) {
          s.state = S_DONE;
        } else {
          s.state = S_PAY;
          s.attempts = 0;
          s.delay = rng.logUniform(10_000, 300_000);
        }
        return {
          type: 'order_created',
          time,
          key: s.key,
          attrs: { order_id: s.orderId, shop_id: this.shopIds.get(s.shop), amount: s.amount, item_count: s.cartQty, coupon_id: s.couponId },
        };
      }
      case S_PAY: {
        const success = rng.float() >= PAYMENT_FAILURE_RATE;
        const preferred = this.hash(s.user, SALT_METHOD) % METHODS.length;
        const method = METHODS[rng.float() < 0.9 ? preferred : rng.int(METHODS.length)]!;
        if (!success && ++s.attempts < 3) {
          s.delay = rng.between(5_000, 60_000);
        } else {
          s.state = S_DONE;
          // Some paid orders come back later in an after-sales session.
          if (success && rng.float() < 0.06) {
            this.lastPaidOrder[s.user] = s.order;
            this.lastPaidAmount[s.user] = s.amount;
          }
        }
        return { type: 'payment', time, key: s.key, attrs: { order_id: s.orderId, shop_id: this.shopIds.get(s.shop), amount: s.amount, method, success } };
      }
      case S_REFUND: {
        const user = s.user;
        const paid = this.lastPaidAmount[user]!;
        const amount = rng.float() < 0.7 ? paid : round2(paid * rng.between(0.1, 0.9));
        const orderId = `o${this.lastPaidOrder[user]!}`;
        this.lastPaidOrder[user] = 0;
        s.state = S_DONE;
        return { type: 'refund', time, key: s.key, attrs: { order_id: orderId, amount } };
      }
      case S_HOARD: {
        const item = this.sampleItem();
        const quantity = 2 + rng.int(8);
        const orderId = `o${++this.orderSeq}`;
        if (--s.count > 0) s.delay = rng.between(5_000, 40_000);
        else s.state = S_DONE;
        return {
          type: 'order_created',
          time,
          key: s.key,
          attrs: { order_id: orderId, shop_id: this.shopIds.get(this.shopOf(item)), amount: round2(this.itemPrice[item]! * quantity), item_count: quantity, coupon_id: null },
        };
      }
      case S_FARM: {
        const user = rng.int(this.users);
        s.key = this.userIds.get(user);
        if (--s.count > 0) s.delay = rng.between(2_000, 20_000);
        else s.state = S_DONE;
        return { type: 'coupon_claim', time, key: s.key, attrs: { campaign_id: s.campaign, coupon_id: `c${++this.couponSeq}`, device_id: s.deviceId } };
      }
      case S_TRANSFER: {
        let to: string;
        let amount: number;
        if (s.fraud) {
          to = this.muleIds.get(rng.int(MULE_ACCOUNTS));
          amount = rng.float() < 0.35 ? rng.logUniform(10_000, 50_000) : rng.logNormal(3_000, 0.6);
        } else {
          to = rng.float() < 0.8 ? this.payee(s.user, rng.int(3)) : `a${rng.int(this.accounts)}`;
          amount = rng.float() < 0.02 ? rng.logUniform(10_000, 200_000) : rng.logNormal(150, 1.1);
        }
        if (--s.count > 0) s.delay = s.fraud ? rng.between(3_000, 15_000) : rng.logUniform(20_000, 300_000);
        else s.state = S_DONE;
        return { type: 'transfer', time, key: s.key, attrs: { to_account: to, amount: round2(amount), device_id: s.deviceId, channel: s.channel } };
      }
      case S_LOAN_APP: {
        s.order = ++this.loanSeq;
        s.orderId = `l${s.order}`;
        s.amount = Math.max(500, Math.round(rng.logNormal(15_000, 0.9) / 100) * 100);
        s.term = TERMS[rng.int(TERMS.length)]!;
        if (rng.float() < 0.6) {
          s.state = S_LOAN_OK;
          s.delay = rng.logUniform(30_000, 600_000);
        } else {
          s.state = S_DONE;
        }
        return { type: 'loan_application', time, key: s.key, attrs: { loan_id: s.orderId, amount: s.amount, term_months: s.term } };
      }
      case S_LOAN_OK: {
        const amount = rng.float() < 0.8 ? s.amount : Math.max(500, Math.round((s.amount * rng.between(0.5, 0.9)) / 100) * 100);
        this.loan[s.user] = s.order;
        this.loanInstalment[s.user] = round2((amount * 1.05) / s.term);
        this.loanLeft[s.user] = s.term;
        s.state = S_DONE;
        return { type: 'loan_approved', time, key: s.key, attrs: { loan_id: s.orderId, amount } };
      }
      case S_REPAY: {
        const user = s.user;
        const r = rng.float();
        const overdue = r < 0.85 ? 0 : r < 0.95 ? 1 + rng.int(15) : 16 + rng.int(105);
        const amount = round2(this.loanInstalment[user]! * (1 + overdue * 0.0005));
        const loanId = `l${this.loan[user]!}`;
        this.loanLeft[user] = this.loanLeft[user]! - 1;
        s.state = S_DONE;
        return { type: 'repayment', time, key: s.key, attrs: { loan_id: loanId, amount, overdue_days: overdue } };
      }
      default:
        throw new PortraitError('PRT_INTERNAL', `event generator reached unknown session state ${s.state}`);
    }
  }

  private login(s: Session, time: number, success: boolean): Event {
    return { type: 'login', time, key: s.key, attrs: { device_id: s.deviceId, ip: s.ip, channel: s.channel, success } };
  }

  private itemView(s: Session, time: number): Event {
    const item = s.item;
    this.afterView(s, true);
    return {
      type: 'page_view',
      time,
      key: s.key,
      attrs: { page: 'item', item_id: this.itemIds.get(item), category_id: this.categoryIds.get(this.categoryOf(item)), channel: s.channel },
    };
  }

  private afterView(s: Session, itemPage: boolean): void {
    if (itemPage && this.rng.float() < 0.15) {
      s.state = S_CART;
      s.delay = this.rng.between(5_000, 60_000);
      return;
    }
    this.nextView(s);
  }

  /** Counts one view done: browse on, or head for checkout. */
  private nextView(s: Session): void {
    const rng = this.rng;
    if (--s.count > 0) {
      s.state = S_BROWSE;
      s.delay = rng.logUniform(3_000, 90_000);
    } else if (s.cartQty > 0 && rng.float() < 0.6) {
      s.state = rng.float() < 0.15 ? S_COUPON : S_ORDER;
      s.delay = rng.logUniform(10_000, 90_000);
    } else {
      s.state = S_DONE;
    }
  }
}

/** Creates an {@link EventGenerator}; the same as `new EventGenerator(options)`. */
export function createEventGenerator(options: Partial<GeneratorOptions> = {}): EventGenerator {
  return new EventGenerator(options);
}

// ---------------------------------------------------------------------------
// Taobao-style stream
// ---------------------------------------------------------------------------

const TAOBAO_TYPES = ['pv', 'cart', 'fav', 'buy'] as const;
// Shares in the public Taobao user-behaviour dataset: pv 89 %, cart 5.5 %, fav 3 %, buy 2.2 %.
const TAOBAO_SHARES = [0.89, 0.055, 0.03, 0.022] as const;

/**
 * A fast stream of Taobao-dataset-style events (`pv`, `cart`, `fav`, `buy`
 * with string `item_id` and `category_id`, see `taobaoCatalog`) for
 * benchmarks at scale, e.g. a million users. Users are Zipf-distributed
 * (exponent `skew`), items follow a power law, each item belongs to one
 * category, and type shares match the public dataset. Times increase
 * monotonically by uniform gaps averaging `1000 / eventsPerSecond` ms.
 * Deterministic for the same options. Options are checked when called.
 */
export function taobaoStyleEvents(options: TaobaoStyleOptions): Generator<Event> {
  const seed = checkInteger('seed', options.seed, Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER);
  const users = checkInteger('users', options.users, 1, MAX_USERS);
  const startTime = Math.floor(checkNumber('startTime', options.startTime, 0, 8.64e15));
  const count = checkNumber('count', options.count, 0, Number.POSITIVE_INFINITY);
  const eventsPerSecond = checkNumber('eventsPerSecond', options.eventsPerSecond, 0, 1e9, true);
  const skew = checkNumber('skew', options.skew ?? 0.8, 0, 10);
  return taobaoStream(seed, users, startTime, count, eventsPerSecond, skew);
}

function* taobaoStream(seed: number, users: number, startTime: number, count: number, eventsPerSecond: number, skew: number): Generator<Event> {
  const rng = new Sfc32(seed);
  const salt = rng.u32();
  const userRanks = new ZipfSampler(users, skew);
  const rankToUser = new RankPermutation(users, mix32(salt ^ SALT_RANK));
  const userIds = new IdStrings('u', users);

  // The dataset has ~4 items per user and ~440 items per category.
  const items = Math.min(4_000_000, Math.max(1_000, users * 4));
  const categories = Math.min(10_000, Math.max(50, Math.ceil(items / 440)));
  const categoryIds = new Array<string>(categories);
  for (let c = 0; c < categories; c++) categoryIds[c] = String(c + 1);
  // Item popularity: continuous power law with exponent 0.9 by inverse CDF, no table needed.
  const itemExponent = 0.9;
  const itemSpan = Math.pow(items, 1 - itemExponent) - 1;
  const itemPower = 1 / (1 - itemExponent);
  const itemSalt = mix32(salt ^ SALT_CATEGORY);
  const rankToItem = new RankPermutation(items, mix32(salt ^ SALT_RANK ^ 1));

  const cut0 = TAOBAO_SHARES[0] / (TAOBAO_SHARES[0] + TAOBAO_SHARES[1] + TAOBAO_SHARES[2] + TAOBAO_SHARES[3]);
  const cut1 = cut0 + TAOBAO_SHARES[1] / (TAOBAO_SHARES[0] + TAOBAO_SHARES[1] + TAOBAO_SHARES[2] + TAOBAO_SHARES[3]);
  const cut2 = cut1 + TAOBAO_SHARES[2] / (TAOBAO_SHARES[0] + TAOBAO_SHARES[1] + TAOBAO_SHARES[2] + TAOBAO_SHARES[3]);
  const twiceGap = 2000 / eventsPerSecond;
  let clock = startTime;

  for (let i = 0; i < count; i++) {
    const time = Math.floor(clock);
    clock += rng.float() * twiceGap;
    const user = rankToUser.map(userRanks.sample(rng));
    const r = rng.float();
    const type = r < cut0 ? TAOBAO_TYPES[0] : r < cut1 ? TAOBAO_TYPES[1] : r < cut2 ? TAOBAO_TYPES[2] : TAOBAO_TYPES[3];
    let rank = Math.floor(Math.pow(1 + rng.float() * itemSpan, itemPower)) - 1;
    if (rank >= items) rank = items - 1;
    // Scatter ranks over the id space so popular items do not have small ids.
    const item = rankToItem.map(rank);
    const category = mix32((item ^ itemSalt) | 0) % categories;
    const attrs: Record<string, AttrValue> = { item_id: String(item + 1), category_id: categoryIds[category]! };
    yield { type, time, key: userIds.get(user), attrs };
  }
}
