/**
 * The replay floor, run as its own process: a bare Node loop that reads the
 * same NDJSON file the way the replay does (1 MiB reads, UTF-8 decode, split
 * into lines), parses each line (JSON.parse) and increments one Map counter per
 * event key. Prints one JSON message and exits.
 *
 * Usage: node --expose-gc floor.js FILE
 */
import { open } from 'node:fs/promises';
import { StringDecoder } from 'node:string_decoder';

async function* lines(path: string): AsyncGenerator<string[]> {
  const handle = await open(path, 'r');
  try {
    const buffer = Buffer.allocUnsafe(1 << 20);
    const decoder = new StringDecoder('utf8');
    let rest = '';
    for (;;) {
      const { bytesRead } = await handle.read(buffer, 0, buffer.length, null);
      if (bytesRead === 0) break;
      const text = rest + decoder.write(buffer.subarray(0, bytesRead));
      const parts = text.split('\n');
      rest = parts.pop()!;
      if (parts.length > 0) yield parts;
    }
    rest += decoder.end();
    if (rest.length > 0) yield [rest];
  } finally {
    await handle.close();
  }
}

async function main(): Promise<void> {
  const file = process.argv[2];
  if (file === undefined) throw new Error('usage: floor.js FILE');
  const gc = (globalThis as { gc?: () => void }).gc;

  // Pass 1: read and split only (how much of the floor is I/O and line splitting).
  let t = performance.now();
  let lineCount = 0;
  for await (const batch of lines(file)) lineCount += batch.length;
  const readMs = performance.now() - t;

  gc?.();
  const { heapUsed: heapBefore, rss: rssBefore } = process.memoryUsage();
  // Pass 2: the floor proper.
  t = performance.now();
  const counts = new Map<string, number>();
  let events = 0;
  for await (const batch of lines(file)) {
    for (const line of batch) {
      if (line.length === 0) continue;
      const event = JSON.parse(line) as { user_id: string };
      const key = event.user_id;
      counts.set(key, (counts.get(key) ?? 0) + 1);
      events++;
    }
  }
  const floorMs = performance.now() - t;
  if (gc !== undefined) for (let i = 0; i < 3; i++) gc();
  const mem = process.memoryUsage();
  process.stdout.write(
    `${JSON.stringify({
      type: 'floor',
      events,
      lines: lineCount,
      keys: counts.size,
      floorMs,
      readMs,
      heapUsed: mem.heapUsed,
      heapBefore,
      rss: mem.rss,
      rssBefore,
      gc: gc !== undefined,
    })}\n`,
  );
}

main().catch((err: unknown) => {
  process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
  process.exitCode = 1;
});
