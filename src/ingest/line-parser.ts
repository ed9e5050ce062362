import { open } from 'node:fs/promises';
import { isAscii } from 'node:buffer';
import type { Event } from '../engine/index.js';
import { InputError, PortraitError, type ErrorCode } from '../errors/index.js';
import { validateEvent, type EventCatalog, type EventLimits } from './catalog.js';
import { SchemaMapper, splitCsvLine, type InputSchema } from './input-schema.js';

/** What turns a file's lines into events: plain data, so a parser thread can take it. */
export interface LineParserSetup {
  /** Schema mapping the file's records; omit for canonical NDJSON events. */
  schema?: InputSchema;
  catalog: EventCatalog;
  limits: EventLimits;
  /** Wall-clock time used to judge future events, epoch ms. */
  now: number;
  /** Added to every event time, ms. */
  timeShiftMs: number;
}

/** A line refused by validation, with the reason. */
export interface RejectedLine {
  line: number;
  code: ErrorCode;
  message: string;
  path: string | undefined;
  text: string;
}

/** The events of a run of lines ending at `lastLine`. */
export interface ParsedChunk {
  /** Number of the chunk's last line (1-based); every line up to it has been read. */
  lastLine: number;
  events: Event[];
  /** Line number of each event. */
  lines: number[];
  rejected: RejectedLine[];
}

/** Validates the lines of a CSV or NDJSON file into events; throws a {@link PortraitError} naming the line and field. */
export class LineParser {
  private readonly mapper: SchemaMapper | undefined;
  private readonly csv: boolean;
  private readonly delimiter: string;
  private readonly skipHeader: boolean;

  constructor(private readonly setup: LineParserSetup) {
    const schema = setup.schema;
    this.mapper = schema === undefined ? undefined : new SchemaMapper(schema, setup.catalog, setup.limits);
    this.csv = schema?.format === 'csv';
    this.delimiter = schema?.delimiter ?? ',';
    this.skipHeader = this.csv && schema?.header === true;
  }

  /** The event of a line, or undefined for a line that holds none (blank, a CSV header). */
  parse(line: string, lineNo: number): Event | undefined {
    if (line.length === 0 || (this.skipHeader && lineNo === 1)) return undefined;
    const event = this.parseText(line, lineNo);
    if (this.setup.timeShiftMs !== 0) event.time += this.setup.timeShiftMs;
    return event;
  }

  private parseText(line: string, lineNo: number): Event {
    const { catalog, limits, now } = this.setup;
    const path = `/line/${lineNo}`;
    const text = line.charCodeAt(line.length - 1) === 13 ? line.slice(0, -1) : line;
    if (this.csv) {
      const fields = splitCsvLine(text, this.delimiter);
      if (fields === undefined) throw new InputError('PRT_INGEST_BAD_CSV', `${path} has an unterminated quoted field`, { path });
      return this.mapper!.mapRow(fields, now, path);
    }
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (err: unknown) {
      throw new InputError('PRT_INGEST_BAD_JSON', `${path} is not valid JSON: ${(err as Error).message}`, { path });
    }
    if (this.mapper !== undefined) {
      if (typeof value !== 'object' || value === null || Array.isArray(value)) {
        throw new InputError('PRT_INGEST_WRONG_TYPE', `${path} must be a JSON object`, { path });
      }
      return this.mapper.map(value as Record<string, unknown>, now, path);
    }
    return validateEvent(value, catalog, limits, now, path);
  }
}

/** Which chunks of a file a parser takes: those whose number (from 0) is `index` modulo `of`. */
export interface ChunkShare {
  index: number;
  of: number;
}

/**
 * Reads a file and parses it into chunks of `chunkLines` lines (the last one
 * may be shorter). Lines that fail validation are listed with their reason;
 * any other error ends the generator. With `share`, only that share of the
 * chunks is parsed and yielded (the other lines are only counted), so several
 * parsers can split one file.
 */
export async function* parseFileChunks(file: string, setup: LineParserSetup, chunkLines: number, share: ChunkShare = { index: 0, of: 1 }): AsyncGenerator<ParsedChunk> {
  const parser = new LineParser(setup);
  let chunk: ParsedChunk = { lastLine: 0, events: [], lines: [], rejected: [] };
  let lineNo = 0;
  let chunkNo = 0;
  let mine = share.index === 0;
  for await (const lines of readLines(file)) {
    for (const line of lines) {
      lineNo++;
      if (!mine) {
        if (lineNo % chunkLines === 0) mine = ++chunkNo % share.of === share.index;
        continue;
      }
      try {
        const event = parser.parse(line, lineNo);
        if (event !== undefined) {
          chunk.events.push(event);
          chunk.lines.push(lineNo);
        }
      } catch (err: unknown) {
        if (!(err instanceof PortraitError)) throw err;
        chunk.rejected.push({ line: lineNo, code: err.code, message: err.message, path: err.path, text: line });
      }
      if (lineNo % chunkLines === 0) {
        chunk.lastLine = lineNo;
        yield chunk;
        chunk = { lastLine: 0, events: [], lines: [], rejected: [] };
        mine = ++chunkNo % share.of === share.index;
      }
    }
  }
  if (lineNo % chunkLines !== 0 && mine) {
    chunk.lastLine = lineNo;
    yield chunk;
  }
}

/**
 * Reads a text file as batches of lines (without line terminators), in ~1 MiB
 * reads. Each read is cut at its last newline (a byte never inside a UTF-8
 * sequence) and decoded in one piece, as Latin-1 when it is all ASCII (the
 * fast path for typical event files), else as UTF-8; the bytes after the cut
 * start the next read.
 */
export async function* readLines(path: string): AsyncGenerator<string[]> {
  const handle = await open(path, 'r');
  try {
    let buffer = Buffer.allocUnsafe(1 << 20);
    let carry = 0;
    for (;;) {
      if (carry === buffer.length) {
        // One line longer than the buffer: grow it.
        const grown = Buffer.allocUnsafe(buffer.length * 2);
        buffer.copy(grown, 0, 0, carry);
        buffer = grown;
      }
      const { bytesRead } = await handle.read(buffer, carry, buffer.length - carry, null);
      const end = carry + bytesRead;
      if (bytesRead === 0) {
        if (end > 0) yield [buffer.toString('utf8', 0, end)];
        return;
      }
      const cut = buffer.lastIndexOf(NEWLINE, end - 1);
      if (cut < 0) {
        carry = end;
        continue;
      }
      const head = buffer.subarray(0, cut);
      const text = isAscii(head) ? head.toString('latin1') : head.toString('utf8');
      carry = end - cut - 1;
      buffer.copy(buffer, 0, cut + 1, end);
      yield text.split('\n');
    }
  } finally {
    await handle.close();
  }
}

const NEWLINE = 0x0a;
