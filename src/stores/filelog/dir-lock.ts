import { readFile, stat, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { StoreError } from '../../errors/index.js';

/** Name of the lock file inside the log directory. */
export const LOCK_FILE_NAME = 'LOCK';

// A lock file without a readable pid is normally one whose creator has not
// written the pid yet; only once it is this old do we take it for the leftover
// of a crash between create and write.
const UNREADABLE_LOCK_STALE_MS = 10_000;

/** An exclusive hold on a log directory; {@link DirLock.release} gives it up. */
export interface DirLock {
  readonly path: string;
  release(): Promise<void>;
}

/**
 * Takes the exclusive lock of `dir` by creating `dir/LOCK` (flag `wx`) holding
 * this process's pid. A lock whose pid is no longer alive is stale and taken
 * over. Throws a `PRT_STORE_LOCKED` {@link StoreError} when a live process
 * (this one included) holds it.
 */
export async function acquireDirLock(dir: string): Promise<DirLock> {
  const path = join(dir, LOCK_FILE_NAME);
  for (let attempt = 0; ; attempt++) {
    try {
      await writeFile(path, `${process.pid}\n`, { flag: 'wx' });
      return { path, release: () => releaseLock(path) };
    } catch (err: unknown) {
      if (errorCode(err) !== 'EEXIST') {
        throw new StoreError('PRT_STORE_UNAVAILABLE', `cannot create lock file ${path}: ${messageOf(err)}`, { subject: dir }, { cause: err });
      }
    }
    const holder = await readHolder(path);
    if (holder === 'gone' && attempt < 10) continue;
    if (holder !== 'gone' && attempt < 3 && (await isStale(path, holder))) {
      // Remove the stale file, then race for it with 'wx' like everyone else.
      await unlink(path).catch((err: unknown) => {
        if (errorCode(err) !== 'ENOENT') throw err;
      });
      continue;
    }
    const who = typeof holder === 'number' ? `process ${holder}` : 'another process';
    throw new StoreError(
      'PRT_STORE_LOCKED',
      `log directory ${dir} is in use by ${who} (lock file ${path}); stop that process, or delete the lock file if no process uses the directory`,
      { subject: dir },
    );
  }
}

async function releaseLock(path: string): Promise<void> {
  // Only remove the lock if it is still ours.
  const holder = await readHolder(path);
  if (holder === process.pid) await unlink(path).catch(() => undefined);
}

async function readHolder(path: string): Promise<number | 'unreadable' | 'gone'> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err: unknown) {
    if (errorCode(err) === 'ENOENT') return 'gone';
    throw err;
  }
  const pid = Number(text.trim());
  return Number.isSafeInteger(pid) && pid > 0 ? pid : 'unreadable';
}

async function isStale(path: string, holder: number | 'unreadable'): Promise<boolean> {
  if (holder === 'unreadable') {
    try {
      return Date.now() - (await stat(path)).mtimeMs > UNREADABLE_LOCK_STALE_MS;
    } catch {
      return true;
    }
  }
  try {
    process.kill(holder, 0);
    return false;
  } catch (err: unknown) {
    // EPERM: the process exists but belongs to someone else; still alive.
    return errorCode(err) === 'ESRCH';
  }
}

function errorCode(err: unknown): string | undefined {
  return typeof err === 'object' && err !== null && 'code' in err ? String((err as { code: unknown }).code) : undefined;
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
