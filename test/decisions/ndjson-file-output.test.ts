import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createNdjsonFileOutput } from '../../src/decisions/index.js';
import type { Decision } from '../../src/engine/index.js';
import { cleanup, tempDir } from '../helpers/system.js';

afterEach(cleanup);

function decision(n: number): Decision {
  const event = { type: 'transfer', time: 1_000 * n, key: `u${n}`, attrs: { amount: 20_000 + n, to_account: 'acc' } };
  return {
    id: `big:1:0:${n}:0`,
    ruleId: 'big',
    version: 1,
    key: { user_id: `u${n}` },
    entity: `u${n}`,
    outcome: 'match',
    trigger: 'event',
    time: 1_000 * n,
    processingTime: 5_000 + n,
    event,
    matched: { big: [event] },
    aggregates: [],
    partition: 0,
    offset: n,
  };
}

const lines = (file: string): unknown[] => readFileSync(file, 'utf8').split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as unknown);

describe('createNdjsonFileOutput', () => {
  it('close() writes what is still queued before it resolves, one JSON line per decision, appending to an existing file', async () => {
    const file = join(await tempDir(), 'decisions.ndjson');
    const first = createNdjsonFileOutput({ path: file });
    first.send([decision(1), decision(2)]);
    first.send([decision(3)]);
    // Nothing can have reached the disk yet: the file is opened asynchronously.
    expect(first.stats()).toMatchObject({ delivered: 0 });
    await first.close();
    expect(lines(file)).toEqual([decision(1), decision(2), decision(3)]);
    expect(first.stats()).toEqual({ name: `file:${file}`, delivered: 3, failed: 0, dropped: 0, queued: 0, lastError: undefined });

    const second = createNdjsonFileOutput({ path: file });
    second.send([decision(4)]);
    await second.close();
    expect(lines(file)).toEqual([decision(1), decision(2), decision(3), decision(4)]);
  });

  it('past maxQueued decisions waiting for the disk, new ones are dropped and counted', async () => {
    const file = join(await tempDir(), 'decisions.ndjson');
    const output = createNdjsonFileOutput({ path: file, maxQueued: 2 });
    output.send([decision(1), decision(2), decision(3)]);
    await output.close();
    expect(lines(file)).toEqual([decision(1), decision(2)]);
    expect(output.stats()).toMatchObject({ delivered: 2, dropped: 1, failed: 0 });
  });

  it('a path it cannot open counts the decisions as failed with the reason, and close() still resolves', async () => {
    const dir = await tempDir();
    const file = join(dir, 'missing', 'decisions.ndjson');
    const output = createNdjsonFileOutput({ path: file });
    output.send([decision(1), decision(2)]);
    await output.close();
    const stats = output.stats();
    expect(stats).toMatchObject({ delivered: 0, failed: 2, dropped: 0, queued: 0 });
    expect(stats.lastError).toMatch(/ENOENT.*missing\/decisions\.ndjson/);
    // A directory as the path fails the same way.
    const onDir = createNdjsonFileOutput({ path: dir });
    onDir.send([decision(1)]);
    await onDir.close();
    expect(onDir.stats()).toMatchObject({ delivered: 0, failed: 1 });
    expect(onDir.stats().lastError).toContain('EISDIR');
  });
});
