/**
 * Inputs of the Flink side-by-side check: NDJSON files written by the seeded
 * `EventGenerator` (out-of-order events included) and a cleaned copy of the
 * Taobao user-behaviour CSV. Each file gets a manifest beside it
 * (`<file>.json`: events, first and last event time, generator options), and is
 * made once: equal options give byte-identical files, so a file that exists
 * with its manifest is reused.
 */
import { createWriteStream, existsSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { once } from 'node:events';
import { join, resolve } from 'node:path';
import { EventGenerator, readLines, type GeneratorOptions } from '../../src/ingest/index.js';
import { cachePath, repoRoot } from '../lib/common.js';

export interface InputManifest {
  file: string;
  events: number;
  bytes: number;
  firstTime: number;
  lastTime: number;
  /** Largest lag of an event behind the highest time before it, ms (the disorder both watermarks must exceed). */
  maxDisorderMs: number;
  source: string;
  generator?: Partial<GeneratorOptions> & { events: number };
  droppedRows?: number;
}

/** Folder of generated inputs (git-ignored). */
export function inputDir(): string {
  return cachePath('flink', 'inputs');
}

function readManifest(file: string): InputManifest | undefined {
  const path = `${file}.json`;
  if (!existsSync(path) || !existsSync(file)) return undefined;
  const manifest = JSON.parse(readFileSync(path, 'utf8')) as InputManifest;
  // The file is where it was found: the checkout (and its cache) may have moved since it was made.
  return statSync(file).size === manifest.bytes ? { ...manifest, file } : undefined;
}

/**
 * An NDJSON file of `events` generator events. The defaults make the stream
 * spread over hours of event time, so every window and `within` rolls: 20 events/s of event time over
 * `users` users, 2 % of events up to 5 s out of order, 2 % abusive sessions.
 */
export async function generatedInput(options: { seed: number; events: number; users?: number; eventsPerSecond?: number; outOfOrderFraction?: number; maxOutOfOrderMs?: number }): Promise<InputManifest> {
  const gen: Partial<GeneratorOptions> = {
    seed: options.seed,
    users: options.users ?? Math.max(2_000, Math.round(options.events / 50)),
    eventsPerSecond: options.eventsPerSecond ?? 20,
    outOfOrderFraction: options.outOfOrderFraction ?? 0.02,
    maxOutOfOrderMs: options.maxOutOfOrderMs ?? 5_000,
    fraudFraction: 0.02,
  };
  const file = join(inputDir(), `gen-s${gen.seed}-e${options.events}-u${gen.users}-r${gen.eventsPerSecond}-o${gen.outOfOrderFraction}-${gen.maxOutOfOrderMs}.ndjson`);
  const existing = readManifest(file);
  if (existing !== undefined) return existing;
  const tmp = `${file}.tmp`;
  const out = createWriteStream(tmp, { highWaterMark: 1 << 20 });
  const generator = new EventGenerator(gen);
  let n = 0;
  let bytes = 0;
  let first = Infinity;
  let last = -Infinity;
  let disorder = 0;
  let chunk: string[] = [];
  const flush = async (): Promise<void> => {
    const text = `${chunk.join('\n')}\n`;
    chunk = [];
    bytes += Buffer.byteLength(text);
    if (!out.write(text)) await once(out, 'drain');
  };
  for (const e of generator) {
    if (n === options.events) break;
    n++;
    chunk.push(JSON.stringify({ type: e.type, time: e.time, user_id: e.key, ...e.attrs }));
    if (e.time < first) first = e.time;
    if (e.time > last) last = e.time;
    else if (last - e.time > disorder) disorder = last - e.time;
    if (chunk.length === 8192) await flush();
  }
  if (chunk.length > 0) await flush();
  out.end();
  await once(out, 'finish');
  renameSync(tmp, file);
  const manifest: InputManifest = { file, events: n, bytes, firstTime: first, lastTime: last, maxDisorderMs: disorder, source: 'EventGenerator', generator: { ...gen, events: options.events } };
  writeFileSync(`${file}.json`, JSON.stringify(manifest, null, 2));
  return manifest;
}

/** The public Taobao slice shipped with the project's shared data. */
export const USER_BEHAVIOR_CSV = resolve(repoRoot, '..', 'shared', 'data', 'UserBehavior.csv');

/**
 * A copy of UserBehavior.csv without rows whose timestamp lies more than a
 * day before the highest one read so far: the slice has one row at epoch
 * second 15 (1970), which each system would treat as a late event, and late
 * handling is not what this check compares (docs/flink.md).
 */
export async function userBehaviorInput(source = USER_BEHAVIOR_CSV): Promise<InputManifest> {
  const file = join(inputDir(), 'userbehavior-clean.csv');
  const existing = readManifest(file);
  if (existing !== undefined && existing.source === source) return existing;
  const kept: string[] = [];
  let dropped = 0;
  let first = Infinity;
  let last = -Infinity;
  let disorder = 0;
  for await (const lines of readLines(source)) {
    for (const raw of lines) {
      const line = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
      if (line.length === 0) continue;
      const t = Number(line.slice(line.lastIndexOf(',') + 1)) * 1000;
      if (!Number.isFinite(t) || (last !== -Infinity && t < last - 86_400_000)) {
        dropped++;
        continue;
      }
      kept.push(line);
      if (t < first) first = t;
      if (t > last) last = t;
      else if (last - t > disorder) disorder = last - t;
    }
  }
  const text = `${kept.join('\n')}\n`;
  writeFileSync(file, text);
  const manifest: InputManifest = { file, events: kept.length, bytes: Buffer.byteLength(text), firstTime: first, lastTime: last, maxDisorderMs: disorder, source, droppedRows: dropped };
  writeFileSync(`${file}.json`, JSON.stringify(manifest, null, 2));
  return manifest;
}
