/**
 * Side-by-side benchmark of Portrait and Apache Flink: `npm run bench:flink`.
 *
 *   npm run bench:flink -- [--quick] [--events N] [--rounds N] [--workloads w1,w2,w3,w4]
 *                          [--states heap,rocksdb] [--seed N] [--no-check]
 *
 * Builds the Flink baseline (bench/flink, Maven; the build and the Maven
 * repository in `.cache/m2` are cached), writes one input of `--events`
 * generator events (default 5,000,000; `--quick` 200,000) into
 * `.cache/bench/flink/inputs` (kept for the next run), then for every workload
 * runs, round after round, Flink with each state backend and Portrait on that
 * same file, alternately (Flink-heap, Portrait, Flink-RocksDB, Flink-heap,
 * Portrait, …). Every run is one whole process measured by GNU time
 * (`/usr/bin/time`): wall, user and system CPU seconds and peak RSS. Prints a
 * JSON line per run, a JSON line per workload and state with the medians and
 * the ratios Portrait/Flink, and a markdown table. Unless `--no-check`, the
 * answers of the first round are compared in the canonical form (bench/diff);
 * the exit code is 1 when they differ.
 * Results are also appended to `.cache/bench/flink/results/<time>.jsonl`.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync, appendFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { join } from 'node:path';
import { BATCH_NODE_FLAGS } from '../../src/runtime/node-flags.js';
import { cachePath, commitInfo, repoRoot } from '../lib/common.js';
import { compare, readCanonical } from '../diff/canonical.js';
import { generatedInput } from '../diff/inputs.js';
import { WORKLOADS, type WorkloadName } from '../diff/workload.js';
import { ensureFlinkJar, flinkCommand, javaVersion } from './jar.js';

type State = 'heap' | 'rocksdb';

interface Args {
  events: number;
  rounds: number;
  workloads: WorkloadName[];
  states: State[];
  seed: number;
  check: boolean;
  quick: boolean;
}

function parseArgs(argv: string[]): Args {
  const args: Args = { events: 5_000_000, rounds: 2, workloads: [...WORKLOADS], states: ['heap', 'rocksdb'], seed: 42, check: true, quick: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const value = (): string => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    if (a === '--quick') {
      args.quick = true;
      args.events = 200_000;
    } else if (a === '--events') args.events = Number(value());
    else if (a === '--rounds') args.rounds = Math.max(1, Number(value()));
    else if (a === '--workloads') args.workloads = value().split(',') as WorkloadName[];
    else if (a === '--states') args.states = value().split(',') as State[];
    else if (a === '--seed') args.seed = Number(value());
    else if (a === '--no-check') args.check = false;
    else if (a === '--help' || a === '-h') {
      process.stdout.write('npm run bench:flink -- [--quick] [--events N] [--rounds N] [--workloads w1,w2,w3,w4] [--states heap,rocksdb] [--seed N] [--no-check]\n');
      process.exit(0);
    } else throw new Error(`unknown option ${a}`);
  }
  return args;
}

/** One measured process. */
interface Measured {
  wall_s: number;
  user_s: number;
  sys_s: number;
  peak_rss_mb: number;
  exit: number;
  stdout: string;
  stderr: string;
}

const TIME = '/usr/bin/time';

/** Runs a command under GNU time and returns its whole-process figures. */
function measure(argv: string[]): Measured {
  const figures = join(cachePath('flink', 'tmp'), `time-${process.pid}.txt`);
  const result = spawnSync(TIME, ['-o', figures, '-f', '%e %U %S %M', ...argv], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 64 << 20 });
  if (result.error !== undefined) throw new Error(`${TIME} could not be started (apt-get install time): ${result.error.message}`);
  const last = readFileSync(figures, 'utf8').trim().split('\n').pop() ?? '';
  const [wall, user, sys, rssKb] = last.split(' ').map(Number);
  return { wall_s: wall!, user_s: user!, sys_s: sys!, peak_rss_mb: Math.round(rssKb! / 1024), exit: result.status ?? -1, stdout: result.stdout, stderr: result.stderr };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

function r(n: number, d = 2): number {
  const f = 10 ** d;
  return Math.round(n * f) / f;
}

interface RunLine {
  name: 'bench-flink-run';
  workload: WorkloadName;
  system: 'portrait' | 'flink';
  state: State | null;
  round: number;
  events: number;
  wall_s: number;
  cpu_s: number;
  user_s: number;
  sys_s: number;
  peak_rss_mb: number;
  events_per_s: number;
  /** Processing time reported by the system itself (Flink job runtime; Portrait from first appended line to last answer), s. */
  internal_s: number | null;
  internal_events_per_s: number | null;
  load_avg_1m: number;
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const log = (m: string): void => void process.stderr.write(`${m}\n`);
  if (!existsSync(TIME)) throw new Error(`${TIME} is missing: apt-get install time`);
  ensureFlinkJar(log);
  const { commit, dirty } = commitInfo();
  const java = javaVersion();
  const machine = { cores: cpus().length, cpu: cpus()[0]?.model ?? 'unknown', memory_gb: Math.round(totalmem() / 2 ** 30), node: process.version, java, commit, src_dirty: dirty };
  log(`machine: ${JSON.stringify(machine)}`);
  const input = await generatedInput({ seed: args.seed, events: args.events, users: Math.max(2_000, Math.round(args.events / 100)), eventsPerSecond: 50 });
  log(`input: ${input.file} (${input.events} events, ${((input.lastTime - input.firstTime) / 3_600_000).toFixed(1)} h of event time)`);
  const resultsDir = cachePath('flink', 'results');
  const resultsFile = join(resultsDir, `${new Date().toISOString().replace(/[:.]/g, '-')}.jsonl`);
  const emit = (o: object): void => {
    const line = JSON.stringify(o);
    process.stdout.write(`${line}\n`);
    appendFileSync(resultsFile, `${line}\n`);
  };
  emit({ name: 'bench-flink-setup', ...machine, input: input.file, events: input.events, rounds: args.rounds, workloads: args.workloads, states: args.states });
  const outDir = cachePath('flink', 'bench-out');
  const portraitScript = join(repoRoot, 'dist', 'bench', 'diff', 'portrait-run.js');
  const runs: RunLine[] = [];
  const summaries: Array<Record<string, unknown>> = [];

  for (const workload of args.workloads) {
    const checked: Record<string, string> = {};
    for (let round = 1; round <= args.rounds; round++) {
      // Alternate: Flink (first state), Portrait, Flink (further states).
      const order: Array<{ system: 'portrait' | 'flink'; state: State | null }> = [];
      args.states.forEach((state, i) => {
        order.push({ system: 'flink', state });
        if (i === 0) order.push({ system: 'portrait', state: null });
      });
      if (args.states.length === 0) order.push({ system: 'portrait', state: null });
      for (const step of order) {
        const out = join(outDir, `${workload}-${step.system}${step.state === null ? '' : `-${step.state}`}-r${round}`);
        rmSync(out, { recursive: true, force: true });
        const argv =
          step.system === 'flink'
            ? flinkCommand({ workload, input: input.file, output: out, state: step.state!, endTime: input.lastTime })
            : [process.execPath, ...BATCH_NODE_FLAGS, portraitScript, workload, input.file, out];
        const m = measure(argv);
        if (m.exit !== 0) throw new Error(`${argv.join(' ')} failed (${m.exit}):\n${m.stderr.slice(-4000)}`);
        const self = JSON.parse(m.stdout.trim().split('\n').pop() ?? '{}') as { job_ms?: number; run_ms?: number };
        const internalMs = step.system === 'flink' ? self.job_ms : self.run_ms;
        const line: RunLine = {
          name: 'bench-flink-run',
          workload,
          system: step.system,
          state: step.state,
          round,
          events: input.events,
          wall_s: m.wall_s,
          cpu_s: r(m.user_s + m.sys_s),
          user_s: m.user_s,
          sys_s: m.sys_s,
          peak_rss_mb: m.peak_rss_mb,
          events_per_s: Math.round(input.events / m.wall_s),
          internal_s: internalMs === undefined ? null : r(internalMs / 1000),
          internal_events_per_s: internalMs === undefined ? null : Math.round(input.events / (internalMs / 1000)),
          load_avg_1m: r(loadavg()[0] ?? 0),
        };
        runs.push(line);
        emit(line);
        if (round === 1 && args.check) checked[step.state ?? 'portrait'] = out;
        if (round > 1 || !args.check) rmSync(out, { recursive: true, force: true });
      }
    }
    let answers: Record<string, unknown> = {};
    if (args.check && checked.portrait !== undefined) {
      const portrait = readCanonical(checked.portrait);
      for (const state of args.states) {
        if (checked[state] === undefined) continue;
        const c = compare(portrait, readCanonical(checked[state]));
        answers[state] = { outputs: c.portraitLines, differences: c.differences.length };
      }
      for (const path of Object.values(checked)) rmSync(path, { recursive: true, force: true });
    } else answers = {};
    const pick = (system: 'portrait' | 'flink', state: State | null): RunLine[] => runs.filter((x) => x.workload === workload && x.system === system && x.state === state);
    const p = pick('portrait', null);
    for (const state of args.states) {
      const f = pick('flink', state);
      if (f.length === 0 || p.length === 0) continue;
      const pe = median(p.map((x) => x.events_per_s));
      const fe = median(f.map((x) => x.events_per_s));
      const summary = {
        name: 'bench-flink-summary',
        workload,
        state,
        events: input.events,
        rounds: args.rounds,
        portrait_events_per_s: Math.round(pe),
        flink_events_per_s: Math.round(fe),
        ratio_events_per_s: r(pe / fe),
        portrait_internal_events_per_s: Math.round(median(p.map((x) => x.internal_events_per_s ?? 0))),
        flink_internal_events_per_s: Math.round(median(f.map((x) => x.internal_events_per_s ?? 0))),
        portrait_peak_rss_mb: median(p.map((x) => x.peak_rss_mb)),
        flink_peak_rss_mb: median(f.map((x) => x.peak_rss_mb)),
        ratio_peak_rss: r(median(p.map((x) => x.peak_rss_mb)) / median(f.map((x) => x.peak_rss_mb))),
        portrait_cpu_s: r(median(p.map((x) => x.cpu_s))),
        flink_cpu_s: r(median(f.map((x) => x.cpu_s))),
        ratio_cpu_s: r(median(p.map((x) => x.cpu_s)) / median(f.map((x) => x.cpu_s))),
        answers: answers[state] ?? null,
        load_avg_1m: r(loadavg()[0] ?? 0),
      };
      summaries.push(summary);
      emit(summary);
    }
  }

  const table = [
    `Input: ${input.events.toLocaleString('en')} generator events (seed ${args.seed}); ${args.rounds} rounds, medians; whole-process figures (GNU time); ${machine.cores} cores; ${java}; node ${process.version}; commit ${commit}${dirty ? ' (src dirty)' : ''}.`,
    '',
    '| workload | Flink state | Portrait events/s | Flink events/s | ratio P/F | Portrait peak RSS MiB | Flink peak RSS MiB | ratio | Portrait CPU s | Flink CPU s | ratio | same answers |',
    '| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |',
  ];
  for (const s of summaries) {
    const a = s.answers as { outputs: number; differences: number } | null;
    table.push(
      `| ${String(s.workload)} | ${String(s.state)} | ${String(s.portrait_events_per_s)} | ${String(s.flink_events_per_s)} | ${String(s.ratio_events_per_s)} | ${String(s.portrait_peak_rss_mb)} | ${String(s.flink_peak_rss_mb)} | ${String(s.ratio_peak_rss)} | ${String(s.portrait_cpu_s)} | ${String(s.flink_cpu_s)} | ${String(s.ratio_cpu_s)} | ${a === null ? 'not checked' : a.differences === 0 ? `yes (${a.outputs})` : `NO: ${a.differences} of ${a.outputs}`} |`,
    );
  }
  process.stdout.write(`\n${table.join('\n')}\n`);
  writeFileSync(resultsFile.replace(/\.jsonl$/, '.md'), `${table.join('\n')}\n`);
  mkdirSync(outDir, { recursive: true });
  // On the generated input nothing is late, so no documented difference applies: any difference fails the run.
  const differing = summaries.filter((s) => ((s.answers as { differences: number } | null)?.differences ?? 0) > 0);
  if (differing.length > 0) {
    log(`different answers: ${differing.map((s) => `${String(s.workload)} (${String(s.state)})`).join(', ')}; compare them with node dist/bench/diff/run.js`);
    process.exitCode = 1;
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
  process.exitCode = 1;
});
