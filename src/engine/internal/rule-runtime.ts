import type { AttrValue, Event } from '../event.js';
import type { Comparison, RuleConditionNode, RulePredicateContext, RuleSpec, StatisticTagSpec } from '../definition-set.js';
import type { Decision, EntitySnapshot, TagValue } from '../ports.js';
import { partitionOf } from '../partitioner.js';
import { ruleKeyOf, splitRuleKey } from '../rule-key.js';
import { CepNfa, clearCepSink, createCepSink, type CepMatch, type CepSink, type CepState, type CepTimeout } from './cep/index.js';
import { createStatisticOperator, type StatisticOperator } from './statistic-operators.js';
import { TimerQueue } from './timer-queue.js';

/** What the rule runtime needs from the partition that hosts it. */
export interface RuleHost {
  readonly partition: number;
  readonly partitionCount: number;
  /** Event-time watermark of the partition. */
  readonly watermark: number;
  /** Processing time carried by the log. */
  readonly processingTime: number;
  /** Log offset of the record being processed (for decision ids). */
  readonly currentOffset: number;
  /** Tags (those listed) and attributes of an entity, as the partition holds them now. */
  profileContext(entity: string, tagIds: ReadonlyArray<string>): { tags: Record<string, TagValue>; attrs: Record<string, AttrValue> };
  /** Sets a rule-output tag on an entity's profile. */
  setRuleTag(entity: string, tagId: string, value: TagValue, time: number, version: number): void;
  emitDecision(decision: Decision): void;
}

/** Counters of one rule in one partition. */
export interface RuleCounters {
  id: string;
  version: number;
  /** Condition evaluations. */
  evaluations: number;
  decisions: number;
  /** Predicate or output expressions that failed at run time (counted as false). */
  errors: number;
  lastError: string | undefined;
  /** Processing time of the latest error. */
  lastErrorAt: number;
  /** Events behind the watermark that an event-time rule could not order in (dropped, as Flink CEP does). */
  late: number;
  /** Events lacking a key field. */
  missingKey: number;
  /** Partial matches dropped at `maxPartialMatches`. */
  droppedPartialMatches: number;
  /** Keys with state. */
  keys: number;
}

const NO_TIMER = Infinity;
const INITIAL_CAPACITY = 64;
/** Prefix of rule state keys in checkpoints; entity keys never start with NUL. */
export const RULE_STATE_PREFIX = '\u0000r\u0000';

interface Output {
  seq: number;
  kind: 'match' | 'timeout';
  match: CepMatch;
  time: number;
}

/** State and logic of one rule in one partition: a key space, aggregates, NFAs, ordering buffers and timers. */
class RuleOp {
  readonly counters: RuleCounters;
  readonly aggs: StatisticOperator[];
  readonly nfas: CepNfa[];
  readonly aggTypes: Array<ReadonlySet<string>>;
  readonly seqTypes: Array<ReadonlySet<string>>;
  readonly triggers: ReadonlySet<string>;
  private slots = new Map<string, number>();
  private keys: string[] = [];
  private free: number[] = [];
  private capacity = INITIAL_CAPACITY;
  lastTime = new Float64Array(INITIAL_CAPACITY).fill(-Infinity);
  timerAt = new Float64Array(INITIAL_CAPACITY).fill(NO_TIMER);
  nfaStates: Array<Array<CepState | undefined>>;
  buffers: Array<Event[] | undefined> = [];
  private dirty = new Uint8Array(INITIAL_CAPACITY);
  private dirtyList: number[] = [];
  readonly deleted = new Set<string>();
  private readonly sink: CepSink = createCepSink();
  private decisionSeq = 0;
  private decisionOffset = -1;
  /** Position in the runtime's rule list (timer owner id). */
  index = 0;

  /** @param noteUntimedError called when an error happens before the partition knows the processing time. */
  constructor(public spec: RuleSpec, private readonly noteUntimedError: () => void) {
    this.counters = { id: spec.id, version: spec.version, evaluations: 0, decisions: 0, errors: 0, lastError: undefined, lastErrorAt: 0, late: 0, missingKey: 0, droppedPartialMatches: 0, keys: 0 };
    this.aggs = spec.aggregates.map((a, i) => {
      const tagSpec: StatisticTagSpec = {
        kind: 'statistic',
        id: `${spec.id}#${i}`,
        version: spec.version,
        stateId: `${spec.stateId}#${i}`,
        eventTypes: a.eventTypes,
        filter: a.filter,
        field: a.field,
        aggregate: a.aggregate,
        window: a.window,
        maxDistinct: a.maxDistinct,
      };
      return createStatisticOperator(tagSpec, INITIAL_CAPACITY);
    });
    this.aggTypes = spec.aggregates.map((a) => new Set(a.eventTypes));
    this.nfas = spec.sequences.map((s) => new CepNfa(s.pattern));
    this.seqTypes = spec.sequences.map((s) => new Set(s.eventTypes));
    this.nfaStates = spec.sequences.map(() => []);
    this.triggers = new Set(spec.triggerTypes);
  }

  get keyCount(): number {
    return this.slots.size;
  }

  slotOf(key: string): number | undefined {
    return this.slots.get(key);
  }

  keyOf(slot: number): string {
    return this.keys[slot]!;
  }

  allocate(key: string): number {
    let slot = this.slots.get(key);
    if (slot !== undefined) return slot;
    slot = this.free.pop();
    if (slot === undefined) {
      slot = this.keys.length;
      if (slot >= this.capacity) this.grow(this.capacity * 2);
      this.keys.push(key);
    } else {
      this.keys[slot] = key;
    }
    this.slots.set(key, slot);
    this.lastTime[slot] = -Infinity;
    this.timerAt[slot] = NO_TIMER;
    this.deleted.delete(key);
    return slot;
  }

  private grow(capacity: number): void {
    this.capacity = capacity;
    this.lastTime = growFloat(this.lastTime, capacity, -Infinity);
    this.timerAt = growFloat(this.timerAt, capacity, NO_TIMER);
    const dirty = new Uint8Array(capacity);
    dirty.set(this.dirty);
    this.dirty = dirty;
    for (const agg of this.aggs) agg.grow(capacity);
  }

  release(slot: number): void {
    const key = this.keys[slot];
    if (key === undefined || this.slots.get(key) !== slot) return;
    for (const agg of this.aggs) agg.clear(slot);
    for (const states of this.nfaStates) states[slot] = undefined;
    this.buffers[slot] = undefined;
    this.timerAt[slot] = NO_TIMER;
    this.slots.delete(key);
    this.keys[slot] = '';
    this.free.push(slot);
    this.dirty[slot] = 0;
    this.deleted.add(key);
  }

  markDirty(slot: number): void {
    if (this.dirty[slot] === 0) {
      this.dirty[slot] = 1;
      this.dirtyList.push(slot);
    }
  }

  /** True when the key holds nothing that time could still change or that must be kept. */
  isIdle(slot: number, now: number): boolean {
    const buffer = this.buffers[slot];
    if (buffer !== undefined && buffer.length > 0) return false;
    for (let j = 0; j < this.nfas.length; j++) if (!this.nfas[j]!.isEmpty(this.nfaStates[j]![slot])) return false;
    const ttl = this.spec.stateTtlMs;
    if (this.aggs.length > 0) {
      if (ttl <= 0) return false;
      return this.lastTime[slot]! + ttl <= now;
    }
    return true;
  }

  /** Earliest time after `now` a timer of this key must fire: buffered events, NFA windows, state expiry. */
  nextTimer(slot: number, now: number): number {
    let next = NO_TIMER;
    const buffer = this.buffers[slot];
    if (buffer !== undefined) for (const e of buffer) if (e.time < next) next = e.time;
    for (let j = 0; j < this.nfas.length; j++) {
      const t = this.nfas[j]!.nextTimerAt(this.nfaStates[j]![slot]);
      if (t < next) next = t;
    }
    if (this.aggs.length > 0 && this.spec.stateTtlMs > 0) {
      const expiry = this.lastTime[slot]! + this.spec.stateTtlMs;
      // An expiry already passed on a key that is kept (events still buffered, a partial match
      // alive) is not armed again: it would be due at once and fire forever. The key is
      // released at its next moment (the buffered event, the NFA's timer) once idle.
      if (expiry > now && expiry < next) next = expiry;
    }
    return next;
  }

  /**
   * One evaluation moment of a key: feeds the event (if any) to the
   * aggregates and sequences, advances the sequences to `ts`, then evaluates
   * the condition once per sequence output, or once when the event is a trigger.
   */
  moment(host: RuleHost, slot: number, event: Event | null, ts: number): void {
    const key = this.keys[slot]!;
    // Key-local time: the latest event time (state expiry counts from it), or a timer's time.
    if (event !== null && ts > this.lastTime[slot]!) this.lastTime[slot] = ts;
    const now = Math.max(this.lastTime[slot]!, ts);
    const withinOf = (j: number): number => this.nfas[j]!.pattern.withinMs;
    if (event !== null) {
      for (let i = 0; i < this.aggs.length; i++) {
        if (!this.aggTypes[i]!.has(event.type)) continue;
        const agg = this.aggs[i]!;
        const filter = agg.spec.filter;
        if (filter !== null) {
          let pass: boolean;
          try {
            pass = filter(event);
          } catch (err: unknown) {
            this.error(host, err);
            continue;
          }
          if (!pass) continue;
        }
        agg.apply(slot, event, now);
      }
    }
    let outputs: Output[] | undefined;
    const sink = this.sink;
    for (let j = 0; j < this.nfas.length; j++) {
      const nfa = this.nfas[j]!;
      const states = this.nfaStates[j]!;
      const before = states[slot];
      if (event !== null && this.seqTypes[j]!.has(event.type)) states[slot] = nfa.processInto(before, event, ts, sink);
      else if (before !== undefined) states[slot] = nfa.advanceTimeInto(before, ts, sink);
      else continue;
      if (sink.matches.length > 0 || sink.timeouts.length > 0) {
        outputs ??= [];
        // A match completed by its last event is decided then; one completed by an absence running out, when it ran out.
        const within = withinOf(j);
        for (const m of sink.matches) outputs.push({ seq: j, kind: 'match', match: m, time: within > 0 ? Math.max(m.lastTimestamp, Math.min(ts, m.firstTimestamp + within)) : ts });
        for (const t of sink.timeouts) outputs.push({ seq: j, kind: 'timeout', match: t, time: (t as CepTimeout).timeoutTimestamp });
      }
      if (sink.dropped > 0) this.counters.droppedPartialMatches += sink.dropped;
      if (sink.conditionErrors > 0) this.error(host, sink.lastConditionError);
      clearCepSink(sink);
    }
    this.markDirty(slot);
    if (outputs !== undefined) {
      for (const out of outputs) this.evaluate(host, slot, key, event, out.time, out, now);
    } else if (event !== null && this.triggers.has(event.type)) {
      this.evaluate(host, slot, key, event, ts, undefined, now);
    }
  }

  // The evaluation in progress: fields rather than closures, so an evaluation allocates nothing until it decides.
  private evHost!: RuleHost;
  private evSlot = 0;
  private evKey = '';
  private evEvent: Event | null = null;
  private evOutput: Output | undefined;
  private evNow = 0;
  private evContext: RulePredicateContext | undefined;

  private evaluate(host: RuleHost, slot: number, key: string, event: Event | null, time: number, output: Output | undefined, now: number): void {
    const spec = this.spec;
    this.counters.evaluations++;
    this.evHost = host;
    this.evSlot = slot;
    this.evKey = key;
    this.evEvent = event;
    this.evOutput = output;
    this.evNow = now;
    this.evContext = undefined;
    if (!this.test(spec.condition)) return;
    const aggregates = new Array<number | null>(this.aggs.length);
    for (let i = 0; i < aggregates.length; i++) aggregates[i] = this.aggregateValue(i);
    const keyValues = splitRuleKey(key, spec.keyFields);
    if (host.currentOffset !== this.decisionOffset) {
      this.decisionOffset = host.currentOffset;
      this.decisionSeq = 0;
    }
    const n = this.decisionSeq++;
    const entity = event?.key ?? (spec.entityKeyed ? String(keyValues[spec.entityKeyField]) : null);
    this.counters.decisions++;
    host.emitDecision({
      id: `${spec.id}:${spec.version}:${host.partition}:${host.currentOffset}:${n}`,
      ruleId: spec.id,
      version: spec.version,
      key: keyValues,
      entity,
      outcome: output?.kind ?? 'match',
      trigger: event === null ? 'timer' : 'event',
      time,
      processingTime: host.processingTime,
      event: event === null ? null : { type: event.type, time: event.time, key: event.key, attrs: event.attrs },
      matched: output === undefined ? null : (output.match.events as Decision['matched']),
      aggregates,
      partition: host.partition,
      offset: host.currentOffset,
    });
    if (spec.setTag !== null && entity !== null) {
      try {
        const value = spec.setTag.value(this.context());
        host.setRuleTag(entity, spec.setTag.id, value, time, spec.version);
      } catch (err: unknown) {
        this.error(host, err);
      }
    }
  }

  /** What expressions see, built on first use in an evaluation. */
  private context(): RulePredicateContext {
    if (this.evContext !== undefined) return this.evContext;
    const spec = this.spec;
    const event = this.evEvent;
    const keyValues = splitRuleKey(this.evKey, spec.keyFields);
    const entity = event?.key ?? (spec.entityKeyed ? String(keyValues[spec.entityKeyField]) : undefined);
    const profile = spec.entityKeyed && entity !== undefined ? this.evHost.profileContext(entity, spec.tagInputs) : { tags: {}, attrs: {} };
    this.evContext = { event: event ?? {}, tags: profile.tags, attrs: profile.attrs, key: keyValues, now: this.evNow };
    return this.evContext;
  }

  private aggregateValue(index: number): number | null {
    const agg = this.aggs[index]!;
    const slot = this.evSlot;
    if (agg.windowed) agg.advance(slot, this.evNow);
    const v = agg.has(slot) ? agg.value(slot) : agg.defaultValue;
    return typeof v === 'number' ? v : null;
  }

  private test(node: RuleConditionNode): boolean {
    switch (node.op) {
      case 'all': {
        const children = node.children;
        for (let i = 0; i < children.length; i++) if (!this.test(children[i]!)) return false;
        return true;
      }
      case 'any': {
        const children = node.children;
        for (let i = 0; i < children.length; i++) if (this.test(children[i]!)) return true;
        return false;
      }
      case 'not':
        return !this.test(node.child);
      case 'expr':
        try {
          return node.evaluate(this.context());
        } catch (err: unknown) {
          this.error(this.evHost, err);
          return false;
        }
      case 'aggregate':
        return compare(this.aggregateValue(node.index), node.comparison, node.threshold);
      case 'sequence': {
        const output = this.evOutput;
        return output !== undefined && output.seq === node.index && output.kind === node.on;
      }
    }
  }

  private error(host: RuleHost, err: unknown): void {
    this.counters.errors++;
    this.counters.lastError = err instanceof Error ? (err.message.split('\n')[0] ?? err.message) : String(err);
    this.counters.lastErrorAt = host.processingTime;
    // Before the partition's first time mark the processing time is unknown (0), and an error
    // stamped 0 would look years old: the next mark stamps it instead (RuleRuntime.advance).
    if (host.processingTime === 0) this.noteUntimedError();
  }

  /** Entries changed since the last call, for a checkpoint. */
  drainChanges(upserts: Array<[string, EntitySnapshot]>, deletes: string[], encode: (data: unknown) => EntitySnapshot): void {
    const prefix = `${RULE_STATE_PREFIX}${this.spec.stateId}\u0000`;
    for (const slot of this.dirtyList) {
      if (this.dirty[slot] === 0) continue;
      this.dirty[slot] = 0;
      upserts.push([prefix + this.keys[slot]!, encode(this.snapshot(slot))]);
    }
    this.dirtyList = [];
    for (const key of this.deleted) deletes.push(prefix + key);
    this.deleted.clear();
  }

  private snapshot(slot: number): unknown {
    return [
      this.lastTime[slot],
      this.aggs.map((a) => (a.has(slot) ? a.snapshot(slot) : null)),
      this.nfaStates.map((s) => s[slot] ?? null),
      this.buffers[slot] ?? null,
    ];
  }

  restore(key: string, data: unknown): number {
    const [lastTime, aggs, nfas, buffer] = data as [number, Array<Uint8Array | null>, Array<CepState | null>, Event[] | null];
    const slot = this.allocate(key);
    this.lastTime[slot] = lastTime;
    aggs.forEach((a, i) => {
      if (a !== null && a !== undefined && this.aggs[i] !== undefined) this.aggs[i].restore(slot, a);
    });
    nfas.forEach((s, j) => {
      if (this.nfaStates[j] !== undefined) this.nfaStates[j][slot] = s ?? undefined;
    });
    if (buffer !== null && buffer.length > 0) this.buffers[slot] = buffer;
    return slot;
  }

  /** Every key and its slot (for re-arming timers after a rewire). */
  entries(): IterableIterator<[string, number]> {
    return this.slots.entries();
  }
}

/**
 * The decision rules of one partition: routes events to the rules that read
 * their type and own their key here, orders them per key when a rule asks for
 * event-time order, runs timers, and snapshots rule state for checkpoints.
 */
export class RuleRuntime {
  private ops: RuleOp[] = [];
  private routes = new Map<string, RuleOp[]>();
  private byStateId = new Map<string, RuleOp>();
  private eventTimers = new TimerQueue();
  private processingTimers = new TimerQueue();
  /** Rule state in the last checkpoint that belongs to no rule any more. */
  private orphaned: string[] = [];
  /** Some rule erred while the processing time was still unknown. */
  private untimedErrors = false;
  private readonly noteUntimedError = (): void => {
    this.untimedErrors = true;
  };

  constructor(private readonly host: RuleHost) {}

  /** Number of online rules. */
  get size(): number {
    return this.ops.length;
  }

  /** Switches to a new rule set; keeps the state of rules whose computation is unchanged. */
  apply(specs: ReadonlyArray<RuleSpec>): void {
    const next: RuleOp[] = [];
    const keep = new Set<RuleOp>();
    const byId = new Map(this.ops.map((op) => [op.spec.id, op]));
    for (const spec of specs) {
      const old = this.byStateId.get(spec.stateId);
      if (old !== undefined) {
        old.spec = spec;
        old.counters.version = spec.version;
        keep.add(old);
        next.push(old);
      } else {
        const op = new RuleOp(spec, this.noteUntimedError);
        // A new version of a running rule carries its counters on.
        const previous = byId.get(spec.id);
        if (previous !== undefined) Object.assign(op.counters, previous.counters, { version: spec.version, keys: 0 });
        next.push(op);
      }
    }
    for (const op of this.ops) {
      if (keep.has(op)) continue;
      // A replaced or stopped rule's partial matches and windows are dropped.
      for (const [key] of op.entries()) this.orphaned.push(`${RULE_STATE_PREFIX}${op.spec.stateId}\u0000${key}`);
    }
    next.forEach((op, i) => (op.index = i));
    this.ops = next;
    this.byStateId = new Map(next.map((op) => [op.spec.stateId, op]));
    this.routes = new Map();
    for (const op of next) {
      for (const type of op.spec.eventTypes) {
        let list = this.routes.get(type);
        if (list === undefined) this.routes.set(type, (list = []));
        list.push(op);
      }
    }
    this.rearm();
  }

  /** Re-registers every key's timer against the current rule indices. */
  private rearm(): void {
    this.eventTimers.clear();
    this.processingTimers.clear();
    this.ops.forEach((op, index) => {
      for (const [, slot] of op.entries()) {
        op.timerAt[slot] = NO_TIMER;
        this.schedule(op, index, slot);
      }
    });
  }

  private schedule(op: RuleOp, index: number, slot: number): void {
    const next = op.nextTimer(slot, op.spec.time === 'processing' ? this.host.processingTime : this.host.watermark);
    if (next === NO_TIMER || next >= op.timerAt[slot]!) return;
    op.timerAt[slot] = next;
    (op.spec.time === 'processing' ? this.processingTimers : this.eventTimers).push(next, slot, index);
  }

  /**
   * An event the partition drops as too late for event time (beyond the
   * allowed lateness): processing-time rules still take it, event-time rules
   * count it as late.
   */
  onTooLate(event: Event): void {
    this.onEvent(event, true);
  }

  /** Routes one event (already judged not too late for the partition) to the rules that read it. */
  onEvent(event: Event, tooLate = false): void {
    const ops = this.routes.get(event.type);
    if (ops === undefined) return;
    const host = this.host;
    let home: boolean | undefined;
    for (let i = 0; i < ops.length; i++) {
      const op = ops[i]!;
      const spec = op.spec;
      const key = ruleKeyOf(event, spec.keyFields, spec.entityKeyField);
      if (spec.entityKeyed) {
        home ??= partitionOf(event.key, host.partitionCount) === host.partition;
        if (!home) continue;
      } else if (key !== undefined && partitionOf(key, host.partitionCount) !== host.partition) {
        continue;
      }
      if (key === undefined) {
        // Counted once, in the event's own partition.
        home ??= partitionOf(event.key, host.partitionCount) === host.partition;
        if (home) op.counters.missingKey++;
        continue;
      }
      const index = op.index;
      if (tooLate && spec.time !== 'processing') {
        op.counters.late++;
        continue;
      }
      if (spec.time === 'processing') {
        const slot = op.allocate(key);
        op.moment(host, slot, { type: event.type, time: host.processingTime, key: event.key, attrs: event.attrs }, host.processingTime);
        this.afterMoment(op, index, slot);
      } else if (spec.ordering === 'event-time') {
        // Late as the partition defines it (behind the watermark). An event exactly at the
        // watermark is still in order: only events at or before it were released, and the
        // NFA's exact timeout comparison already treats that time as too late for any
        // partial match it could extend. (With `<=`, and engine.outOfOrdernessMs 0, every
        // newest event sat exactly at the watermark and event-time rules dropped them all.)
        if (event.time < host.watermark) {
          op.counters.late++;
          continue;
        }
        const slot = op.allocate(key);
        let buffer = op.buffers[slot];
        if (buffer === undefined) op.buffers[slot] = buffer = [];
        buffer.push(event);
        op.markDirty(slot);
        this.schedule(op, index, slot);
      } else {
        const slot = op.allocate(key);
        op.moment(host, slot, event, event.time);
        this.afterMoment(op, index, slot);
      }
    }
  }

  private afterMoment(op: RuleOp, index: number, slot: number): void {
    const now = op.spec.time === 'processing' ? this.host.processingTime : this.host.watermark;
    if (op.isIdle(slot, now)) op.release(slot);
    else this.schedule(op, index, slot);
  }

  /** Fires event-time timers up to the watermark and processing-time timers up to the processing time. */
  advance(): void {
    const host = this.host;
    if (this.untimedErrors && host.processingTime !== 0) {
      this.untimedErrors = false;
      for (const op of this.ops) if (op.counters.errors > 0 && op.counters.lastErrorAt === 0) op.counters.lastErrorAt = host.processingTime;
    }
    if (this.eventTimers.peekTime() <= host.watermark) {
      const upTo = host.watermark;
      while (this.eventTimers.popDue(upTo, this.onEventTimer));
    }
    if (this.processingTimers.peekTime() <= host.processingTime) {
      const upTo = host.processingTime;
      while (this.processingTimers.popDue(upTo, this.onProcessingTimer));
    }
  }

  /** Earliest pending event-time timer (Infinity when none). */
  nextEventTimer(): number {
    return this.eventTimers.peekTime();
  }

  private readonly onEventTimer = (time: number, slot: number, index: number): void => {
    const op = this.ops[index];
    if (op === undefined || op.timerAt[slot] !== time) return;
    op.timerAt[slot] = NO_TIMER;
    const watermark = this.host.watermark;
    const buffer = op.buffers[slot];
    if (buffer !== undefined && buffer.length > 0) {
      // Release, in event-time order (stable: arrival order within one timestamp), every buffered event the watermark passed.
      const due: Event[] = [];
      const rest: Event[] = [];
      for (const e of buffer) (e.time <= watermark ? due : rest).push(e);
      due.sort((a, b) => a.time - b.time);
      op.buffers[slot] = rest.length > 0 ? rest : undefined;
      for (const e of due) op.moment(this.host, slot, e, e.time);
    }
    op.moment(this.host, slot, null, watermark);
    this.afterMoment(op, index, slot);
  };

  private readonly onProcessingTimer = (time: number, slot: number, index: number): void => {
    const op = this.ops[index];
    if (op === undefined || op.timerAt[slot] !== time) return;
    op.timerAt[slot] = NO_TIMER;
    op.moment(this.host, slot, null, this.host.processingTime);
    this.afterMoment(op, index, slot);
  };

  /** Rule state changed since the last call, for a checkpoint. */
  checkpointChanges(upserts: Array<[string, EntitySnapshot]>, deletes: string[], encode: (data: unknown) => EntitySnapshot): void {
    for (const op of this.ops) op.drainChanges(upserts, deletes, encode);
    for (const key of this.orphaned) deletes.push(key);
    this.orphaned = [];
  }

  /** Restores one key's state of a rule from a checkpoint entry; state of a rule no longer online is dropped. */
  restore(entryKey: string, data: unknown): void {
    const rest = entryKey.slice(RULE_STATE_PREFIX.length);
    const sep = rest.indexOf('\u0000');
    const op = this.byStateId.get(rest.slice(0, sep));
    if (op === undefined) {
      this.orphaned.push(entryKey);
      return;
    }
    op.restore(rest.slice(sep + 1), data);
  }

  /** Re-arms timers after a restore. */
  restored(): void {
    this.rearm();
  }

  /** Counters of the online rules. */
  counters(): RuleCounters[] {
    return this.ops.map((op) => ({ ...op.counters, keys: op.keyCount }));
  }
}

function compare(value: number | null, op: Comparison, threshold: number): boolean {
  if (value === null) return false;
  switch (op) {
    case '>': return value > threshold;
    case '>=': return value >= threshold;
    case '<': return value < threshold;
    case '<=': return value <= threshold;
    case '==': return value === threshold;
    case '!=': return value !== threshold;
  }
}

function growFloat(column: Float64Array<ArrayBuffer>, capacity: number, fill: number): Float64Array<ArrayBuffer> {
  if (column.length >= capacity) return column;
  const next = new Float64Array(capacity);
  next.set(column);
  next.fill(fill, column.length);
  return next;
}

export type { CepSink };
