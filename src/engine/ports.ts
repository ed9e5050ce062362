import type { AttrValue } from './event.js';

/** One stored entry of a log partition. */
export interface LogEntry {
  /** Offset of the entry in its partition; offsets are consecutive from the partition's start offset. */
  offset: number;
  /** The record bytes exactly as appended. */
  payload: Uint8Array;
}

/**
 * A partitioned, append-only, durable log of byte records — the boundary
 * between ingest and the engine. The embedded system stores it in local files;
 * the distributed system maps partitions to Kafka partitions.
 */
export interface RecordLog {
  /** Number of partitions; fixed for the life of the log. */
  readonly partitionCount: number;

  /**
   * Appends records to one partition, in order. Resolves with the offset of the
   * first record only once every record is durable (survives `kill -9` and, with
   * fsync on, power loss). Concurrent appends to one partition keep call order.
   * `checksums`, when given, holds the `crc32` of each payload, computed
   * where the payloads were made (a parser thread) so a log that checks its
   * records with CRC-32 need not compute them again.
   */
  append(partition: number, payloads: ReadonlyArray<Uint8Array>, checksums?: ArrayLike<number>): Promise<number>;

  /**
   * Reads entries of one partition from `offset` (inclusive), at most `maxEntries`
   * of them, only ones already durable. Returns an empty array at the end.
   * Throws a `PRT_STORE_CORRUPT` error if stored bytes fail their checksum in the
   * middle of the log; a torn tail left by a crash is cut off when the log opens.
   */
  read(partition: number, offset: number, maxEntries: number): Promise<LogEntry[]>;

  /** The offset the next durable append to `partition` will get (= number of records ever appended). */
  endOffset(partition: number): number;

  /** The lowest offset still stored for `partition` (older entries were truncated). */
  startOffset(partition: number): number;

  /**
   * Declares that entries below `offset` are no longer needed; the log may delete
   * whole segments that lie entirely below it. Never removes entries at or above it.
   */
  truncateBefore(partition: number, offset: number): Promise<void>;

  /** Flushes and closes files. Appends after close reject. */
  close(): Promise<void>;
}

/** The snapshot of one partition's engine progress, stored with the partition's state. */
export interface PartitionCheckpointMeta {
  /** Snapshot format version. */
  formatVersion: 1;
  partition: number;
  /** Next log offset to process after restoring this checkpoint. */
  offset: number;
  /** Highest event time seen (stream time), epoch ms; `-Infinity` when none. */
  streamTime: number;
  /** Event-time watermark, epoch ms. */
  watermark: number;
  /** Processing time as carried by the log, epoch ms. */
  processingTime: number;
  /** Definition-set revision in effect. */
  revision: number;
  /** Checkpoint id, increasing. */
  checkpointId: number;
  /** Latest position of each replay source seen in this partition. */
  sources: Record<string, number>;
  /**
   * Operator state ids by the number entity snapshots use for them. Append-only:
   * a number is never given to another state id, so every stored snapshot stays readable.
   */
  stateIds?: string[];
}

/** State of one entity as snapshotted in a checkpoint (the engine encodes it). */
export type EntitySnapshot = Uint8Array;

/** Entity snapshots by key, as a checkpoint commits them: an array, or the engine's packed `SnapshotBatch`. */
export interface EntitySnapshots extends Iterable<[key: string, snapshot: EntitySnapshot]> {
  readonly length: number;
}

/**
 * Stores checkpoints: per partition, the progress meta and a snapshot of every
 * entity's state. Commits are incremental (changed and deleted entities only)
 * and atomic across all partitions in one call.
 */
export interface CheckpointStore {
  /** The latest committed meta of a partition, or undefined when none was ever committed. */
  loadMeta(partition: number): PartitionCheckpointMeta | undefined;

  /** Every entity snapshot of a partition in the latest committed checkpoint. */
  entities(partition: number): Iterable<[key: string, snapshot: EntitySnapshot]>;

  /**
   * Atomically applies, for each partition given, the entity upserts and
   * deletions and replaces its meta. Resolves once durable. Either all of it is
   * visible after a crash or none of it.
   */
  commit(changes: ReadonlyArray<PartitionCheckpointChange>): Promise<void>;
}

/** What one partition contributes to a checkpoint commit. */
export interface PartitionCheckpointChange {
  meta: PartitionCheckpointMeta;
  upserts: EntitySnapshots;
  deletes: ReadonlyArray<string>;
}

/** A tag value as stored on a profile. */
export type TagValue = AttrValue;

/** One tag on a profile: value, the event time of its last change, and the definition version that computed it. */
export interface ProfileTag {
  value: TagValue;
  updatedAt: number;
  version: number;
}

/** One static attribute on a profile with the event time of its last change. */
export interface ProfileAttribute {
  value: AttrValue;
  updatedAt: number;
}

/** Everything known about one entity, as the engine materialises it. */
export interface Profile {
  key: string;
  attributes: Record<string, ProfileAttribute>;
  tags: Record<string, ProfileTag>;
}

/** A profile in its stored form: the entity key and the bytes of `ProfileEncoder` (read with `decodeProfile`). */
export type EncodedProfile = readonly [key: string, bytes: Uint8Array];

/**
 * Where the engine materialises profiles, coalesced: an entity changed many
 * times between two flushes is written once. Writes are batched; a batch is
 * durable no later than the next checkpoint commit that follows it.
 */
export interface ProfileSink {
  /** Replaces the stored profiles of the given entities. */
  writeProfiles(profiles: ReadonlyArray<EncodedProfile>): void;
  /** Removes the stored profiles of entities whose state expired. */
  deleteProfiles(keys: ReadonlyArray<string>): void;
  /** Resolves once every write issued so far is durable. */
  flushed(): Promise<void>;
}

/** One record the pipeline refused, with the reason. */
export interface DeadLetter {
  /** Where it was refused: `ingest` or `engine`. */
  stage: 'ingest' | 'engine';
  /** Error code, e.g. `PRT_ENGINE_LATE_EVENT`. */
  code: string;
  /** Human-readable reason naming the field. */
  reason: string;
  /** Path of the offending field, when there is one. */
  path?: string;
  /** The raw input or the event, as text. */
  payload: string;
  /** Wall-clock time of refusal, epoch ms. */
  at: number;
  /** Log position for engine dead letters: makes their writing idempotent across replays. */
  partition?: number;
  offset?: number;
  /** Replay source and input position (line) for replay dead letters: idempotent across resumed replays. */
  source?: string;
  position?: number;
}

/** Where refused records go. Implementations bound their size. */
export interface DeadLetterSink {
  add(letters: ReadonlyArray<DeadLetter>): void;
}

/**
 * One decision of a rule: it matched (or a sequence timed out) for a key at a
 * moment. `id` is derived from the log position, so a replay after a crash
 * produces the same ids and a store can drop the repeats.
 */
export interface Decision {
  /** Stable id: rule, version, partition, log offset and a counter within the record. */
  id: string;
  ruleId: string;
  version: number;
  /** The rule key: key field → value. */
  key: Record<string, AttrValue>;
  /** The entity (profile) of the triggering event, when there is one. */
  entity: string | null;
  /** `match` when the condition held (a sequence completed); `timeout` when a sequence's partial match ran out of time. */
  outcome: 'match' | 'timeout';
  /** What caused the evaluation: an event, or time passing (a timer). */
  trigger: 'event' | 'timer';
  /** Event time (or processing time for processing-time rules) of the decision, epoch ms. */
  time: number;
  /** Processing time carried by the log when it was decided, epoch ms. */
  processingTime: number;
  /** The triggering event. */
  event: { type: string; time: number; key: string; attrs: Record<string, AttrValue> } | null;
  /** Events of the sequence match (or timed-out partial match) by stage name. */
  matched: Record<string, ReadonlyArray<{ type: string; time: number; key: string; attrs: Record<string, AttrValue> }>> | null;
  /** Values of the rule's aggregates at the decision, in condition order. */
  aggregates: Array<number | null>;
  /** Log position of the record whose processing produced the decision. */
  partition: number;
  offset: number;
}

/** Where decisions go. Writing must be idempotent by `Decision.id`. */
export interface DecisionSink {
  add(decisions: ReadonlyArray<Decision>): void;
}
