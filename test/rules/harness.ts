import { expect } from 'vitest';
import type { FastifyInstance } from 'fastify';
import type { PortraitConfig } from '../../src/config/index.js';
import type { Clock, Decision } from '../../src/engine/index.js';
import type { EmbeddedSystem, EmbeddedSystemOptions } from '../../src/runtime/embedded-system.js';
import { openTestApp, testConfig } from '../helpers/system.js';

/**
 * A small harness for end-to-end rule tests: the real embedded system (log,
 * engine, LMDB, PGlite or PostgreSQL definitions) driven through its HTTP
 * routes with `app.inject`, and event time moved on explicitly.
 *
 * Every event time is an offset from {@link T0}, a fixed instant in the past
 * aligned to the hour, so windows and timeouts land on predictable times. The
 * engine's watermark is the partition stream time minus
 * `engine.outOfOrdernessMs` (5 s by default): an event-time rule sees an
 * event once some event (of any key) 5 s later has been appended, or after
 * {@link RuleSystem.advanceTo}.
 */
export const T0 = Date.UTC(2026, 0, 5, 10, 0, 0);
export const SECOND = 1_000;
export const MINUTE = 60_000;

/** A canonical event as `POST /v1/events` takes it. */
export type EventInput = { type: string; user_id: string; time: number } & Record<string, string | number | boolean | null>;

/** Shorthand for an event at `T0 + offsetMs`. */
export function ev(type: string, user: string, offsetMs: number, attrs: Record<string, string | number | boolean | null> = {}): EventInput {
  return { type, user_id: user, time: T0 + offsetMs, ...attrs };
}

/** A stored decision without its storage cursor. */
export type StoredDecision = Decision & { cursor?: number };

export interface RuleSystem {
  readonly app: FastifyInstance;
  readonly system: EmbeddedSystem;
  readonly config: PortraitConfig;
  /** Creates a rule through the API and (by default) starts it; returns the rule view. */
  addRule(doc: Record<string, unknown>, options?: { start?: boolean }): Promise<Record<string, unknown>>;
  /** Sends events in one request and waits until the engine processed them. */
  send(...events: EventInput[]): Promise<void>;
  /**
   * Moves event time to `T0 + offsetMs` with no event of any key under test:
   * one `page_view` of a bystander user (a type the rules under test do not
   * read) at that time, then a time mark to every partition, so the
   * watermark reaches `offsetMs - outOfOrderness` everywhere and event-time
   * timers fire on partitions that saw no new event.
   */
  advanceTo(offsetMs: number): Promise<void>;
  /** Writes a time mark (stream time and the clock's now) to every partition and waits until it is processed. */
  mark(): Promise<void>;
  /** Waits until everything appended is processed and the decisions are stored. */
  settle(): Promise<void>;
  /** Stored decisions of one rule, oldest first (by decision time, then key, then id). */
  decisions(ruleId: string): Promise<StoredDecision[]>;
  /** `GET /v1/rules/{id}` */
  rule(id: string): Promise<Record<string, unknown> & { runtime: { state: string; reason?: string; counters?: Record<string, number> } }>;
}

/** Opens a system with its HTTP app. `overrides` are dotted config paths, as for `testConfig`. */
export async function openRules(overrides: Record<string, unknown> = {}, options: EmbeddedSystemOptions & { config?: PortraitConfig } = {}): Promise<RuleSystem> {
  const config = options.config ?? (await testConfig(overrides));
  const { config: _ignored, ...systemOptions } = options;
  const { app, system } = await openTestApp(config, systemOptions);
  return wrap(app, system, config);
}

/** The harness around an already opened app and system. */
export function wrap(app: FastifyInstance, system: EmbeddedSystem, config: PortraitConfig): RuleSystem {
  const settle = async (): Promise<void> => {
    await system.engine.drain();
  };
  const self: RuleSystem = {
    app,
    system,
    config,
    async addRule(doc, options = {}) {
      const created = await app.inject({ method: 'POST', url: '/v1/rules', payload: doc });
      expect(created.statusCode, created.body).toBe(201);
      if (options.start === false) return created.json();
      const started = await app.inject({ method: 'POST', url: `/v1/rules/${String(doc.id)}/start` });
      expect(started.statusCode, started.body).toBe(200);
      return started.json();
    },
    async send(...events) {
      const res = await app.inject({ method: 'POST', url: '/v1/events', payload: events });
      expect(res.statusCode, res.body).toBe(200);
      expect(res.json().accepted, res.body).toBe(events.length);
      await settle();
    },
    async advanceTo(offsetMs) {
      await self.send(ev('page_view', 'bystander', offsetMs, { page: 'home', channel: 'app' }));
      await self.mark();
    },
    async mark() {
      await system.ingestor.mark();
      await settle();
    },
    settle,
    async decisions(ruleId) {
      const res = await app.inject({ method: 'GET', url: `/v1/decisions?rule=${ruleId}&limit=1000` });
      expect(res.statusCode, res.body).toBe(200);
      const items = res.json().items as StoredDecision[];
      for (const d of items) delete d.cursor;
      const order = (d: StoredDecision): string => `${JSON.stringify(d.key)}\u0000${d.id}`;
      return items.sort((a, b) => a.time - b.time || (order(a) < order(b) ? -1 : order(a) > order(b) ? 1 : 0));
    },
    async rule(id) {
      const res = await app.inject({ method: 'GET', url: `/v1/rules/${id}` });
      expect(res.statusCode, res.body).toBe(200);
      return res.json();
    },
  };
  return self;
}

/** The parts of a decision a test asserts: rule, version, key, outcome, trigger, time and matched events as `stage: [offsets]`. */
export function summary(d: Decision): { rule: string; version: number; key: Record<string, unknown>; outcome: string; trigger: string; at: number; matched: Record<string, number[]> | null } {
  let matched: Record<string, number[]> | null = null;
  if (d.matched !== null) {
    matched = {};
    for (const [stage, events] of Object.entries(d.matched)) matched[stage] = events.map((e) => e.time - T0);
  }
  return { rule: d.ruleId, version: d.version, key: d.key, outcome: d.outcome, trigger: d.trigger, at: d.time - T0, matched };
}

/** A clock tests move by hand (processing time, checkpoint intervals, mark intervals). */
export class ManualClock implements Clock {
  constructor(private time: number) {}
  now(): number {
    return this.time;
  }
  set(time: number): void {
    this.time = time;
  }
  advance(ms: number): void {
    this.time += ms;
  }
}
