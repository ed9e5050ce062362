import type { DeadLetter, Profile } from '../engine/index.js';

/** Reads materialised profiles. Reads are synchronous memory-map lookups in the embedded store. */
export interface ProfileReader {
  /** The stored profile of an entity, or undefined when there is none. */
  getProfile(key: string): Profile | undefined;
  /** Profiles of several entities, in the order of `keys` (undefined where none). */
  getProfiles(keys: ReadonlyArray<string>): Array<Profile | undefined>;
  /** Ids of stored profiles in id order, starting after `after`, at most `limit`. */
  listProfileIds(limit: number, after?: string): string[] | Promise<string[]>;
  /** Number of stored profiles. */
  countProfiles(): number;
}

/** Reads refused records. */
export interface DeadLetterReader {
  /** The newest dead letters first, at most `limit`. */
  listDeadLetters(limit: number): DeadLetter[];
  /** Number of dead letters kept. */
  countDeadLetters(): number;
}
