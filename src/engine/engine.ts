import { setImmediate as yieldToEventLoop } from 'node:timers/promises';
import type { LogRecord } from './event.js';
import type { DefinitionSet, DefinitionSetResolver } from './definition-set.js';
import type { CheckpointStore, DeadLetterSink, DecisionSink, ProfileSink, RecordLog, Profile } from './ports.js';
import { decodeRecord } from './record-codec.js';
import { partitionOf } from './partitioner.js';
import { PartitionTask, type PartitionCounters, type TimePolicy } from './internal/partition-task.js';
import { DEFAULT_RULE_STATE_TTL_MS, type RuleCounters } from './internal/rule-runtime.js';

/** A source of wall-clock time, injected so tests control it. */
export interface Clock {
  /** Epoch milliseconds. */
  now(): number;
}

/** The system clock. */
export const systemClock: Clock = { now: () => Date.now() };

/** Engine settings. */
export interface EngineOptions extends TimePolicy {
  /** Wall-clock interval between checkpoints, ms. */
  readonly checkpointIntervalMs: number;
  /** Records a partition processes before the engine yields to I/O. */
  readonly maxBatchRecords: number;
  /** Records kept in memory, across partitions, for a consumer just behind the writer. */
  readonly liveFeedMaxRecords: number;
  /** Delete log segments once a checkpoint no longer needs them. */
  readonly truncateLog: boolean;
  /**
   * Changed profiles are written to the profile store at most this often (and
   * at every checkpoint and drain), so an entity changed many times in between
   * is written once. Reads through the engine are always current.
   */
  readonly profileFlushIntervalMs: number;
}

/** Defaults of {@link EngineOptions}. */
export const defaultEngineOptions: EngineOptions = Object.freeze({
  outOfOrdernessMs: 5_000,
  allowedLatenessMs: 60_000,
  latePolicy: 'count',
  stateTtlMs: 0,
  defaultRuleStateTtlMs: DEFAULT_RULE_STATE_TTL_MS,
  checkpointIntervalMs: 10_000,
  maxBatchRecords: 4_096,
  liveFeedMaxRecords: 200_000,
  truncateLog: true,
  profileFlushIntervalMs: 10_000,
});

/** What the engine reads from and writes to. */
export interface EngineDependencies {
  log: RecordLog;
  checkpoints: CheckpointStore;
  profiles: ProfileSink;
  deadLetters: DeadLetterSink;
  /** Where rule decisions go; without one they are dropped. */
  decisions?: DecisionSink;
  definitions: DefinitionSetResolver;
  clock?: Clock;
  /** Called after each committed checkpoint. */
  onCheckpoint?: (info: CheckpointInfo) => void;
  /** Called when the loop hits an unexpected error (the engine stops). */
  onFatal?: (err: unknown) => void;
}

/** Outcome of one checkpoint. */
export interface CheckpointInfo {
  checkpointId: number;
  /** Wall-clock duration from start to durable commit, ms. */
  durationMs: number;
  /** Entities written (changed since the previous checkpoint). */
  entitiesWritten: number;
  entitiesDeleted: number;
  bytes: number;
  /** Offsets per partition the checkpoint covers. */
  offsets: number[];
}

/** Progress and counters of one partition. */
export interface PartitionStats extends PartitionCounters {
  partition: number;
  offset: number;
  endOffset: number;
  lag: number;
  streamTime: number;
  watermark: number;
  processingTime: number;
  revision: number;
  entities: number;
}

/** A snapshot of engine state for metrics and health. */
export interface EngineStats {
  running: boolean;
  partitions: PartitionStats[];
  lastCheckpoint: CheckpointInfo | undefined;
  checkpoints: number;
  /** Decision rule counters per rule id, summed over partitions. */
  rules: RuleCounters[];
  /** Tag errors per tag id, summed over partitions. */
  tagErrors: Array<{ id: string; filterErrors: number; typeMismatches: number; ruleErrors: number; lastError: string | undefined }>;
}

/** Longest stretch the loop spends encoding a checkpoint's rule state before it lets other work run. */
const ENCODE_SLICE_MS = 1;
/**
 * Share of the loop's time a running checkpoint may take: after a slice of
 * encoding the loop waits three times as long before the next, so requests
 * and records keep the rest of the event loop (slices back to back made every
 * call wait behind one at each of its hops while a checkpoint was encoded).
 */
const ENCODE_DUTY = 0.25;
/** Longest the loop sleeps with nothing to do before it looks at the log again, ms. */
const IDLE_POLL_MS = 50;
/** Longest stretch one partition's batch runs before the loop lets other work run. */
const STEP_SLICE_MS = 8;

interface FeedBatch {
  first: number;
  records: LogRecord[];
}

/**
 * The stream engine: one {@link PartitionTask} per log partition, a loop that
 * feeds each its records in offset order, periodic checkpoints of all state
 * with the offsets it covers, and materialisation of changed profiles.
 */
export class Engine {
  private readonly tasks: PartitionTask[];
  private readonly clock: Clock;
  private readonly feeds: FeedBatch[][];
  /** Per partition, the offset up to which decisions and dead letters have been handed on. */
  private readonly outputOffsets: number[] = [];
  /** Per partition, records read from the log that a step stopped short of. */
  private readonly readAhead: Array<FeedBatch | undefined> = [];
  private feedRecords = 0;
  private readonly sets = new Map<number, Promise<DefinitionSet>>();
  private running = false;
  private loopDone: Promise<void> | undefined;
  private wake: (() => void) | undefined;
  private lastCheckpointAt: number;
  private lastProfileFlushAt: number;
  private checkpointId = 0;
  private checkpointCount = 0;
  private lastCheckpoint: CheckpointInfo | undefined;
  private inFlight: Promise<CheckpointInfo> | undefined;
  /** Set while a checkpoint's entities and rule state are still being encoded by the loop; called when they are complete. */
  private encoded: (() => void) | undefined;
  /** Set while a round of profile writes is being encoded by the loop. */
  private profileRound = false;
  /** Called when the round of profile writes in progress is complete. */
  private profileWaiters: Array<() => void> = [];
  /** performance.now() before which background work (a profile round, a checkpoint's encoding) takes no further slice. */
  private backgroundResumeAt = 0;
  private waiters: Array<{ offsets: ReadonlyArray<number>; resolve: () => void }> = [];

  private constructor(private readonly options: EngineOptions, private readonly deps: EngineDependencies) {
    this.clock = deps.clock ?? systemClock;
    this.tasks = [];
    this.feeds = [];
    for (let p = 0; p < deps.log.partitionCount; p++) {
      this.tasks.push(new PartitionTask(p, options, deps.log.partitionCount));
      this.feeds.push([]);
    }
    this.lastCheckpointAt = this.clock.now();
    this.lastProfileFlushAt = this.lastCheckpointAt;
  }

  /**
   * Creates an engine, restores every partition from the latest checkpoint (or
   * starts it at the beginning of its log) and processes the records the log
   * holds after it, so the engine opens where the log ends. Call {@link start}
   * to run.
   */
  static async open(options: EngineOptions, deps: EngineDependencies): Promise<Engine> {
    const engine = new Engine(options, deps);
    await engine.restore();
    await engine.catchUp();
    return engine;
  }

  /**
   * Processes every record already in the log. What callers read right after
   * open — stream time, source positions, profiles — must describe the whole
   * log, not the last checkpoint: a writer that resumed from the checkpoint's
   * stream time would write marks behind the log's own events (and a replay
   * resumed from its source positions would append lines again).
   */
  private async catchUp(): Promise<void> {
    const log = this.deps.log;
    for (const task of this.tasks) {
      while (task.offset < log.endOffset(task.partition)) {
        await this.step(task, this.options.maxBatchRecords);
        this.flushOutputs();
      }
    }
    this.flushOutputs();
    this.flushProfiles();
  }

  private async restore(): Promise<void> {
    const { checkpoints, log } = this.deps;
    for (const task of this.tasks) {
      const meta = checkpoints.loadMeta(task.partition);
      if (meta === undefined) {
        task.skipTo(log.startOffset(task.partition));
        continue;
      }
      this.checkpointId = Math.max(this.checkpointId, meta.checkpointId);
      if (meta.revision !== 0) task.applyDefinitions(await this.definitionSet(meta.revision));
      task.restoreMeta(meta);
      for (const [key, snapshot] of checkpoints.entities(task.partition)) task.restoreEntity(key, snapshot);
      task.finishRestore();
      task.drainProfiles(); // restored profiles are already stored
    }
  }

  private definitionSet(revision: number): Promise<DefinitionSet> {
    let set = this.sets.get(revision);
    if (set === undefined) {
      set = this.deps.definitions.resolve(revision);
      this.sets.set(revision, set);
      set.catch(() => this.sets.delete(revision));
      // Older revisions are no longer needed once a newer one is in use.
      for (const r of this.sets.keys()) if (r < revision - 8) this.sets.delete(r);
    }
    return set;
  }

  /** Starts consuming the log. */
  start(): void {
    if (this.running) return;
    this.running = true;
    this.loopDone = this.loop().catch((err: unknown) => {
      this.running = false;
      this.deps.onFatal?.(err);
    });
  }

  /**
   * Stops the loop after the current batch, writes outstanding profiles and,
   * unless told otherwise, takes a final checkpoint.
   */
  async stop(options: { checkpoint?: boolean } = {}): Promise<void> {
    this.running = false;
    this.wake?.();
    await this.loopDone;
    this.flushOutputs();
    this.flushProfiles();
    if (options.checkpoint ?? true) await this.checkpoint();
    else await this.inFlight;
    await this.deps.profiles.flushed();
  }

  /**
   * Hands records just appended to the log to the engine so it need not read
   * them back. Optional: anything not offered is read from the log. Bounded:
   * past `liveFeedMaxRecords` offers are dropped.
   */
  offer(partition: number, firstOffset: number, records: LogRecord[]): void {
    const feed = this.feeds[partition];
    if (feed === undefined) return;
    const last = feed[feed.length - 1];
    if (last !== undefined && last.first + last.records.length !== firstOffset) {
      this.feedRecords -= feed.reduce((n, b) => n + b.records.length, 0);
      feed.length = 0;
    }
    if (this.feedRecords + records.length > this.options.liveFeedMaxRecords) return;
    feed.push({ first: firstOffset, records });
    this.feedRecords += records.length;
    this.wake?.();
  }

  /** Tells the engine that the log grew. */
  notify(): void {
    this.wake?.();
  }

  /** Records appended to the log but not yet processed, over all partitions. */
  lag(): number {
    const log = this.deps.log;
    let lag = 0;
    for (const t of this.tasks) lag += Math.max(0, log.endOffset(t.partition) - t.offset);
    return lag;
  }

  /** Highest stream time over all partitions, epoch ms (-Infinity before any event). */
  streamTime(): number {
    let max = -Infinity;
    for (const t of this.tasks) if (t.streamTime > max) max = t.streamTime;
    return max;
  }

  /** Lowest definition revision any partition runs. */
  revision(): number {
    let min = Infinity;
    for (const t of this.tasks) if (t.revision < min) min = t.revision;
    return min === Infinity ? 0 : min;
  }

  /** Offsets processed so far, per partition. */
  offsets(): number[] {
    return this.tasks.map((t) => t.offset);
  }

  /**
   * Resolves once every partition has processed up to `offsets` (exclusive):
   * the results are visible through {@link profile} and decisions are out.
   */
  async waitForOffsets(offsets: ReadonlyArray<number>): Promise<void> {
    if (!this.reached(offsets)) {
      await new Promise<void>((resolve) => this.waiters.push({ offsets, resolve }));
    }
  }

  /** Resolves once everything appended to the log so far is processed and every changed profile is stored. */
  async drain(): Promise<void> {
    const log = this.deps.log;
    await this.waitForOffsets(this.tasks.map((t) => log.endOffset(t.partition)));
    this.flushProfiles();
    await this.deps.profiles.flushed();
  }

  /** Writes every changed profile to the profile store now; resolves once they are durable. */
  async storeProfiles(): Promise<void> {
    this.flushProfiles();
    await this.deps.profiles.flushed();
  }

  /** The current profile of an entity, computed from the engine's state; undefined when it has none. */
  profile(key: string): Profile | undefined {
    return this.liveProfile(partitionOf(key, this.tasks.length), key);
  }

  /** Entities holding state, over all partitions. */
  entityCount(): number {
    let n = 0;
    for (const t of this.tasks) n += t.entityCount;
    return n;
  }

  /** Whether every partition's outputs up to `offsets` are handed on (processing alone is not enough: a caller waits for the decisions). */
  private reached(offsets: ReadonlyArray<number>): boolean {
    for (let p = 0; p < this.tasks.length; p++) if ((this.outputOffsets[p] ?? 0) < (offsets[p] ?? 0)) return false;
    return true;
  }

  /** The profile of an entity as the engine holds it now (no store round trip). */
  liveProfile(partition: number, key: string): Profile | undefined {
    const task = this.tasks[partition];
    const slot = task?.slotOf(key);
    return slot === undefined ? undefined : task!.profileOf(slot);
  }

  /** Encodes state owed to the checkpoint in progress until `deadline`; true when it is all written. */
  private encodeCheckpoint(deadline: number): boolean {
    for (const task of this.tasks) if (!task.encodeCheckpoint(deadline)) return false;
    return true;
  }

  /**
   * One slice of background work, if any and its pace allows: the round of
   * profile writes in progress, then the checkpoint being encoded; all of it
   * when `all`.
   */
  private continueBackground(all: boolean): void {
    if (!this.profileRound && this.encoded === undefined) return;
    const started = performance.now();
    if (!all && started < this.backgroundResumeAt) return;
    const deadline = all ? Infinity : started + ENCODE_SLICE_MS;
    if (this.profileRound) this.writeProfileRound(deadline);
    const done = this.encoded;
    if (!this.profileRound && done !== undefined && this.encodeCheckpoint(deadline)) {
      this.encoded = undefined;
      done();
    }
    const now = performance.now();
    this.backgroundResumeAt = now + (now - started) * (1 / ENCODE_DUTY - 1);
  }

  private async loop(): Promise<void> {
    try {
      await this.run();
    } finally {
      // A profile round and a checkpoint begun while running are completed even when the loop ends.
      this.continueBackground(true);
    }
  }

  private async run(): Promise<void> {
    const { log } = this.deps;
    const maxBatch = this.options.maxBatchRecords;
    while (this.running) {
      this.continueBackground(false);
      let worked = false;
      for (const task of this.tasks) {
        if (!this.running) break;
        if (task.offset >= log.endOffset(task.partition)) continue;
        if ((await this.step(task, maxBatch)) > 0) worked = true;
      }
      this.flushOutputs();
      if (!this.profileRound && this.clock.now() - this.lastProfileFlushAt >= this.options.profileFlushIntervalMs) this.beginProfileRound();
      this.resolveWaiters();
      if (this.inFlight === undefined && this.clock.now() - this.lastCheckpointAt >= this.options.checkpointIntervalMs) {
        void this.checkpoint().catch((err: unknown) => {
          this.running = false;
          this.deps.onFatal?.(err);
        });
      }
      if (!worked && this.running) await this.idle();
      else await yieldToEventLoop();
    }
  }

  private idle(): Promise<void> {
    // Background work (a profile round, a checkpoint being encoded) resumes at its next slice; otherwise appends wake the loop.
    const ms = this.encoded === undefined && !this.profileRound ? IDLE_POLL_MS : Math.min(IDLE_POLL_MS, Math.max(1, this.backgroundResumeAt - performance.now()));
    return new Promise<void>((resolve) => {
      const timer = setTimeout(done, ms);
      const self = this;
      function done(): void {
        clearTimeout(timer);
        self.wake = undefined;
        resolve();
      }
      this.wake = done;
    });
  }

  /**
   * Processes up to `max` records of one partition, and while running stops
   * early once a batch has taken {@link STEP_SLICE_MS}, so requests waiting on
   * the event loop are not held up behind a backlog (records read from the
   * log and not yet processed are kept for the next step).
   */
  private async step(task: PartitionTask, max: number): Promise<number> {
    const p = task.partition;
    const deadline = this.running ? performance.now() + STEP_SLICE_MS : Infinity;
    let done = 0;
    // Records offered by appends arrive as many small batches (one per request): a step takes
    // as many of them as follow each other, not one batch per turn of the loop.
    while (done < max) {
      const start = task.offset;
      const batch = await this.recordsAt(p, start, max - done);
      if (batch === undefined) break;
      const { records, from } = batch;
      const end = Math.min(records.length, from + max - done);
      let offset = start;
      let i = from;
      let late = false;
      while (i < end) {
        const wanted = task.process(records[i]!, offset);
        i++;
        offset++;
        if (wanted !== undefined) {
          task.applyDefinitions(await this.definitionSet(wanted));
          task.skipTo(offset);
        }
        if ((i & 15) === 0 && performance.now() >= deadline) {
          late = true;
          break;
        }
      }
      done += i - from;
      if (records === this.readAhead[p]?.records && i >= records.length) this.readAhead[p] = undefined;
      if (late || task.offset >= this.deps.log.endOffset(p)) break;
    }
    return done;
  }

  /**
   * Records of partition `p` from offset `start`: an offered batch, records
   * read ahead earlier, or up to `max` read from the log now (kept for the
   * next step should this one stop short of them). Undefined when none.
   */
  private async recordsAt(p: number, start: number, max: number): Promise<{ records: LogRecord[]; from: number } | undefined> {
    const feed = this.feeds[p]!;
    while (feed.length > 0 && feed[0]!.first + feed[0]!.records.length <= start) {
      this.feedRecords -= feed.shift()!.records.length;
    }
    const head = feed[0];
    if (head !== undefined && head.first <= start) return { records: head.records, from: start - head.first };
    const ahead = this.readAhead[p];
    if (ahead !== undefined && ahead.first <= start && start < ahead.first + ahead.records.length) return { records: ahead.records, from: start - ahead.first };
    const entries = await this.deps.log.read(p, start, max);
    if (entries.length === 0) return undefined;
    const records = new Array<LogRecord>(entries.length);
    for (let i = 0; i < entries.length; i++) records[i] = decodeRecord(entries[i]!.payload);
    this.readAhead[p] = { first: start, records };
    return { records, from: 0 };
  }

  /** Writes every profile changed since the last flush to the profile store now (completing a round in progress). */
  private flushProfiles(): void {
    this.beginProfileRound();
    this.writeProfileRound(Infinity);
  }

  /**
   * Starts a round of profile writes: the profiles changed so far are encoded
   * and written by the loop in slices ({@link continueBackground}), since
   * encoding ten thousand of them at once held the event loop for 24–27 ms.
   * Removed profiles are deleted now, before the round's writes.
   */
  private beginProfileRound(): void {
    this.lastProfileFlushAt = this.clock.now();
    const { profiles } = this.deps;
    for (const task of this.tasks) {
      const remove = task.beginProfileRound();
      if (remove.length > 0) profiles.deleteProfiles(remove);
    }
    this.profileRound = true;
  }

  /** Encodes and writes profiles of the round in progress until `deadline`; true when the round is complete. */
  private writeProfileRound(deadline: number): boolean {
    const { profiles } = this.deps;
    for (const task of this.tasks) {
      const { write, done } = task.drainProfileRound(deadline);
      if (write.length > 0) profiles.writeProfiles(write);
      if (!done) return false;
    }
    this.profileRound = false;
    const waiters = this.profileWaiters;
    this.profileWaiters = [];
    for (const notify of waiters) notify();
    return true;
  }

  /** Hands dead letters and decisions on (after every batch: decisions are awaited by callers). */
  private flushOutputs(): void {
    const { deadLetters } = this.deps;
    for (const task of this.tasks) {
      const letters = task.drainDeadLetters();
      if (letters.length > 0) deadLetters.add(letters);
      const decisions = task.drainDecisions();
      if (decisions.length > 0) this.deps.decisions?.add(decisions);
      this.outputOffsets[task.partition] = task.offset;
    }
  }

  private resolveWaiters(): void {
    if (this.waiters.length === 0) return;
    const pending: typeof this.waiters = [];
    for (const w of this.waiters) {
      if (this.reached(w.offsets)) w.resolve();
      else pending.push(w);
    }
    this.waiters = pending;
  }

  /**
   * Takes a checkpoint now: snapshots every entity changed since the last one
   * together with each partition's offset, and commits it atomically once the
   * profiles written before it are durable.
   */
  async checkpoint(): Promise<CheckpointInfo> {
    while (this.inFlight !== undefined) await this.inFlight.catch(() => undefined);
    const started = this.clock.now();
    this.lastCheckpointAt = started;
    const id = ++this.checkpointId;
    this.flushOutputs();
    // The profiles changed before the checkpoint must be stored before it commits (a restore
    // would not write them again), and entities and rule state are snapshotted as they are now.
    // The running loop does both in slices between batches (an entity or key still owed is
    // encoded before it next changes), so a large state does not stop the engine; a stopped
    // engine does it now.
    let encoded: Promise<void> | undefined;
    let profilesWritten: Promise<void> | undefined;
    if (!this.running) this.flushProfiles();
    else {
      this.beginProfileRound();
      profilesWritten = new Promise<void>((resolve) => this.profileWaiters.push(resolve));
    }
    const changes = this.tasks.map((t) => t.checkpointChange(id));
    if (!this.running) this.encodeCheckpoint(Infinity);
    else {
      encoded = new Promise<void>((resolve) => (this.encoded = resolve));
      this.backgroundResumeAt = 0;
      this.continueBackground(false);
      if (this.encoded !== undefined || this.profileRound) this.wake?.(); // an idle loop would otherwise start on the rest only at its next poll
    }
    const run = (async (): Promise<CheckpointInfo> => {
      if (profilesWritten !== undefined) await profilesWritten;
      if (encoded !== undefined) await encoded;
      await this.deps.profiles.flushed();
      await this.deps.checkpoints.commit(changes);
      let bytes = 0;
      let written = 0;
      let deleted = 0;
      for (const c of changes) {
        written += c.upserts.length;
        deleted += c.deletes.length;
        bytes += c.upserts.byteLength;
      }
      const info: CheckpointInfo = {
        checkpointId: id,
        durationMs: this.clock.now() - started,
        entitiesWritten: written,
        entitiesDeleted: deleted,
        bytes,
        offsets: changes.map((c) => c.meta.offset),
      };
      if (this.options.truncateLog) {
        for (const c of changes) await this.deps.log.truncateBefore(c.meta.partition, c.meta.offset);
      }
      this.lastCheckpoint = info;
      this.checkpointCount++;
      this.deps.onCheckpoint?.(info);
      return info;
    })();
    this.inFlight = run;
    try {
      return await run;
    } finally {
      if (this.inFlight === run) this.inFlight = undefined;
    }
  }

  /** Current progress and counters. */
  stats(): EngineStats {
    const log = this.deps.log;
    const errors = new Map<string, EngineStats['tagErrors'][number]>();
    for (const task of this.tasks) {
      for (const e of task.statisticErrors()) {
        const row = errors.get(e.id) ?? { id: e.id, filterErrors: 0, typeMismatches: 0, ruleErrors: 0, lastError: undefined };
        row.filterErrors += e.filterErrors;
        row.typeMismatches += e.typeMismatches;
        errors.set(e.id, row);
      }
      for (const e of task.ruleErrors()) {
        const row = errors.get(e.id) ?? { id: e.id, filterErrors: 0, typeMismatches: 0, ruleErrors: 0, lastError: undefined };
        row.ruleErrors += e.errors;
        row.lastError = e.lastError ?? row.lastError;
        errors.set(e.id, row);
      }
    }
    return {
      running: this.running,
      rules: [...this.ruleCounters().values()],
      lastCheckpoint: this.lastCheckpoint,
      checkpoints: this.checkpointCount,
      tagErrors: [...errors.values()],
      partitions: this.tasks.map((t) => {
        const endOffset = log.endOffset(t.partition);
        return {
          ...t.counters,
          partition: t.partition,
          offset: t.offset,
          endOffset,
          lag: Math.max(0, endOffset - t.offset),
          streamTime: t.streamTime,
          watermark: t.watermark,
          processingTime: t.processingTime,
          revision: t.revision,
          entities: t.entityCount,
        };
      }),
    };
  }

  /** Counters of each online decision rule, summed over partitions, by rule id. */
  ruleCounters(): ReadonlyMap<string, RuleCounters> {
    const out = new Map<string, RuleCounters>();
    for (const task of this.tasks) {
      for (const c of task.ruleCounters()) {
        const row = out.get(c.id);
        if (row === undefined) out.set(c.id, { ...c });
        else addCounters(row, c);
      }
    }
    return out;
  }

  /** Source positions per partition, from `$source` records (for resuming a replay). */
  sourcePositions(source: string): Array<number | undefined> {
    return this.tasks.map((t) => t.sources[source]);
  }
}

function addCounters(into: RuleCounters, c: RuleCounters): void {
  into.version = Math.max(into.version, c.version);
  into.evaluations += c.evaluations;
  into.decisions += c.decisions;
  into.errors += c.errors;
  if (c.lastErrorAt >= into.lastErrorAt && c.lastError !== undefined) {
    into.lastError = c.lastError;
    into.lastErrorAt = c.lastErrorAt;
  }
  into.late += c.late;
  into.missingKey += c.missingKey;
  into.droppedPartialMatches += c.droppedPartialMatches;
  into.expiredPartialMatches += c.expiredPartialMatches;
  into.keys += c.keys;
  into.sharedWith = Math.max(into.sharedWith, c.sharedWith);
}
