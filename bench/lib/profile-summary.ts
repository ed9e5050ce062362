/**
 * Summarises a V8 CPU profile (`node --cpu-prof`): the functions with the most
 * self time, their file and line, and their share of all samples; plus the
 * same grouped by file.
 *
 * Usage: node dist/bench/lib/profile-summary.js FILE.cpuprofile [TOP=25]
 */
import { readFileSync } from 'node:fs';
import { relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { repoRoot } from './common.js';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number };
  hitCount?: number;
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

/**
 * Self time per function and per file, and total (inclusive) time per
 * function of the project, as shares of the profile.
 */
export function summarise(profile: CpuProfile, top = 25): string {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const label = (frame: ProfileNode['callFrame']): string => {
    const file = shortUrl(frame.url);
    return `${frame.functionName || '(anonymous)'} ${file}${file.startsWith('(') ? '' : `:${frame.lineNumber + 1}`}`;
  };
  const selfUs = new Map<number, number>();
  const inclusive = new Map<string, number>();
  for (let i = 0; i < profile.samples.length; i++) {
    const id = profile.samples[i]!;
    const dt = profile.timeDeltas[i] ?? 0;
    selfUs.set(id, (selfUs.get(id) ?? 0) + dt);
    // Every function on the sampled stack, once (recursion is not counted twice).
    const seen = new Set<string>();
    for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
      const frame = byId.get(at)!.callFrame;
      if (!frame.url.includes('/src/')) continue;
      const fn = label(frame);
      if (seen.has(fn)) continue;
      seen.add(fn);
      inclusive.set(fn, (inclusive.get(fn) ?? 0) + dt);
    }
  }
  const total = profile.endTime - profile.startTime;
  const byFunction = new Map<string, number>();
  const byFile = new Map<string, number>();
  for (const [id, us] of selfUs) {
    const frame = byId.get(id)!.callFrame;
    const file = shortUrl(frame.url);
    const fn = label(frame);
    byFunction.set(fn, (byFunction.get(fn) ?? 0) + us);
    byFile.set(file, (byFile.get(file) ?? 0) + us);
  }
  const lines: string[] = [`total ${(total / 1e6).toFixed(1)} s of samples`, '', '| self % | self s | function |', '| ---: | ---: | --- |'];
  for (const [fn, us] of [...byFunction].sort((a, b) => b[1] - a[1]).slice(0, top)) {
    lines.push(`| ${((us / total) * 100).toFixed(1)} | ${(us / 1e6).toFixed(2)} | ${fn} |`);
  }
  lines.push('', '| total % | total s | function of src/ (self + callees) |', '| ---: | ---: | --- |');
  for (const [fn, us] of [...inclusive].sort((a, b) => b[1] - a[1]).slice(0, top)) {
    lines.push(`| ${((us / total) * 100).toFixed(1)} | ${(us / 1e6).toFixed(2)} | ${fn} |`);
  }
  lines.push('', '| self % | file |', '| ---: | --- |');
  for (const [file, us] of [...byFile].sort((a, b) => b[1] - a[1]).slice(0, 15)) {
    lines.push(`| ${((us / total) * 100).toFixed(1)} | ${file} |`);
  }
  return lines.join('\n');
}

function shortUrl(url: string): string {
  if (url === '') return '(native/vm)';
  let path = url;
  if (url.startsWith('file://')) path = fileURLToPath(url);
  // Scenario processes run from the runner's snapshot of dist: show the dist path.
  if (path.startsWith(repoRoot)) return relative(repoRoot, path).replace(/^\.cache\/bench\/dist-snapshot\//, 'dist/');
  if (path.startsWith('node:')) return path;
  return path;
}

if (process.argv[1] !== undefined && import.meta.url === new URL(`file://${process.argv[1]}`).href) {
  const file = process.argv[2];
  if (file === undefined) {
    process.stderr.write('usage: profile-summary.js FILE.cpuprofile [TOP]\n');
    process.exit(2);
  }
  const top = Number(process.argv[3] ?? 25);
  process.stdout.write(`${summarise(JSON.parse(readFileSync(file, 'utf8')) as CpuProfile, top)}\n`);
}
