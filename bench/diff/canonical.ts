/**
 * The canonical form both systems' answers are compared in, and the comparison.
 *
 * Canonical form: one JSON object per line, fields in a fixed order, numbers
 * rounded to {@link DECIMALS} decimals, zero-valued statistics omitted, lines
 * sorted (byte order). Kinds:
 *
 *   {"kind":"tag","entity":"u1","tag":"events_1h","value":12}
 *   {"kind":"decision","rule":"order_paid","key":"u1","outcome":"match","time":T,"events":{"created":[t],"paid":[t]}}
 *   {"kind":"decision","rule":"shop_spend_10m","key":"u1|s3","outcome":"match","time":T,"value":1234.5}
 *
 * Tag lines are the final values per entity at the end of the input (stream
 * time = the highest event time); decision lines are every match and timeout,
 * with its key (`|`-joined), outcome, time (event time of the decision: the last
 * event of a match, start + within for a match completed by an absence, the
 * timeout timestamp for a timeout), the event times per pattern stage, or the
 * aggregate's value.
 */
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** Decimals numbers are rounded to: amounts have cents, so sums are exact at 2. */
export const DECIMALS = 2;

function round(v: number): number {
  const f = 10 ** DECIMALS;
  return Math.round(v * f) / f;
}

interface RawLine {
  kind: 'tag' | 'decision';
  entity?: string;
  tag?: string;
  value?: number | null;
  rule?: string;
  key?: string;
  outcome?: string;
  time?: number;
  events?: Record<string, number[]>;
}

/** One answer in canonical form, or undefined when the form omits it (a zero statistic). */
export function canonicalLine(raw: RawLine): string | undefined {
  if (raw.kind === 'tag') {
    const value = round(Number(raw.value));
    if (value === 0) return undefined;
    return `{"kind":"tag","entity":${JSON.stringify(raw.entity)},"tag":${JSON.stringify(raw.tag)},"value":${value}}`;
  }
  let line = `{"kind":"decision","rule":${JSON.stringify(raw.rule)},"key":${JSON.stringify(raw.key)},"outcome":${JSON.stringify(raw.outcome)},"time":${raw.time}`;
  if (raw.events !== undefined) {
    const stages = Object.keys(raw.events).sort();
    line += `,"events":{${stages.map((s) => `${JSON.stringify(s)}:[${raw.events![s]!.join(',')}]`).join(',')}}`;
  }
  if (raw.value !== undefined) line += `,"value":${raw.value === null ? null : round(raw.value)}`;
  return `${line}}`;
}

/** Reads a file of answer lines, or every file of a folder (Flink's part files), into sorted canonical lines. */
export function readCanonical(path: string): string[] {
  const files = statSync(path).isDirectory()
    ? readdirSync(path)
        .filter((f) => !f.startsWith('.'))
        .map((f) => join(path, f))
    : [path];
  const out: string[] = [];
  for (const file of files) {
    for (const text of readFileSync(file, 'utf8').split('\n')) {
      if (text.length === 0) continue;
      const line = canonicalLine(JSON.parse(text) as RawLine);
      if (line !== undefined) out.push(line);
    }
  }
  return out.sort();
}

export function writeCanonical(lines: ReadonlyArray<string>, file: string): void {
  writeFileSync(file, lines.length === 0 ? '' : `${lines.join('\n')}\n`);
}

/** What of a line identifies the answer (so that a value difference shows as one changed answer). */
function identity(line: string): string {
  const o = JSON.parse(line) as RawLine;
  return o.kind === 'tag' ? `tag ${o.tag} ${o.entity}` : `${o.rule} ${o.key} ${o.outcome} ${o.time}${o.events === undefined ? '' : ` ${JSON.stringify(o.events)}`}`;
}

/** The group a line is counted under in the report: the tag or the rule and outcome. */
export function groupOf(line: string): string {
  const o = JSON.parse(line) as RawLine;
  return o.kind === 'tag' ? `tag:${o.tag}` : `${o.rule}:${o.outcome}`;
}

export interface Difference {
  group: string;
  portrait: string | null;
  flink: string | null;
}

export interface Comparison {
  portraitLines: number;
  flinkLines: number;
  /** Lines in both. */
  equal: number;
  differences: Difference[];
  /** Lines per group (from both sides, counted once when equal). */
  groups: Record<string, { equal: number; different: number }>;
}

/** Compares two sorted canonical answers line by line; an answer present on both sides with different values is one difference. */
export function compare(portrait: ReadonlyArray<string>, flink: ReadonlyArray<string>): Comparison {
  const groups: Comparison['groups'] = {};
  const count = (line: string, equal: boolean): void => {
    const g = (groups[groupOf(line)] ??= { equal: 0, different: 0 });
    if (equal) g.equal++;
    else g.different++;
  };
  const onlyP: string[] = [];
  const onlyF: string[] = [];
  let i = 0;
  let j = 0;
  let equal = 0;
  while (i < portrait.length || j < flink.length) {
    const a = portrait[i];
    const b = flink[j];
    if (a !== undefined && a === b) {
      equal++;
      count(a, true);
      i++;
      j++;
    } else if (b === undefined || (a !== undefined && a < b)) {
      onlyP.push(a!);
      i++;
    } else {
      onlyF.push(b);
      j++;
    }
  }
  const differences: Difference[] = [];
  const flinkById = new Map<string, string[]>();
  for (const line of onlyF) {
    const id = identity(line);
    const list = flinkById.get(id);
    if (list === undefined) flinkById.set(id, [line]);
    else list.push(line);
  }
  for (const line of onlyP) {
    const match = flinkById.get(identity(line))?.shift();
    differences.push({ group: groupOf(line), portrait: line, flink: match ?? null });
    count(line, false);
  }
  for (const list of flinkById.values()) {
    for (const line of list) {
      differences.push({ group: groupOf(line), portrait: null, flink: line });
      count(line, false);
    }
  }
  return { portraitLines: portrait.length, flinkLines: flink.length, equal, differences, groups };
}
