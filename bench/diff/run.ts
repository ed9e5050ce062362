/**
 * The differential check: Portrait and Apache Flink on the same inputs, the
 * same workloads, the same answers.
 *
 *   npm run build && node dist/bench/diff/run.js [--seeds 1,2,3] [--events 200000]
 *     [--workloads w1,w2,w3,w4] [--states heap,rocksdb] [--no-taobao] [--quick]
 *
 * For every input (generated NDJSON per seed, one of them with heavier
 * disorder; the cleaned Taobao CSV; the raw Taobao CSV) and workload, it runs
 * Portrait (bench/diff/portrait-run.ts, in a child process) and the Flink jar
 * with each state backend, turns both answers into the canonical form
 * (canonical.ts), compares them and prints one JSON line per comparison and a
 * markdown table. A difference is either explained by a pinned semantic
 * difference (PINS in pins.ts, docs/flink.md) or unexplained; the exit code is 1 when
 * any is unexplained or a pinned difference did not show up as expected.
 * Canonical files and differences are kept in `.cache/bench/flink/diff/`.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { cachePath, repoRoot } from '../lib/common.js';
import { ensureFlinkJar, javaVersion, runFlink } from '../flink/jar.js';
import { compare, readCanonical, writeCanonical, type Difference } from './canonical.js';
import { generatedInput, USER_BEHAVIOR_CSV, userBehaviorInput, type InputManifest } from './inputs.js';
import { lateTimesOf, PINS, type CheckInput } from './pins.js';
import { WORKLOADS, type WorkloadName } from './workload.js';

interface Args {
  seeds: number[];
  events: number;
  workloads: WorkloadName[];
  states: Array<'heap' | 'rocksdb'>;
  taobao: boolean;
}

function parseArgs(argv: string[]): Args {
  const args: Args = { seeds: [1, 2, 3], events: 200_000, workloads: [...WORKLOADS], states: ['heap', 'rocksdb'], taobao: true };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const value = (): string => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    if (a === '--seeds') args.seeds = value().split(',').map(Number);
    else if (a === '--events') args.events = Number(value());
    else if (a === '--workloads') args.workloads = value().split(',') as WorkloadName[];
    else if (a === '--states') args.states = value().split(',') as Array<'heap' | 'rocksdb'>;
    else if (a === '--no-taobao') args.taobao = false;
    else if (a === '--quick') {
      args.events = 50_000;
      args.seeds = [1];
      args.states = ['heap'];
    } else throw new Error(`unknown option ${a}`);
  }
  return args;
}

async function checkInput(name: string, manifest: Pick<InputManifest, 'file' | 'lastTime'>): Promise<CheckInput> {
  return { name, file: manifest.file, endTime: manifest.lastTime, lateTimes: await lateTimesOf(manifest.file) };
}

function runPortraitChild(workload: WorkloadName, input: string, output: string): Record<string, unknown> {
  const script = join(repoRoot, 'dist', 'bench', 'diff', 'portrait-run.js');
  const result = spawnSync(process.execPath, [script, workload, input, output], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 64 << 20 });
  if (result.status !== 0) throw new Error(`portrait ${workload} on ${input} failed (${String(result.status)}):\n${result.stderr}`);
  return JSON.parse(result.stdout.trim().split('\n').pop() ?? '{}') as Record<string, unknown>;
}

interface Row {
  input: string;
  workload: WorkloadName;
  state: string;
  portrait_lines: number;
  flink_lines: number;
  equal: number;
  differences: number;
  explained: number;
  unexplained: number;
  pins: Record<string, { expected: number; found: number }>;
  ok: boolean;
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const log = (m: string): void => void process.stderr.write(`${m}\n`);
  ensureFlinkJar(log);
  log(`${javaVersion()}; node ${process.version}`);
  const inputs: CheckInput[] = [];
  for (const seed of args.seeds) {
    // The last seed gets heavier disorder: 10 % of events up to 30 s out of order (still inside the 60 s watermark bound).
    const heavy = seed === args.seeds[args.seeds.length - 1] && args.seeds.length > 1;
    const m = await generatedInput({ seed, events: args.events, ...(heavy ? { outOfOrderFraction: 0.1, maxOutOfOrderMs: 30_000 } : {}) });
    log(`input seed ${seed}: ${m.events} events, ${((m.lastTime - m.firstTime) / 3_600_000).toFixed(1)} h of event time, disorder up to ${m.maxDisorderMs} ms`);
    inputs.push(await checkInput(`gen-s${seed}${heavy ? '-disorder30s' : ''}`, m));
  }
  if (args.taobao) {
    const clean = await userBehaviorInput();
    inputs.push(await checkInput('userbehavior', clean));
    inputs.push({ name: 'userbehavior-raw', file: USER_BEHAVIOR_CSV, endTime: clean.lastTime, lateTimes: await lateTimesOf(USER_BEHAVIOR_CSV) });
  }
  const rows: Row[] = [];
  for (const input of inputs) {
    for (const workload of args.workloads) {
      const dir = join(cachePath('flink', 'diff'), input.name, workload);
      rmSync(dir, { recursive: true, force: true });
      mkdirSync(dir, { recursive: true });
      const portraitOut = join(dir, 'portrait.ndjson');
      const p = runPortraitChild(workload, input.file, portraitOut);
      const portrait = readCanonical(portraitOut);
      writeCanonical(portrait, join(dir, 'portrait.canonical.ndjson'));
      for (const state of args.states) {
        const flinkOut = join(dir, `flink-${state}`);
        const f = runFlink({ workload, input: input.file, output: flinkOut, state, endTime: input.endTime });
        const flink = readCanonical(flinkOut);
        writeCanonical(flink, join(dir, `flink-${state}.canonical.ndjson`));
        const c = compare(portrait, flink);
        const pins: Row['pins'] = {};
        const unexplained: Difference[] = [];
        for (const pin of PINS) pins[pin.id] = { expected: pin.expected(input, workload), found: 0 };
        for (const d of c.differences) {
          const pin = PINS.find((x) => x.explains(d, input));
          if (pin === undefined) unexplained.push(d);
          else pins[pin.id]!.found++;
        }
        const pinsOk = Object.values(pins).every((x) => x.expected === x.found);
        writeFileSync(join(dir, `differences-${state}.json`), JSON.stringify({ unexplained, all: c.differences, groups: c.groups }, null, 2));
        const row: Row = {
          input: input.name,
          workload,
          state,
          portrait_lines: c.portraitLines,
          flink_lines: c.flinkLines,
          equal: c.equal,
          differences: c.differences.length,
          explained: c.differences.length - unexplained.length,
          unexplained: unexplained.length,
          pins,
          ok: unexplained.length === 0 && pinsOk,
        };
        rows.push(row);
        process.stdout.write(`${JSON.stringify({ ...row, portrait_ms: p.run_ms, portrait_late: p.late, portrait_rule_late: p.rule_late, portrait_dropped_partial_matches: p.dropped_partial_matches, flink_ms: f.job_ms })}\n`);
        for (const d of unexplained.slice(0, 5)) log(`  unexplained ${d.group}: portrait ${d.portrait ?? '(none)'} | flink ${d.flink ?? '(none)'}`);
        if (!pinsOk) log(`  pinned differences not as expected: ${JSON.stringify(pins)} (see ${basename(dir)})`);
      }
    }
  }
  const lines = ['| input | workload | state | outputs compared (Portrait / Flink) | equal | differences | explained (pinned) | unexplained |', '| --- | --- | --- | --- | --- | --- | --- | --- |'];
  for (const r of rows) lines.push(`| ${r.input} | ${r.workload} | ${r.state} | ${r.portrait_lines} / ${r.flink_lines} | ${r.equal} | ${r.differences} | ${r.explained} | ${r.unexplained}${r.ok ? '' : ' ✗'} |`);
  process.stdout.write(`\n${lines.join('\n')}\n`);
  const failed = rows.filter((r) => !r.ok).length;
  process.stdout.write(`\n${rows.length - failed} passed, ${failed} failed\n`);
  process.exitCode = failed === 0 ? 0 : 1;
}

main().catch((err: unknown) => {
  process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
  process.exitCode = 2;
});
