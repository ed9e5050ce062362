import { open } from 'node:fs/promises';
import { isAscii } from 'node:buffer';
import { encodeRecordInto, type BinaryWriter, type Event } from '../engine/index.js';
import { InputError, PortraitError, type ErrorCode } from '../errors/index.js';
import { validateEvent, type EventCatalog, type EventLimits } from './catalog.js';
import { SchemaMapper, splitCsvLine, type InputSchema } from './input-schema.js';
import { encodeFastLine, latin1 } from './fast-line.js';

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

  /**
   * Writes the log record of a line at the writer's position: true when the
   * line holds an event, false for one that holds none (see {@link parse}).
   */
  encode(line: string, lineNo: number, w: BinaryWriter): boolean {
    const event = this.parse(line, lineNo);
    if (event === undefined) return false;
    encodeRecordInto(event, w);
    return true;
  }

  /**
   * {@link encode} for a line held as ASCII bytes `bytes[start, end)`: a
   * canonical NDJSON line takes the fast path ({@link encodeFastLine}) when it
   * can, any other line is made a string and encoded; both write the same bytes.
   */
  encodeAscii(bytes: Uint8Array, start: number, end: number, lineNo: number, w: BinaryWriter): boolean {
    if (this.mapper === undefined && start < end && encodeFastLine(bytes, start, end, this.setup, w)) return true;
    return this.encode(latin1(bytes, start, end), lineNo, w);
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

/** Takes the lines of a chunk one by one and gives the chunk when it is complete. */
export interface ChunkSink<T> {
  /** Takes a line; throws a {@link PortraitError} for a line refused (it is listed with its reason). */
  line(parser: LineParser, text: string, lineNo: number): void;
  /** Takes a line held as ASCII bytes `bytes[start, end)`, valid during the call; without it such lines come as text. */
  asciiLine?(parser: LineParser, bytes: Uint8Array, start: number, end: number, lineNo: number): void;
  /** The chunk of the lines taken since the last one, ending at line `lastLine`, with the lines refused. */
  take(lastLine: number, rejected: RejectedLine[]): T;
}

/**
 * Reads a file and hands its lines to `sink` in chunks of `chunkLines` lines
 * (the last one may be shorter), yielding each chunk the sink gives. Lines
 * that fail validation are listed with their reason; any other error ends the
 * generator. With `share`, only that share of the chunks is parsed and yielded
 * (the other lines are only counted), so several parsers can split one file.
 */
export async function* fileChunks<T>(file: string, setup: LineParserSetup, chunkLines: number, sink: ChunkSink<T>, share: ChunkShare = { index: 0, of: 1 }): AsyncGenerator<T> {
  const parser = new LineParser(setup);
  let rejected: RejectedLine[] = [];
  let lineNo = 0;
  let chunkNo = 0;
  let mine = share.index === 0;
  const refuse = (err: unknown, text: () => string): void => {
    if (!(err instanceof PortraitError)) throw err;
    rejected.push({ line: lineNo, code: err.code, message: err.message, path: err.path, text: text() });
  };
  const asciiLine = sink.asciiLine;
  for await (const block of readLineBlocks(file)) {
    const { bytes, end } = block;
    const texts = block.ascii && asciiLine !== undefined ? undefined : decodeLines(block);
    const count = texts?.length ?? Infinity;
    let start = 0;
    for (let k = 0; k < count; k++) {
      let stop = end;
      if (texts === undefined) {
        stop = bytes.indexOf(NEWLINE, start);
        if (stop < 0 || stop > end) stop = end;
      }
      lineNo++;
      if (mine) {
        if (texts !== undefined) {
          const text = texts[k]!;
          try {
            sink.line(parser, text, lineNo);
          } catch (err: unknown) {
            refuse(err, () => text);
          }
        } else {
          try {
            asciiLine!.call(sink, parser, bytes, start, stop, lineNo);
          } catch (err: unknown) {
            refuse(err, () => latin1(bytes, start, stop));
          }
        }
      }
      if (lineNo % chunkLines === 0) {
        if (mine) {
          yield sink.take(lineNo, rejected);
          rejected = [];
        }
        mine = ++chunkNo % share.of === share.index;
      }
      if (texts === undefined) {
        if (stop >= end) break;
        start = stop + 1;
      }
    }
  }
  if (lineNo % chunkLines !== 0 && mine) yield sink.take(lineNo, rejected);
}

/** {@link fileChunks} of events. */
export function parseFileChunks(file: string, setup: LineParserSetup, chunkLines: number, share?: ChunkShare): AsyncGenerator<ParsedChunk> {
  let events: Event[] = [];
  let lines: number[] = [];
  const sink: ChunkSink<ParsedChunk> = {
    line(parser, text, lineNo) {
      const event = parser.parse(text, lineNo);
      if (event !== undefined) {
        events.push(event);
        lines.push(lineNo);
      }
    },
    take(lastLine, rejected) {
      const chunk: ParsedChunk = { lastLine, events, lines, rejected };
      events = [];
      lines = [];
      return chunk;
    },
  };
  return fileChunks(file, setup, chunkLines, sink, share);
}

/** Whole lines read from a file: `bytes[0, end)`, lines separated by `\n` (the last one without). */
interface LineBlock {
  /** Valid until the next block is read. */
  bytes: Buffer;
  end: number;
  /** Every byte is ASCII. */
  ascii: boolean;
}

/**
 * Reads a text file in ~1 MiB reads, each cut at its last newline (a byte
 * never inside a UTF-8 sequence); the bytes after the cut start the next read.
 */
async function* readLineBlocks(path: string): AsyncGenerator<LineBlock> {
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
        if (end > 0) yield { bytes: buffer, end, ascii: isAscii(buffer.subarray(0, end)) };
        return;
      }
      const cut = buffer.lastIndexOf(NEWLINE, end - 1);
      if (cut < 0) {
        carry = end;
        continue;
      }
      yield { bytes: buffer, end: cut, ascii: isAscii(buffer.subarray(0, cut)) };
      carry = end - cut - 1;
      buffer.copy(buffer, 0, cut + 1, end);
    }
  } finally {
    await handle.close();
  }
}

/** The lines of a block as strings: decoded in one piece, as Latin-1 when all ASCII, else as UTF-8. */
function decodeLines(block: LineBlock): string[] {
  return block.bytes.toString(block.ascii ? 'latin1' : 'utf8', 0, block.end).split('\n');
}

/** Reads a text file as batches of lines (without line terminators), one batch per ~1 MiB read. */
export async function* readLines(path: string): AsyncGenerator<string[]> {
  for await (const block of readLineBlocks(path)) yield decodeLines(block);
}

const NEWLINE = 0x0a;
