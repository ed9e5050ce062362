import { createWriteStream, existsSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { once } from 'node:events';
import { taobaoStyleEvents } from '../../src/ingest/index.js';
import { cachePath } from './common.js';

/** How a generated input file is made; equal specs give byte-identical files. */
export interface DatasetSpec {
  /** Prefix of the file name. */
  name: string;
  seed: number;
  /** Users the generator draws from (Zipf 0.8; not all of them appear). */
  users: number;
  events: number;
  /** Event time of the first event, epoch ms. */
  startTime: number;
  /** Event-time rate (mean spacing 1000 / rate ms). */
  eventsPerSecond: number;
}

/** What a generated file holds, stored beside it once complete. */
export interface DatasetManifest {
  spec: DatasetSpec;
  file: string;
  bytes: number;
  events: number;
  distinctUsers: number;
  firstTime: number;
  lastTime: number;
  byType: Record<string, number>;
  generatedMs: number;
}

/** Sizes of the 1M-user replay dataset: full run and --quick. */
export function replayDatasetSpec(quick: boolean): DatasetSpec {
  // The public Taobao set has ~1M users and ~100M events over 9 days (~130 events/s);
  // 100 events/s of event time makes sliding and tumbling windows roll as they would there.
  // 1.1M generator users give just over 1M distinct users in 8M events at Zipf 0.8.
  return quick
    ? { name: 'taobao-quick', seed: 42, users: 14_000, events: 100_000, startTime: Date.UTC(2024, 0, 1, 12), eventsPerSecond: 1.25 }
    : { name: 'taobao-1m', seed: 42, users: 1_100_000, events: 8_000_000, startTime: Date.UTC(2024, 0, 1, 12), eventsPerSecond: 100 };
}

/** The events that follow a replay dataset in time (for the recovery scenario's un-checkpointed log). */
export function tailDatasetSpec(main: DatasetManifest, quick: boolean): DatasetSpec {
  const s = main.spec;
  return { name: `${s.name}-tail`, seed: s.seed + 1, users: s.users, events: quick ? 10_000 : 100_000, startTime: main.lastTime + 1, eventsPerSecond: s.eventsPerSecond };
}

/** Deterministic item price in currency units (1.00 – 999.99), so sum/min/max/avg tags have a number to read. */
export function priceOf(itemId: string): number {
  let x = Number(itemId) | 0;
  x = Math.imul(x ^ (x >>> 16), 0x7feb352d);
  x = Math.imul(x ^ (x >>> 15), 0x846ca68b);
  x = (x ^ (x >>> 16)) >>> 0;
  return (100 + (x % 99_900)) / 100;
}

/**
 * Returns the NDJSON file of `spec`, generating it into `.cache/bench/data`
 * the first time: canonical events (`type`, `time`, `user_id`, `item_id`,
 * `category_id`, `price`) from `taobaoStyleEvents`, one per line.
 */
export async function ensureDataset(spec: DatasetSpec, log: (m: string) => void = () => undefined): Promise<DatasetManifest> {
  const dir = cachePath('data');
  const base = `${spec.name}-s${spec.seed}-u${spec.users}-e${spec.events}-r${spec.eventsPerSecond}-t${spec.startTime}`;
  const file = join(dir, `${base}.ndjson`);
  const manifestFile = join(dir, `${base}.json`);
  if (existsSync(manifestFile) && existsSync(file)) {
    const manifest = JSON.parse(readFileSync(manifestFile, 'utf8')) as DatasetManifest;
    // The file is where it was found: the checkout (and its cache) may have moved since it was made.
    if (statSync(file).size === manifest.bytes) return { ...manifest, file };
  }
  log(`generating ${spec.events} events for ${spec.users} users into ${file}`);
  const started = performance.now();
  const tmp = `${file}.tmp`;
  const out = createWriteStream(tmp, { highWaterMark: 1 << 20 });
  const users = new Set<string>();
  const byType: Record<string, number> = {};
  let firstTime = NaN;
  let lastTime = NaN;
  let bytes = 0;
  let chunk: string[] = [];
  for (const e of taobaoStyleEvents({ seed: spec.seed, users: spec.users, startTime: spec.startTime, count: spec.events, eventsPerSecond: spec.eventsPerSecond })) {
    const item = e.attrs.item_id as string;
    const line = `{"type":"${e.type}","time":${e.time},"user_id":"${e.key}","item_id":"${item}","category_id":"${e.attrs.category_id as string}","price":${priceOf(item)}}`;
    chunk.push(line);
    users.add(e.key);
    byType[e.type] = (byType[e.type] ?? 0) + 1;
    if (Number.isNaN(firstTime)) firstTime = e.time;
    lastTime = e.time;
    if (chunk.length === 8192) {
      const text = `${chunk.join('\n')}\n`;
      bytes += Buffer.byteLength(text);
      chunk = [];
      if (!out.write(text)) await once(out, 'drain');
    }
  }
  if (chunk.length > 0) {
    const text = `${chunk.join('\n')}\n`;
    bytes += Buffer.byteLength(text);
    out.write(text);
  }
  out.end();
  await once(out, 'finish');
  renameSync(tmp, file);
  const manifest: DatasetManifest = {
    spec,
    file,
    bytes,
    events: spec.events,
    distinctUsers: users.size,
    firstTime,
    lastTime,
    byType,
    generatedMs: Math.round(performance.now() - started),
  };
  writeFileSync(manifestFile, JSON.stringify(manifest, null, 2));
  log(`generated ${file}: ${(bytes / 2 ** 20).toFixed(0)} MiB, ${users.size} distinct users in ${manifest.generatedMs} ms`);
  return manifest;
}
