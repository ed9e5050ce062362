import { afterEach, describe, expect, it } from 'vitest';
import type { StatisticTagDocument } from '../../src/definitions/index.js';
import { partitionOf, type AttrValue, type Event, type TagValue } from '../../src/engine/index.js';
import { cleanupHarnesses, openHarness, type EngineHarness, type HarnessOptions } from './harness.js';

afterEach(cleanupHarnesses);

// Regression tests for state a checkpoint must hold and for what a restart must
// reproduce; each failed before the fix named in its title.

const BASE = Date.UTC(2024, 0, 1);
const s = (seconds: number) => BASE + seconds * 1_000;

const tag = (id: string, aggregate: StatisticTagDocument['aggregate'], window: StatisticTagDocument['window'], extra: Partial<StatisticTagDocument> = {}): StatisticTagDocument => ({
  id,
  kind: 'statistic',
  eventTypes: ['payment'],
  aggregate,
  window,
  ...extra,
});

function pay(key: string, time: number, amount: number, extra: Record<string, AttrValue> = {}): Event {
  return { type: 'payment', time, key, attrs: { order_id: `o${time}`, amount, success: true, ...extra } };
}

/** Stops without a final checkpoint (as a crash would) and opens the same folder again. */
async function crashAndReopen(h: EngineHarness, options: HarnessOptions): Promise<EngineHarness> {
  await h.close({ checkpoint: false });
  return openHarness({ ...options, dir: h.dir });
}

async function step(h: EngineHarness, events: Event[], checkpoint: boolean): Promise<void> {
  await h.append(events);
  await h.drain();
  if (checkpoint) await h.engine.checkpoint();
}

function value(h: EngineHarness, key: string, id: string): TagValue | undefined {
  return h.store.profiles.getProfile(key)?.tags[id]?.value;
}

describe('a checkpoint holds every state change, not only visible ones', () => {
  it('lifetime avg: a second equal amount leaves the value but not the count unchanged', async () => {
    const options: HarnessOptions = { revisions: [[tag('avg', 'avg', { type: 'lifetime' }, { field: 'amount' })]] };
    let h = await openHarness(options);
    await step(h, [pay('k', s(10), 2)], true);
    await step(h, [pay('k', s(11), 2)], true); // avg stays 2, count becomes 2
    h = await crashAndReopen(h, options);
    await step(h, [pay('k', s(12), 5)], false);
    expect(value(h, 'k', 'avg')).toBe(3); // (2 + 2 + 5) / 3, not (2 + 5) / 2
  });

  it('sliding max: a smaller amount in a newer bucket becomes the max when the older bucket leaves', async () => {
    const options: HarnessOptions = { revisions: [[tag('mx', 'max', { type: 'sliding', size: '4s', slide: '1s' }, { field: 'amount' })]], engine: { outOfOrdernessMs: 0 } };
    let h = await openHarness(options);
    await step(h, [pay('k', s(10), 4)], true);
    await step(h, [pay('k', s(12), 1)], true); // max stays 4
    h = await crashAndReopen(h, options);
    await h.mark(s(14)); // view from 14 + 1 - 4 = 11 s: the 10 s bucket left
    await h.drain();
    expect(value(h, 'k', 'mx')).toBe(1);
  });

  it('sliding distinct: a value seen again stays in view from its latest time', async () => {
    const options: HarnessOptions = { revisions: [[tag('dst', 'distinct', { type: 'sliding', size: '4s', slide: '1s' }, { field: 'shop_id' })]], engine: { outOfOrdernessMs: 0 } };
    let h = await openHarness(options);
    await step(h, [pay('k', s(10), 1, { shop_id: 's1' })], true);
    await step(h, [pay('k', s(12), 1, { shop_id: 's1' })], true); // still 1 distinct shop, seen later
    h = await crashAndReopen(h, options);
    await h.mark(s(14));
    await h.drain();
    expect(value(h, 'k', 'dst')).toBe(1);
  });

  it('state TTL: an event the filter skips still counts as activity after a restore', async () => {
    const options: HarnessOptions = {
      revisions: [[tag('ok', 'count', { type: 'lifetime' }, { filter: 'attrs.success == true' })]],
      engine: { outOfOrdernessMs: 1_000, stateTtlMs: 5_000 },
    };
    let h = await openHarness(options);
    await step(h, [pay('k', s(10), 1)], true);
    await step(h, [pay('k', s(13), 1, { success: false })], true); // skipped by the filter; last activity 13 s
    h = await crashAndReopen(h, options);
    await h.mark(s(17.5)); // watermark 16.5 s < 13 + 5
    await h.drain();
    expect(value(h, 'k', 'ok')).toBe(1);
    await h.mark(s(19.5)); // watermark 18.5 s >= 18 s: expired
    await h.drain();
    expect(h.store.profiles.getProfile('k')).toBeUndefined();
  });
});

describe('a restart resumes where the log ends', () => {
  it('the engine opens with the stream time of the whole log, so the first marks move every window', async () => {
    const options: HarnessOptions = { revisions: [[tag('c_tu', 'count', { type: 'tumbling', size: '3s' })]], engine: { outOfOrdernessMs: 0 } };
    // Two keys in different partitions.
    const a = 'a';
    const b = ['b', 'c', 'd', 'e', 'f', 'g'].find((k) => partitionOf(k, 4) !== partitionOf(a, 4))!;
    let h = await openHarness(options);
    await step(h, [pay(a, s(10), 1)], true);
    await h.append([pay(b, s(20), 1)]); // after the checkpoint; then a crash
    h = await crashAndReopen(h, options);
    expect(h.engine.streamTime()).toBe(s(20));
    await h.mark(); // the ingestor's own stream time, as the idle marks use
    await h.drain();
    // a's window [9 s, 12 s) is over at 20 s; b's [18 s, 21 s) holds its event.
    expect(value(h, a, 'c_tu')).toBeUndefined();
    expect(value(h, b, 'c_tu')).toBe(1);
  });
});

describe('profiles written and removed in one engine batch', () => {
  it('an entity whose state expired and that a later record of the same batch recreates keeps its profile', async () => {
    const options: HarnessOptions = {
      revisions: [[tag('c_lt', 'count', { type: 'lifetime' }), tag('c_sl', 'count', { type: 'sliding', size: '4s', slide: '1s' })]],
      // No live feed: the engine reads the log, all of it in one batch.
      engine: { outOfOrdernessMs: 0, stateTtlMs: 5_000, liveFeedMaxRecords: 0 },
      start: false,
    };
    const h = await openHarness(options);
    await h.append([pay('ttl', s(10), 1)]);
    await h.mark(s(20)); // ttl expires (10 + 5 <= 20)
    await h.append([pay('ttl', s(21), 1)]);
    h.engine.start(); // everything above is processed in one batch
    await h.drain();
    expect(h.store.profiles.getProfile('ttl')?.tags).toMatchObject({ c_lt: { value: 1, updatedAt: s(21) }, c_sl: { value: 1, updatedAt: s(21) } });
  });

  it('an entity whose only window emptied and that a later record of the same batch fills again keeps its profile', async () => {
    const options: HarnessOptions = { revisions: [[tag('c_sl', 'count', { type: 'sliding', size: '4s', slide: '1s' })]], engine: { outOfOrdernessMs: 0, liveFeedMaxRecords: 0 }, start: false };
    const h = await openHarness(options);
    await h.append([pay('w', s(10), 1)]);
    await h.mark(s(20)); // the window empties: the entity has no state left
    await h.append([pay('w', s(21), 1)]);
    h.engine.start();
    await h.drain();
    expect(value(h, 'w', 'c_sl')).toBe(1);
  });
});

describe('window slides are replayed from the snapshot, not stored', () => {
  it('an entity whose windows slid after its snapshot (no event since) has the uninterrupted run\'s profile after a restart, and slides on alike', async () => {
    const options: HarnessOptions = {
      revisions: [[tag('cnt', 'count', { type: 'sliding', size: '4s', slide: '1s' }), { id: 'many', kind: 'rule', condition: 'has(tags.cnt) && tags.cnt >= 2' }]],
      engine: { outOfOrdernessMs: 0 },
    };
    const run = async (restartAt: 'none' | 'after-slide'): Promise<Array<ReturnType<EngineHarness['engine']['profile']>>> => {
      let h = await openHarness(options);
      const seen: Array<ReturnType<EngineHarness['engine']['profile']>> = [];
      await step(h, [pay('k', s(10), 1), pay('k', s(12), 1)], true); // snapshot of k: count 2, many true
      await h.mark(s(14.2)); // the 10 s bucket leaves: count 1, many false; k has no event since its snapshot
      await h.drain();
      await h.engine.checkpoint();
      seen.push(h.engine.profile('k'));
      if (restartAt === 'after-slide') h = await crashAndReopen(h, options);
      seen.push(h.engine.profile('k')); // as restored, before any new record
      await h.mark(s(16.5)); // the 12 s bucket leaves too
      await h.drain();
      seen.push(h.engine.profile('k'));
      await h.close();
      return seen;
    };
    const uninterrupted = await run('none');
    expect(uninterrupted[0]?.tags['cnt']?.value).toBe(1);
    expect(uninterrupted[0]?.tags['many']?.value).toBe(false);
    expect(await run('after-slide')).toEqual(uninterrupted);
  });
});
