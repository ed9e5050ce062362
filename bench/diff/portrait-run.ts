/**
 * Runs one workload of the Flink side-by-side check on Portrait's embedded
 * system and writes its answers as JSON lines, in the shape the Flink jobs
 * write (bench/flink, `Output.java`); `canonical.ts` turns both into the
 * canonical form.
 *
 *   node dist/bench/diff/portrait-run.js w1|w2|w3|w4 INPUT OUTPUT_FILE [--data-dir DIR] [--partitions N] [--fsync batch|none]
 *
 * The run: open a fresh system, put the workload's tags and rules online,
 * replay INPUT (the Taobao CSV through `taobaoSchema`), wait for the engine.
 * End of stream is defined as in Flink, where the final watermark fires every
 * timer: the tag values are read first, at stream time = the highest event time
 * of the input (Flink W1 reads its values at the same time); then stream time
 * is moved far ahead with one final time mark, which fires every pending
 * timeout, absence and ordering buffer. Prints one JSON line of figures.
 */
import { createWriteStream, rmSync } from 'node:fs';
import { once } from 'node:events';
import { join, resolve } from 'node:path';
import type { Decision, Event } from '../../src/engine/index.js';
import { defaultReplayOptions, replayFile, taobaoSchema } from '../../src/ingest/index.js';
import { openEmbeddedSystem } from '../../src/runtime/embedded-system.js';
import { loadConfig } from '../../src/config/index.js';
import { cachePath } from '../lib/common.js';
import { definitionsOf, flavorOf, flavorSpec, outOfOrdernessMs, type WorkloadName } from './workload.js';

/** How far past the last event the final mark moves stream time: more than any window, `within` and the watermark bound. */
export const END_OF_STREAM_ADVANCE_MS = 7 * 86_400_000;

export interface PortraitRunOptions {
  workload: WorkloadName;
  input: string;
  output: string;
  dataDir?: string;
  partitions?: number;
  fsync?: 'batch' | 'none';
}

export interface PortraitRunResult {
  system: 'portrait';
  workload: WorkloadName;
  events: number;
  rejected: number;
  outputs: number;
  /** Wall time from the first appended line until every answer was out, ms. */
  run_ms: number;
  /** Opening the system and putting definitions online, ms. */
  setup_ms: number;
  end_time: number;
  late: number;
  rule_late: number;
  /** Partial matches dropped at a rule's maxPartialMatches (Flink keeps all): must be 0 for answers to agree. */
  dropped_partial_matches: number;
  missing_key: number;
  partitions: number;
}

export async function runPortrait(options: PortraitRunOptions): Promise<PortraitRunResult> {
  const t0 = performance.now();
  const input = resolve(options.input);
  const flavor = flavorOf(input);
  const dataDir = options.dataDir ?? join(cachePath('flink', 'portrait'), `run-${process.pid}`);
  rmSync(dataDir, { recursive: true, force: true });
  const overrides: Record<string, unknown> = {
    dataDir,
    port: 0,
    logLevel: 'silent',
    'engine.outOfOrdernessMs': outOfOrdernessMs(),
  };
  if (options.partitions !== undefined) overrides.partitions = options.partitions;
  if (options.fsync !== undefined) overrides['log.fsync'] = options.fsync;
  const config = loadConfig({ overrides });
  const system = await openEmbeddedSystem(config);
  const out = createWriteStream(options.output, { highWaterMark: 1 << 20 });
  let outputs = 0;
  const write = (line: string): void => {
    outputs++;
    out.write(`${line}\n`);
  };
  try {
    const { tags, rules } = definitionsOf(options.workload, flavor);
    for (const tag of tags) {
      await system.definitions.createTag(tag);
      await system.definitions.setTagStatus(tag.id, 'online');
    }
    const keyedRule = flavorSpec(flavor).keyedAggregate.id;
    for (const rule of rules) {
      await system.definitions.createRule(rule);
      await system.definitions.setRuleStatus(rule.id, 'online');
    }
    await system.engine.drain();
    system.decisions.subscribe((decisions) => {
      for (const d of decisions) write(decisionLine(d, d.ruleId === keyedRule));
    });
    const t1 = performance.now();

    const progress = await replayFile(system.ingestor, system.catalog, system.limits, system.clock, {
      ...defaultReplayOptions,
      file: input,
      ...(flavor === 'taobao' ? { schema: taobaoSchema } : {}),
      resume: [],
    });
    await system.ingestor.mark();
    await system.engine.drain();
    const endTime = progress.maxTime;
    if (tags.length > 0) {
      // Values at stream time = the last event time (Flink W1 reads them at the same time).
      await system.store.profiles.flushed();
      const ids = new Set(tags.map((t) => t.id));
      let after: string | undefined;
      for (;;) {
        const page = system.store.profiles.listProfileIds(10_000, after);
        if (page.length === 0) break;
        for (const profile of system.store.profiles.getProfiles(page)) {
          if (profile === undefined) continue;
          for (const [id, tag] of Object.entries(profile.tags)) {
            if (!ids.has(id) || typeof tag.value !== 'number' || tag.value === 0) continue;
            write(`{"kind":"tag","entity":${JSON.stringify(profile.key)},"tag":${JSON.stringify(id)},"value":${tag.value}}`);
          }
        }
        after = page[page.length - 1];
      }
    }
    if (rules.length > 0) {
      // End of stream: as Flink's final watermark, move time past every window and `within`.
      system.ingestor.noteAccepted(0, endTime + END_OF_STREAM_ADVANCE_MS);
      await system.ingestor.mark();
      await system.engine.drain();
    }
    const t2 = performance.now();
    out.end();
    await once(out, 'finish');
    const stats = system.engine.stats();
    const result: PortraitRunResult = {
      system: 'portrait',
      workload: options.workload,
      events: progress.appended,
      rejected: progress.rejected,
      outputs,
      run_ms: Math.round(t2 - t1),
      setup_ms: Math.round(t1 - t0),
      end_time: endTime,
      late: stats.partitions.reduce((n, p) => n + p.late, 0),
      rule_late: stats.rules.reduce((n, r) => n + r.late, 0),
      dropped_partial_matches: stats.rules.reduce((n, r) => n + r.droppedPartialMatches, 0),
      missing_key: stats.rules.reduce((n, r) => n + r.missingKey, 0),
      partitions: config.partitions,
    };
    return result;
  } finally {
    await system.close({ checkpoint: false });
    if (options.dataDir === undefined) rmSync(dataDir, { recursive: true, force: true });
  }
}

function decisionLine(d: Decision, aggregate: boolean): string {
  const key = Object.values(d.key).map(String).join('|');
  const head = `{"kind":"decision","rule":${JSON.stringify(d.ruleId)},"key":${JSON.stringify(key)},"outcome":"${d.outcome}","time":${d.time}`;
  if (aggregate) return `${head},"value":${d.aggregates[0] ?? null}}`;
  const events: Record<string, number[]> = {};
  for (const [stage, list] of Object.entries(d.matched ?? {})) events[stage] = (list as Event[]).map((e) => e.time);
  return `${head},"events":${JSON.stringify(events)}}`;
}

async function main(argv: string[]): Promise<void> {
  const positional: string[] = [];
  const options: Partial<PortraitRunOptions> = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const value = (): string => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    if (a === '--data-dir') options.dataDir = value();
    else if (a === '--partitions') options.partitions = Number(value());
    else if (a === '--fsync') options.fsync = value() as 'batch' | 'none';
    else if (a.startsWith('--')) throw new Error(`unknown option ${a}`);
    else positional.push(a);
  }
  const [workload, input, output] = positional;
  if (workload === undefined || input === undefined || output === undefined || !/^w[1-4]$/.test(workload)) {
    process.stderr.write('usage: node dist/bench/diff/portrait-run.js w1|w2|w3|w4 INPUT OUTPUT_FILE [--data-dir DIR] [--partitions N] [--fsync batch|none]\n');
    process.exit(2);
  }
  const result = await runPortrait({ ...options, workload: workload as WorkloadName, input, output });
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

if (process.argv[1] !== undefined && import.meta.url === new URL(`file://${resolve(process.argv[1])}`).href) {
  main(process.argv.slice(2)).catch((err: unknown) => {
    process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  });
}
