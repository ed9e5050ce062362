import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadavg } from 'node:os';
import { SERVER_NODE_FLAGS } from '../../src/runtime/node-flags.js';

/**
 * Root of the repository: the nearest folder above this module with a
 * package.json (dist/bench/lib when built, bench/lib when tests import the
 * sources), or as the runner passes it to scenario processes (they run from a
 * snapshot of dist, see run.ts).
 */
export const repoRoot = process.env.PORTRAIT_BENCH_ROOT ?? packageRoot(dirname(fileURLToPath(import.meta.url)));

function packageRoot(from: string): string {
  for (let dir = from; ; dir = dirname(dir)) {
    if (existsSync(join(dir, 'package.json'))) return dir;
    if (dirname(dir) === dir) return resolve(from, '..', '..', '..');
  }
}

/** Cache folder of the benchmarks (git-ignored): generated inputs, state dirs, profiles, results. */
export const cacheDir = process.env.PORTRAIT_BENCH_CACHE ?? join(repoRoot, '.cache', 'bench');

/** Creates (if needed) and returns a folder under the bench cache. */
export function cachePath(...parts: string[]): string {
  const path = join(cacheDir, ...parts);
  mkdirSync(path, { recursive: true });
  return path;
}

/** Everything a scenario needs from the runner. */
export interface BenchContext {
  /** Shrunk sizes for a smoke run. */
  readonly quick: boolean;
  /** No time budget: replay the whole 1M-user dataset however long it takes. */
  readonly fullSize: boolean;
  /** Prints one result line (JSON) to stdout. */
  emit(result: BenchResult): void;
  /** Progress message to stderr. */
  log(message: string): void;
}

/** The fields every result line has. Figures that do not apply are null. */
export interface BenchResult {
  name: string;
  ops_per_s: number | null;
  p50_us: number | null;
  p99_us: number | null;
  /** Any further figures of the case. */
  [extra: string]: unknown;
}

/** A row of the final markdown table: the figure beside its same-run baseline and the target. */
export interface TableRow {
  figure: string;
  value: string;
  baseline: string;
  ratio: string;
  target: string;
  /** true/false when a target applies, null otherwise. */
  met: boolean | null;
}

/** A benchmark scenario: one file `bench/<layer>-<scenario>.ts`. */
export interface Scenario {
  readonly name: string;
  readonly description: string;
  run(ctx: BenchContext): Promise<void>;
}

let commitCache: { commit: string; dirty: boolean } | undefined;

/**
 * The commit (short) the code under test was built from and whether src/ had
 * uncommitted changes: as the runner saw them when it took its snapshot of
 * dist, else as git says now.
 */
export function commitInfo(): { commit: string; dirty: boolean } {
  if (commitCache !== undefined) return commitCache;
  if (process.env.PORTRAIT_BENCH_COMMIT !== undefined) {
    commitCache = { commit: process.env.PORTRAIT_BENCH_COMMIT, dirty: process.env.PORTRAIT_BENCH_DIRTY === '1' };
    return commitCache;
  }
  try {
    const commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: repoRoot, encoding: 'utf8' }).trim();
    const status = execFileSync('git', ['status', '--porcelain', '--', 'src'], { cwd: repoRoot, encoding: 'utf8' }).trim();
    commitCache = { commit, dirty: status !== '' };
  } catch {
    commitCache = { commit: 'unknown', dirty: false };
  }
  return commitCache;
}

/** Completes a result line with the fields every line carries. */
export function resultLine(name: string, figures: { ops_per_s: number | null; p50_us: number | null; p99_us: number | null }, extra: Record<string, unknown> = {}): BenchResult {
  const { commit, dirty } = commitInfo();
  return {
    name,
    ops_per_s: figures.ops_per_s === null ? null : round(figures.ops_per_s, 1),
    p50_us: figures.p50_us === null ? null : round(figures.p50_us, 1),
    p99_us: figures.p99_us === null ? null : round(figures.p99_us, 1),
    node: process.version,
    commit,
    ...(dirty ? { src_dirty: true } : {}),
    load_avg_1m: round(loadavg()[0] ?? 0, 2),
    ...extra,
  };
}

/** Percentiles of a sample, nearest rank. Sorts the array in place. */
export function percentiles(sample: Float64Array | number[], ps: ReadonlyArray<number>): number[] {
  const a = sample instanceof Float64Array ? sample : Float64Array.from(sample);
  a.sort();
  return ps.map((p) => {
    if (a.length === 0) return NaN;
    const rank = Math.min(a.length - 1, Math.max(0, Math.ceil((p / 100) * a.length) - 1));
    return a[rank]!;
  });
}

export function round(n: number, digits = 0): number {
  const f = 10 ** digits;
  return Math.round(n * f) / f;
}

/** `1234567` → `1.23 M`, for the table. */
export function human(n: number, unit = ''): string {
  if (!Number.isFinite(n)) return String(n);
  const abs = Math.abs(n);
  const s = abs >= 1e6 ? `${(n / 1e6).toFixed(2)} M` : abs >= 1e4 ? `${(n / 1e3).toFixed(1)} k` : abs >= 100 ? n.toFixed(0) : n.toFixed(2);
  return unit === '' ? s.trim() : `${s}${s.endsWith(' M') || s.endsWith(' k') ? '' : ' '}${unit}`;
}

/** Microseconds → `1.23 ms` / `456 µs`. */
export function duration(us: number): string {
  if (!Number.isFinite(us)) return 'n/a';
  if (us >= 1e6) return `${(us / 1e6).toFixed(2)} s`;
  if (us >= 1e3) return `${(us / 1e3).toFixed(us >= 1e5 ? 0 : 2)} ms`;
  return `${us.toFixed(0)} µs`;
}

export function mib(bytes: number): number {
  return round(bytes / 2 ** 20, 1);
}

/** Runs a full GC (needs --expose-gc) a few times so heap figures are live data only. */
export function fullGc(): boolean {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc === undefined) return false;
  for (let i = 0; i < 3; i++) gc();
  return true;
}

/** A child Node process that reports JSON messages on stdout, one per line. */
export interface NodeChild {
  readonly child: ChildProcess;
  /** Resolves with the next message whose `type` equals `type`. */
  next<T = Record<string, unknown>>(type: string): Promise<T>;
  /** Sends one JSON message to the child's stdin. */
  send(message: unknown): void;
  /** Resolves with the exit code. */
  readonly exited: Promise<number>;
}

/**
 * Starts `node [flags] script args…` with stdin/stdout as a JSON-lines channel
 * (stderr passes through). Used for load clients in a second process.
 */
export function spawnNode(script: string, args: ReadonlyArray<string>, flags: ReadonlyArray<string> = []): NodeChild {
  const child = spawn(process.execPath, [...flags, script, ...args], { stdio: ['pipe', 'pipe', 'inherit'] });
  const waiting = new Map<string, Array<(m: Record<string, unknown>) => void>>();
  const queued = new Map<string, Array<Record<string, unknown>>>();
  let buffer = '';
  child.stdout!.setEncoding('utf8');
  child.stdout!.on('data', (chunk: string) => {
    buffer += chunk;
    let nl: number;
    while ((nl = buffer.indexOf('\n')) !== -1) {
      const line = buffer.slice(0, nl);
      buffer = buffer.slice(nl + 1);
      if (line.trim() === '') continue;
      let message: Record<string, unknown>;
      try {
        message = JSON.parse(line) as Record<string, unknown>;
      } catch {
        process.stderr.write(`[child] ${line}\n`);
        continue;
      }
      const type = String(message.type);
      const w = waiting.get(type);
      if (w !== undefined && w.length > 0) w.shift()!(message);
      else {
        const q = queued.get(type) ?? [];
        q.push(message);
        queued.set(type, q);
      }
    }
  });
  const exited = new Promise<number>((resolveExit) => child.on('exit', (code) => resolveExit(code ?? 1)));
  return {
    child,
    exited,
    next<T>(type: string): Promise<T> {
      const q = queued.get(type);
      if (q !== undefined && q.length > 0) return Promise.resolve(q.shift() as T);
      return new Promise<T>((resolveNext, reject) => {
        const list = waiting.get(type) ?? [];
        list.push((m) => resolveNext(m as T));
        waiting.set(type, list);
        void exited.then((code) => reject(new Error(`child ${script} exited with code ${code} before sending "${type}"`)));
      });
    },
    send(message: unknown): void {
      child.stdin!.write(`${JSON.stringify(message)}\n`);
    },
  };
}

/** In a child started by {@link spawnNode}: sends one message to the parent. */
export function sendToParent(message: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify(message)}\n`);
}

/** In a child started by {@link spawnNode}: resolves with the next message from the parent. */
export function messagesFromParent(): AsyncIterable<Record<string, unknown>> {
  process.stdin.setEncoding('utf8');
  return (async function* () {
    let buffer = '';
    for await (const chunk of process.stdin) {
      buffer += chunk as string;
      let nl: number;
      while ((nl = buffer.indexOf('\n')) !== -1) {
        const line = buffer.slice(0, nl);
        buffer = buffer.slice(nl + 1);
        if (line.trim() !== '') yield JSON.parse(line) as Record<string, unknown>;
      }
    }
  })();
}

/**
 * Starts the HTTP load client (`lib/http-client.js`) in `mode`, with the
 * server's Node flags: it shares the machine with the server under test, and
 * a full collection of its own marking on four threads would take the
 * server's core as well.
 */
export function spawnLoadClient(mode: Record<string, unknown>): NodeChild {
  return spawnNode(benchScript('lib/http-client.js'), [JSON.stringify(mode)], SERVER_NODE_FLAGS);
}

/** Path of a compiled bench file (e.g. `lib/http-client.js`) beside this one. */
export function benchScript(relative: string): string {
  return fileURLToPath(new URL(`../${relative}`, import.meta.url));
}

/** Wall-clock epoch time in ms with sub-ms resolution, comparable across processes. */
export function epochMs(): number {
  return performance.timeOrigin + performance.now();
}
