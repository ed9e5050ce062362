import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { resolve as resolvePath } from 'node:path';
import { ControlType, decodeRecord, decodeRecordProjected, partitionOf, type Clock, type Event, type LogRecord } from '../engine/index.js';
import { InputError, type ErrorCode } from '../errors/index.js';
import type { EventCatalog, EventLimits } from './catalog.js';
import type { InputSchema } from './input-schema.js';
import type { Ingestor } from './ingestor.js';
import { parseFileChunks, type LineParserSetup, type ParsedChunk } from './line-parser.js';
import type { ReplayWorkerData, ReplayWorkerMessage } from './replay-worker.js';

export { readLines } from './line-parser.js';

/** Options of {@link replayFile}. */
export interface ReplayOptions {
  /** Path of a CSV or NDJSON file. */
  file: string;
  /** Schema mapping the file's records; omit for canonical NDJSON events. */
  schema?: InputSchema;
  /** Name of this source in the log, for resuming. @defaultValue `file:<absolute path>` */
  sourceId?: string;
  /** Lines per appended chunk; marks and source positions are written at chunk ends. */
  chunkLines: number;
  /** Added to every event time, ms (e.g. to replay old data as if it happened now). */
  timeShiftMs: number;
  /**
   * Per partition, the last line already in the log from an earlier, interrupted
   * replay of the same source (from the engine's `sourcePositions`). Lines at or
   * below it are not appended again to that partition.
   */
  resume: ReadonlyArray<number | undefined>;
  /** Wall-clock time used to judge future events; fixed so a resumed replay judges alike. */
  referenceNow?: number;
  /** Stops the replay at the next chunk boundary. */
  signal?: AbortSignal;
  /** Called after each chunk is durable. */
  onChunk?: (progress: ReplayProgress) => void;
  /**
   * Where lines are parsed and validated: `thread` in a parser thread that
   * hands over encoded records (the replaying thread decodes, routes and
   * appends them), `inline` on the calling thread. Both write the same log.
   * @defaultValue `thread` (`inline` when the compiled parser thread is not found)
   */
  parser?: 'thread' | 'inline';
  /**
   * Parser threads of a `thread` replay; chunk `k` goes to thread `k mod n`.
   * @defaultValue 2 (1 on a single core): parsing may then use the core the
   * engine leaves idle when it is not the bottleneck.
   */
  parserThreads?: number;
}

const DEFAULT_PARSER_THREADS = Math.min(2, availableParallelism());

/** Defaults of {@link ReplayOptions}. */
export const defaultReplayOptions: Pick<ReplayOptions, 'chunkLines' | 'timeShiftMs' | 'resume'> = Object.freeze({
  chunkLines: 4_096,
  timeShiftMs: 0,
  resume: Object.freeze([]),
});

/** Progress of a replay. */
export interface ReplayProgress {
  /** Lines read (including blank and refused ones). */
  lines: number;
  /** Events appended to the log by this run. */
  appended: number;
  /** Valid events not appended because an earlier run already had. */
  skipped: number;
  /** Lines refused (dead-lettered). */
  rejected: number;
  /** Highest event time read, epoch ms. */
  maxTime: number;
  /** Where lines were parsed (see {@link ReplayOptions.parser}). */
  parser: 'thread' | 'inline';
}

/** A parsed chunk with, for each event, its record as the log stores it and its checksum when a parser thread encoded it. */
interface ReplayChunk extends Omit<ParsedChunk, 'lines'> {
  lines: ArrayLike<number>;
  payloads: Uint8Array[] | undefined;
  checksums: ArrayLike<number> | undefined;
  /**
   * The ingestor's routing version the events were decoded at, when they hold
   * only the attributes its definitions read (see `Ingestor.attributeProjection`).
   */
  projectedAt: number | undefined;
}

/** Chunks a parser thread may have sent ahead of the replay. */
const THREAD_WINDOW = 4;

/**
 * Replays a file through the ingestor in chunks. Each chunk's events are
 * appended per partition together with a time mark and a `$source` record of
 * the chunk's last line, so an interrupted replay resumes exactly where the
 * log ends (see `resume`) and the log is the same as an uninterrupted run's.
 */
export async function replayFile(ingestor: Ingestor, catalog: EventCatalog, limits: EventLimits, clock: Clock, options: ReplayOptions): Promise<ReplayProgress> {
  const partitions = ingestor.partitionCount;
  const sourceId = options.sourceId ?? `file:${resolvePath(options.file)}`;
  const resume = options.resume;
  const setup: LineParserSetup = { catalog, limits, now: options.referenceNow ?? clock.now(), timeShiftMs: options.timeShiftMs, ...(options.schema === undefined ? {} : { schema: options.schema }) };
  const script = options.parser === 'inline' ? undefined : parserThreadScript();
  const progress: ReplayProgress = { lines: 0, appended: 0, skipped: 0, rejected: 0, maxTime: -Infinity, parser: script === undefined ? 'inline' : 'thread' };
  const threads = Math.max(1, Math.floor(options.parserThreads ?? DEFAULT_PARSER_THREADS));
  const chunks = script === undefined ? inlineChunks(options.file, setup, options.chunkLines) : threadChunks(script, options.file, setup, options.chunkLines, threads, ingestor);

  for await (const chunk of chunks) {
    for (const r of chunk.rejected) {
      progress.rejected++;
      ingestor.reject(new InputError(r.code, r.message, r.path === undefined ? {} : { path: r.path }), r.text, { source: sourceId, position: r.line });
    }
    // From here to the append nothing waits: the chunk is routed (copies for rules keyed by other
    // fields) by the definitions its records will be processed by.
    await waitForCapacity(ingestor);
    const { events, lines, payloads, checksums } = chunk;
    // Definitions changed since the chunk was decoded for the engine: they may read attributes left out.
    if (chunk.projectedAt !== undefined && chunk.projectedAt !== ingestor.routingVersion) {
      for (let i = 0; i < events.length; i++) events[i]!.attrs = decodeRecord(payloads![i]!).attrs;
    }
    const groups: LogRecord[][] = Array.from({ length: partitions }, () => []);
    const encoded: Uint8Array[][] | undefined = chunk.payloads === undefined ? undefined : Array.from({ length: partitions }, () => []);
    const sums: number[][] | undefined = chunk.checksums === undefined ? undefined : Array.from({ length: partitions }, () => []);
    let count = 0;
    for (let i = 0; i < events.length; i++) {
      const event = events[i]!;
      const lineNo = lines[i]!;
      if (event.time > progress.maxTime) progress.maxTime = event.time;
      const p = partitionOf(event.key, partitions);
      if (lineNo > (resume[p] ?? 0)) {
        groups[p]!.push(event);
        encoded?.[p]!.push(payloads![i]!);
        sums?.[p]!.push(checksums![i]!);
        count++;
      } else {
        progress.skipped++;
      }
      // Copies for rules keyed by other fields (e.g. `device_id`) go to the partition owning
      // their rule key, as for events appended through the API; each partition resumes on its own.
      const copies = ingestor.copiesOf(event, p);
      if (copies !== undefined) {
        for (const c of copies) {
          if (lineNo <= (resume[c] ?? 0)) continue;
          groups[c]!.push(event);
          encoded?.[c]!.push(payloads![i]!);
          sums?.[c]!.push(checksums![i]!);
        }
      }
    }
    const lastLine = chunk.lastLine;
    progress.lines = lastLine;
    const mark: LogRecord = { type: ControlType.Mark, time: progress.maxTime, key: '', attrs: { now: clock.now() } };
    const source: LogRecord = { type: ControlType.Source, time: progress.maxTime, key: sourceId, attrs: { position: lastLine } };
    for (let p = 0; p < partitions; p++) {
      if (lastLine > (resume[p] ?? 0)) groups[p]!.push(mark, source);
    }
    await ingestor.appendGroups(groups, encoded, sums);
    ingestor.noteAccepted(count, progress.maxTime);
    progress.appended += count;
    options.onChunk?.({ ...progress });
    if (options.signal?.aborted === true) break;
  }
  return progress;
}

async function* inlineChunks(file: string, setup: LineParserSetup, chunkLines: number): AsyncGenerator<ReplayChunk> {
  for await (const chunk of parseFileChunks(file, setup, chunkLines)) yield { ...chunk, payloads: undefined, checksums: undefined, projectedAt: undefined };
}

/** One parser thread and the chunks it has sent. */
interface ParserThread {
  worker: Worker;
  inbox: ReplayWorkerMessage[];
}

/**
 * Chunks parsed by parser threads: chunk `k` of the file by thread
 * `k mod threads`, taken back in file order. Their records arrive encoded in
 * one buffer per chunk; each is decoded here for the engine, with only the
 * attributes the online definitions read, and the same bytes (all of them)
 * are what the log appends.
 */
async function* threadChunks(script: URL, file: string, setup: LineParserSetup, chunkLines: number, threads: number, ingestor: Ingestor): AsyncGenerator<ReplayChunk> {
  let failure: Error | undefined;
  let wake: (() => void) | undefined;
  const parsers: ParserThread[] = [];
  for (let index = 0; index < threads; index++) {
    const data: ReplayWorkerData = { file, setup, chunkLines, window: THREAD_WINDOW, share: { index, of: threads } };
    const parser: ParserThread = { worker: new Worker(script, { workerData: data }), inbox: [] };
    parser.worker.on('message', (m: ReplayWorkerMessage) => {
      parser.inbox.push(m);
      wake?.();
    });
    parser.worker.on('error', (err: Error) => {
      failure ??= err;
      wake?.();
    });
    parser.worker.on('exit', (code) => {
      failure ??= new Error(`a replay parser thread exited (code ${code}) before the end of ${file}`);
      wake?.();
    });
    parsers.push(parser);
  }
  try {
    for (let k = 0; ; k++) {
      const { worker, inbox } = parsers[k % threads]!;
      while (inbox.length === 0 && failure === undefined) await new Promise<void>((resolve) => (wake = resolve));
      const m = inbox.shift();
      if (m === undefined) throw failure!;
      if (m.type === 'end') return;
      if (m.type === 'error') throw Object.assign(new Error(m.message), m.code === undefined ? {} : { code: m.code });
      const { bytes, ends, lines, checksums } = m;
      const n = ends.length;
      const events = new Array<Event>(n);
      const payloads = new Array<Uint8Array>(n);
      const projectedAt = ingestor.routingVersion;
      const project = ingestor.attributeProjection();
      let start = 0;
      for (let i = 0; i < n; i++) {
        const view = bytes.subarray(start, ends[i]);
        payloads[i] = view;
        events[i] = decodeRecordProjected(view, project) as Event;
        start = ends[i]!;
      }
      const rejected = m.rejected.map((r) => ({ ...r, code: r.code as ErrorCode }));
      worker.postMessage({ type: 'ack' });
      yield { lastLine: m.lastLine, events, lines, rejected, payloads, checksums, projectedAt };
    }
  } finally {
    await Promise.all(
      parsers.map(async ({ worker }) => {
        worker.removeAllListeners('exit');
        worker.postMessage({ type: 'stop' });
        await worker.terminate();
      }),
    );
  }
}

/**
 * The compiled parser thread beside this module, or, when running from the
 * TypeScript sources (tests), the package build's; undefined when neither
 * exists (the replay then parses inline).
 */
function parserThreadScript(): URL | undefined {
  const here = new URL('./replay-worker.js', import.meta.url);
  if (existsSync(fileURLToPath(here))) return here;
  const built = new URL('../../dist/src/ingest/replay-worker.js', import.meta.url);
  return existsSync(fileURLToPath(built)) ? built : undefined;
}

async function waitForCapacity(ingestor: Ingestor): Promise<void> {
  // A replay waits for the engine rather than failing when it falls behind.
  while (ingestor.isOverloaded()) await new Promise((r) => setTimeout(r, 20));
}
