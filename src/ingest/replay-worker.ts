/**
 * The parser thread of a file replay: reads the file, validates each line
 * into an event and sends the chunks back as log records already encoded
 * (one transferred buffer per chunk), so the replaying thread only decodes,
 * routes and appends them. At most `window` chunks are in flight: the thread
 * waits for an `ack` per chunk taken.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { BinaryWriter, crc32 } from '../engine/index.js';
import { fileChunks, type ChunkShare, type ChunkSink, type LineParserSetup, type RejectedLine } from './line-parser.js';

/** What the replaying thread passes to the parser thread. */
export interface ReplayWorkerData {
  file: string;
  setup: LineParserSetup;
  chunkLines: number;
  /** Chunks sent but not yet acknowledged, at most. */
  window: number;
  /** The chunks this thread parses (the others go to the other parser threads). */
  share: ChunkShare;
}

/** Messages from the parser thread. */
export type ReplayWorkerMessage =
  | {
      type: 'chunk';
      lastLine: number;
      /** The chunk's records, encoded back to back. */
      bytes: Uint8Array;
      /** End offset of each record in `bytes`. */
      ends: Uint32Array;
      /** CRC-32 of each record, for the log (computed here, off the replaying thread). */
      checksums: Uint32Array;
      /** Line number of each record. */
      lines: Float64Array;
      rejected: Array<{ line: number; code: string; message: string; path: string | undefined; text: string }>;
    }
  | { type: 'end' }
  | { type: 'error'; message: string; code: string | undefined };

const port = parentPort!;
const data = workerData as ReplayWorkerData;
let credits = data.window;
let wake: (() => void) | undefined;
let stopped = false;
port.on('message', (m: { type: 'ack' | 'stop' }) => {
  if (m.type === 'ack') credits++;
  else stopped = true;
  wake?.();
});

type ChunkMessage = Extract<ReplayWorkerMessage, { type: 'chunk' }>;

/** Encodes each line's record straight into one buffer per chunk. */
function encodingSink(): ChunkSink<ChunkMessage> {
  const w = new BinaryWriter(1 << 20);
  let ends: number[] = [];
  let lines: number[] = [];
  const taken = (lineNo: number): void => {
    ends.push(w.pos);
    lines.push(lineNo);
  };
  return {
    // A refused line throws before anything is written for it.
    line(parser, text, lineNo) {
      if (parser.encode(text, lineNo, w)) taken(lineNo);
    },
    asciiLine(parser, bytes, start, end, lineNo) {
      if (parser.encodeAscii(bytes, start, end, lineNo, w)) taken(lineNo);
    },
    take(lastLine: number, rejected: RejectedLine[]): ChunkMessage {
      const bytes = new Uint8Array(w.written()); // a copy with a buffer of its own, to transfer
      const checksums = new Uint32Array(ends.length);
      let start = 0;
      for (let i = 0; i < ends.length; i++) {
        const end = ends[i]!;
        checksums[i] = crc32(bytes, start, end);
        start = end;
      }
      const message: ChunkMessage = { type: 'chunk', lastLine, bytes, ends: Uint32Array.from(ends), checksums, lines: Float64Array.from(lines), rejected };
      w.reset();
      ends = [];
      lines = [];
      return message;
    },
  };
}

async function run(): Promise<void> {
  for await (const message of fileChunks(data.file, data.setup, data.chunkLines, encodingSink(), data.share)) {
    while (credits <= 0 && !stopped) await new Promise<void>((resolve) => (wake = resolve));
    if (stopped) return;
    credits--;
    port.postMessage(message, [message.bytes.buffer as ArrayBuffer, message.ends.buffer as ArrayBuffer, message.checksums.buffer as ArrayBuffer, message.lines.buffer as ArrayBuffer]);
  }
  port.postMessage({ type: 'end' } satisfies ReplayWorkerMessage);
}

run().catch((err: unknown) => {
  const e = err as { message?: string; code?: unknown };
  port.postMessage({ type: 'error', message: String(e?.message ?? err), code: typeof e?.code === 'string' ? e.code : undefined } satisfies ReplayWorkerMessage);
});
