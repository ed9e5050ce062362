import { open, type FileHandle } from 'node:fs/promises';
import type { Decision } from '../engine/index.js';
import type { DecisionOutput, DecisionOutputStats } from './decision-hub.js';

/**
 * Appends decisions to a file, one JSON object per line, in batches. The
 * queue is bounded: past `maxQueued` decisions waiting for the disk, new ones
 * are dropped and counted.
 */
export function createNdjsonFileOutput(options: { path: string; maxQueued?: number }): DecisionOutput {
  const maxQueued = options.maxQueued ?? 100_000;
  const stats: DecisionOutputStats = { name: `file:${options.path}`, delivered: 0, failed: 0, dropped: 0, queued: 0, lastError: undefined };
  let queue: string[] = [];
  let handle: Promise<FileHandle> | undefined;
  let writing: Promise<void> | undefined;
  const flush = async (): Promise<void> => {
    while (queue.length > 0) {
      const batch = queue;
      queue = [];
      stats.queued = 0;
      try {
        handle ??= open(options.path, 'a');
        await (await handle).appendFile(batch.join(''));
        stats.delivered += batch.length;
      } catch (err: unknown) {
        stats.failed += batch.length;
        stats.lastError = (err as Error).message;
        handle = undefined;
      }
    }
    writing = undefined;
  };
  return {
    name: stats.name,
    send(decisions: ReadonlyArray<Decision>) {
      for (const d of decisions) {
        if (queue.length >= maxQueued) stats.dropped++;
        else queue.push(`${JSON.stringify(d)}\n`);
      }
      stats.queued = queue.length;
      writing ??= flush();
    },
    stats: () => ({ ...stats }),
    async close() {
      await writing;
      if (handle !== undefined) await (await handle).close().catch(() => undefined);
    },
  };
}
