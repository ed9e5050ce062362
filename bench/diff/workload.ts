/**
 * The workloads of the Flink side-by-side check, as Portrait tag and rule
 * documents. The definitions come from the same file the Flink jobs read
 * (`bench/flink/src/main/resources/workloads.json`), so both systems compute
 * the same thing; docs/flink.md explains each.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { RuleDocument, StatisticTagDocument } from '../../src/definitions/index.js';
import { repoRoot } from '../lib/common.js';

/** The four workloads: statistics, sequences, dynamic key-by, all at once. */
export type WorkloadName = 'w1' | 'w2' | 'w3' | 'w4';
export const WORKLOADS: ReadonlyArray<WorkloadName> = ['w1', 'w2', 'w3', 'w4'];
/** `demo`: the seeded generator's NDJSON; `taobao`: the Taobao user-behaviour CSV. */
export type Flavor = 'demo' | 'taobao';

interface FilterSpec {
  field: string;
  equals: boolean;
}
interface StatSpec {
  id: string;
  types: string[];
  fn: 'count' | 'sum';
  field?: string;
  sizeMs: number;
  slideMs: number;
  filter?: FilterSpec;
}
/** One flavor of workloads.json. */
export interface FlavorSpec {
  allTypes: string[];
  stats: StatSpec[];
  lifetime: { firstId: string; lastId: string; types: string[] };
  followedBy: { id: string; timeoutId: string; first: string; second: string; firstType: string; secondType: string; joinField: string; secondFilter?: FilterSpec; withinMs: number };
  notFollowedBy: { id: string; first: string; second: string; firstType: string; secondType: string; withinMs: number };
  repeated: { id: string; stage: string; type: string; filter?: FilterSpec; times: number; withinMs: number };
  keyedAggregate: { id: string; types: string[]; keyField: string; fn: 'count' | 'sum'; field?: string; sizeMs: number; slideMs: number; op: '>' | '>=' | '<' | '<=' | '==' | '!='; threshold: number };
}
interface WorkloadsFile {
  outOfOrdernessMs: number;
  flavors: Record<Flavor, FlavorSpec>;
}

/** Path of the shared definitions. */
export const WORKLOADS_FILE = join(repoRoot, 'bench', 'flink', 'src', 'main', 'resources', 'workloads.json');

let cached: WorkloadsFile | undefined;
function file(): WorkloadsFile {
  cached ??= JSON.parse(readFileSync(WORKLOADS_FILE, 'utf8')) as WorkloadsFile;
  return cached;
}

/** Watermark bound of both systems, ms (Flink's BoundedOutOfOrderness, Portrait's engine.outOfOrdernessMs). */
export function outOfOrdernessMs(): number {
  return file().outOfOrdernessMs;
}

export function flavorSpec(flavor: Flavor): FlavorSpec {
  return file().flavors[flavor];
}

function types(list: string[], spec: FlavorSpec): string[] {
  return list.includes('*') ? [...spec.allTypes] : [...list];
}

function cel(filter: FilterSpec, prefix: string): string {
  return `${prefix}.${filter.field} == ${filter.equals ? 'true' : 'false'}`;
}

/** W1's statistic tags: the sliding windows and the lifetime first/last event times. */
export function statisticTags(flavor: Flavor): StatisticTagDocument[] {
  const spec = flavorSpec(flavor);
  const tags: StatisticTagDocument[] = spec.stats.map((s) => ({
    id: s.id,
    kind: 'statistic',
    owner: 'bench-flink',
    eventTypes: types(s.types, spec),
    aggregate: s.fn,
    ...(s.field === undefined ? {} : { field: s.field }),
    ...(s.filter === undefined ? {} : { filter: cel(s.filter, 'attrs') }),
    window: { type: 'sliding', size: s.sizeMs, slide: s.slideMs },
  }));
  const lt = spec.lifetime;
  tags.push({ id: lt.firstId, kind: 'statistic', owner: 'bench-flink', eventTypes: types(lt.types, spec), aggregate: 'first', window: { type: 'lifetime' } });
  tags.push({ id: lt.lastId, kind: 'statistic', owner: 'bench-flink', eventTypes: types(lt.types, spec), aggregate: 'last', window: { type: 'lifetime' } });
  return tags;
}

/** W2's sequence rules (event-time ordering, keyed per user, as Flink CEP on a keyed stream). */
export function sequenceRules(flavor: Flavor): RuleDocument[] {
  const { followedBy: fb, notFollowedBy: nfb, repeated: rep } = flavorSpec(flavor);
  const secondWhere = [`event.attrs.${fb.joinField} == matched.${fb.first}[0].attrs.${fb.joinField}`];
  if (fb.secondFilter !== undefined) secondWhere.push(cel(fb.secondFilter, 'event.attrs'));
  const followed = {
    pattern: [
      { name: fb.first, eventTypes: [fb.firstType] },
      { name: fb.second, eventTypes: [fb.secondType], contiguity: 'followedBy' as const, where: secondWhere.join(' && ') },
    ],
    within: fb.withinMs,
  };
  return [
    // Portrait reports a sequence's matches or its timeouts per rule: two rules where Flink has one operator and a side output.
    { id: fb.id, key: ['user_id'], ordering: 'event-time', condition: { sequence: followed, on: 'match' } },
    { id: fb.timeoutId, key: ['user_id'], ordering: 'event-time', condition: { sequence: followed, on: 'timeout' } },
    {
      id: nfb.id,
      key: ['user_id'],
      ordering: 'event-time',
      condition: {
        sequence: {
          pattern: [
            { name: nfb.first, eventTypes: [nfb.firstType] },
            { name: nfb.second, eventTypes: [nfb.secondType], contiguity: 'notFollowedBy' },
          ],
          within: nfb.withinMs,
        },
      },
    },
    {
      id: rep.id,
      key: ['user_id'],
      ordering: 'event-time',
      condition: {
        sequence: {
          pattern: [{ name: rep.stage, eventTypes: [rep.type], times: rep.times, ...(rep.filter === undefined ? {} : { where: cel(rep.filter, 'event.attrs') }) }],
          within: rep.withinMs,
          skip: 'skipPastLastEvent',
        },
      },
    },
  ];
}

/** W3's rule keyed by {user_id, keyField}: a windowed aggregate against a threshold at each event. */
export function keyedAggregateRule(flavor: Flavor): RuleDocument {
  const ka = flavorSpec(flavor).keyedAggregate;
  return {
    id: ka.id,
    key: ['user_id', ka.keyField],
    ordering: 'event-time',
    condition: {
      aggregate: {
        fn: ka.fn,
        ...(ka.field === undefined ? {} : { field: ka.field }),
        eventTypes: ka.types,
        window: { type: 'sliding', size: ka.sizeMs, slide: ka.slideMs },
      },
      op: ka.op,
      value: ka.threshold,
    },
  };
}

/** Tags and rules of a workload. */
export function definitionsOf(workload: WorkloadName, flavor: Flavor): { tags: StatisticTagDocument[]; rules: RuleDocument[] } {
  const stats = workload === 'w1' || workload === 'w4';
  const rules: RuleDocument[] = [];
  if (workload === 'w2' || workload === 'w4') rules.push(...sequenceRules(flavor));
  if (workload === 'w3' || workload === 'w4') rules.push(keyedAggregateRule(flavor));
  return { tags: stats ? statisticTags(flavor) : [], rules };
}

/** The flavor of an input file: `.csv` is the Taobao CSV, anything else canonical NDJSON. */
export function flavorOf(input: string): Flavor {
  return input.endsWith('.csv') ? 'taobao' : 'demo';
}
