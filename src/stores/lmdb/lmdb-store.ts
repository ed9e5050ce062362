import { mkdirSync } from 'node:fs';
import { setFlagsFromString } from 'node:v8';
import { open, type Database, type RootDatabase } from 'lmdb';
import type {
  CheckpointStore,
  DeadLetter,
  DeadLetterSink,
  EntitySnapshot,
  PartitionCheckpointChange,
  PartitionCheckpointMeta,
  EncodedProfile,
  Profile,
  ProfileSink,
} from '../../engine/index.js';
import { decodeProfile } from '../../engine/index.js';
import type { DeadLetterReader } from '../../serving/index.js';
import { StoreError } from '../../errors/index.js';
import { DECISION_WRITE_DELAY_MS, openLmdbDecisionStore, type LmdbDecisionStore } from './decision-store.js';

// lmdb-js's native module keeps a process-wide map of V8 backing stores that its
// deleter erases from; when V8 sweeps array buffers on a background thread, that map
// can be read while it changes and the process dies (SIGFPE in an unordered_map
// lookup, seen when a process opens and closes many environments). Sweeping array
// buffers on the main thread avoids the race; it only changes when V8 frees them.
setFlagsFromString('--no-concurrent-array-buffer-sweeping');

/** Longest stretch a checkpoint commit writes on the main thread before it lets other work run, ms. */
const COMMIT_SLICE_MS = 1;
/** Share of the time a checkpoint commit may take on the main thread: after a slice it pauses three times as long. */
const COMMIT_DUTY = 0.25;

const pause = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** LMDB's largest key, bytes (less a margin for the partition number in front). */
const MAX_STATE_KEY_BYTES = 1_978 - 16;

function checkKeySize(key: string, partition: number): void {
  // UTF-8 takes at most 3 bytes per UTF-16 unit: only keys that could be too long are measured.
  if (key.length * 3 <= MAX_STATE_KEY_BYTES || Buffer.byteLength(key) <= MAX_STATE_KEY_BYTES) return;
  throw new Error(`state key of partition ${partition} is ${Buffer.byteLength(key)} bytes (at most ${MAX_STATE_KEY_BYTES}): ${key.slice(0, 60)}…`);
}

/** Options of {@link createLmdbStore}. */
export interface LmdbStoreOptions {
  /** Folder of the LMDB environment. */
  path: string;
  /** Dead letters kept; the oldest are removed beyond this. */
  maxDeadLetters: number;
  /** Upper bound of the memory map, bytes. */
  mapSizeBytes: number;
  /** Decisions kept; the oldest are removed beyond this. */
  maxDecisions: number;
  /** New decisions are held this long and written together (see `LmdbDecisionStoreOptions.writeDelayMs`). */
  decisionWriteDelayMs: number;
}

/** Defaults of {@link LmdbStoreOptions} (path has none). */
export const defaultLmdbStoreOptions: Omit<LmdbStoreOptions, 'path'> = Object.freeze({
  maxDeadLetters: 100_000,
  mapSizeBytes: 64 * 1024 ** 3,
  maxDecisions: 1_000_000,
  decisionWriteDelayMs: DECISION_WRITE_DELAY_MS,
});


/** The stored profiles: written by the engine, read by the API (the profile reader port, with synchronous reads). */
export interface LmdbProfiles extends ProfileSink {
  getProfile(key: string): Profile | undefined;
  getProfiles(keys: ReadonlyArray<string>): Array<Profile | undefined>;
  countProfiles(): number;
  /** Ids of stored profiles in id order, starting after `after`, at most `limit`. */
  listProfileIds(limit: number, after?: string): string[];
}

/**
 * The embedded store: one LMDB environment holding profiles, engine state
 * checkpoints and dead letters. Writes are batched by lmdb-js on a worker
 * thread; reads are synchronous memory-map reads.
 */
export interface LmdbStore {
  readonly checkpoints: CheckpointStore;
  readonly profiles: LmdbProfiles;
  readonly deadLetters: DeadLetterSink & DeadLetterReader;
  readonly decisions: LmdbDecisionStore;
  /** Approximate bytes used on disk by the environment. */
  sizeBytes(): number;
  close(): Promise<void>;
}

/** Opens (creating if needed) the embedded LMDB store at `options.path`. */
export function createLmdbStore(options: Partial<LmdbStoreOptions> & { path: string }): LmdbStore {
  const opts: LmdbStoreOptions = { ...defaultLmdbStoreOptions, ...options };
  let root: RootDatabase;
  try {
    mkdirSync(opts.path, { recursive: true });
    root = open({ path: opts.path, maxDbs: 16, mapSize: opts.mapSizeBytes, compression: false });
  } catch (err: unknown) {
    throw new StoreError('PRT_STORE_UNAVAILABLE', `LMDB store at ${opts.path} could not be opened: ${(err as Error).message}`, { subject: opts.path }, { cause: err });
  }
  const profileDb: Database<Buffer, string> = root.openDB({ name: 'profiles', encoding: 'binary' });
  const stateDb: Database<Buffer, [number, string]> = root.openDB({ name: 'state', encoding: 'binary' });
  const metaDb: Database<PartitionCheckpointMeta, number> = root.openDB({ name: 'meta', encoding: 'msgpack' });
  const deadDb: Database<DeadLetter, [number, string]> = root.openDB({ name: 'deadletters', encoding: 'msgpack' });
  const deadIdDb: Database<[number, string], string> = root.openDB({ name: 'deadletter-ids', encoding: 'msgpack' });

  const decisions = openLmdbDecisionStore(root, { maxDecisions: opts.maxDecisions, writeDelayMs: opts.decisionWriteDelayMs });
  let deadCount = deadDb.getCount();
  let deadSeq = 0;
  let pending: Promise<unknown> = Promise.resolve();
  /**
   * Profile writes of one flush: `flushed()` awaits them all, and a failed one
   * rejects it (never an unhandled rejection). The writes of one event turn
   * share a transaction, so they settle together.
   */
  const track = (writes: Array<Promise<unknown>>): void => {
    const all = Promise.all([pending, ...writes]).then(() => undefined);
    all.catch(() => undefined);
    pending = all;
  };

  const checkpoints: CheckpointStore = {
    loadMeta(partition) {
      return metaDb.get(partition);
    },
    *entities(partition): Iterable<[string, EntitySnapshot]> {
      for (const { key, value } of stateDb.getRange({ start: [partition], end: [partition + 1] })) {
        yield [key[1], value];
      }
    },
    async commit(changes: ReadonlyArray<PartitionCheckpointChange>) {
      // Decisions of the records this checkpoint covers are written before it: a replay after a
      // crash starts past those records and would not make them again.
      decisions.writePending();
      try {
        // LMDB refuses a key over its size limit only once the write is made: such a key fails
        // the checkpoint here, before anything of it is written.
        for (const change of changes) {
          for (const [key] of change.upserts) checkKeySize(key, change.meta.partition);
          for (const key of change.deletes) checkKeySize(key, change.meta.partition);
        }
        // One transaction holds the whole checkpoint (states, deletes, then each partition's
        // meta), so a crash leaves the previous checkpoint whole, never a mix; a write that
        // fails inside it (map full, I/O) fails the transaction's commit. Not a child
        // transaction: writes other code issues while this one is open (profiles, decisions)
        // join it, and an aborted child would drop them too. Its writes run on this thread (a
        // transaction callback's puts do), in paced slices with the event loop free in between:
        // tens of thousands of puts in one event turn held every request up for 40-140 ms at
        // each checkpoint.
        await stateDb.transaction(async () => {
          let started = performance.now();
          let n = 0;
          const slice = async (): Promise<void> => {
            if ((++n & 31) !== 0) return;
            const now = performance.now();
            if (now < started + COMMIT_SLICE_MS) return;
            await pause((now - started) * (1 / COMMIT_DUTY - 1));
            started = performance.now();
          };
          for (const change of changes) {
            const p = change.meta.partition;
            for (const [key, snapshot] of change.upserts) {
              stateDb.putSync([p, key], snapshot as Buffer);
              await slice();
            }
            for (const key of change.deletes) {
              stateDb.removeSync([p, key]);
              await slice();
            }
          }
          for (const change of changes) metaDb.putSync(change.meta.partition, change.meta);
        });
        await root.flushed;
      } catch (err: unknown) {
        throw new StoreError('PRT_STORE_UNAVAILABLE', `checkpoint commit to ${opts.path} failed: ${(err as Error).message}`, { subject: opts.path }, { cause: err });
      }
    },
  };

  const profiles: LmdbStore['profiles'] = {
    writeProfiles(list: ReadonlyArray<EncodedProfile>) {
      if (list.length === 0) return;
      const writes = new Array<Promise<unknown>>(list.length);
      for (let i = 0; i < list.length; i++) writes[i] = profileDb.put(list[i]![0], list[i]![1] as Buffer);
      track(writes);
    },
    deleteProfiles(keys: ReadonlyArray<string>) {
      if (keys.length === 0) return;
      track(keys.map((key) => profileDb.remove(key)));
    },
    async flushed() {
      await pending;
      await root.flushed;
    },
    getProfile(key: string) {
      const stored = profileDb.get(key);
      return stored === undefined ? undefined : decodeProfile(key, stored);
    },
    getProfiles(keys: ReadonlyArray<string>) {
      return keys.map((key) => {
        const stored = profileDb.get(key);
        return stored === undefined ? undefined : decodeProfile(key, stored);
      });
    },
    listProfileIds(limit: number, after?: string) {
      const ids: string[] = [];
      for (const key of profileDb.getKeys(after === undefined ? { limit: limit + 1 } : { start: after, limit: limit + 1 })) {
        if (key === after) continue;
        if (ids.length === limit) break;
        ids.push(key);
      }
      return ids;
    },
    countProfiles() {
      return profileDb.getCount();
    },
  };

  const deadLetters: DeadLetterSink & DeadLetterReader = {
    add(letters: ReadonlyArray<DeadLetter>) {
      for (const letter of letters) {
        // Engine letters are keyed by log position so a replay rewrites rather than repeats them.
        const id =
          letter.partition !== undefined && letter.offset !== undefined
            ? `e:${letter.partition}:${letter.offset}`
            : letter.source !== undefined && letter.position !== undefined
              ? `s:${letter.source}:${letter.position}`
              : `i:${process.pid}:${++deadSeq}`;
        // Letters with a stable id (log or input position) replace an earlier copy rather than repeat it.
        const earlier = id.startsWith('i:') ? undefined : deadIdDb.get(id);
        if (earlier !== undefined) void deadDb.put(earlier, letter);
        else {
          void deadDb.put([letter.at, id], letter);
          if (!id.startsWith('i:')) void deadIdDb.put(id, [letter.at, id]);
          deadCount++;
        }
      }
      if (deadCount > opts.maxDeadLetters) {
        const excess = deadCount - opts.maxDeadLetters;
        let removed = 0;
        for (const key of deadDb.getKeys({ limit: excess })) {
          void deadDb.remove(key);
          if (!key[1].startsWith('i:')) void deadIdDb.remove(key[1]);
          removed++;
        }
        deadCount -= removed;
      }
    },
    listDeadLetters(limit: number) {
      const out: DeadLetter[] = [];
      for (const { value } of deadDb.getRange({ reverse: true, limit })) out.push(value);
      return out;
    },
    countDeadLetters() {
      return deadCount;
    },
  };

  return {
    checkpoints,
    profiles,
    deadLetters,
    decisions,
    sizeBytes() {
      const stat = root.getStats() as { pageSize?: number; treeBranchPageCount?: number; lastPageNumber?: number };
      return (stat.lastPageNumber ?? 0) * (stat.pageSize ?? 4096);
    },
    async close() {
      decisions.close();
      await pending.catch(() => undefined);
      await root.flushed;
      await root.close();
    },
  };
}
