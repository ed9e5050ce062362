import { open } from 'node:fs/promises';
import { StringDecoder } from 'node:string_decoder';
import { resolve as resolvePath } from 'node:path';
import { ControlType, partitionOf, type Clock, type Event, type LogRecord } from '../engine/index.js';
import { InputError, PortraitError } from '../errors/index.js';
import { validateEvent, type EventCatalog, type EventLimits } from './catalog.js';
import { SchemaMapper, splitCsvLine, type InputSchema } from './input-schema.js';
import type { Ingestor } from './ingestor.js';

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
}

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
}

/**
 * Replays a file through the ingestor in chunks. Each chunk's events are
 * appended per partition together with a time mark and a `$source` record of
 * the chunk's last line, so an interrupted replay resumes exactly where the
 * log ends (see `resume`) and the log is the same as an uninterrupted run's.
 */
export async function replayFile(ingestor: Ingestor, catalog: EventCatalog, limits: EventLimits, clock: Clock, options: ReplayOptions): Promise<ReplayProgress> {
  const partitions = ingestor.partitionCount;
  const sourceId = options.sourceId ?? `file:${resolvePath(options.file)}`;
  const mapper = options.schema === undefined ? undefined : new SchemaMapper(options.schema, catalog, limits);
  const csv = options.schema?.format === 'csv';
  const delimiter = options.schema?.delimiter ?? ',';
  const skipHeader = csv && options.schema?.header === true;
  const resume = options.resume;
  const now = options.referenceNow ?? clock.now();
  const shift = options.timeShiftMs;
  const progress: ReplayProgress = { lines: 0, appended: 0, skipped: 0, rejected: 0, maxTime: -Infinity };
  let groups: LogRecord[][] = Array.from({ length: partitions }, () => []);
  let chunkEvents = 0;

  const flush = async (lastLine: number): Promise<void> => {
    const mark: LogRecord = { type: ControlType.Mark, time: progress.maxTime, key: '', attrs: { now: clock.now() } };
    const source: LogRecord = { type: ControlType.Source, time: progress.maxTime, key: sourceId, attrs: { position: lastLine } };
    for (let p = 0; p < partitions; p++) {
      if (lastLine > (resume[p] ?? 0)) groups[p]!.push(mark, source);
    }
    const chunk = groups;
    const count = chunkEvents;
    groups = Array.from({ length: partitions }, () => []);
    chunkEvents = 0;
    await waitForCapacity(ingestor);
    await ingestor.appendGroups(chunk);
    ingestor.noteAccepted(count, progress.maxTime);
    progress.appended += count;
    options.onChunk?.({ ...progress });
  };

  for await (const lines of readLines(options.file)) {
    for (const line of lines) {
      const lineNo = ++progress.lines;
      if (!(skipHeader && lineNo === 1) && line.length > 0) {
        let event: Event | undefined;
        try {
          event = parseLine(line, lineNo, mapper, csv, delimiter, catalog, limits, now);
        } catch (err: unknown) {
          if (!(err instanceof PortraitError)) throw err;
          progress.rejected++;
          ingestor.reject(err, line, { source: sourceId, position: lineNo });
        }
        if (event !== undefined) {
          if (shift !== 0) event.time += shift;
          if (event.time > progress.maxTime) progress.maxTime = event.time;
          const p = partitionOf(event.key, partitions);
          if (lineNo > (resume[p] ?? 0)) {
            groups[p]!.push(event);
            chunkEvents++;
          } else {
            progress.skipped++;
          }
          // Copies for rules keyed by other fields (e.g. `device_id`) go to the partition owning
          // their rule key, as for events appended through the API; each partition resumes on its own.
          const copies = ingestor.copiesOf(event, p);
          if (copies !== undefined) for (const c of copies) if (lineNo > (resume[c] ?? 0)) groups[c]!.push(event);
        }
      }
      if (lineNo % options.chunkLines === 0) {
        await flush(lineNo);
        if (options.signal?.aborted === true) return progress;
      }
    }
  }
  if (progress.lines % options.chunkLines !== 0) await flush(progress.lines);
  return progress;
}

function parseLine(
  line: string,
  lineNo: number,
  mapper: SchemaMapper | undefined,
  csv: boolean,
  delimiter: string,
  catalog: EventCatalog,
  limits: EventLimits,
  now: number,
): Event {
  const path = `/line/${lineNo}`;
  const text = line.charCodeAt(line.length - 1) === 13 ? line.slice(0, -1) : line;
  if (csv) {
    const fields = splitCsvLine(text, delimiter);
    if (fields === undefined) throw new InputError('PRT_INGEST_BAD_CSV', `${path} has an unterminated quoted field`, { path });
    return mapper!.mapRow(fields, now, path);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err: unknown) {
    throw new InputError('PRT_INGEST_BAD_JSON', `${path} is not valid JSON: ${(err as Error).message}`, { path });
  }
  if (mapper !== undefined) {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      throw new InputError('PRT_INGEST_WRONG_TYPE', `${path} must be a JSON object`, { path });
    }
    return mapper.map(value as Record<string, unknown>, now, path);
  }
  return validateEvent(value, catalog, limits, now, path);
}

async function waitForCapacity(ingestor: Ingestor): Promise<void> {
  // A replay waits for the engine rather than failing when it falls behind.
  while (ingestor.isOverloaded()) await new Promise((r) => setTimeout(r, 20));
}

/** Reads a text file as batches of lines (without line terminators), in ~1 MiB reads. */
export async function* readLines(path: string): AsyncGenerator<string[]> {
  const handle = await open(path, 'r');
  try {
    const buffer = Buffer.allocUnsafe(1 << 20);
    const decoder = new StringDecoder('utf8');
    let rest = '';
    for (;;) {
      const { bytesRead } = await handle.read(buffer, 0, buffer.length, null);
      if (bytesRead === 0) break;
      const text = rest + decoder.write(buffer.subarray(0, bytesRead));
      const lines = text.split('\n');
      rest = lines.pop()!;
      if (lines.length > 0) yield lines;
    }
    rest += decoder.end();
    if (rest.length > 0) yield [rest];
  } finally {
    await handle.close();
  }
}
