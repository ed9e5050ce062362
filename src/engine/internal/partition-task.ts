import { ControlType, type AttrValue, type Event, type LogRecord } from '../event.js';
import type { DefinitionSet, RuleContext, StatisticTagSpec, RuleTagSpec } from '../definition-set.js';
import { ProfileEncoder } from '../profile-codec.js';
import { BinaryReader, BinaryWriter } from '../binary.js';
import { StoreError } from '../../errors/index.js';
import type { DeadLetter, Decision, EncodedProfile, EntitySnapshot, PartitionCheckpointChange, PartitionCheckpointMeta, Profile, ProfileTag, TagValue } from '../ports.js';
import { partitionOf } from '../partitioner.js';
import { DEFAULT_RULE_STATE_TTL_MS, RULE_STATE_PREFIX, RuleRuntime, type RuleCounters, type RuleHost } from './rule-runtime.js';
import { createStatisticOperator, type StatisticOperator } from './statistic-operators.js';
import { RuleOperator } from './rule-operator.js';
import { TimerQueue } from './timer-queue.js';
import { visitFlagged } from './slices.js';
import { SnapshotBatch } from '../snapshot-batch.js';

/** How the engine treats time; shared by all partitions. */
export interface TimePolicy {
  /** Watermark = stream time − this. */
  readonly outOfOrdernessMs: number;
  /** Events up to this far behind the watermark are still applied. */
  readonly allowedLatenessMs: number;
  /** What happens to events later than that. */
  readonly latePolicy: 'count' | 'deadletter' | 'apply';
  /** Entities with no event for this long (in event time, against the watermark) lose their state; 0 disables. */
  readonly stateTtlMs: number;
  /**
   * State TTL (ms, in the rule's time) of the partial matches of decision
   * rules with no `limits.stateTtl`, no window and a sequence without
   * `within`; 0 keeps them as long as the NFA does.
   * @defaultValue 604800000 (7 days)
   */
  readonly defaultRuleStateTtlMs?: number;
}

/** A component with timers: called when one of its timers fires. */
export interface TimerOwner {
  onTimer(task: PartitionTask, slot: number, time: number, domain: TimerDomain): void;
}

/** Event-time timers fire when the watermark passes them; processing-time timers when the log's processing time does. */
export type TimerDomain = 'event' | 'processing';

/** Counters of one partition, read by metrics. */
export interface PartitionCounters {
  events: number;
  controls: number;
  /** Events behind the watermark (late), whether applied or not. */
  late: number;
  /** Late events beyond allowed lateness that were dropped (policy `count` or `deadletter`). */
  lateDropped: number;
  /** Late events beyond allowed lateness that were applied anyway (policy `apply`). */
  lateApplied: number;
  /** Visible tag value changes. */
  tagChanges: number;
  /** Timer firings (window moves, TTL checks, operator timers). */
  timersFired: number;
  /** Entities removed because their state expired or emptied. */
  entitiesExpired: number;
}

/** One encoder for every partition: encoding is synchronous and never interleaves. */
const profileEncoder = new ProfileEncoder();
const snapshotWriter = new BinaryWriter();
/** Format of entity snapshots in checkpoints. */
const SNAPSHOT_FORMAT = 3;

const NO_TIMER = Infinity;
// Fields of an entity row (PartitionTask.entity).
const E_LAST = 0;
const E_VIEW = 1;
const E_TTL = 2;
const E_WINDOWS = 3;

/**
 * Entity rows of `width` numbers for `capacity` entities: those of `rows`
 * (`oldWidth` wide) with their last time and timers kept, windows' next
 * changes unknown (NO_TIMER) and new rows without state.
 */
function entityRows(rows: Float64Array<ArrayBuffer>, oldWidth: number, capacity: number, width: number): Float64Array<ArrayBuffer> {
  const next = new Float64Array(capacity * width).fill(NO_TIMER);
  const kept = oldWidth === 0 ? 0 : rows.length / oldWidth;
  for (let slot = 0; slot < capacity; slot++) {
    const o = slot * width;
    if (slot < kept) {
      const from = slot * oldWidth;
      next[o + E_LAST] = rows[from + E_LAST]!;
      next[o + E_VIEW] = rows[from + E_VIEW]!;
      next[o + E_TTL] = rows[from + E_TTL]!;
      if (oldWidth === width) for (let k = E_WINDOWS; k < width; k++) next[o + k] = rows[from + k]!;
    } else {
      next[o + E_LAST] = -Infinity;
    }
  }
  return next;
}
const INITIAL_CAPACITY = 256;

/** Tag operators of a definition set, wired for one partition. */
interface Wiring {
  stats: StatisticOperator[];
  windowed: StatisticOperator[];
  /** Rule operators in dependency order. */
  rules: RuleOperator[];
  /** By event type: the statistics it feeds, each one's index in `windowed` (-1: none) and the rules that read it. */
  routes: Map<string, { ops: StatisticOperator[]; windows: number[]; dependents: Array<number[] | undefined> }>;
  /** For each statistic operator (by index in `stats`), the rule indices that read it. */
  statDependents: Map<StatisticOperator, number[]>;
  /** For each rule index, the rule indices that read it. */
  ruleDependents: number[][];
  /** For each rule index, the tags it reads. */
  ruleInputs: Array<Array<{ id: string; op: StatisticOperator | RuleOperator }>>;
  attrDependents: Map<string, number[]>;
  attrAllRules: number[];
  byStateId: Map<string, StatisticOperator | RuleOperator>;
  /** Tag operators by tag id. */
  byId: Map<string, StatisticOperator | RuleOperator>;
}

/**
 * One partition of the engine: owns the state of the entities hashed to it,
 * consumes its log partition in offset order and is a pure function of it, so
 * a restore from a checkpoint followed by a replay reproduces an uninterrupted run.
 */
export class PartitionTask implements RuleHost {
  /** Next log offset to process. */
  offset = 0;
  /** Highest event time seen (from events and marks). */
  streamTime = -Infinity;
  watermark = -Infinity;
  /** Processing time as carried by marks in the log. */
  processingTime = 0;
  /** Definition revision in effect. */
  revision = 0;
  /** Latest position of each replay source, from `$source` records. */
  sources: Record<string, number> = {};
  readonly counters: PartitionCounters = {
    events: 0, controls: 0, late: 0, lateDropped: 0, lateApplied: 0, tagChanges: 0, timersFired: 0, entitiesExpired: 0,
  };

  private slots = new Map<string, number>();
  private keys: string[] = [];
  private free: number[] = [];
  private capacity = INITIAL_CAPACITY;
  private attrs: Array<Record<string, AttrValue> | undefined> = [];
  private attrTimes: Array<Record<string, number> | undefined> = [];

  private wiring: Wiring = emptyWiring();
  private ruleMark = new Uint8Array(0);

  private viewTimers = new TimerQueue();
  /**
   * A row per entity (`entityWidth` numbers at `slot * entityWidth`): its last
   * event or attribute time (`E_LAST`), when its view timer and its TTL timer
   * are due (`E_VIEW`, `E_TTL`), then from `E_WINDOWS` for each windowed
   * operator (by index in `wiring.windowed`) a lower bound of its next change:
   * a slide reads this row and touches only the windows due. Reading every
   * window's own state at each slide, to find the one or two due, was most of
   * a slide's cost (the states of one entity are far apart in memory). Exact
   * after an event or a slide; lower after a window is cleared, which only
   * costs a look. One row rather than a column each: an event or a slide
   * reads them all, and they then share a cache line or two.
   */
  private entity = entityRows(new Float64Array(0), 0, INITIAL_CAPACITY, E_WINDOWS);
  private entityWidth = E_WINDOWS;
  private ttlTimers = new TimerQueue();
  private eventTimers = new TimerQueue();
  private processingTimers = new TimerQueue();
  private timerOwners: TimerOwner[] = [];

  private checkpointDirty = new Uint8Array(INITIAL_CAPACITY);
  private checkpointList: number[] = [];
  /**
   * Entities owed to the checkpoint being written, not yet encoded: each is
   * encoded before its state next changes ({@link touchEntity}) or by
   * {@link encodeCheckpoint} between batches, so a checkpoint holds every
   * entity as it was when the checkpoint was taken without stopping the engine
   * to encode them all at once.
   */
  private checkpointOwed = new Uint8Array(INITIAL_CAPACITY);
  private owedList: number[] = [];
  private owedCursor = 0;
  private owedOut: SnapshotBatch | undefined;
  private checkpointDeleted = new Set<string>();
  private profileDirty = new Uint8Array(INITIAL_CAPACITY);
  private profileList: number[] = [];
  /**
   * Profiles removed since the last round began. A key written again before
   * the next round begins leaves the set: its removal is superseded, and
   * applied after that write it would delete a live profile (an entity expired
   * and created again in its old slot, still in the round being written).
   */
  private profileDeleted = new Set<string>();
  /** Position in `profileList` of a round of profile writes in progress, and its end. */
  private profileCursor = 0;
  private profileRoundEnd = 0;
  private deadLetters: DeadLetter[] = [];
  private decisions: Decision[] = [];

  /** Decision rules of this partition. */
  private readonly rules: RuleRuntime;
  /** Some online rule is keyed by other fields than the entity, so events may arrive here as copies. */
  private rekeyed = false;
  /** Tags set by rules on entity profiles: tag id → [value, time, rule version]. */
  private ruleTags: Array<Record<string, [TagValue, number, number]> | undefined> = [];
  /** Log offset of the record being processed. */
  currentOffset = 0;
  /** Operator state ids by number, for snapshots (append-only, kept in the checkpoint meta). */
  private stateIds: string[] = [];
  private stateNumbers = new Map<string, number>();

  constructor(readonly partition: number, private readonly time: TimePolicy, readonly partitionCount = 1) {
    this.rules = new RuleRuntime(this, { defaultStateTtlMs: time.defaultRuleStateTtlMs ?? DEFAULT_RULE_STATE_TTL_MS });
  }

  /** Number of entities with state. */
  get entityCount(): number {
    return this.slots.size;
  }

  // ---------------------------------------------------------------- definitions

  /** Switches to a new definition set; state of tags whose computation is unchanged is kept. */
  applyDefinitions(set: DefinitionSet): void {
    // Dropped and re-evaluated state below must not reach a checkpoint taken before.
    this.encodeOwed(Infinity);
    const previous = this.wiring.byStateId;
    const stats: StatisticOperator[] = [];
    const rulesUnordered: RuleOperator[] = [];
    const fresh: RuleOperator[] = [];
    for (const spec of set.tags) {
      const old = previous.get(spec.stateId);
      if (spec.kind === 'statistic') {
        if (old !== undefined && !(old instanceof RuleOperator)) {
          (old as { spec: StatisticTagSpec }).spec = spec;
          stats.push(old);
        } else {
          stats.push(createStatisticOperator(spec, this.capacity));
        }
      } else if (old instanceof RuleOperator) {
        (old as { spec: RuleTagSpec }).spec = spec;
        rulesUnordered.push(old);
      } else {
        const op = new RuleOperator(spec, this.capacity);
        rulesUnordered.push(op);
        fresh.push(op);
      }
    }
    for (const op of previous.values()) {
      if (!stats.includes(op as StatisticOperator) && !rulesUnordered.includes(op as RuleOperator)) this.dropOperatorState(op);
    }
    this.wiring = wire(stats, orderRules(rulesUnordered));
    const width = E_WINDOWS + this.wiring.windowed.length;
    this.entity = entityRows(this.entity, this.entityWidth, this.capacity, width);
    this.entityWidth = width;
    for (const slot of this.slots.values()) this.resetWindowRow(slot);
    this.ruleMark = new Uint8Array(this.wiring.rules.length);
    this.revision = set.revision;
    const ruleSpecs = set.rules ?? [];
    this.rules.apply(ruleSpecs);
    this.rekeyed = ruleSpecs.some((r) => !r.entityKeyed);
    // A new rule tag, or one whose inputs now start from empty state, applies to every
    // entity already known, not only to those touched later.
    const stale = this.staleRules(fresh, stats.filter((op) => !previous.has(op.spec.stateId)));
    if (stale.length > 0) {
      const time = this.streamTime === -Infinity ? 0 : this.streamTime;
      for (const [key, slot] of this.slots) {
        for (const r of stale) this.ruleMark[r] = 1;
        if (this.evaluateMarkedRules(slot, key, time)) this.markDirty(slot);
      }
    }
  }

  /** Indices of rules that are new or read (directly or through other rules) a new statistic tag. */
  private staleRules(freshRules: RuleOperator[], freshStats: StatisticOperator[]): number[] {
    const { rules, ruleInputs } = this.wiring;
    const stale = new Set<RuleOperator | StatisticOperator>([...freshRules, ...freshStats]);
    const result: number[] = [];
    rules.forEach((op, r) => {
      if (stale.has(op) || ruleInputs[r]!.some((input) => stale.has(input.op))) {
        stale.add(op);
        result.push(r);
      }
    });
    return result;
  }

  private dropOperatorState(op: StatisticOperator | RuleOperator): void {
    for (const slot of this.slots.values()) {
      if (op.has(slot)) {
        op.clear(slot);
        this.markDirty(slot);
      }
    }
  }

  /** Registers a component that owns timers; returns its owner id. */
  addTimerOwner(owner: TimerOwner): number {
    this.timerOwners.push(owner);
    return this.timerOwners.length - 1;
  }

  /** Registers an event-time or processing-time timer for an entity slot. */
  registerTimer(domain: TimerDomain, time: number, slot: number, owner: number): void {
    (domain === 'event' ? this.eventTimers : this.processingTimers).push(time, slot, owner);
  }

  // ---------------------------------------------------------------- processing

  /**
   * Processes one record at `offset`. Returns the revision a `$definitions`
   * record asks for when it differs from the current one: the caller must
   * resolve it, call {@link applyDefinitions} and then {@link skipTo}(offset + 1).
   */
  process(record: LogRecord, offset: number): number | undefined {
    this.currentOffset = offset;
    if (record.type.charCodeAt(0) !== 36) {
      this.processEvent(record, offset);
      this.offset = offset + 1;
      return undefined;
    }
    this.counters.controls++;
    switch (record.type) {
      case ControlType.Mark: {
        const now = record.attrs.now;
        if (typeof now === 'number' && now > this.processingTime) this.processingTime = now;
        this.advanceTime(record.time);
        this.fireProcessingTimers();
        if (this.rules.size > 0) this.rules.advance();
        break;
      }
      case ControlType.Attributes:
        this.applyAttributes(record);
        break;
      case ControlType.Definitions: {
        const revision = record.attrs.revision;
        if (typeof revision === 'number' && revision !== this.revision) return revision;
        break;
      }
      case ControlType.Source: {
        const position = record.attrs.position;
        if (typeof position === 'number') this.sources[record.key] = position;
        break;
      }
      default:
        break;
    }
    this.offset = offset + 1;
    return undefined;
  }

  /** Marks `offset` as processed (after a `$definitions` record was applied). */
  skipTo(offset: number): void {
    this.offset = offset;
  }

  private processEvent(event: Event, offset: number): void {
    const counters = this.counters;
    counters.events++;
    const t = event.time;
    if (t < this.watermark) {
      counters.late++;
      if (t < this.watermark - this.time.allowedLatenessMs) {
        const policy = this.time.latePolicy;
        if (policy !== 'apply') {
          counters.lateDropped++;
          if (policy === 'deadletter') this.deadLetterLate(event, offset);
          // Event time does not matter to processing-time rules; event-time rules count it as late.
          if (this.rules.size > 0) this.rules.onTooLate(event);
          return;
        }
        counters.lateApplied++;
      }
    }
    if (t > this.streamTime) {
      // Time moves before the event applies, as if a mark at t came just before it:
      // buckets that expired by t leave their windows and entities idle past their
      // TTL expire first. Marks are written by the wall clock, so whether one fell
      // just before this event must not change any value or time of change.
      this.streamTime = t;
      const wm = t - this.time.outOfOrdernessMs;
      if (wm > this.watermark) this.watermark = wm;
      if (this.viewTimers.peekTime() <= t) this.fireViewTimers();
      if (this.ttlTimers.peekTime() <= this.watermark) this.fireTtlTimers();
    }
    const now = this.streamTime;
    // A copy of an event written here for a rule keyed by other fields: only rules see it.
    const home = !this.rekeyed || partitionOf(event.key, this.partitionCount) === this.partition;
    const route = home ? this.wiring.routes.get(event.type) : undefined;
    if (route !== undefined) {
      const { ops, windows, dependents } = route;
      const width = this.entityWidth;
      let slot = this.slots.get(event.key);
      const fresh = slot === undefined;
      if (slot !== undefined) this.touchEntity(slot);
      let changed = false;
      // Applied to an operator: its state may change even when its value does not
      // (a second equal amount under avg, a smaller max in a newer bucket, a distinct
      // value seen again), and the next checkpoint must hold that state.
      let applied = false;
      for (let i = 0; i < ops.length; i++) {
        const op = ops[i]!;
        const filter = op.spec.filter;
        if (filter !== null) {
          let pass: boolean;
          try {
            pass = filter(event);
          } catch {
            op.filterErrors++;
            continue;
          }
          if (!pass) continue;
        }
        if (slot === undefined) slot = this.allocate(event.key);
        applied = true;
        const changedOp = op.apply(slot, event, now);
        const w = windows[i]!;
        // An event can move a window's next change either way (a bucket before the first, buckets dropped).
        const next = w >= 0 ? op.nextChange(slot) : Infinity;
        if (w >= 0) this.entity[slot * width + E_WINDOWS + w] = next;
        if (changedOp) {
          changed = true;
          counters.tagChanges++;
          const deps = dependents[i];
          if (deps !== undefined) for (let d = 0; d < deps.length; d++) this.ruleMark[deps[d]!] = 1;
          if (w >= 0) this.scheduleView(slot, next);
        }
      }
      if (slot !== undefined && fresh && !changed) {
        this.release(slot); // no operator took the event: the entity still has no state
      } else if (slot !== undefined) {
        const e = slot * width;
        if (t > this.entity[e + E_LAST]!) {
          this.entity[e + E_LAST] = t; // the state TTL counts from it, so it is checkpointed too
          applied = true;
        }
        this.armTtl(slot);
        if (changed) {
          // A new entity gets a value for every rule, like the entities known when a rule goes online.
          if (fresh) this.ruleMark.fill(1);
          this.evaluateMarkedRules(slot, event.key, t);
          this.markDirty(slot);
        } else if (applied) {
          this.markCheckpointDirty(slot);
        }
      }
    }
    if (this.rules.size > 0) this.rules.onEvent(event);
    this.advanceTime(t);
  }

  private deadLetterLate(event: Event, offset: number): void {
    this.deadLetters.push({
      stage: 'engine',
      code: 'PRT_ENGINE_LATE_EVENT',
      reason: `event time ${new Date(event.time).toISOString()} is more than ${this.time.allowedLatenessMs} ms behind the watermark ${new Date(this.watermark).toISOString()}`,
      path: '/time',
      payload: JSON.stringify(event),
      at: this.processingTime,
      partition: this.partition,
      offset,
    });
  }

  private applyAttributes(record: LogRecord): void {
    let slot = this.slots.get(record.key);
    const fresh = slot === undefined;
    if (slot === undefined) slot = this.allocate(record.key);
    else this.touchEntity(slot);
    const values = (this.attrs[slot] ??= {});
    const times = (this.attrTimes[slot] ??= {});
    const wiring = this.wiring;
    let changed = false;
    for (const name of Object.keys(record.attrs)) {
      const value = record.attrs[name]!;
      if (value === null) {
        if (!(name in values)) continue;
        delete values[name];
        delete times[name];
      } else {
        if (values[name] === value) continue;
        values[name] = value;
        times[name] = record.time;
      }
      changed = true;
      const deps = wiring.attrDependents.get(name);
      if (deps !== undefined) for (const d of deps) this.ruleMark[d] = 1;
    }
    if (fresh && !changed) {
      this.release(slot); // only removals of attributes it never had
      return;
    }
    if (record.time > this.entity[slot * this.entityWidth + E_LAST]!) {
      this.entity[slot * this.entityWidth + E_LAST] = record.time;
      if (!changed) this.markCheckpointDirty(slot);
    }
    this.armTtl(slot);
    if (!changed) return;
    if (fresh) this.ruleMark.fill(1); // a new entity gets a value for every rule
    else for (const d of wiring.attrAllRules) this.ruleMark[d] = 1;
    this.evaluateMarkedRules(slot, record.key, record.time);
    if (Object.keys(values).length === 0) {
      this.attrs[slot] = undefined;
      this.attrTimes[slot] = undefined;
    }
    this.markDirty(slot);
    if (!this.hasState(slot)) this.removeEntity(slot);
  }

  /** Evaluates marked rules in dependency order; returns true when any value changed. */
  private evaluateMarkedRules(slot: number, key: string, time: number): boolean {
    const { rules, ruleDependents, ruleInputs } = this.wiring;
    const marks = this.ruleMark;
    let changed = false;
    for (let r = 0; r < rules.length; r++) {
      if (marks[r] === 0) continue;
      marks[r] = 0;
      const inputs = ruleInputs[r]!;
      const tags: Record<string, TagValue> = {};
      for (let i = 0; i < inputs.length; i++) {
        const input = inputs[i]!;
        const value = input.op.has(slot) ? input.op.value(slot) : input.op.defaultValue;
        if (value !== undefined && value !== null) tags[input.id] = value;
      }
      const context: RuleContext = { tags, attrs: this.attrs[slot] ?? {}, key, now: this.streamTime === -Infinity ? time : this.streamTime };
      if (rules[r]!.evaluate(slot, context, time)) {
        changed = true;
        this.counters.tagChanges++;
        const deps = ruleDependents[r]!;
        for (let d = 0; d < deps.length; d++) marks[deps[d]!] = 1;
      }
    }
    return changed;
  }

  /** Moves stream time and watermark forward and fires due timers. */
  private advanceTime(streamTime: number): void {
    if (streamTime > this.streamTime) this.streamTime = streamTime;
    const wm = this.streamTime - this.time.outOfOrdernessMs;
    if (wm > this.watermark) this.watermark = wm;
    if (this.viewTimers.peekTime() <= this.streamTime) this.fireViewTimers();
    if (this.eventTimers.peekTime() <= this.watermark) this.fireOwnerTimers(this.eventTimers, this.watermark, 'event');
    if (this.ttlTimers.peekTime() <= this.watermark) this.fireTtlTimers();
    if (this.rules.nextEventTimer() <= this.watermark) this.rules.advance();
  }

  private readonly onViewTimer = (time: number, slot: number): void => {
    const entity = this.entity;
    const e = slot * this.entityWidth;
    if (entity[e + E_VIEW] !== time) return; // stale: rescheduled or entity removed
    entity[e + E_VIEW] = NO_TIMER;
    this.touchEntity(slot);
    this.counters.timersFired++;
    // Move the windows to the timer's time, the next bucket expiry, not to the stream
    // time: each expiry is then applied (and rules see it) at its own time, one after
    // the other, however far the stream time jumped since the last record.
    const now = time;
    const windowed = this.wiring.windowed;
    const width = windowed.length;
    const row = e + E_WINDOWS;
    const windowNext = entity;
    let changed = false;
    let emptied = false;
    let next = NO_TIMER;
    for (let i = 0; i < width; i++) {
      // A window whose next change is later has nothing to drop yet: most of an entity's
      // windows at any one slide (the timer is the earliest change of all of them).
      let n = windowNext[row + i]!;
      if (n > now) {
        if (n < next) next = n;
        continue;
      }
      const op = windowed[i]!;
      n = op.nextChange(slot);
      if (n > now) {
        windowNext[row + i] = n;
        if (n < next) next = n;
        continue;
      }
      if (op.advance(slot, now)) {
        changed = true;
        this.counters.tagChanges++;
        if (!op.has(slot)) emptied = true;
        const deps = this.wiring.statDependents.get(op);
        if (deps !== undefined) for (const d of deps) this.ruleMark[d] = 1;
      }
      n = op.nextChange(slot);
      windowNext[row + i] = n;
      if (n < next) next = n;
    }
    // What a window slide changes (buckets dropped, values, rule tags re-evaluated at the
    // slide's time) follows from the state at the entity's last event and the stream time: a
    // restore re-arms these timers from the snapshot and fires them again, in the same order
    // and at the same times (finishRestore). So a slide does not make the entity's snapshot
    // stale; only its profile is written again. Checkpoints then cost what events touched,
    // not every entity with a window open.
    if (changed) {
      this.evaluateMarkedRules(slot, this.keys[slot]!, time);
      this.markProfileDirty(slot);
    }
    if (next !== NO_TIMER) this.scheduleView(slot, next);
    if (emptied && !this.hasState(slot)) this.removeEntity(slot);
  };

  private fireViewTimers(): void {
    const upTo = this.streamTime;
    while (this.viewTimers.popDue(upTo, this.onViewTimer));
  }

  private readonly onTtlTimer = (time: number, slot: number): void => {
    const e = slot * this.entityWidth;
    if (this.entity[e + E_TTL] !== time) return;
    this.entity[e + E_TTL] = NO_TIMER;
    this.counters.timersFired++;
    const expiry = this.entity[e + E_LAST]! + this.time.stateTtlMs;
    if (expiry <= this.watermark) this.removeEntity(slot);
    else this.scheduleTtl(slot, expiry);
  };

  private fireTtlTimers(): void {
    const upTo = this.watermark;
    while (this.ttlTimers.popDue(upTo, this.onTtlTimer));
  }

  private fireOwnerTimers(queue: TimerQueue, upTo: number, domain: TimerDomain): void {
    while (
      queue.popDue(upTo, (time, slot, owner) => {
        this.counters.timersFired++;
        this.timerOwners[owner]?.onTimer(this, slot, time, domain);
      })
    );
  }

  private fireProcessingTimers(): void {
    if (this.processingTimers.peekTime() <= this.processingTime) this.fireOwnerTimers(this.processingTimers, this.processingTime, 'processing');
  }

  /** Sets an entity's next window changes (in its {@link entity} row) from its windows' state. */
  private resetWindowRow(slot: number): void {
    const windowed = this.wiring.windowed;
    const row = slot * this.entityWidth + E_WINDOWS;
    for (let i = 0; i < windowed.length; i++) this.entity[row + i] = windowed[i]!.nextChange(slot);
  }

  private scheduleView(slot: number, time: number): void {
    const at = slot * this.entityWidth + E_VIEW;
    if (time < this.entity[at]!) {
      this.entity[at] = time;
      this.viewTimers.push(time, slot, 0);
    }
  }

  /**
   * Arms the state TTL of a new entity once its last time is known. The timer
   * is due when the entity may expire (last time + TTL) and re-armed from the
   * last time when it fires, so a pending timer is never later than the
   * expiry: the one a restore re-arms from the checkpointed last time then
   * fires at the same record as the one of an uninterrupted run.
   */
  private armTtl(slot: number): void {
    const e = slot * this.entityWidth;
    if (this.time.stateTtlMs > 0 && this.entity[e + E_TTL] === NO_TIMER) this.scheduleTtl(slot, this.entity[e + E_LAST]! + this.time.stateTtlMs);
  }

  private scheduleTtl(slot: number, time: number): void {
    this.entity[slot * this.entityWidth + E_TTL] = time;
    this.ttlTimers.push(time, slot, 0);
  }

  // ---------------------------------------------------------------- entities

  /** Slot of an entity, if it has state. */
  slotOf(key: string): number | undefined {
    return this.slots.get(key);
  }

  /** Key of the entity in a slot. */
  keyOf(slot: number): string | undefined {
    return this.keys[slot];
  }

  private allocate(key: string): number {
    let slot = this.free.pop();
    if (slot === undefined) {
      slot = this.keys.length;
      if (slot >= this.capacity) this.grow(this.capacity * 2);
      this.keys.push(key);
    } else {
      this.keys[slot] = key;
    }
    this.slots.set(key, slot);
    this.entity[slot * this.entityWidth + E_LAST] = -Infinity;
    this.checkpointDeleted.delete(key);
    return slot;
  }

  /** Frees the slot just allocated for a record that gave the entity no state. */
  private release(slot: number): void {
    const key = this.keys[slot]!;
    this.slots.delete(key);
    this.keys[slot] = '';
    this.entity[slot * this.entityWidth + E_LAST] = -Infinity;
    this.attrs[slot] = undefined;
    this.attrTimes[slot] = undefined;
    this.checkpointDirty[slot] = 0;
    this.checkpointDeleted.add(key); // in case it was removed since the last checkpoint, then allocated again
    this.free.push(slot);
  }

  private grow(capacity: number): void {
    this.capacity = capacity;
    this.entity = entityRows(this.entity, this.entityWidth, capacity, this.entityWidth);
    this.checkpointDirty = growBytes(this.checkpointDirty, capacity);
    this.checkpointOwed = growBytes(this.checkpointOwed, capacity);
    this.profileDirty = growBytes(this.profileDirty, capacity);
    for (const op of this.wiring.stats) op.grow(capacity);
    for (const op of this.wiring.rules) op.grow(capacity);
  }

  private hasState(slot: number): boolean {
    if (this.attrs[slot] !== undefined) return true;
    if (this.ruleTags[slot] !== undefined) return true;
    for (const op of this.wiring.stats) if (op.has(slot)) return true;
    for (const op of this.wiring.rules) if (op.has(slot)) return true;
    return false;
  }

  private removeEntity(slot: number): void {
    const key = this.keys[slot];
    if (key === undefined || this.slots.get(key) !== slot) return;
    this.touchEntity(slot);
    for (const op of this.wiring.stats) op.clear(slot);
    for (const op of this.wiring.rules) op.clear(slot);
    this.attrs[slot] = undefined;
    this.attrTimes[slot] = undefined;
    this.ruleTags[slot] = undefined;
    this.entity[slot * this.entityWidth + E_VIEW] = NO_TIMER;
    this.entity[slot * this.entityWidth + E_TTL] = NO_TIMER;
    this.slots.delete(key);
    this.keys[slot] = '';
    this.free.push(slot);
    this.checkpointDirty[slot] = 0;
    this.profileDirty[slot] = 0;
    this.checkpointDeleted.add(key);
    this.profileDeleted.add(key);
    this.counters.entitiesExpired++;
  }

  /** The entity's state or profile changed: snapshot it at the next checkpoint and write its profile. */
  private markDirty(slot: number): void {
    this.markCheckpointDirty(slot);
    this.markProfileDirty(slot);
  }

  /** The entity's profile changed in a way its snapshot already implies (a window slide): write the profile only. */
  private markProfileDirty(slot: number): void {
    if (this.profileDirty[slot] === 0) {
      this.profileDirty[slot] = 1;
      this.profileList.push(slot);
      if (this.profileDeleted.size > 0) this.profileDeleted.delete(this.keys[slot]!);
    }
  }

  /** The entity's state changed but not its profile: snapshot it at the next checkpoint. */
  private markCheckpointDirty(slot: number): void {
    if (this.checkpointDirty[slot] === 0) {
      this.checkpointDirty[slot] = 1;
      this.checkpointList.push(slot);
    }
  }

  // ---------------------------------------------------------------- outputs

  /** The profile of the entity in a slot, as currently computed. */
  profileOf(slot: number): Profile {
    const key = this.keys[slot]!;
    const tags: Record<string, ProfileTag> = {};
    for (const op of this.wiring.stats) {
      if (!op.has(slot)) continue;
      tags[op.spec.id] = { value: op.value(slot) ?? null, updatedAt: op.updatedAt(slot), version: op.spec.version };
    }
    for (const op of this.wiring.rules) {
      if (!op.has(slot)) continue;
      tags[op.spec.id] = { value: op.value(slot) ?? null, updatedAt: op.updatedAt(slot), version: op.spec.version };
    }
    const set = this.ruleTags[slot];
    if (set !== undefined) {
      for (const id of Object.keys(set)) {
        if (this.wiring.byId.has(id)) continue; // a tag definition with this id wins
        const [value, at, version] = set[id]!;
        tags[id] = { value, updatedAt: at, version };
      }
    }
    const attributes: Profile['attributes'] = {};
    const values = this.attrs[slot];
    const times = this.attrTimes[slot];
    if (values !== undefined && times !== undefined) {
      for (const name of Object.keys(values)) attributes[name] = { value: values[name]!, updatedAt: times[name]! };
    }
    return { key, attributes, tags };
  }

  /**
   * Starts a round of profile writes covering the entities changed so far (a
   * round in progress is extended to them) and returns the keys of profiles
   * removed since the last round. Apply the removals before the round's
   * writes: an entity removed and then created again (its state expired, then
   * a new event came) is in the round.
   */
  beginProfileRound(): string[] {
    this.profileRoundEnd = this.profileList.length;
    const remove = [...this.profileDeleted];
    this.profileDeleted.clear();
    return remove;
  }

  /**
   * Encodes the profiles of the round in progress until `deadline`
   * (performance.now() ms); `done` once the round is complete. A profile is
   * encoded from the state at that moment: entities changed after the round
   * began are written now or by the next round.
   */
  drainProfileRound(deadline: number): { write: EncodedProfile[]; done: boolean } {
    const list = this.profileList;
    const end = this.profileRoundEnd;
    const dirty = this.profileDirty;
    const write: EncodedProfile[] = [];
    const i = visitFlagged(list, dirty, this.profileCursor, end, deadline, (slot) => {
      dirty[slot] = 0;
      write.push([this.keys[slot]!, this.encodeProfile(slot)]);
    });
    if (i < end) {
      this.profileCursor = i;
      return { write, done: false };
    }
    this.profileList = end === list.length ? [] : list.slice(end);
    this.profileCursor = 0;
    this.profileRoundEnd = 0;
    return { write, done: true };
  }

  /** Every changed profile and the keys of removed ones, at once: apply the removals first. */
  drainProfiles(): { write: EncodedProfile[]; remove: string[] } {
    const remove = this.beginProfileRound();
    const { write } = this.drainProfileRound(Infinity);
    return { write, remove };
  }

  /** Entities whose profile changed and is not yet handed out, and profiles removed. */
  get pendingProfiles(): number {
    return this.profileList.length - this.profileCursor + this.profileDeleted.size;
  }

  /** The stored form of an entity's profile, written from the operator columns (same content as {@link profileOf}). */
  private encodeProfile(slot: number): Uint8Array {
    const enc = profileEncoder;
    enc.begin();
    const values = this.attrs[slot];
    const times = this.attrTimes[slot];
    if (values !== undefined && times !== undefined) {
      for (const name in values) enc.attribute(name, values[name]!, times[name]!);
    }
    enc.beginTags();
    const stats = this.wiring.stats;
    for (let i = 0; i < stats.length; i++) {
      const op = stats[i]!;
      if (op.has(slot)) enc.tag(op.spec.id, op.value(slot) ?? null, op.updatedAt(slot), op.spec.version);
    }
    const rules = this.wiring.rules;
    for (let i = 0; i < rules.length; i++) {
      const op = rules[i]!;
      if (op.has(slot)) enc.tag(op.spec.id, op.value(slot) ?? null, op.updatedAt(slot), op.spec.version);
    }
    const set = this.ruleTags[slot];
    if (set !== undefined) {
      for (const id in set) {
        if (this.wiring.byId.has(id)) continue; // a tag definition with this id wins
        const [value, at, version] = set[id]!;
        enc.tag(id, value, at, version);
      }
    }
    return enc.end();
  }

  /** Dead letters produced since the last call. */
  drainDeadLetters(): DeadLetter[] {
    const letters = this.deadLetters;
    this.deadLetters = [];
    return letters;
  }

  /** Decisions produced since the last call. */
  drainDecisions(): Decision[] {
    const out = this.decisions;
    this.decisions = [];
    return out;
  }

  /** Run-time counters of the decision rules. */
  ruleCounters(): RuleCounters[] {
    return this.rules.counters();
  }

  /** Re-arms rule timers once every checkpointed entity is restored. */
  finishRestore(): void {
    this.rules.restored();
    // Window slides since each entity's snapshot, up to the checkpoint's stream time.
    if (this.viewTimers.peekTime() <= this.streamTime) this.fireViewTimers();
  }

  // ---------------------------------------------------------------- rule host

  /** @internal */
  profileContext(entity: string, tagIds: ReadonlyArray<string>): { tags: Record<string, TagValue>; attrs: Record<string, AttrValue> } {
    const slot = this.slots.get(entity);
    const tags: Record<string, TagValue> = {};
    if (tagIds.length > 0) {
      const byId = this.wiring.byId;
      for (const id of tagIds) {
        const op = byId.get(id);
        let value: TagValue | undefined;
        if (op !== undefined) value = slot !== undefined && op.has(slot) ? op.value(slot) : op.defaultValue;
        else if (slot !== undefined) value = this.ruleTags[slot]?.[id]?.[0];
        if (value !== undefined && value !== null) tags[id] = value;
      }
    }
    return { tags, attrs: slot === undefined ? {} : (this.attrs[slot] ?? {}) };
  }

  /** @internal */
  setRuleTag(entity: string, tagId: string, value: TagValue, time: number, version: number): void {
    let slot = this.slots.get(entity);
    if (slot === undefined) slot = this.allocate(entity);
    else this.touchEntity(slot);
    const set = (this.ruleTags[slot] ??= {});
    const old = set[tagId];
    if (old !== undefined && old[0] === value && old[2] === version) return;
    set[tagId] = [value, time, version];
    const e = slot * this.entityWidth + E_LAST;
    if (time > this.entity[e]!) this.entity[e] = time;
    this.armTtl(slot);
    this.markDirty(slot);
  }

  /** @internal */
  emitDecision(decision: Decision): void {
    this.decisions.push(decision);
  }

  /** Rule-tag evaluation errors per tag id. */
  ruleErrors(): Array<{ id: string; errors: number; lastError: string | undefined }> {
    return this.wiring.rules.map((op) => ({ id: op.spec.id, errors: op.errors, lastError: op.lastError }));
  }

  /** Filter and type errors per statistic tag id. */
  statisticErrors(): Array<{ id: string; filterErrors: number; typeMismatches: number }> {
    return this.wiring.stats.map((op) => ({ id: op.spec.id, filterErrors: op.filterErrors, typeMismatches: op.typeMismatches }));
  }

  // ---------------------------------------------------------------- checkpoints

  /** Meta describing the current position. */
  meta(checkpointId: number): PartitionCheckpointMeta {
    return {
      formatVersion: 1,
      partition: this.partition,
      offset: this.offset,
      streamTime: this.streamTime,
      watermark: this.watermark,
      processingTime: this.processingTime,
      revision: this.revision,
      checkpointId,
      sources: { ...this.sources },
      stateIds: [...this.stateIds],
    };
  }

  /**
   * Starts a checkpoint at the current position and resets the change
   * tracking: entities and rule state changed since the last one are owed to
   * the returned change (each encoded before it next changes) until
   * {@link encodeCheckpoint} reports them all written: commit it only then.
   */
  checkpointChange(checkpointId: number): PartitionCheckpointChange & { upserts: SnapshotBatch } {
    this.encodeOwed(Infinity);
    const upserts = new SnapshotBatch();
    const list = this.checkpointList;
    const dirty = this.checkpointDirty;
    const owed = this.checkpointOwed;
    for (let i = 0; i < list.length; i++) {
      const slot = list[i]!;
      if (dirty[slot] === 0) continue;
      dirty[slot] = 0;
      owed[slot] = 1;
    }
    this.owedList = list;
    this.owedCursor = 0;
    this.owedOut = upserts;
    this.checkpointList = [];
    // The meta below lists the state numbers snapshots use: number every state now, since
    // entities are encoded after it is taken (the wiring stays until they all are).
    for (const op of this.wiring.stats) this.stateNumber(op.spec.stateId);
    for (const op of this.wiring.rules) this.stateNumber(op.spec.stateId);
    const deletes = [...this.checkpointDeleted];
    this.checkpointDeleted.clear();
    this.rules.beginCheckpoint(upserts, deletes);
    return { meta: this.meta(checkpointId), upserts, deletes };
  }

  /**
   * Encodes entities and rule state owed to the checkpoint begun by {@link checkpointChange}
   * until `deadline` (performance.now() ms, Infinity for all); true when the
   * change is complete.
   */
  encodeCheckpoint(deadline: number): boolean {
    return this.encodeOwed(deadline) && this.rules.encodePending(deadline);
  }

  /** Encodes the entity into the checkpoint being written if it is still owed to it; call before changing its state. */
  private touchEntity(slot: number): void {
    if (this.checkpointOwed[slot] !== 0) this.encodeOwedEntity(slot);
  }

  /** Encodes owed entities until `deadline` (performance.now() ms); true when none is left. */
  private encodeOwed(deadline: number): boolean {
    const list = this.owedList;
    const i = visitFlagged(list, this.checkpointOwed, this.owedCursor, list.length, deadline, this.encodeOwedEntity);
    if (i < list.length) {
      this.owedCursor = i;
      return false;
    }
    this.owedList = [];
    this.owedCursor = 0;
    this.owedOut = undefined;
    return true;
  }

  private readonly encodeOwedEntity = (slot: number): void => {
    this.checkpointOwed[slot] = 0;
    this.owedOut!.add(this.keys[slot]!, this.encodeEntity(slot));
  };

  /**
   * An entity's snapshot, written straight into one reused buffer: format
   * byte, last time, attributes, then per operator with state its stateId and
   * the length and bytes of its state (so a restore can skip a state it no
   * longer runs), then the tags set by rules. The bytes are the writer's own:
   * valid until the next entity is encoded.
   */
  private encodeEntity(slot: number): EntitySnapshot {
    const w = snapshotWriter.reset();
    w.u8(SNAPSHOT_FORMAT);
    w.f64(this.entity[slot * this.entityWidth + E_LAST]!);
    const values = this.attrs[slot];
    const times = this.attrTimes[slot];
    const countAt = w.pos;
    w.u32(0);
    let n = 0;
    if (values !== undefined && times !== undefined) {
      for (const name in values) {
        w.str(name);
        w.value(values[name]!);
        w.f64(times[name]!);
        n++;
      }
    }
    w.patchU32(countAt, n);
    const statesAt = w.pos;
    w.u32(0);
    n = 0;
    const writeOp = (op: StatisticOperator | RuleOperator): void => {
      w.u32(this.stateNumber(op.spec.stateId));
      const lengthAt = w.pos;
      w.u32(0);
      op.write(slot, w);
      w.patchU32(lengthAt, w.pos - lengthAt - 4);
      n++;
    };
    const stats = this.wiring.stats;
    for (let i = 0; i < stats.length; i++) if (stats[i]!.has(slot)) writeOp(stats[i]!);
    const rules = this.wiring.rules;
    for (let i = 0; i < rules.length; i++) if (rules[i]!.has(slot)) writeOp(rules[i]!);
    w.patchU32(statesAt, n);
    const set = this.ruleTags[slot];
    const tagsAt = w.pos;
    w.u32(0);
    n = 0;
    if (set !== undefined) {
      for (const id in set) {
        const [value, at, version] = set[id]!;
        w.str(id);
        w.value(value);
        w.f64(at);
        w.u32(version);
        n++;
      }
    }
    w.patchU32(tagsAt, n);
    return w.written();
  }

  /** The number snapshots use for an operator state id. */
  private stateNumber(stateId: string): number {
    let n = this.stateNumbers.get(stateId);
    if (n === undefined) {
      n = this.stateIds.length;
      this.stateIds.push(stateId);
      this.stateNumbers.set(stateId, n);
    }
    return n;
  }

  /** Restores progress from a checkpoint meta (definitions must be applied first). */
  restoreMeta(meta: PartitionCheckpointMeta): void {
    this.stateIds = [...(meta.stateIds ?? [])];
    this.stateNumbers = new Map(this.stateIds.map((id, i) => [id, i]));
    this.offset = meta.offset;
    this.streamTime = meta.streamTime;
    this.watermark = meta.watermark;
    this.processingTime = meta.processingTime;
    this.sources = { ...meta.sources };
  }

  /** Restores one entity from its snapshot and re-arms its timers. */
  restoreEntity(key: string, snapshot: EntitySnapshot): void {
    if (key.startsWith(RULE_STATE_PREFIX)) {
      this.rules.restore(key, snapshot);
      return;
    }
    const r = new BinaryReader(snapshot);
    if (r.u8() !== SNAPSHOT_FORMAT) throw new StoreError('PRT_STORE_CORRUPT', `checkpoint of entity ${JSON.stringify(key)} in partition ${this.partition} has an unknown format`, { key });
    const slot = this.allocate(key);
    const lastTime = r.f64();
    this.entity[slot * this.entityWidth + E_LAST] = lastTime;
    let n = r.u32();
    if (n > 0) {
      const attrs: Record<string, AttrValue> = {};
      const attrTimes: Record<string, number> = {};
      for (; n > 0; n--) {
        const name = r.str();
        attrs[name] = r.value();
        attrTimes[name] = r.f64();
      }
      this.attrs[slot] = attrs;
      this.attrTimes[slot] = attrTimes;
    }
    const byStateId = this.wiring.byStateId;
    let next = NO_TIMER;
    for (n = r.u32(); n > 0; n--) {
      const stateId = this.stateIds[r.u32()];
      const length = r.u32();
      const op = stateId === undefined ? undefined : byStateId.get(stateId);
      if (op === undefined) {
        r.pos += length; // tag no longer online at this revision
        continue;
      }
      op.read(slot, r);
      if (!(op instanceof RuleOperator) && op.windowed) next = Math.min(next, op.nextChange(slot));
    }
    this.resetWindowRow(slot);
    n = r.u32();
    if (n > 0) {
      const set: Record<string, [TagValue, number, number]> = {};
      for (; n > 0; n--) {
        const id = r.str();
        const value = r.value();
        const at = r.f64();
        set[id] = [value, at, r.u32()];
      }
      this.ruleTags[slot] = set;
    }
    if (next !== NO_TIMER) this.scheduleView(slot, next);
    if (this.time.stateTtlMs > 0) {
      this.entity[slot * this.entityWidth + E_TTL] = NO_TIMER;
      this.scheduleTtl(slot, lastTime + this.time.stateTtlMs);
    }
    this.checkpointDeleted.delete(key);
  }
}

function emptyWiring(): Wiring {
  return {
    stats: [],
    windowed: [],
    rules: [],
    routes: new Map(),
    statDependents: new Map(),
    ruleDependents: [],
    ruleInputs: [],
    attrDependents: new Map(),
    attrAllRules: [],
    byStateId: new Map(),
    byId: new Map(),
  };
}

/** Orders rule operators so that each comes after the rules it reads (Kahn); a cycle keeps input order. */
function orderRules(rules: RuleOperator[]): RuleOperator[] {
  const byId = new Map(rules.map((r) => [r.spec.id, r]));
  const ordered: RuleOperator[] = [];
  const state = new Map<RuleOperator, 0 | 1 | 2>();
  const visit = (r: RuleOperator): void => {
    const s = state.get(r) ?? 0;
    if (s !== 0) return;
    state.set(r, 1);
    for (const input of r.spec.tagInputs) {
      const dep = byId.get(input);
      if (dep !== undefined && state.get(dep) !== 1) visit(dep);
    }
    state.set(r, 2);
    ordered.push(r);
  };
  for (const r of rules) visit(r);
  return ordered;
}

function wire(stats: StatisticOperator[], rules: RuleOperator[]): Wiring {
  const w = emptyWiring();
  w.stats = stats;
  w.windowed = stats.filter((op) => op.windowed);
  w.rules = rules;
  for (const op of stats) {
    w.byStateId.set(op.spec.stateId, op);
    for (const type of op.spec.eventTypes) {
      let route = w.routes.get(type);
      if (route === undefined) w.routes.set(type, (route = { ops: [], windows: [], dependents: [] }));
      route.ops.push(op);
      route.windows.push(w.windowed.indexOf(op));
    }
  }
  const byId = w.byId;
  for (const op of stats) byId.set(op.spec.id, op);
  for (const op of rules) byId.set(op.spec.id, op);
  rules.forEach((op, r) => {
    w.byStateId.set(op.spec.stateId, op);
    w.ruleDependents.push([]);
    const inputs: Array<{ id: string; op: StatisticOperator | RuleOperator }> = [];
    for (const id of op.spec.tagInputs) {
      const input = byId.get(id);
      if (input === undefined) continue;
      inputs.push({ id, op: input });
    }
    w.ruleInputs.push(inputs);
    if (op.spec.attrInputs === '*') w.attrAllRules.push(r);
    else for (const name of op.spec.attrInputs) {
      let list = w.attrDependents.get(name);
      if (list === undefined) w.attrDependents.set(name, (list = []));
      list.push(r);
    }
  });
  rules.forEach((op, r) => {
    for (const input of w.ruleInputs[r]!) {
      if (input.op instanceof RuleOperator) w.ruleDependents[rules.indexOf(input.op)]!.push(r);
      else {
        let list = w.statDependents.get(input.op);
        if (list === undefined) w.statDependents.set(input.op, (list = []));
        list.push(r);
      }
    }
  });
  for (const route of w.routes.values()) route.dependents = route.ops.map((op) => w.statDependents.get(op));
  return w;
}

function growFloat(column: Float64Array<ArrayBuffer>, capacity: number, fill: number): Float64Array<ArrayBuffer> {
  if (column.length >= capacity) return column;
  const next = new Float64Array(capacity);
  next.set(column);
  next.fill(fill, column.length);
  return next;
}

function growBytes(column: Uint8Array<ArrayBuffer>, capacity: number): Uint8Array<ArrayBuffer> {
  if (column.length >= capacity) return column;
  const next = new Uint8Array(capacity);
  next.set(column);
  return next;
}
