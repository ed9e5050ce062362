/**
 * Benchmark runner: `npm run bench [-- NAME… | --quick | --cpu-prof | --compare FILE | --save-baseline NAME | --list]`.
 *
 * Runs each scenario (`bench/<layer>-<scenario>.ts`) in its own Node process
 * (`--expose-gc`, a raised heap limit so memory is measured rather than
 * capped), echoes every result line (one JSON object per case) to stdout as it
 * arrives, and ends with a markdown table of each figure beside the baseline
 * measured in the same run and its target. Results are also written to
 * `.cache/bench/results/<time>.jsonl`.
 */
import { spawn } from 'node:child_process';
import { cpus, totalmem } from 'node:os';
import { cpSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { BATCH_NODE_FLAGS, SERVER_NODE_FLAGS } from '../src/runtime/node-flags.js';
import { cachePath, commitInfo, repoRoot, type BenchContext, type BenchResult, type Scenario, type TableRow } from './lib/common.js';

/** Scenarios in run order: engine-replay leaves the 1M-user state the next two use. */
export const SCENARIOS = ['engine-replay', 'serving-profile-get', 'engine-recovery', 'serving-ingest-http', 'serving-event-latency', 'engine-rules', 'serving-decide'] as const;

/** Heap limit of scenario processes, MiB (the default, ~4 GiB here, would cap the memory figure instead of measuring it). */
const HEAP_LIMIT_MB = 12_288;
/** A regression past this share fails `--compare`. */
const DEFAULT_THRESHOLD = 0.3;

interface Args {
  names: string[];
  quick: boolean;
  fullSize: boolean;
  cpuProf: boolean;
  list: boolean;
  compare: string | undefined;
  saveBaseline: string | undefined;
  threshold: number;
  child: string | undefined;
}

function parseArgs(argv: string[]): Args {
  const args: Args = { names: [], quick: false, fullSize: false, cpuProf: false, list: false, compare: undefined, saveBaseline: undefined, threshold: DEFAULT_THRESHOLD, child: undefined };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const value = (): string => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    if (a === '--quick') args.quick = true;
    else if (a === '--full-size') args.fullSize = true;
    else if (a === '--cpu-prof') args.cpuProf = true;
    else if (a === '--list') args.list = true;
    else if (a === '--compare') args.compare = value();
    else if (a === '--save-baseline') args.saveBaseline = value();
    else if (a === '--threshold') args.threshold = Number(value());
    else if (a === '--child') args.child = value();
    else if (a === '--help' || a === '-h') {
      process.stdout.write(usage());
      process.exit(0);
    } else if (a.startsWith('--')) throw new Error(`unknown option ${a}\n${usage()}`);
    else args.names.push(a);
  }
  return args;
}

function usage(): string {
  return [
    'usage: npm run bench -- [NAME…] [--quick | --full-size] [--cpu-prof] [--compare FILE] [--save-baseline NAME] [--threshold 0.3] [--list]',
    `  NAME            scenarios to run (default: all): ${SCENARIOS.join(', ')}; a unique part of a name works`,
    '  --quick         shrunk sizes, a smoke run of a minute or two',
    '  --full-size     no time budget: engine-replay replays the whole 1M-user dataset however long it takes',
    '  --cpu-prof      write a V8 CPU profile per scenario to .cache/bench/profiles (see bench/lib/profile-summary.ts)',
    '  --compare FILE  compare with an earlier result file (bench/baselines/*.json or a .jsonl); exit 1 past --threshold',
    '  --save-baseline NAME  write this run to bench/baselines/NAME.json',
    '',
  ].join('\n');
}

function select(names: string[]): string[] {
  if (names.length === 0) return [...SCENARIOS];
  return names.map((n) => {
    if ((SCENARIOS as ReadonlyArray<string>).includes(n)) return n;
    const matches = SCENARIOS.filter((s) => s.includes(n));
    if (matches.length !== 1) throw new Error(`"${n}" ${matches.length === 0 ? 'matches no scenario' : `is ambiguous (${matches.join(', ')})`}; known: ${SCENARIOS.join(', ')}`);
    return matches[0]!;
  });
}

async function runChild(name: string, quick: boolean, fullSize: boolean): Promise<void> {
  const mod = (await import(pathToFileURL(join(fileURLToPath(new URL('.', import.meta.url)), `${name}.js`)).href)) as { scenario: Scenario };
  const ctx: BenchContext = {
    quick,
    fullSize,
    emit: (result) => process.stdout.write(`${JSON.stringify({ ...result, mode: quick ? 'quick' : fullSize ? 'full-size' : 'default' })}\n`),
    log: (message) => process.stderr.write(`[${name}] ${message}\n`),
  };
  await mod.scenario.run(ctx);
}

/**
 * Copies the compiled code (dist/src, dist/bench) to `.cache/bench/dist-snapshot`
 * and returns the runner script there. Scenario processes start from the copy,
 * so a rebuild of dist while the suite runs (other work in the same checkout)
 * cannot change the code under test between or inside scenarios.
 */
function snapshotDist(): string {
  const dist = join(repoRoot, 'dist');
  const snapshot = join(cachePath(), 'dist-snapshot');
  rmSync(snapshot, { recursive: true, force: true });
  cpSync(join(dist, 'src'), join(snapshot, 'src'), { recursive: true });
  cpSync(join(dist, 'bench'), join(snapshot, 'bench'), { recursive: true });
  return join(snapshot, 'bench', 'run.js');
}

function runScenario(name: string, script: string, args: Args, results: BenchResult[]): Promise<number> {
  // A scenario of the serving layer runs a server: with the server's Node flags (as `portrait serve`), not the batch ones.
  const flags = ['--expose-gc', `--max-old-space-size=${HEAP_LIMIT_MB}`, ...(name.startsWith('serving-') ? SERVER_NODE_FLAGS : BATCH_NODE_FLAGS)];
  if (args.cpuProf) flags.push('--cpu-prof', `--cpu-prof-dir=${cachePath('profiles')}`, `--cpu-prof-name=${name}-${Date.now()}.cpuprofile`);
  const { commit, dirty } = commitInfo();
  const env = { ...process.env, PORTRAIT_BENCH_ROOT: repoRoot, PORTRAIT_BENCH_COMMIT: commit, PORTRAIT_BENCH_DIRTY: dirty ? '1' : '0' };
  const child = spawn(process.execPath, [...flags, script, '--child', name, ...(args.quick ? ['--quick'] : []), ...(args.fullSize ? ['--full-size'] : [])], {
    stdio: ['ignore', 'pipe', 'inherit'],
    env,
  });
  let buffer = '';
  child.stdout.setEncoding('utf8');
  child.stdout.on('data', (chunk: string) => {
    buffer += chunk;
    let nl: number;
    while ((nl = buffer.indexOf('\n')) !== -1) {
      const line = buffer.slice(0, nl);
      buffer = buffer.slice(nl + 1);
      if (line.startsWith('{')) {
        try {
          results.push(JSON.parse(line) as BenchResult);
        } catch {
          // not a result: pass it on as is
        }
      }
      process.stdout.write(`${line}\n`);
    }
  });
  return new Promise((done) => child.on('exit', (code) => done(code ?? 1)));
}

function table(results: ReadonlyArray<BenchResult>): string {
  const rows: string[] = [];
  rows.push('| case | figure | measured | baseline (same run) | ratio | target | met |');
  rows.push('| --- | --- | --- | --- | --- | --- | --- |');
  for (const r of results) {
    const t = r.table as TableRow | undefined;
    if (t === undefined) continue;
    const met = t.met === null ? '—' : t.met ? 'yes' : '**no**';
    rows.push(`| ${r.name} | ${t.figure} | ${t.value} | ${t.baseline} | ${t.ratio} | ${t.target} | ${met} |`);
  }
  return rows.join('\n');
}

function loadResults(path: string): BenchResult[] {
  const text = readFileSync(path, 'utf8').trim();
  if (text.startsWith('[')) return JSON.parse(text) as BenchResult[];
  return text.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as BenchResult);
}

/** Compares with an earlier run: ops/s lower or p99 higher by more than `threshold` is a regression. */
function compare(current: ReadonlyArray<BenchResult>, earlier: ReadonlyArray<BenchResult>, threshold: number): { text: string; regressions: number } {
  const byName = new Map(earlier.map((r) => [r.name, r]));
  const rows = ['| case | ops/s now | ops/s before | change | p99 now (µs) | p99 before (µs) | change | verdict |', '| --- | --- | --- | --- | --- | --- | --- | --- |'];
  let regressions = 0;
  const change = (now: number | null, before: number | null): number | undefined => (now === null || before === null || before === 0 ? undefined : now / before - 1);
  const pct = (c: number | undefined): string => (c === undefined ? '—' : `${c >= 0 ? '+' : ''}${(c * 100).toFixed(1)} %`);
  for (const r of current) {
    const b = byName.get(r.name);
    // Sizes differ between modes: only like is compared with like.
    if (b === undefined || (b.mode ?? 'default') !== (r.mode ?? 'default')) continue;
    const ops = change(r.ops_per_s, b.ops_per_s);
    const p99 = change(r.p99_us, b.p99_us);
    const worse = (ops !== undefined && ops < -threshold) || (p99 !== undefined && p99 > threshold);
    if (worse) regressions++;
    rows.push(`| ${r.name} | ${r.ops_per_s ?? '—'} | ${b.ops_per_s ?? '—'} | ${pct(ops)} | ${r.p99_us ?? '—'} | ${b.p99_us ?? '—'} | ${pct(p99)} | ${worse ? '**regression**' : 'ok'} |`);
  }
  return { text: rows.join('\n'), regressions };
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  if (args.child !== undefined) {
    await runChild(args.child, args.quick, args.fullSize);
    return;
  }
  if (args.list) {
    for (const name of SCENARIOS) {
      const mod = (await import(`./${name}.js`)) as { scenario: Scenario };
      process.stdout.write(`${name}\t${mod.scenario.description}\n`);
    }
    return;
  }
  const names = select(args.names);
  const started = Date.now();
  const script = snapshotDist();
  const results: BenchResult[] = [];
  const failed: string[] = [];
  for (const name of names) {
    process.stderr.write(`\n== ${name}${args.quick ? ' (quick)' : ''}\n`);
    const t = Date.now();
    const code = await runScenario(name, script, args, results);
    process.stderr.write(`== ${name}: ${code === 0 ? 'done' : `FAILED (exit ${code})`} in ${((Date.now() - t) / 1000).toFixed(1)} s\n`);
    if (code !== 0) failed.push(name);
  }
  const { commit, dirty } = commitInfo();
  const cpu = cpus();
  const header = `Node ${process.version}, ${cpu.length} × ${cpu[0]?.model ?? 'unknown CPU'}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB RAM, commit ${commit}${dirty ? ' (src modified)' : ''}${args.quick ? ', --quick' : ''}${args.fullSize ? ', --full-size' : ''}, ${((Date.now() - started) / 1000).toFixed(0)} s`;
  process.stdout.write(`\n${header}\n\n${table(results)}\n`);

  const resultsDir = cachePath('results');
  const file = join(resultsDir, `${new Date(started).toISOString().replaceAll(':', '-')}${args.quick ? '-quick' : ''}.jsonl`);
  writeFileSync(file, results.map((r) => JSON.stringify(r)).join('\n') + '\n');
  process.stderr.write(`results written to ${file}\n`);
  if (args.saveBaseline !== undefined) {
    const dir = join(repoRoot, 'bench', 'baselines');
    mkdirSync(dir, { recursive: true });
    const path = join(dir, `${args.saveBaseline}.json`);
    writeFileSync(path, `${JSON.stringify(results.map(({ table: _t, ...r }) => r), null, 2)}\n`);
    process.stderr.write(`baseline written to ${path}\n`);
  }
  if (args.compare !== undefined) {
    const path = existsSync(args.compare) ? args.compare : join(repoRoot, 'bench', 'baselines', `${args.compare}.json`);
    const { text, regressions } = compare(results, loadResults(resolve(path)), args.threshold);
    process.stdout.write(`\nCompared with ${path} (threshold ${(args.threshold * 100).toFixed(0)} %):\n\n${text}\n`);
    if (regressions > 0) process.exitCode = 1;
  }
  if (failed.length > 0) {
    process.stderr.write(`failed scenarios: ${failed.join(', ')}\n`);
    process.exitCode = 1;
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
  process.exitCode = 1;
});
