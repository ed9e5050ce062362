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

/** Most stored entries a filtered `list` looks at before giving up. */
const MAX_SCAN = 200_000;

/** Opens the decision tables of an LMDB environment. */
export function openLmdbDecisionStore(root: RootDatabase, options: { maxDecisions: number }): LmdbDecisionStore {
  const records: Database<Uint8Array, number> = root.openDB({ name: 'decision-records', encoding: 'binary' });
  const byId: Database<number, string> = root.openDB({ name: 'decision-ids', encoding: 'msgpack' });
  migrateMsgpackDecisions(root, records);
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
      const fresh: Decision[] = [];
      for (const d of decisions) {
        if (byId.get(d.id) !== undefined) continue;
        const position = next++;
        void records.put(position, encodeDecision(d));
        void byId.put(d.id, position);
        fresh.push(d);
        count++;
      }
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
