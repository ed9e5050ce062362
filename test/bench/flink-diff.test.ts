import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { canonicalLine, compare, groupOf } from '../../bench/diff/canonical.js';
import { lateTimesOf, PINS, PORTRAIT_ALLOWED_LATENESS_MS, type CheckInput } from '../../bench/diff/pins.js';
import { flavorSpec, outOfOrdernessMs, statisticTags } from '../../bench/diff/workload.js';
import { defaultEngineOptions, type Event } from '../../src/engine/index.js';
import { cleanupHarnesses, openHarness } from '../engine/harness.js';

/**
 * The differential check against Apache Flink runs outside the test suite (it
 * needs Java and Maven): these tests pin its comparison and, on Portrait's side,
 * the semantic differences docs/flink.md lists, so a change that would move
 * the check's answers fails here first.
 */

const dirs: string[] = [];
afterEach(async () => {
  await cleanupHarnesses();
  await Promise.all(dirs.splice(0).map((d) => rm(d, { recursive: true, force: true })));
});

const tag = (entity: string, id: string, value: number): string => canonicalLine({ kind: 'tag', entity, tag: id, value })!;

describe('canonical form', () => {
  it('orders fields, rounds to cents, sorts stages and omits zero statistics', () => {
    expect(canonicalLine({ kind: 'tag', entity: 'u1', tag: 'sum_10m', value: 12.345678 })).toBe('{"kind":"tag","entity":"u1","tag":"sum_10m","value":12.35}');
    expect(canonicalLine({ kind: 'tag', entity: 'u1', tag: 'events_1h', value: 0 })).toBeUndefined();
    expect(canonicalLine({ kind: 'tag', entity: 'u1', tag: 'sum_1h', value: 0.004 })).toBeUndefined();
    expect(canonicalLine({ kind: 'decision', rule: 'order_paid', key: 'u1', outcome: 'match', time: 20, events: { paid: [20], created: [10] } })).toBe(
      '{"kind":"decision","rule":"order_paid","key":"u1","outcome":"match","time":20,"events":{"created":[10],"paid":[20]}}',
    );
    expect(canonicalLine({ kind: 'decision', rule: 'shop_spend', key: 'u1|s3', outcome: 'match', time: 5, value: 1000.005 })).toBe(
      '{"kind":"decision","rule":"shop_spend","key":"u1|s3","outcome":"match","time":5,"value":1000.01}',
    );
  });
});

describe('comparison', () => {
  it('reports every answer that differs, once per answer, with both sides', () => {
    const both = tag('u1', 'events_1h', 3);
    const portrait = [both, tag('u2', 'events_1h', 4), tag('u3', 'events_1h', 1)].sort();
    const flink = [both, tag('u2', 'events_1h', 5), tag('u4', 'events_1h', 2)].sort();
    const c = compare(portrait, flink);
    expect(c.equal).toBe(1);
    expect(c.portraitLines).toBe(3);
    expect(c.flinkLines).toBe(3);
    const seen = c.differences.map((d) => [d.portrait, d.flink]);
    expect(seen).toHaveLength(3);
    // A changed value is one difference carrying both lines; an answer on one side only has null on the other.
    expect(seen).toContainEqual([tag('u2', 'events_1h', 4), tag('u2', 'events_1h', 5)]);
    expect(seen).toContainEqual([tag('u3', 'events_1h', 1), null]);
    expect(seen).toContainEqual([null, tag('u4', 'events_1h', 2)]);
    expect(c.groups['tag:events_1h']).toEqual({ equal: 1, different: 3 });
  });

  it('finds nothing in equal answers', () => {
    const lines = [tag('u1', 'a', 1), tag('u1', 'b', 2)].sort();
    const c = compare(lines, [...lines]);
    expect(c.differences).toEqual([]);
    expect(c.equal).toBe(2);
  });

  it('groups decisions by rule and outcome', () => {
    const d = canonicalLine({ kind: 'decision', rule: 'order_unpaid', key: 'u1', outcome: 'timeout', time: 9, events: { created: [1] } })!;
    expect(groupOf(d)).toBe('order_unpaid:timeout');
  });
});

describe('pinned difference: late events and lifetime times', () => {
  const pin = PINS.find((p) => p.id === 'late-event-lifetime')!;

  it("uses Portrait's default allowed lateness", () => {
    expect(PORTRAIT_ALLOWED_LATENESS_MS).toBe(defaultEngineOptions.allowedLatenessMs);
  });

  it('finds the events further behind than the watermark bound plus the allowed lateness, and explains only their lifetime differences', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'portrait-pins-'));
    dirs.push(dir);
    const bound = outOfOrdernessMs() + PORTRAIT_ALLOWED_LATENESS_MS;
    const t = 1_704_067_200_000;
    const events = [
      { user_id: 'u1', time: t },
      { user_id: 'u2', time: t + 10 * bound },
      { user_id: 'u1', time: t + 10 * bound - bound }, // exactly at the bound: not late
      { user_id: 'u1', time: t + 10 * bound - bound - 1 }, // one ms further: late
    ];
    const file = join(dir, 'in.ndjson');
    await writeFile(file, `${events.map((e) => JSON.stringify({ type: 'click', ...e })).join('\n')}\n`);
    const lateTimes = await lateTimesOf(file);
    expect([...lateTimes]).toEqual([['u1', [t + 9 * bound - 1]]]);
    const input: CheckInput = { name: 't', file, endTime: t + 10 * bound, lateTimes };
    const first = (value: number) => canonicalLine({ kind: 'tag', entity: 'u1', tag: 'first_event_at', value })!;
    expect(pin.explains({ group: 'tag:first_event_at', portrait: first(t), flink: first(t + 9 * bound - 1) }, input)).toBe(true);
    expect(pin.explains({ group: 'tag:first_event_at', portrait: first(t + 9 * bound - 1), flink: first(t) }, input)).toBe(false);
    expect(pin.explains({ group: 'tag:events_10m', portrait: null, flink: tag('u1', 'events_10m', 1) }, input)).toBe(false);
    expect([pin.expected(input, 'w1'), pin.expected(input, 'w4'), pin.expected(input, 'w2'), pin.expected(input, 'w3')]).toEqual([1, 1, 0, 0]);
  });

  it("Portrait's W1 tags leave out an event later than the allowed lateness and count it; an event at the watermark is in order", async () => {
    const lifetime = flavorSpec('demo').lifetime;
    const h = await openHarness({
      revisions: [statisticTags('demo')],
      engine: { outOfOrdernessMs: outOfOrdernessMs(), allowedLatenessMs: PORTRAIT_ALLOWED_LATENESS_MS },
      partitions: 1,
    });
    const t = Date.UTC(2024, 0, 2);
    const click = (key: string, time: number): Event => ({ type: 'click', time, key, attrs: {} });
    const watermark = t - outOfOrdernessMs();
    await h.append([click('u1', t), click('u1', watermark), click('u1', watermark - PORTRAIT_ALLOWED_LATENESS_MS - 1)]);
    await h.drain();
    const tags = h.store.profiles.getProfile('u1')!.tags;
    // Flink's KeyedProcessFunction would take the last event into first_event_at (the pinned difference).
    expect(tags[lifetime.firstId]!.value).toBe(watermark);
    expect(tags[lifetime.lastId]!.value).toBe(t);
    const stats = h.engine.stats().partitions[0]!;
    expect([stats.late, stats.lateDropped]).toEqual([1, 1]);
  });
});
