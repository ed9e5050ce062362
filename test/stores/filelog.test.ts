import { describe, it, expect, beforeAll, afterEach } from 'vitest';
import fc from 'fast-check';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { appendFile, mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createFileRecordLog, defaultFileRecordLogOptions } from '../../src/stores/filelog/index.js';
import type { FileRecordLog, FileRecordLogOptions } from '../../src/stores/filelog/index.js';
import { crc32, type LogEntry } from '../../src/engine/index.js';

const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
const crashWriter = fileURLToPath(new URL('./fixtures/filelog-crash-writer.mjs', import.meta.url));

const dirs: string[] = [];
const logs: FileRecordLog[] = [];

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'portrait-filelog-'));
  dirs.push(dir);
  return dir;
}

async function openLog(options: FileRecordLogOptions): Promise<FileRecordLog> {
  const log = await createFileRecordLog(options);
  logs.push(log);
  return log;
}

afterEach(async () => {
  await Promise.allSettled(logs.splice(0).map((log) => log.close()));
  await Promise.all(dirs.splice(0).map((dir) => rm(dir, { recursive: true, force: true })));
});

/** A payload whose bytes say which record it is. */
function payload(partition: number, index: number, length = 10 + (index % 90)): Uint8Array {
  const bytes = new Uint8Array(length);
  for (let i = 0; i < length; i++) bytes[i] = (index * 7 + i * 13 + partition * 101) & 0xff;
  return bytes;
}

function payloads(partition: number, from: number, count: number): Uint8Array[] {
  return Array.from({ length: count }, (_, k) => payload(partition, from + k));
}

async function readAll(log: FileRecordLog, partition: number, from: number, maxEntries = 1000): Promise<LogEntry[]> {
  const out: LogEntry[] = [];
  let offset = from;
  for (;;) {
    const entries = await log.read(partition, offset, maxEntries);
    if (entries.length === 0) return out;
    for (const e of entries) {
      expect(e.offset).toBe(offset);
      offset++;
      out.push(e);
    }
  }
}

function bytesOf(entries: LogEntry[]): number[][] {
  return entries.map((e) => Array.from(e.payload));
}

async function segmentFiles(dir: string, partition: number): Promise<string[]> {
  return (await readdir(join(dir, `partition-${partition}`))).filter((n) => n.endsWith('.seg')).sort();
}

describe('file record log', () => {
  it('exports its defaults', () => {
    expect(defaultFileRecordLogOptions).toMatchObject({ segmentBytes: 64 * 1024 * 1024, fsync: 'batch', flushDelayMs: 0 });
    expect(Object.isFrozen(defaultFileRecordLogOptions)).toBe(true);
  });

  for (const cacheBytesPerPartition of [0, 2000, defaultFileRecordLogOptions.cacheBytesPerPartition]) {
    it(`round-trips records across many segments (cache ${cacheBytesPerPartition} bytes)`, async () => {
      const dir = await tempDir();
      const log = await openLog({ dir, partitionCount: 1, segmentBytes: 512, cacheBytesPerPartition, readChunkBytes: 4096, indexIntervalBytes: 100 });
      const expected: Uint8Array[] = [];
      for (let b = 0; b < 80; b++) {
        // Calls stay below the segment size, so segments stay within it (a call is never split).
        const batch = payloads(0, expected.length, 1 + (b % 2) * 2);
        const first = await log.append(0, batch);
        expect(first).toBe(expected.length);
        expected.push(...batch);
      }
      expect(log.endOffset(0)).toBe(expected.length);
      const files = await segmentFiles(dir, 0);
      expect(files.length).toBeGreaterThan(10);
      expect(files[0]).toBe('00000000000000000000.seg');
      for (const name of files) {
        expect(name).toMatch(/^\d{20}\.seg$/);
        expect((await stat(join(dir, 'partition-0', name))).size).toBeLessThanOrEqual(512);
      }

      for (const maxEntries of [1, 3, 17, 1000]) {
        expect(bytesOf(await readAll(log, 0, 0, maxEntries))).toEqual(expected.map((p) => Array.from(p)));
      }
      // Random access, including right at segment boundaries.
      for (const name of files) {
        const base = Number(name.slice(0, 20));
        const [entry] = await log.read(0, base, 1);
        expect(entry?.offset).toBe(base);
        expect(Array.from(entry!.payload)).toEqual(Array.from(expected[base]!));
      }
      expect(await log.read(0, expected.length, 10)).toEqual([]);
      expect(await log.read(0, expected.length + 5, 10)).toEqual([]);
      expect(await log.read(0, 0, 0)).toEqual([]);
    });
  }

  it('gives every partition its own consecutive offsets', async () => {
    const dir = await tempDir();
    const log = await openLog({ dir, partitionCount: 3 });
    expect(log.partitionCount).toBe(3);
    expect(await log.append(0, payloads(0, 0, 5))).toBe(0);
    expect(await log.append(1, payloads(1, 0, 2))).toBe(0);
    expect(await log.append(0, payloads(0, 5, 3))).toBe(5);
    expect(await log.append(2, [])).toBe(0);
    expect(await log.append(1, payloads(1, 2, 1))).toBe(2);
    expect([0, 1, 2].map((p) => log.endOffset(p))).toEqual([8, 3, 0]);
    expect([0, 1, 2].map((p) => log.startOffset(p))).toEqual([0, 0, 0]);
    expect(bytesOf(await readAll(log, 1, 0))).toEqual(payloads(1, 0, 3).map((p) => Array.from(p)));
    await expect(log.append(3, [])).rejects.toMatchObject({ code: 'PRT_INTERNAL' });
    expect(() => log.endOffset(-1)).toThrow(/partition -1 does not exist/);
  });

  for (const fsync of ['batch', 'always', 'none'] as const) {
    it(`keeps call order for concurrent appends (fsync ${fsync})`, async () => {
      const dir = await tempDir();
      const log = await openLog({ dir, partitionCount: 2, fsync, flushDelayMs: fsync === 'batch' ? 2 : 0, segmentBytes: 4096 });
      const calls: Array<{ partition: number; count: number; promise: Promise<number> }> = [];
      const counts = [0, 0];
      const expected: Uint8Array[][] = [[], []];
      for (let i = 0; i < 300; i++) {
        const partition = i % 3 === 0 ? 1 : 0;
        const count = i % 5;
        const batch = payloads(partition, counts[partition]!, count);
        expected[partition]!.push(...batch);
        calls.push({ partition, count, promise: log.append(partition, batch) });
        counts[partition]! += count;
        // Some appends arrive while a flush is in progress.
        if (i % 50 === 49) await new Promise((r) => setImmediate(r));
      }
      const next = [0, 0];
      for (const call of calls) {
        expect(await call.promise).toBe(next[call.partition]);
        next[call.partition]! += call.count;
      }
      for (const p of [0, 1]) {
        expect(log.endOffset(p)).toBe(counts[p]);
        expect(bytesOf(await readAll(log, p, 0, 64))).toEqual(expected[p]!.map((x) => Array.from(x)));
      }
    });
  }

  it('continues offsets after reopening', async () => {
    const dir = await tempDir();
    const first = await createFileRecordLog({ dir, partitionCount: 2, segmentBytes: 300 });
    await first.append(0, payloads(0, 0, 20));
    await first.append(1, payloads(1, 0, 3));
    await first.close();
    await expect(first.append(0, [payload(0, 0)])).rejects.toMatchObject({ name: 'PortraitError', code: 'PRT_STORE_UNAVAILABLE' });

    const log = await openLog({ dir, partitionCount: 2, segmentBytes: 300 });
    expect(log.recoveredTails).toEqual([]);
    expect([log.endOffset(0), log.endOffset(1)]).toEqual([20, 3]);
    expect(await log.append(0, payloads(0, 20, 5))).toBe(20);
    expect(await log.append(1, payloads(1, 3, 1))).toBe(3);
    expect(bytesOf(await readAll(log, 0, 0))).toEqual(payloads(0, 0, 25).map((p) => Array.from(p)));
    expect(bytesOf(await readAll(log, 1, 0))).toEqual(payloads(1, 0, 4).map((p) => Array.from(p)));
  });

  it('tells its observer of every group write: partition, time and bytes, which add up to the segment files', async () => {
    const dir = await tempDir();
    const writes: Array<{ partition: number; seconds: number; bytes: number }> = [];
    const log = await createFileRecordLog({ dir, partitionCount: 2, segmentBytes: 300 }, { onWrite: (partition, seconds, bytes) => writes.push({ partition, seconds, bytes }) });
    await Promise.all([log.append(0, payloads(0, 0, 20)), log.append(1, payloads(1, 0, 3)), log.append(0, payloads(0, 20, 5))]);
    await log.close();
    for (const w of writes) {
      expect([0, 1]).toContain(w.partition);
      expect(w.seconds).toBeGreaterThanOrEqual(0);
      expect(w.seconds).toBeLessThan(60);
      expect(w.bytes).toBeGreaterThan(0);
    }
    for (const partition of [0, 1]) {
      const partDir = join(dir, (await readdir(dir)).find((d) => d.endsWith(`-${partition}`))!);
      let onDisk = 0;
      for (const f of await readdir(partDir)) if (f.endsWith('.seg')) onDisk += (await stat(join(partDir, f))).size;
      const told = writes.filter((w) => w.partition === partition).reduce((sum, w) => sum + w.bytes, 0);
      expect([partition, told]).toEqual([partition, onDisk]);
    }
    // Partition 0's second call rolls to a new 300-byte segment: a write never spans two segments.
    expect(writes.filter((w) => w.partition === 0).length).toBeGreaterThanOrEqual(2);
  });

  it('close waits for appends in flight and later calls reject', async () => {
    const dir = await tempDir();
    const log = await createFileRecordLog({ dir, partitionCount: 1, flushDelayMs: 20 });
    const pending = [log.append(0, payloads(0, 0, 10)), log.append(0, payloads(0, 10, 10))];
    await log.close();
    await expect(Promise.all(pending)).resolves.toEqual([0, 10]);
    await expect(log.append(0, [payload(0, 0)])).rejects.toMatchObject({ code: 'PRT_STORE_UNAVAILABLE' });
    await expect(log.read(0, 0, 1)).rejects.toMatchObject({ code: 'PRT_STORE_UNAVAILABLE' });
    await log.close();
    const again = await openLog({ dir, partitionCount: 1 });
    expect(again.endOffset(0)).toBe(20);
  });

  it('truncateBefore deletes only whole segments below the offset, never the last', async () => {
    const dir = await tempDir();
    const options = { dir, partitionCount: 1, segmentBytes: 200 };
    const log = await createFileRecordLog(options);
    for (let i = 0; i < 10; i++) await log.append(0, payloads(0, i * 5, 5));
    const bases = (await segmentFiles(dir, 0)).map((n) => Number(n.slice(0, 20)));
    expect(bases.length).toBeGreaterThan(3);
    const mid = bases[2]! + 1;

    await log.truncateBefore(0, mid);
    expect(log.startOffset(0)).toBe(bases[2]);
    expect((await segmentFiles(dir, 0)).map((n) => Number(n.slice(0, 20)))).toEqual(bases.slice(2));
    await expect(log.read(0, bases[2]! - 1, 5)).rejects.toMatchObject({
      code: 'PRT_STORE_UNAVAILABLE',
      message: expect.stringMatching(new RegExp(`offset ${bases[2]! - 1} was truncated; the oldest stored offset is ${bases[2]}`)),
    });
    expect(bytesOf(await readAll(log, 0, bases[2]!))).toEqual(payloads(0, bases[2]!, 50 - bases[2]!).map((p) => Array.from(p)));

    // Exactly at a segment base: that segment stays.
    await log.truncateBefore(0, bases[3]!);
    expect(log.startOffset(0)).toBe(bases[3]);
    // Far beyond the end: only the active segment is left, and appends go on.
    await log.truncateBefore(0, 1_000_000);
    const last = bases[bases.length - 1]!;
    expect(log.startOffset(0)).toBe(last);
    expect(await segmentFiles(dir, 0)).toHaveLength(1);
    expect(log.endOffset(0)).toBe(50);
    expect(await log.append(0, payloads(0, 50, 2))).toBe(50);
    await log.close();

    const reopened = await openLog(options);
    expect(reopened.startOffset(0)).toBe(last);
    expect(reopened.endOffset(0)).toBe(52);
    expect(bytesOf(await readAll(reopened, 0, last))).toEqual(payloads(0, last, 52 - last).map((p) => Array.from(p)));
  });

  describe('recovery', () => {
    async function lastSegment(dir: string, partition = 0): Promise<string> {
      const files = await segmentFiles(dir, partition);
      return join(dir, `partition-${partition}`, files[files.length - 1]!);
    }

    const tails: Array<[string, Uint8Array]> = [
      ['a partial frame header', Uint8Array.of(5, 0, 0)],
      ['a frame shorter than its header announces', Uint8Array.of(100, 0, 0, 0, 1, 2, 3, 4, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9)],
      ['a complete frame with a bad checksum', Uint8Array.of(4, 0, 0, 0, 1, 2, 3, 4, 9, 9, 9, 9)],
      ['a bad frame followed by zero fill', Uint8Array.of(4, 0, 0, 0, 1, 2, 3, 4, 9, 9, 9, 9, ...new Array<number>(64).fill(0))],
    ];
    for (const [what, garbage] of tails) {
      it(`cuts a torn tail: ${what}`, async () => {
        const dir = await tempDir();
        const options = { dir, partitionCount: 1, segmentBytes: 1000 };
        const log = await createFileRecordLog(options);
        await log.append(0, payloads(0, 0, 30));
        await log.close();
        const file = await lastSegment(dir);
        const intactBytes = (await stat(file)).size;
        await appendFile(file, garbage);

        const reopened = await createFileRecordLog(options);
        expect(reopened.recoveredTails).toEqual([{ partition: 0, segment: file, atByte: intactBytes, droppedBytes: garbage.length }]);
        expect((await stat(file)).size).toBe(intactBytes);
        expect(reopened.endOffset(0)).toBe(30);
        expect(await reopened.append(0, payloads(0, 30, 3))).toBe(30);
        await reopened.close();

        const clean = await openLog(options);
        expect(clean.recoveredTails).toEqual([]);
        expect(bytesOf(await readAll(clean, 0, 0))).toEqual(payloads(0, 0, 33).map((p) => Array.from(p)));
      });
    }

    it('keeps an append call whole: a crash inside a call drops all of its records', async () => {
      const dir = await tempDir();
      const options = { dir, partitionCount: 1 };
      const log = await createFileRecordLog(options);
      await log.append(0, payloads(0, 0, 2));
      const callEnd = (await stat(await lastSegment(dir))).size;
      await log.append(0, payloads(0, 2, 3));
      await log.close();
      const file = await lastSegment(dir);
      // Keep two complete frames of the second call (valid checksums, no call-end mark).
      const secondCall = payloads(0, 2, 2).reduce((n, p) => n + 8 + p.length, 0);
      const bytes = await readFile(file);
      await writeFile(file, bytes.subarray(0, callEnd + secondCall));

      const reopened = await openLog(options);
      expect(reopened.endOffset(0)).toBe(2);
      expect((await stat(file)).size).toBe(callEnd);
      expect(reopened.recoveredTails[0]?.droppedBytes).toBe(secondCall);
      expect(await reopened.append(0, payloads(0, 2, 1))).toBe(2);
      expect(bytesOf(await readAll(reopened, 0, 0))).toEqual(payloads(0, 0, 3).map((p) => Array.from(p)));
    });

    it('never splits one append call across two segments', async () => {
      const dir = await tempDir();
      const log = await openLog({ dir, partitionCount: 1, segmentBytes: 500 });
      for (let i = 0; i < 20; i++) await log.append(0, payloads(0, i * 7, 7));
      const files = await segmentFiles(dir, 0);
      expect(files.length).toBeGreaterThan(3);
      // Every segment starts at a call boundary (a multiple of the call size).
      for (const name of files) expect(Number(name.slice(0, 20)) % 7).toBe(0);
    });

    it('refuses to open when a checksum fails in the middle of the last segment', async () => {
      const dir = await tempDir();
      const options = { dir, partitionCount: 2 };
      const log = await createFileRecordLog(options);
      await log.append(1, payloads(1, 0, 20));
      await log.close();
      const file = await lastSegment(dir, 1);
      const bytes = await readFile(file);
      // Record 3's payload byte: frames are 8 + (10 + index) bytes here.
      const position = [0, 1, 2].reduce((at, i) => at + 8 + 10 + i, 0);
      bytes[position + 8 + 2]! ^= 0xff;
      await writeFile(file, bytes);

      const error = await createFileRecordLog(options).then(
        () => undefined,
        (err: unknown) => err,
      );
      expect(error).toMatchObject({ name: 'PortraitError', code: 'PRT_STORE_CORRUPT', subject: file });
      expect((error as Error).message).toContain('partition 1');
      expect((error as Error).message).toContain(file);
      expect((error as Error).message).toContain(`byte ${position}`);
      // A failed open releases the lock.
      expect(existsSync(join(dir, 'LOCK'))).toBe(false);
    });

    it('writes the checksums an append brings (computed where the payloads were made), and refuses a count that does not match', async () => {
      const dir = await tempDir();
      const options = { dir, partitionCount: 1 };
      const log = await createFileRecordLog(options);
      const records = payloads(0, 0, 6);
      await log.append(0, records, records.map((r) => crc32(r)));
      await expect(log.append(0, records, [1, 2])).rejects.toMatchObject({ code: 'PRT_INTERNAL' });
      // A wrong checksum is written as given: the reopened log finds the damage at that record.
      const wrong = records.map((r) => crc32(r));
      wrong[2] = (wrong[2]! ^ 1) >>> 0;
      await log.append(0, records, wrong);
      await log.append(0, payloads(0, 6, 2));
      await log.close();
      const file = await lastSegment(dir, 0);
      const error = await createFileRecordLog(options).then(
        () => undefined,
        (err: unknown) => err,
      );
      expect(error).toMatchObject({ code: 'PRT_STORE_CORRUPT', subject: file });
      const position = records.reduce((at, r) => at + 8 + r.length, 0) + records.slice(0, 2).reduce((at, r) => at + 8 + r.length, 0);
      expect((error as Error).message).toContain(`byte ${position}`);
    });

    it('refuses to open when a segment that is not the last is damaged, and read reports damage found later', async () => {
      const dir = await tempDir();
      const options = { dir, partitionCount: 1, segmentBytes: 256, cacheBytesPerPartition: 0 };
      const log = await createFileRecordLog(options);
      for (let i = 0; i < 40; i += 4) await log.append(0, payloads(0, i, 4));
      await log.close();
      const files = await segmentFiles(dir, 0);
      expect(files.length).toBeGreaterThan(1);
      const first = join(dir, 'partition-0', files[0]!);
      const original = await readFile(first);
      await writeFile(first, original.subarray(0, original.length - 3));
      await expect(createFileRecordLog(options)).rejects.toMatchObject({ code: 'PRT_STORE_CORRUPT', subject: first });

      // Damage after open is caught by the read's checksum check.
      await writeFile(first, original);
      const reopened = await openLog(options);
      const damaged = Buffer.from(original);
      damaged[8 + 1]! ^= 0x01;
      await writeFile(first, damaged);
      await expect(reopened.read(0, 0, 5)).rejects.toMatchObject({ code: 'PRT_STORE_CORRUPT', subject: first });
    });
  });

  describe('exclusive use', () => {
    it('refuses a second open of the same directory until the first closes', async () => {
      const dir = await tempDir();
      const log = await createFileRecordLog({ dir, partitionCount: 1 });
      const error = await createFileRecordLog({ dir, partitionCount: 1 }).then(
        () => undefined,
        (err: unknown) => err,
      );
      expect(error).toMatchObject({ name: 'PortraitError', code: 'PRT_STORE_LOCKED', subject: dir });
      expect((error as Error).message).toContain(dir);
      expect((await readFile(join(dir, 'LOCK'), 'utf8')).trim()).toBe(String(process.pid));
      await log.close();
      expect(existsSync(join(dir, 'LOCK'))).toBe(false);
      await openLog({ dir, partitionCount: 1 });
    });

    it('reclaims a stale lock left by a dead process', async () => {
      const dir = await tempDir();
      const child = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
      const deadPid = Number(child.stdout);
      expect(deadPid).toBeGreaterThan(0);
      await writeFile(join(dir, 'LOCK'), `${deadPid}\n`);
      const log = await openLog({ dir, partitionCount: 1 });
      expect(await log.append(0, [payload(0, 0)])).toBe(0);
      expect((await readFile(join(dir, 'LOCK'), 'utf8')).trim()).toBe(String(process.pid));
    });
  });

  describe('configuration', () => {
    it('refuses a partition count that differs from the stored log', async () => {
      const dir = await tempDir();
      const log = await createFileRecordLog({ dir, partitionCount: 3 });
      await log.close();
      const error = await createFileRecordLog({ dir, partitionCount: 4 }).then(
        () => undefined,
        (err: unknown) => err,
      );
      expect(error).toMatchObject({ name: 'PortraitError', code: 'PRT_CONFIG_INVALID', path: '/partitionCount' });
      expect((error as Error).message).toContain('partitionCount');
      expect(existsSync(join(dir, 'LOCK'))).toBe(false);
    });

    it('refuses invalid options, naming the setting', async () => {
      const dir = await tempDir();
      await expect(createFileRecordLog({ dir, partitionCount: 0 })).rejects.toMatchObject({ code: 'PRT_CONFIG_INVALID', path: '/partitionCount' });
      await expect(createFileRecordLog({ dir, partitionCount: 1, segmentBytes: 1.5 })).rejects.toMatchObject({ code: 'PRT_CONFIG_INVALID', path: '/segmentBytes' });
      await expect(
        createFileRecordLog({ dir, partitionCount: 1, fsync: 'sometimes' as unknown as 'batch' }),
      ).rejects.toMatchObject({ code: 'PRT_CONFIG_INVALID', path: '/fsync' });
    });
  });

  it('property: random appends, reopen, read back exactly the payloads in order', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.record({
          partitionCount: fc.integer({ min: 1, max: 3 }),
          segmentBytes: fc.integer({ min: 1, max: 2048 }),
          cacheBytesPerPartition: fc.constantFrom(0, 300, 4096, 16 * 1024 * 1024),
          fsync: fc.constantFrom('batch' as const, 'always' as const, 'none' as const),
          ops: fc.array(
            fc.record({
              partition: fc.nat(2),
              payloads: fc.array(fc.uint8Array({ maxLength: 300 }), { maxLength: 20 }),
              awaitIt: fc.boolean(),
            }),
            { maxLength: 30 },
          ),
          readSize: fc.integer({ min: 1, max: 50 }),
        }),
        async ({ partitionCount, segmentBytes, cacheBytesPerPartition, fsync, ops, readSize }) => {
          const dir = await mkdtemp(join(tmpdir(), 'portrait-filelog-prop-'));
          try {
            const options = { dir, partitionCount, segmentBytes, cacheBytesPerPartition, fsync, readChunkBytes: 4096 };
            const log = await createFileRecordLog(options);
            const expected: Uint8Array[][] = Array.from({ length: partitionCount }, () => []);
            const acks: Array<Promise<void>> = [];
            for (const op of ops) {
              const p = op.partition % partitionCount;
              const want = expected[p]!.length;
              expected[p]!.push(...op.payloads);
              const ack = log.append(p, op.payloads).then((first) => {
                expect(first).toBe(want);
              });
              if (op.awaitIt) await ack;
              acks.push(ack);
            }
            await Promise.all(acks);
            for (let p = 0; p < partitionCount; p++) {
              expect(bytesOf(await readAll(log, p, 0, readSize))).toEqual(expected[p]!.map((x) => Array.from(x)));
            }
            await log.close();

            const reopened = await createFileRecordLog(options);
            try {
              expect(reopened.recoveredTails).toEqual([]);
              for (let p = 0; p < partitionCount; p++) {
                expect(reopened.endOffset(p)).toBe(expected[p]!.length);
                expect(bytesOf(await readAll(reopened, p, 0, readSize))).toEqual(expected[p]!.map((x) => Array.from(x)));
              }
            } finally {
              await reopened.close();
            }
          } finally {
            await rm(dir, { recursive: true, force: true });
          }
        },
      ),
      { numRuns: 60 },
    );
  });

  describe('crash', () => {
    beforeAll(() => {
      // The child imports the compiled adapter.
      const build = spawnSync('npx', ['tsc', '-p', 'tsconfig.build.json'], { cwd: repoRoot, encoding: 'utf8' });
      if (!existsSync(join(repoRoot, 'dist/src/stores/filelog/index.js'))) {
        throw new Error(`build failed: ${build.stdout}${build.stderr}`);
      }
    });

    /** The payload the crash writer gives record `offset` of `partition`. */
    function expectedPayload(partition: number, offset: number): Uint8Array {
      const length = (offset * 7919 + partition * 13) % 300;
      const bytes = new Uint8Array(length);
      for (let i = 0; i < length; i++) bytes[i] = (offset + i * 31 + partition) & 0xff;
      return bytes;
    }

    /** Runs the crash writer on `dir` until it acknowledged `acks` appends, then SIGKILLs it. Returns the highest acknowledged offset per partition. */
    async function runAndKill(dir: string, acks: number): Promise<{ lastAcked: number[]; ready: number[] }> {
      const child = spawn(process.execPath, [crashWriter, dir, '2'], { stdio: ['ignore', 'pipe', 'pipe'] });
      const lastAcked = [-1, -1];
      let ready: number[] = [];
      let stderr = '';
      child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
      const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
      await new Promise<void>((resolve, reject) => {
        let seen = 0;
        let buffered = '';
        child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
          buffered += chunk;
          const lines = buffered.split('\n');
          buffered = lines.pop()!;
          for (const line of lines) {
            const [kind, a, b] = line.split(' ');
            if (kind === 'ready') ready = line.split(' ').slice(1).map(Number);
            else if (kind === 'ack') {
              lastAcked[Number(a)] = Math.max(lastAcked[Number(a)]!, Number(b));
              if (++seen === acks) {
                child.kill('SIGKILL');
                resolve();
              }
            } else reject(new Error(`crash writer said: ${line}`));
          }
        });
        child.on('exit', (code, signal) => {
          if (signal !== 'SIGKILL') reject(new Error(`crash writer exited with ${code}: ${stderr}`));
        });
      });
      await exited;
      return { lastAcked, ready };
    }

    it('keeps every acknowledged record across kill -9 and continues cleanly', async () => {
      const dir = await tempDir();
      let previousEnd = [0, 0];
      for (const acks of [150, 400, 37]) {
        const { lastAcked, ready } = await runAndKill(dir, acks);
        // Each child continued where the log ended after the previous crash.
        expect(ready).toEqual(previousEnd);
        expect(lastAcked.every((x) => x >= 0)).toBe(true);

        // This process takes over the lock the killed child left behind.
        const log = await createFileRecordLog({ dir, partitionCount: 2, segmentBytes: 64 * 1024 });
        for (const p of [0, 1]) {
          const end = log.endOffset(p);
          expect(end).toBeGreaterThan(lastAcked[p]!);
          expect(log.startOffset(p)).toBe(0);
          const entries = await readAll(log, p, 0, 5000);
          expect(entries).toHaveLength(end);
          for (const e of entries) {
            if (!Buffer.from(e.payload).equals(expectedPayload(p, e.offset))) {
              throw new Error(`partition ${p} offset ${e.offset} does not hold its payload`);
            }
          }
          // The log goes on right after the last durable record.
          expect(await log.append(p, [expectedPayload(p, end), expectedPayload(p, end + 1)])).toBe(end);
          const tail = await log.read(p, end, 10);
          expect(tail.map((e) => e.offset)).toEqual([end, end + 1]);
        }
        expect((await segmentFiles(dir, 0)).length).toBeGreaterThan(1);
        previousEnd = [log.endOffset(0), log.endOffset(1)];

        // While this process holds the log, another process cannot open it.
        const locked = spawnSync(process.execPath, [crashWriter, dir, '2'], { encoding: 'utf8', timeout: 30_000 });
        expect(locked.status).toBe(3);
        expect(locked.stdout.trim()).toBe('error PRT_STORE_LOCKED');
        await log.close();
      }
    });
  });
});
