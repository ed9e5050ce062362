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

/** Self time per function and per file, as shares of the profile. */
export function summarise(profile: CpuProfile, top = 25): string {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const selfUs = new Map<number, number>();
  for (let i = 0; i < profile.samples.length; i++) {
    const id = profile.samples[i]!;
    selfUs.set(id, (selfUs.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0));
  }
  const total = profile.endTime - profile.startTime;
  const byFunction = new Map<string, number>();
  const byFile = new Map<string, number>();
  for (const [id, us] of selfUs) {
    const frame = byId.get(id)!.callFrame;
    const file = shortUrl(frame.url);
    const fn = `${frame.functionName || '(anonymous)'} ${file}${file.startsWith('(') ? '' : `:${frame.lineNumber + 1}`}`;
    byFunction.set(fn, (byFunction.get(fn) ?? 0) + us);
    byFile.set(file, (byFile.get(file) ?? 0) + us);
  }
  const lines: string[] = [`total ${(total / 1e6).toFixed(1)} s of samples`, '', '| self % | self s | function | ', '| ---: | ---: | --- |'];
  for (const [fn, us] of [...byFunction].sort((a, b) => b[1] - a[1]).slice(0, top)) {
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
  if (path.startsWith(repoRoot)) return relative(repoRoot, path);
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
