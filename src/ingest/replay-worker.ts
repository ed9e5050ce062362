/**
 * The parser thread of a file replay: reads the file, validates each line
 * into an event and sends the chunks back as log records already encoded
 * (one transferred buffer per chunk), so the replaying thread only decodes,
 * routes and appends them. At most `window` chunks are in flight: the thread
 * waits for an `ack` per chunk taken.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { encodeRecord } from '../engine/index.js';
import { parseFileChunks, type ChunkShare, type LineParserSetup } from './line-parser.js';

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

async function run(): Promise<void> {
  let buffer = new Uint8Array(1 << 20);
  for await (const chunk of parseFileChunks(data.file, data.setup, data.chunkLines, data.share)) {
    while (credits <= 0 && !stopped) await new Promise<void>((resolve) => (wake = resolve));
    if (stopped) return;
    const n = chunk.events.length;
    const ends = new Uint32Array(n);
    const lines = new Float64Array(n);
    let pos = 0;
    for (let i = 0; i < n; i++) {
      const record = encodeRecord(chunk.events[i]!);
      if (pos + record.length > buffer.length) {
        const grown = new Uint8Array(Math.max(buffer.length * 2, pos + record.length));
        grown.set(buffer.subarray(0, pos));
        buffer = grown;
      }
      buffer.set(record, pos);
      pos += record.length;
      ends[i] = pos;
      lines[i] = chunk.lines[i]!;
    }
    const bytes = buffer.slice(0, pos);
    credits--;
    const message: ReplayWorkerMessage = { type: 'chunk', lastLine: chunk.lastLine, bytes, ends, lines, rejected: chunk.rejected };
    port.postMessage(message, [bytes.buffer, ends.buffer, lines.buffer]);
  }
  port.postMessage({ type: 'end' } satisfies ReplayWorkerMessage);
}

run().catch((err: unknown) => {
  const e = err as { message?: string; code?: unknown };
  port.postMessage({ type: 'error', message: String(e?.message ?? err), code: typeof e?.code === 'string' ? e.code : undefined } satisfies ReplayWorkerMessage);
});
