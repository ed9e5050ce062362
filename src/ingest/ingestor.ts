import {
  ControlType,
  attributesRead,
  ALL_ATTRIBUTES,
  crc32,
  encodeRecord,
  partitionOf,
  ruleKeyOf,
  type DefinitionSet,
  type AttrValue,
  type AttributeProjection,
  type Clock,
  type DeadLetter,
  type DeadLetterSink,
  type Event,
  type LogRecord,
  type RecordLog,
} from '../engine/index.js';
import { PortraitError, type ErrorCode } from '../errors/index.js';

/**
 * What the ingestor hands appended records to: the engine, seen through the
 * few methods ingest needs.
 */
export interface IngestTarget {
  /** Records just made durable at `firstOffset` of `partition`, in order. */
  offer(partition: number, firstOffset: number, records: LogRecord[]): void;
  /** Records appended but not yet processed, over all partitions. */
  lag(): number;
  /** Highest stream time the engine has restored or seen, epoch ms. */
  streamTime(): number;
}

/** Options of {@link Ingestor}. */
export interface IngestorOptions {
  /** Minimum wall-clock interval between time marks written to every partition, ms. */
  markIntervalMs: number;
  /**
   * When no event arrived for this long, stream time advances with the wall clock
   * so windows close and timers fire on an idle stream; 0 disables.
   */
  idleAdvanceMs: number;
  /** Refuse new events (`PRT_INGEST_OVERLOADED`) while the engine is this many records behind. */
  maxLagRecords: number;
  /**
   * Whether a writer that decodes records for the engine itself (a file
   * replay) may leave out the attributes no online definition reads
   * ({@link Ingestor.attributeProjection}). Off when the engine must keep whole
   * events for other uses (late events to the dead letters).
   * @defaultValue true
   */
  projectAttributes?: boolean;
}

/** Defaults of {@link IngestorOptions}. */
export const defaultIngestorOptions: IngestorOptions = Object.freeze({
  markIntervalMs: 200,
  idleAdvanceMs: 0,
  maxLagRecords: 5_000_000,
});

/** Counters of the ingest stage. */
export interface IngestCounters {
  /** Events durably appended. */
  accepted: number;
  /** Inputs refused, by error code. */
  rejected: Record<string, number>;
  /** Append calls (one per request or replay chunk). */
  batches: number;
  /** Control records written (marks, attribute changes, definition changes, source positions). */
  controls: number;
  /** Requests refused because the engine lagged. */
  overloaded: number;
}

/** Where an append landed: the next offset of each partition after it. */
export type AppendResult = number[];

/** Where one event was written: its copy in each partition that needs it. */
export interface EventPosition {
  partition: number;
  offset: number;
}

/** Rules keyed by something else than the entity: their events are also written to the partition owning the rule key. */
interface Rekey {
  keyFields: ReadonlyArray<string>;
  entityKeyField: string;
}

/**
 * The single writer of the event log. Partitions events by entity key,
 * appends them durably, hands them to the engine, and writes time marks that
 * carry the source's stream time and the wall clock to every partition.
 */
export class Ingestor {
  readonly counters: IngestCounters = { accepted: 0, rejected: {}, batches: 0, controls: 0, overloaded: 0 };
  private streamTime: number;
  private lastMarkAt = 0;
  private lastMarkTime = -Infinity;
  private lastEventAt: number;
  private idleBase = -Infinity;
  private timer: NodeJS.Timeout | undefined;
  private readonly partitions: number;
  /** Re-keyings by event type, from the definition revision the log is at. */
  private rekeys = new Map<string, Rekey[]>();
  /** Attributes the definitions the log is at read, by event type. */
  private projection: AttributeProjection = ALL_ATTRIBUTES;
  private routingChanges = 0;

  constructor(
    private readonly log: RecordLog,
    private readonly target: IngestTarget,
    private readonly deadLetters: DeadLetterSink,
    private readonly clock: Clock,
    private readonly options: IngestorOptions,
  ) {
    this.partitions = log.partitionCount;
    this.streamTime = target.streamTime();
    this.lastEventAt = clock.now();
  }

  /** Number of log partitions. */
  get partitionCount(): number {
    return this.partitions;
  }

  /** Whether the engine lags more than `maxLagRecords` behind the log. */
  isOverloaded(): boolean {
    return this.target.lag() > this.options.maxLagRecords;
  }

  /** The highest event time accepted so far (or restored), epoch ms. */
  get currentStreamTime(): number {
    return this.streamTime;
  }

  /** Starts writing time marks while the stream is idle. */
  start(): void {
    if (this.timer !== undefined) return;
    this.timer = setInterval(() => void this.tick().catch(() => undefined), this.options.markIntervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Throws `PRT_INGEST_OVERLOADED` when the engine is too far behind to take more. */
  checkCapacity(): void {
    const lag = this.target.lag();
    if (lag > this.options.maxLagRecords) {
      this.counters.overloaded++;
      throw new PortraitError('PRT_INGEST_OVERLOADED', `the engine is ${lag} records behind the log (limit ${this.options.maxLagRecords}); retry shortly`);
    }
  }

  /**
   * Appends validated events; resolves once all are durable.
   * Events of one entity keep their order.
   */
  async appendEvents(events: ReadonlyArray<Event>): Promise<AppendResult> {
    const groups: LogRecord[][] = Array.from({ length: this.partitions }, () => []);
    let maxTime = this.streamTime;
    for (const event of events) {
      this.route(event, groups);
      if (event.time > maxTime) maxTime = event.time;
    }
    const result = await this.appendGroups(groups);
    this.counters.accepted += events.length;
    this.noteEvents(maxTime);
    return result;
  }

  /** Appends one event and resolves with where each of its copies landed (for synchronous decisions). */
  async appendTracked(event: Event): Promise<EventPosition[]> {
    const groups: LogRecord[][] = Array.from({ length: this.partitions }, () => []);
    this.route(event, groups);
    const positions: Array<Promise<EventPosition>> = [];
    for (let p = 0; p < groups.length; p++) {
      const records = groups[p]!;
      if (records.length === 0) continue;
      const partition = p;
      positions.push(this.log.append(p, [encodeRecord(event)]).then((offset) => {
        this.target.offer(partition, offset, records);
        return { partition, offset };
      }));
    }
    this.counters.batches++;
    const out = await Promise.all(positions);
    this.counters.accepted++;
    this.noteEvents(Math.max(this.streamTime, event.time));
    return out;
  }

  private route(event: Event, groups: LogRecord[][]): void {
    const home = partitionOf(event.key, this.partitions);
    groups[home]!.push(event);
    const extra = this.copiesOf(event, home);
    if (extra !== undefined) for (const p of extra) groups[p]!.push(event);
  }

  /**
   * The partitions besides the entity's own (`home`) that an event is also
   * written to: for each online rule keyed by other fields than the entity, the
   * partition owning the event's rule key (once per partition). `undefined`
   * when there is none. Every writer of events into the log routes by it.
   */
  copiesOf(event: Event, home: number): number[] | undefined {
    const rekeys = this.rekeys.get(event.type);
    if (rekeys === undefined) return undefined;
    let extra: number[] | undefined;
    for (const r of rekeys) {
      const key = ruleKeyOf(event, r.keyFields, r.entityKeyField);
      if (key === undefined) continue;
      const p = partitionOf(key, this.partitions);
      if (p === home || extra?.includes(p) === true) continue;
      (extra ??= []).push(p);
    }
    return extra;
  }

  /**
   * Routes events by a definition set from now on: events of the types a rule
   * keyed by other fields than the entity reads are copied to the partition
   * owning their rule key. Called when the set's `$definitions` record is
   * appended, so every partition switches at that record.
   */
  setRouting(set: DefinitionSet): void {
    const byType = new Map<string, Rekey[]>();
    const seen = new Set<string>();
    for (const rule of set.rules ?? []) {
      if (rule.entityKeyed) continue;
      for (const type of rule.eventTypes) {
        const id = `${type}\u0000${rule.keyFields.join('\u0000')}`;
        if (seen.has(id)) continue;
        seen.add(id);
        let list = byType.get(type);
        if (list === undefined) byType.set(type, (list = []));
        list.push({ keyFields: rule.keyFields, entityKeyField: rule.entityKeyField });
      }
    }
    this.rekeys = byType;
    if (this.options.projectAttributes !== false) this.projection = attributesRead(set);
    this.routingChanges++;
  }

  /**
   * The attributes of each event type that the definitions events appended
   * now are processed by read: a writer handing the engine decoded records
   * (a file replay) may decode only these. It must append them under the same
   * {@link routingVersion} it decoded them at, or decode them again in full.
   */
  attributeProjection(): AttributeProjection {
    return this.projection;
  }

  /** Changes with every {@link setRouting}: events appended after a change are processed by other definitions. */
  get routingVersion(): number {
    return this.routingChanges;
  }

  /**
   * Appends records already grouped by partition (replay uses this to put
   * marks and source positions beside the events of each chunk). `encoded`,
   * when given, holds for the first records of each partition their bytes as
   * {@link encodeRecord} writes them (a replay's parser thread encodes them);
   * the records past its length are encoded here. `checksums`, when given
   * beside `encoded`, holds the `crc32` of each of those payloads, which the
   * log then need not compute.
   */
  async appendGroups(groups: ReadonlyArray<LogRecord[]>, encoded?: ReadonlyArray<ReadonlyArray<Uint8Array>>, checksums?: ReadonlyArray<ArrayLike<number>>): Promise<AppendResult> {
    const appends: Array<Promise<void>> = [];
    for (let p = 0; p < groups.length; p++) {
      const records = groups[p]!;
      if (records.length === 0) continue;
      const payloads = new Array<Uint8Array>(records.length);
      const given = encoded?.[p];
      const from = given === undefined ? 0 : given.length;
      for (let i = 0; i < from; i++) payloads[i] = given![i]!;
      for (let i = from; i < records.length; i++) payloads[i] = encodeRecord(records[i]!);
      const givenSums = checksums?.[p];
      let sums: number[] | undefined;
      if (givenSums !== undefined && givenSums.length === from) {
        sums = new Array<number>(records.length);
        for (let i = 0; i < from; i++) sums[i] = givenSums[i]!;
        for (let i = from; i < records.length; i++) sums[i] = crc32(payloads[i]!);
      }
      appends.push(this.log.append(p, payloads, sums).then((first) => this.target.offer(p, first, records)));
    }
    this.counters.batches++;
    await Promise.all(appends);
    return Array.from({ length: this.partitions }, (_, p) => this.log.endOffset(p));
  }

  /**
   * Counts events appended through {@link appendGroups} by a source that writes
   * its own marks (a replay), and moves stream time without writing a mark.
   */
  noteAccepted(count: number, maxTime: number): void {
    this.counters.accepted += count;
    this.noteEvents(maxTime, false);
  }

  private noteEvents(maxTime: number, marks = true): void {
    const now = this.clock.now();
    this.lastEventAt = now;
    this.idleBase = -Infinity;
    if (maxTime > this.streamTime) this.streamTime = maxTime;
    if (marks && now - this.lastMarkAt >= this.options.markIntervalMs && this.streamTime > this.lastMarkTime) void this.mark(now).catch(() => undefined);
  }

  /** Upserts static attributes of one entity (null removes one); durable when resolved. */
  async appendAttributes(key: string, attrs: Record<string, AttrValue>, time: number): Promise<AppendResult> {
    const groups: LogRecord[][] = Array.from({ length: this.partitions }, () => []);
    groups[partitionOf(key, this.partitions)]!.push({ type: ControlType.Attributes, time, key, attrs });
    this.counters.controls++;
    return this.appendGroups(groups);
  }

  /**
   * Announces a definition revision to every partition; durable when resolved.
   * With the revision's set, events appended after this call are routed by it.
   */
  async appendDefinitions(revision: number, set?: DefinitionSet): Promise<AppendResult> {
    const written = this.broadcast({ type: ControlType.Definitions, time: this.clock.now(), key: '', attrs: { revision } });
    // The record is queued in every partition above: events appended from here on follow it.
    if (set !== undefined) this.setRouting(set);
    return written;
  }

  /** Writes a time mark to every partition now. */
  async mark(now = this.clock.now()): Promise<AppendResult> {
    this.lastMarkAt = now;
    this.lastMarkTime = this.streamTime;
    return this.broadcast(this.markRecord(now));
  }

  /** A mark record carrying the current stream time and wall-clock time. */
  markRecord(now = this.clock.now()): LogRecord {
    return { type: ControlType.Mark, time: this.streamTime, key: '', attrs: { now } };
  }

  private async broadcast(record: LogRecord): Promise<AppendResult> {
    const groups = Array.from({ length: this.partitions }, () => [record]);
    this.counters.controls += this.partitions;
    return this.appendGroups(groups);
  }

  /** Periodic work: marks on an idle stream, and idle advance of stream time. */
  async tick(): Promise<void> {
    const now = this.clock.now();
    const idleFor = now - this.lastEventAt;
    // While events flow, marks follow appends; this only keeps time moving on an idle stream.
    if (now - this.lastMarkAt < this.options.markIntervalMs || idleFor < this.options.markIntervalMs) return;
    if (this.options.idleAdvanceMs > 0 && idleFor >= this.options.idleAdvanceMs && this.streamTime !== -Infinity) {
      // Event time keeps pace with the wall clock while no event arrives.
      if (this.idleBase === -Infinity) this.idleBase = this.streamTime;
      this.streamTime = Math.max(this.streamTime, this.idleBase + (idleFor - this.options.idleAdvanceMs));
    }
    await this.mark(now);
  }

  /**
   * Counts a refused input and sends it to the dead letters with the reason.
   * `origin` names a replay source and line so a resumed replay does not repeat the letter.
   */
  reject(err: PortraitError, payload: string, origin?: { source: string; position: number }): void {
    const code: ErrorCode = err.code;
    this.counters.rejected[code] = (this.counters.rejected[code] ?? 0) + 1;
    const letter: DeadLetter = { stage: 'ingest', code, reason: err.message, payload: payload.length > 4096 ? `${payload.slice(0, 4093)}...` : payload, at: this.clock.now() };
    if (err.path !== undefined) letter.path = err.path;
    if (origin !== undefined) {
      letter.source = origin.source;
      letter.position = origin.position;
    }
    this.deadLetters.add([letter]);
  }

  /** Total events refused so far. */
  rejectedTotal(): number {
    let n = 0;
    for (const v of Object.values(this.counters.rejected)) n += v;
    return n;
  }
}
