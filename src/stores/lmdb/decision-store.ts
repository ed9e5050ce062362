import type { RootDatabase, Database } from 'lmdb';
import type { Decision } from '../../engine/index.js';
import { BLOCK_RECORDS, DecisionBlock, DecisionBlockEncoder, blockHeader, decodeDecision } from './decision-codec.js';

/** Filters of {@link LmdbDecisionStore.list}. */
export interface DecisionQuery {
  /** Newest first, at most this many. */
  limit: number;
  ruleId?: string;
  /** Entity (profile) id of the triggering event or entity-keyed rule. */
  entity?: string;
  /** Only decisions stored before this position (a `cursor` from an earlier page). */
  before?: number;
}

/** Decisions kept in LMDB, newest last, with their ids for idempotence. */
export interface LmdbDecisionStore {
  /**
   * Stores decisions whose id was not stored before and returns those (in
   * order). A replay after a crash repeats decisions with the same ids; they
   * are not stored or returned again. Ids end in `:partition:offset:n` (the
   * log position of the decision, as the engine makes them).
   */
  addNew(decisions: ReadonlyArray<Decision>): Decision[];
  /** Decisions matching the query, newest first, each with its `cursor` (storage position). */
  list(query: DecisionQuery): Array<Decision & { cursor: number }>;
  get(id: string): Decision | undefined;
  count(): number;
  /** Resolves once every decision added so far is committed (and visible to reads). */
  flushed(): Promise<void>;
  /**
   * Hands the decisions held for the next write to LMDB now (see
   * `writeDelayMs`). Writes issued after it, such as a checkpoint's, commit
   * after them.
   */
  writePending(): void;
  /** Writes what is held and stops the timer; the environment stays open. */
  close(): void;
}

/** Options of {@link openLmdbDecisionStore}. */
export interface LmdbDecisionStoreOptions {
  /** Oldest decisions beyond this many are dropped. */
  maxDecisions: number;
  /**
   * New decisions are held this long, then written as one block in one
   * commit (a full block at once). Decisions of one call each made a commit
   * of their own, and at a thousand calls a second those commits' disk writes
   * held up the event log's. `0` writes at every call.
   * @defaultValue {@link DECISION_WRITE_DELAY_MS}
   */
  writeDelayMs?: number;
}

/** Default of {@link LmdbDecisionStoreOptions.writeDelayMs}. */
export const DECISION_WRITE_DELAY_MS = 50;

/** Most stored decisions a filtered `list` looks at before giving up. */
const MAX_SCAN = 200_000;

/** A block written out of log order (a replay after a crash): its offsets overlap earlier blocks'. */
type OverlapBlock = [block: number, partition: number, min: number, max: number];

interface Tables {
  root: RootDatabase;
  /** Block number → block of decisions (see DecisionBlockEncoder). */
  blocks: Database<Uint8Array, number>;
  /** `[partition, max offset, block]` → min offset, for blocks written in log order. */
  index: Database<number, [number, number, number]>;
  /** `count`, `first` (position of the oldest decision kept), `overlap`, `mark:<partition>`. */
  meta: Database<unknown, string>;
}

const markKey = (partition: number): string => `mark:${partition}`;

/**
 * Writes decisions as blocks of at most BLOCK_RECORDS from block `next` on
 * (synchronously inside a transaction when `sync`); returns the next free block.
 */
function writeBlocks(t: Tables, encoder: DecisionBlockEncoder, decisions: ReadonlyArray<Decision>, next: number, overlap: OverlapBlock[] | undefined, sync: boolean): number {
  for (let i = 0; i < decisions.length; ) {
    encoder.reset();
    const block = next++;
    while (i < decisions.length && encoder.count < BLOCK_RECORDS) encoder.add(decisions[i++]!);
    const bytes = encoder.finish();
    if (sync) t.blocks.putSync(block, bytes);
    else void t.blocks.put(block, bytes);
    for (const r of encoder.partitionRanges()) {
      if (overlap !== undefined) overlap.push([block, r.partition, r.min, r.max]);
      else if (sync) t.index.putSync([r.partition, r.max, block], r.min);
      else void t.index.put([r.partition, r.max, block], r.min);
    }
  }
  return next;
}

/**
 * Moves decisions stored one per value by earlier versions (msgpack maps in
 * `decisions`, binary records in `decision-records`, ids in `decision-ids`)
 * into blocks, in their order, once.
 */
function migrateRecords(t: Tables, encoder: DecisionBlockEncoder): void {
  const legacy: Database<Decision, number> = t.root.openDB({ name: 'decisions', encoding: 'msgpack' });
  const records: Database<Uint8Array, number> = t.root.openDB({ name: 'decision-records', encoding: 'binary' });
  const ids: Database<number, string> = t.root.openDB({ name: 'decision-ids', encoding: 'msgpack' });
  if (legacy.getCount() === 0 && records.getCount() === 0 && ids.getCount() === 0) return;
  t.root.transactionSync(() => {
    const marks = new Map<number, number>();
    for (const { key, value } of ids.getRange({ start: '\u0000offset:', end: '\u0000offset;' })) marks.set(Number(key.slice('\u0000offset:'.length)), value);
    let next = 1;
    for (const key of t.blocks.getKeys({ reverse: true, limit: 1 })) next = key + 1;
    // A block at a time: a store of a million decisions is not held in memory at once.
    let chunk: Decision[] = [];
    let moved = 0;
    const take = (d: Decision): void => {
      if (d.offset > (marks.get(d.partition) ?? -1)) marks.set(d.partition, d.offset);
      chunk.push(d);
      if (chunk.length === BLOCK_RECORDS) flush();
    };
    const flush = (): void => {
      next = writeBlocks(t, encoder, chunk, next, undefined, true);
      moved += chunk.length;
      chunk = [];
    };
    for (const { value } of legacy.getRange()) take(value);
    for (const { value } of records.getRange()) take(decodeDecision(value));
    flush();
    for (const [partition, offset] of marks) t.meta.putSync(markKey(partition), Math.max(offset, (t.meta.get(markKey(partition)) as number | undefined) ?? -1));
    t.meta.putSync('count', ((t.meta.get('count') as number | undefined) ?? 0) + moved);
    legacy.clearSync();
    records.clearSync();
    ids.clearSync();
  });
}

/** The partition and log offset an engine decision id ends in (`…:partition:offset:n`). */
function positionOfId(id: string): { partition: number; offset: number } | undefined {
  const parts = id.split(':');
  if (parts.length < 4) return undefined;
  const partition = Number(parts[parts.length - 3]);
  const offset = Number(parts[parts.length - 2]);
  return Number.isInteger(partition) && Number.isInteger(offset) ? { partition, offset } : undefined;
}

/**
 * Opens the decision tables of an LMDB environment. Decisions are kept in
 * blocks: those handed over together (an engine flush, often thousands) are
 * one value, each rule, event and match written once in it, so storing a
 * decision costs a few hundred nanoseconds rather than a write of its own.
 * A decision's position (its `cursor`) is `block * BLOCK_RECORDS + index`.
 * Ids are found through the log offsets of each block, per partition.
 */
export function openLmdbDecisionStore(root: RootDatabase, options: LmdbDecisionStoreOptions): LmdbDecisionStore {
  const writeDelayMs = options.writeDelayMs ?? DECISION_WRITE_DELAY_MS;
  const t: Tables = {
    root,
    blocks: root.openDB({ name: 'decision-blocks', encoding: 'binary' }),
    index: root.openDB({ name: 'decision-index', encoding: 'msgpack' }),
    meta: root.openDB({ name: 'decision-meta', encoding: 'msgpack' }),
  };
  const encoder = new DecisionBlockEncoder();
  migrateRecords(t, encoder);
  let count = (t.meta.get('count') as number | undefined) ?? 0;
  let first = (t.meta.get('first') as number | undefined) ?? 0;
  const overlap = ((t.meta.get('overlap') as OverlapBlock[] | undefined) ?? []).slice();
  const marks = new Map<number, number>();
  for (const { key, value } of t.meta.getRange({ start: 'mark:', end: 'mark;' })) marks.set(Number(key.slice('mark:'.length)), value as number);
  let next = 1;
  for (const key of t.blocks.getKeys({ reverse: true, limit: 1 })) next = key + 1;
  /** New decisions in log order not yet handed to LMDB; `count` includes them. */
  let pending: Decision[] = [];
  let timer: NodeJS.Timeout | undefined;
  let closed = false;

  const onTimer = (): void => {
    timer = undefined;
    // An environment closed by its owner without closing this store first (`close`) takes no writes.
    if ((root as { status?: string }).status !== 'open') return;
    writePending();
  };

  /** Hands the pending decisions to LMDB: their partitions' marks first, then their blocks, in one event turn (one commit). */
  const writePending = (): void => {
    if (timer !== undefined) {
      clearTimeout(timer);
      timer = undefined;
    }
    if (pending.length === 0) return;
    const out = pending;
    pending = [];
    // The marks first: LMDB commits writes in order, so a stored decision is never above its partition's committed mark.
    const raised = new Map<number, number>();
    for (const d of out) if (d.offset > (raised.get(d.partition) ?? -1)) raised.set(d.partition, d.offset);
    for (const [partition, offset] of raised) void t.meta.put(markKey(partition), offset);
    next = writeBlocks(t, encoder, out, next, undefined, false);
    trim();
    void t.meta.put('count', count);
  };

  /** Blocks that may hold decisions of a log position. */
  const candidates = (partition: number, offset: number): number[] => {
    const out: number[] = [];
    // Blocks in log order: the first whose offsets reach `offset`, and the next while they start at it.
    for (const { key, value } of t.index.getRange({ start: [partition, offset] })) {
      if (key[0] !== partition || value > offset) break;
      out.push(key[2]);
    }
    for (const [block, p, min, max] of overlap) if (p === partition && min <= offset && offset <= max) out.push(block);
    return out;
  };
  /** The ids kept in a block. */
  const idsOf = (block: number): Set<string> => {
    const ids = new Set<string>();
    const bytes = t.blocks.get(block);
    if (bytes === undefined) return ids;
    const b = new DecisionBlock(bytes);
    for (let i = 0; i < b.count; i++) if (block * BLOCK_RECORDS + i >= first) ids.add(b.id(i));
    return ids;
  };
  const trim = (): void => {
    if (count <= options.maxDecisions) return;
    let excess = count - options.maxDecisions;
    let overlapChanged = false;
    for (const { key: block, value } of t.blocks.getRange({ start: Math.floor(first / BLOCK_RECORDS) })) {
      if (excess <= 0) break;
      const header = blockHeader(value);
      const from = Math.max(0, first - block * BLOCK_RECORDS);
      const live = header.count - from;
      if (live <= excess) {
        void t.blocks.remove(block);
        for (const r of header.partitions) void t.index.remove([r.partition, r.max, block]);
        const at = overlap.findIndex((o) => o[0] === block);
        if (at >= 0) {
          overlap.splice(at, 1);
          overlapChanged = true;
        }
        excess -= live;
        count -= live;
        first = (block + 1) * BLOCK_RECORDS;
      } else {
        first = block * BLOCK_RECORDS + from + excess;
        count -= excess;
        excess = 0;
      }
    }
    void t.meta.put('first', first);
    if (overlapChanged) void t.meta.put('overlap', overlap);
  };

  return {
    addNew(decisions) {
      const fresh: Decision[] = [];
      const inOrder: Decision[] = [];
      let late: Decision[] | undefined;
      let known: Map<number, Set<string>> | undefined;
      for (const d of decisions) {
        const mark = marks.get(d.partition);
        if (mark !== undefined && d.offset <= mark) {
          // Only a decision at or below its partition's mark (a replay after a crash) can be stored already.
          known ??= new Map();
          let stored = false;
          for (const block of candidates(d.partition, d.offset)) {
            let ids = known.get(block);
            if (ids === undefined) known.set(block, (ids = idsOf(block)));
            if (ids.has(d.id)) stored = true;
          }
          if (stored) continue;
        }
        fresh.push(d);
        // Below its partition's mark, a decision's block would break the log order of the index.
        if (mark !== undefined && d.offset < mark) (late ??= []).push(d);
        else inOrder.push(d);
      }
      if (fresh.length === 0) return fresh;
      for (const d of fresh) if (d.offset > (marks.get(d.partition) ?? -1)) marks.set(d.partition, d.offset);
      count += fresh.length;
      for (const d of inOrder) pending.push(d);
      if (late !== undefined) {
        // Rare (a replay after a crash): everything now, in this event turn's commit.
        writePending();
        next = writeBlocks(t, encoder, late, next, overlap, false);
        void t.meta.put('overlap', overlap);
        trim();
        void t.meta.put('count', count);
      } else if (closed || writeDelayMs === 0 || pending.length >= BLOCK_RECORDS) writePending();
      else if (timer === undefined) {
        timer = setTimeout(onTimer, writeDelayMs);
        timer.unref();
      }
      return fresh;
    },
    list(query) {
      writePending();
      const out: Array<Decision & { cursor: number }> = [];
      let scanned = 0;
      const before = query.before ?? Infinity;
      const start = Number.isFinite(before) ? Math.floor((before - 1) / BLOCK_RECORDS) : undefined;
      for (const { key: block, value } of t.blocks.getRange(start === undefined ? { reverse: true } : { reverse: true, start })) {
        const b = new DecisionBlock(value);
        const base = block * BLOCK_RECORDS;
        const from = Math.max(0, first - base);
        const to = Math.min(b.count, before - base);
        let rules: Set<number> | undefined;
        if (query.ruleId !== undefined) {
          rules = new Set();
          for (let r = 0; r < b.ruleIds.length; r++) if (b.ruleIds[r] === query.ruleId) rules.add(r);
          if (rules.size === 0) {
            scanned += Math.max(0, to - from);
            if (scanned > MAX_SCAN) break;
            continue;
          }
        }
        for (let i = to - 1; i >= from; i--) {
          if (++scanned > MAX_SCAN) return out;
          if (rules !== undefined && !rules.has(b.rule(i))) continue;
          if (query.entity !== undefined && b.entity(i) !== query.entity) continue;
          const d = b.decision(i) as Decision & { cursor: number };
          d.cursor = base + i;
          out.push(d);
          if (out.length >= query.limit) return out;
        }
      }
      return out;
    },
    get(id) {
      writePending();
      const at = positionOfId(id);
      if (at === undefined) return undefined;
      for (const block of candidates(at.partition, at.offset)) {
        const bytes = t.blocks.get(block);
        if (bytes === undefined) continue;
        const b = new DecisionBlock(bytes);
        for (let i = 0; i < b.count; i++) if (block * BLOCK_RECORDS + i >= first && b.id(i) === id) return b.decision(i);
      }
      return undefined;
    },
    count() {
      return count;
    },
    async flushed() {
      writePending();
      await root.flushed;
    },
    writePending,
    close() {
      writePending();
      closed = true;
    },
  };
}
