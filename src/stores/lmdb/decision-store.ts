import type { RootDatabase, Database } from 'lmdb';
import type { Decision } from '../../engine/index.js';
import { decodeDecision, encodeDecision } from './decision-codec.js';

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
   * are not stored or returned again.
   */
  addNew(decisions: ReadonlyArray<Decision>): Decision[];
  /** Decisions matching the query, newest first, each with its `cursor` (storage position). */
  list(query: DecisionQuery): Array<Decision & { cursor: number }>;
  get(id: string): Decision | undefined;
  count(): number;
  /** Resolves once every decision added so far is committed (and visible to reads). */
  flushed(): Promise<void>;
}

/**
 * Moves decisions stored as msgpack maps (the `decisions` table of earlier
 * versions) into binary records, same positions, once.
 */
function migrateMsgpackDecisions(root: RootDatabase, records: Database<Uint8Array, number>): void {
  const legacy: Database<Decision, number> = root.openDB({ name: 'decisions', encoding: 'msgpack' });
  if (legacy.getCount() === 0) return;
  root.transactionSync(() => {
    for (const { key, value } of legacy.getRange()) records.putSync(key, encodeDecision(value));
    legacy.clearSync();
  });
}

/** Key of a partition's high-water mark in the id table (ids never start with NUL). */
function highWaterKey(partition: number): string {
  return `\u0000offset:${partition}`;
}

/**
 * Per partition, the highest log offset of a decision stored: a decision above
 * it is new without a lookup. Marks are kept in the id table; a store without
 * them (written by an earlier version) gets them from its records, once.
 */
function storedHighWater(records: Database<Uint8Array, number>, byId: Database<number, string>): Map<number, number> {
  const marks = new Map<number, number>();
  for (const { key, value } of byId.getRange({ start: '\u0000offset:', end: '\u0000offset;' })) marks.set(Number(key.slice('\u0000offset:'.length)), value);
  if (marks.size > 0 || records.getCount() === 0) return marks;
  for (const { value } of records.getRange()) {
    const d = decodeDecision(value);
    if (d.offset > (marks.get(d.partition) ?? -1)) marks.set(d.partition, d.offset);
  }
  for (const [partition, offset] of marks) byId.putSync(highWaterKey(partition), offset);
  return marks;
}

/** Most stored entries a filtered `list` looks at before giving up. */
const MAX_SCAN = 200_000;

/** Opens the decision tables of an LMDB environment. */
export function openLmdbDecisionStore(root: RootDatabase, options: { maxDecisions: number }): LmdbDecisionStore {
  const records: Database<Uint8Array, number> = root.openDB({ name: 'decision-records', encoding: 'binary' });
  const byId: Database<number, string> = root.openDB({ name: 'decision-ids', encoding: 'msgpack' });
  migrateMsgpackDecisions(root, records);
  const stored = storedHighWater(records, byId);
  let count = records.getCount();
  let next = 1;
  for (const key of records.getKeys({ reverse: true, limit: 1 })) next = key + 1;
  const trim = (): void => {
    if (count <= options.maxDecisions) return;
    let removed = 0;
    for (const { key, value } of records.getRange({ limit: count - options.maxDecisions })) {
      void records.remove(key);
      void byId.remove(decodeDecision(value).id);
      removed++;
    }
    count -= removed;
  };
  const byPosition = {
    get: (position: number): Decision | undefined => {
      const bytes = records.get(position);
      return bytes === undefined ? undefined : decodeDecision(bytes);
    },
    *getRange(range: { reverse: boolean; start?: number }): IterableIterator<{ key: number; value: Decision }> {
      for (const { key, value } of records.getRange(range)) yield { key, value: decodeDecision(value) };
    },
  };
  return {
    addNew(decisions) {
      // The high-water marks first: LMDB commits writes in order, so a stored decision is never
      // above its partition's committed mark.
      const raised = new Map<number, number>();
      for (const d of decisions) if (d.offset > (raised.get(d.partition) ?? stored.get(d.partition) ?? -1)) raised.set(d.partition, d.offset);
      for (const [partition, offset] of raised) void byId.put(highWaterKey(partition), offset);
      const fresh: Decision[] = [];
      for (const d of decisions) {
        // Only a decision at or below its partition's mark (a replay after a crash) can be stored already.
        const mark = stored.get(d.partition);
        if (mark !== undefined && d.offset <= mark && byId.get(d.id) !== undefined) continue;
        const position = next++;
        void records.put(position, encodeDecision(d));
        void byId.put(d.id, position);
        fresh.push(d);
        count++;
      }
      for (const [partition, offset] of raised) stored.set(partition, offset);
      trim();
      return fresh;
    },
    list(query) {
      const out: Array<Decision & { cursor: number }> = [];
      let scanned = 0;
      const range = query.before === undefined ? { reverse: true } : { reverse: true, start: query.before - 1 };
      for (const { key, value } of byPosition.getRange(range)) {
        if (++scanned > MAX_SCAN) break;
        if (query.ruleId !== undefined && value.ruleId !== query.ruleId) continue;
        if (query.entity !== undefined && value.entity !== query.entity) continue;
        out.push({ ...value, cursor: key });
        if (out.length >= query.limit) break;
      }
      return out;
    },
    get(id) {
      if (id.startsWith('\u0000')) return undefined; // the high-water marks
      const position = byId.get(id);
      return position === undefined ? undefined : byPosition.get(position);
    },
    count() {
      return count;
    },
    async flushed() {
      await root.flushed;
    },
  };
}
