/**
 * Builds and runs the Flink baseline jar (bench/flink, Maven). The Maven
 * repository is cached in `.cache/m2` (git-ignored), and the jar is rebuilt only
 * when a source file or the pom is newer than it.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from '../lib/common.js';

export const FLINK_DIR = join(repoRoot, 'bench', 'flink');
export const FLINK_JAR = join(FLINK_DIR, 'target', 'portrait-flink-baseline.jar');
export const MAVEN_REPO = join(repoRoot, '.cache', 'm2');

function newest(path: string): number {
  const st = statSync(path);
  if (!st.isDirectory()) return st.mtimeMs;
  let max = st.mtimeMs;
  for (const name of readdirSync(path)) max = Math.max(max, newest(join(path, name)));
  return max;
}

/** Builds the shaded jar unless it is newer than every source; returns its path. */
export function ensureFlinkJar(log: (m: string) => void = (m) => process.stderr.write(`${m}\n`)): string {
  const sources = Math.max(newest(join(FLINK_DIR, 'src')), statSync(join(FLINK_DIR, 'pom.xml')).mtimeMs);
  if (existsSync(FLINK_JAR) && statSync(FLINK_JAR).mtimeMs >= sources) return FLINK_JAR;
  log(`building the Flink baseline (mvn package, repository ${MAVEN_REPO})`);
  const result = spawnSync('mvn', ['-q', '-B', `-Dmaven.repo.local=${MAVEN_REPO}`, 'package'], { cwd: FLINK_DIR, stdio: ['ignore', 'inherit', 'inherit'] });
  if (result.error !== undefined) throw new Error(`mvn could not be started (is Maven installed?): ${result.error.message}`);
  if (result.status !== 0) throw new Error(`mvn package failed with exit code ${String(result.status)}`);
  return FLINK_JAR;
}

/** The Java version line, for reports. */
export function javaVersion(): string {
  const result = spawnSync('java', ['-version'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  return `${result.stderr ?? ''}${result.stdout ?? ''}`.split('\n')[0]?.trim() || 'unknown';
}

export interface FlinkRunOptions {
  workload: string;
  input: string;
  output: string;
  state: 'heap' | 'rocksdb';
  endTime?: number;
  parallelism?: number;
  /** JVM options before -jar. */
  jvm?: string[];
}

/** The command line of one Flink run. */
export function flinkCommand(options: FlinkRunOptions): string[] {
  const args = ['java', ...(options.jvm ?? []), '-jar', FLINK_JAR, options.workload, options.input, options.output, '--state', options.state];
  if (options.endTime !== undefined) args.push('--end-time', String(options.endTime));
  if (options.parallelism !== undefined) args.push('--parallelism', String(options.parallelism));
  return args;
}

/** Runs the jar and returns its figures line. */
export function runFlink(options: FlinkRunOptions): Record<string, unknown> {
  const [cmd, ...args] = flinkCommand(options);
  const result = spawnSync(cmd!, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 64 << 20 });
  if (result.status !== 0) throw new Error(`flink ${options.workload} on ${options.input} failed (${String(result.status)}):\n${result.stderr}`);
  const line = result.stdout.trim().split('\n').pop() ?? '{}';
  return JSON.parse(line) as Record<string, unknown>;
}
