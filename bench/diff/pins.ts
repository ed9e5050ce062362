/**
 * The documented semantic differences between Portrait and the Flink
 * baseline that show up in answers (docs/flink.md), as pins: each says which
 * differences it explains and how many it must explain on an input, so a
 * change of behaviour on either side fails the check until the docs and the
 * pin follow.
 */
import { readLines } from '../../src/ingest/index.js';
import type { Difference } from './canonical.js';
import { outOfOrdernessMs, type WorkloadName } from './workload.js';

/** Portrait's default engine.allowedLatenessMs: a late event further behind than this is dropped. */
export const PORTRAIT_ALLOWED_LATENESS_MS = 60_000;

/** An input of the check, with what it takes to explain pinned differences. */
export interface CheckInput {
  name: string;
  file: string;
  endTime: number;
  /** Per entity, times of events that arrive more than the watermark bound plus Portrait's allowed lateness behind the highest time before them. */
  lateTimes: Map<string, number[]>;
}

/**
 * A documented semantic difference between the two systems: which differences
 * it explains, and how many it must explain on an input (a pin: if the
 * behaviour changes, the check fails until docs/flink.md and the pin follow).
 */
export interface Pin {
  id: string;
  doc: string;
  explains(diff: Difference, input: CheckInput): boolean;
  expected(input: CheckInput, workload: WorkloadName): number;
}

export const PINS: ReadonlyArray<Pin> = [
  {
    id: 'late-event-lifetime',
    doc:
      'An event behind the watermark by more than engine.allowedLatenessMs is dropped by Portrait from every tag (latePolicy "count"); ' +
      "Flink leaves late data to each operator (windows and CEP drop it), and the baseline's KeyedProcessFunction takes every event into the lifetime first/last times.",
    explains(diff, input) {
      if (diff.group !== 'tag:first_event_at' && diff.group !== 'tag:last_event_at') return false;
      if (diff.flink === null) return false;
      const f = JSON.parse(diff.flink) as { entity: string; value: number };
      return input.lateTimes.get(f.entity)?.includes(f.value) === true;
    },
    expected(input, workload) {
      if (workload !== 'w1' && workload !== 'w4') return 0;
      // The raw Taobao slice has one such event, of a user with an earlier in-order event: first_event_at differs.
      let n = 0;
      for (const times of input.lateTimes.values()) n += times.length;
      return n;
    },
  },
];

export async function lateTimesOf(file: string): Promise<Map<string, number[]>> {
  const csv = file.endsWith('.csv');
  const bound = outOfOrdernessMs() + PORTRAIT_ALLOWED_LATENESS_MS;
  const late = new Map<string, number[]>();
  let max = -Infinity;
  for await (const lines of readLines(file)) {
    for (const line of lines) {
      if (line.length === 0) continue;
      let user: string;
      let time: number;
      if (csv) {
        const parts = line.split(',');
        user = parts[0]!;
        time = Number(parts[4]) * 1000;
      } else {
        const o = JSON.parse(line) as { user_id: string; time: number };
        user = o.user_id;
        time = o.time;
      }
      if (time < max - bound) {
        const list = late.get(user);
        if (list === undefined) late.set(user, [time]);
        else list.push(time);
      }
      if (time > max) max = time;
    }
  }
  return late;
}
