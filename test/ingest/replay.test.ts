import { afterEach, describe, expect, it } from 'vitest';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join, resolve } from 'node:path';
import type { TagDocument } from '../../src/definitions/index.js';
import { decodeRecord, partitionOf, type LogRecord, type Profile } from '../../src/engine/index.js';
import { defaultReplayOptions, EventGenerator, replayFile, taobaoSchema, type ReplayOptions, type ReplayProgress } from '../../src/ingest/index.js';
import type { PortraitConfig } from '../../src/config/index.js';
import type { EmbeddedSystem } from '../../src/runtime/embedded-system.js';
import { cleanup, openTestSystem, tempDir, testConfig } from '../helpers/system.js';

afterEach(cleanup);

const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
const DATA = resolve(repoRoot, '../shared/data/UserBehavior.csv');
const SOURCE = 'test:user-behavior';
const BEHAVIOURS = ['pv', 'cart', 'fav', 'buy'] as const;
const OUT_OF_ORDERNESS_MS = 5_000;
const ALLOWED_LATENESS_MS = 60_000;
// Sliding window checked at the end of the stream: 1 h of page views in 10 min steps.
const WINDOW_MS = 3_600_000;
const SLIDE_MS = 600_000;

const TAGS: TagDocument[] = [
  ...BEHAVIOURS.map((b): TagDocument => ({ id: `${b}_count`, kind: 'statistic', eventTypes: [b], aggregate: 'count', window: { type: 'lifetime' } })),
  { id: 'items', kind: 'statistic', eventTypes: [...BEHAVIOURS], aggregate: 'distinct', field: 'item_id', window: { type: 'lifetime' } },
  { id: 'pv_1h', kind: 'statistic', eventTypes: ['pv'], aggregate: 'count', window: { type: 'sliding', size: '1h', slide: '10m' } },
];

// ------------------------------------------------------------------ the reference, from the file alone

interface Expected {
  /** user → tag → value, for tags with a value. */
  users: Map<string, Record<string, number>>;
  /** Lines dropped as later than the allowed lateness (line numbers). */
  late: number[];
  maxTime: number;
}

/**
 * Reads the CSV with plain string splitting and counts, per user, the
 * behaviours, the distinct items and the page views of the last hour at the
 * end of the stream. An event more than out-of-orderness + allowed lateness
 * behind the highest time before it is dropped, as the engine's default
 * `count` policy documents (the file is in time order apart from such rows).
 */
function expectedFromFile(text: string): Expected {
  const counts = new Map<string, { pv: number; cart: number; fav: number; buy: number; items: Set<string>; pvTimes: number[] }>();
  const late: number[] = [];
  let maxTime = -Infinity;
  const lines = text.split('\n');
  lines.forEach((line, i) => {
    if (line === '') return;
    const [user, item, , behaviour, seconds] = line.split(',');
    const time = Number(seconds) * 1000;
    if (time < maxTime - OUT_OF_ORDERNESS_MS - ALLOWED_LATENESS_MS) {
      late.push(i + 1);
      return;
    }
    maxTime = Math.max(maxTime, time);
    let c = counts.get(user!);
    if (c === undefined) counts.set(user!, (c = { pv: 0, cart: 0, fav: 0, buy: 0, items: new Set(), pvTimes: [] }));
    c[behaviour as (typeof BEHAVIOURS)[number]]++;
    c.items.add(item!);
    if (behaviour === 'pv') c.pvTimes.push(time);
  });
  const viewStart = Math.floor(maxTime / SLIDE_MS) * SLIDE_MS + SLIDE_MS - WINDOW_MS;
  const users = new Map<string, Record<string, number>>();
  for (const [user, c] of counts) {
    const values: Record<string, number> = {};
    for (const b of BEHAVIOURS) if (c[b] > 0) values[`${b}_count`] = c[b];
    values.items = c.items.size;
    const recent = c.pvTimes.filter((t) => Math.floor(t / SLIDE_MS) * SLIDE_MS >= viewStart).length;
    if (recent > 0) values.pv_1h = recent;
    users.set(user, values);
  }
  return { users, late, maxTime };
}

// ------------------------------------------------------------------ helpers

async function openSystem(config?: PortraitConfig): Promise<EmbeddedSystem> {
  // No idle marks: the log holds only what the replay writes, so runs compare exactly.
  const system = await openTestSystem(config ?? (await testConfig({ 'engine.latePolicy': 'deadletter' })), { start: false });
  system.engine.start();
  return system;
}

async function putOnline(system: EmbeddedSystem): Promise<void> {
  for (const doc of TAGS) {
    await system.definitions.createTag(doc);
    await system.definitions.setTagStatus(doc.id, 'online');
  }
}

function replay(system: EmbeddedSystem, options: Partial<ReplayOptions> = {}): Promise<ReplayProgress> {
  return replayFile(system.ingestor, system.catalog, system.limits, system.clock, {
    ...defaultReplayOptions,
    chunkLines: 8_192,
    file: DATA,
    schema: taobaoSchema,
    sourceId: SOURCE,
    referenceNow: Date.UTC(2024, 0, 1),
    ...options,
  });
}

function storedProfiles(system: EmbeddedSystem): Map<string, Profile> {
  const out = new Map<string, Profile>();
  const reader = system.store.profiles;
  let after: string | undefined;
  for (;;) {
    const ids = reader.listProfileIds(1000, after);
    if (ids.length === 0) return out;
    for (const id of ids) out.set(id, reader.getProfile(id)!);
    after = ids[ids.length - 1];
  }
}

function sorted(profiles: Map<string, Profile>): Profile[] {
  return [...profiles.values()].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
}

const haveData = existsSync(DATA);

// ------------------------------------------------------------------ tests

describe.skipIf(!haveData)('replay of the public UserBehavior.csv', () => {
  it('gives every user the counts, distinct items and last-hour page views computed from the file', async () => {
    const expected = expectedFromFile(readFileSync(DATA, 'utf8'));
    // The file's last row is cut short ("…,pv,15": 15 s after the epoch): the one row later than allowed.
    expect(expected.late).toEqual([96_169]);

    const system = await openSystem();
    await putOnline(system);
    const progress = await replay(system);
    expect(progress).toMatchObject({ lines: 96_169, appended: 96_169, skipped: 0, rejected: 0, maxTime: expected.maxTime });
    await system.engine.drain();

    const stored = storedProfiles(system);
    expect(stored.size).toBe(expected.users.size);
    const mismatches: Array<{ user: string; stored: Record<string, unknown> | undefined; expected: Record<string, number> }> = [];
    for (const [user, values] of expected.users) {
      const p = stored.get(user);
      const got = p === undefined ? undefined : Object.fromEntries(Object.entries(p.tags).map(([id, t]) => [id, t.value]));
      const same = got !== undefined && Object.keys(got).length === Object.keys(values).length && Object.entries(values).every(([id, v]) => got[id] === v);
      if (!same) mismatches.push({ user, stored: got, expected: values });
    }
    expect(mismatches.slice(0, 5)).toEqual([]);
    expect(mismatches.length).toBe(0);

    // Totals per behaviour as the data's README states them, minus the cut row (a page view).
    const total = (tag: string) => [...stored.values()].reduce((n, p) => n + ((p.tags[tag]?.value as number | undefined) ?? 0), 0);
    expect(BEHAVIOURS.map((b) => total(`${b}_count`))).toEqual([85_774 - 1, 5_292, 2_959, 2_144]);
    expect(total('pv_1h')).toBeGreaterThan(0);

    // The late row went to the dead letters with the engine's code.
    const stats = system.engine.stats().partitions;
    expect(stats.reduce((n, p) => n + p.lateDropped, 0)).toBe(1);
    const letters = system.store.deadLetters.listDeadLetters(10);
    expect(letters.map((l) => [l.stage, l.code, l.path])).toEqual([['engine', 'PRT_ENGINE_LATE_EVENT', '/time']]);
    expect(JSON.parse(letters[0]!.payload)).toMatchObject({ type: 'pv', time: 15_000, key: '301780' });
  });

  it('an interrupted replay resumed from the engine source positions loses no line and counts none twice', async () => {
    const uninterrupted = await openSystem();
    await putOnline(uninterrupted);
    await replay(uninterrupted);
    await uninterrupted.engine.drain();
    const expected = sorted(storedProfiles(uninterrupted));
    await uninterrupted.close();

    // 1. Stopped by its AbortSignal after a few chunks, then resumed in the same process.
    const same = await openSystem();
    await putOnline(same);
    const stop = new AbortController();
    const first = await replay(same, { signal: stop.signal, onChunk: (p) => p.lines >= 3 * 8_192 && stop.abort() });
    expect(first.lines).toBe(3 * 8_192);
    await same.engine.drain(); // the positions are those the engine has processed
    const positions = same.engine.sourcePositions(SOURCE);
    expect(positions).toEqual(Array.from({ length: same.ingestor.partitionCount }, () => 3 * 8_192));
    const rest = await replay(same, { resume: positions });
    expect(rest.skipped + rest.rejected).toBe(3 * 8_192);
    expect(first.appended + rest.appended).toBe(96_169);
    await same.engine.drain();
    expect(sorted(storedProfiles(same))).toEqual(expected);

    // 2. Stopped, then the process "crashes" (no final checkpoint, engine behind the log) and
    //    a new one resumes right after opening, as `portrait replay` does.
    const config = await testConfig({ 'engine.latePolicy': 'deadletter', 'engine.checkpointIntervalMs': 100 });
    const crashed = await openSystem(config);
    await putOnline(crashed);
    const stop2 = new AbortController();
    await replay(crashed, { signal: stop2.signal, onChunk: (p) => p.lines >= 5 * 8_192 && stop2.abort() });
    await crashed.close({ checkpoint: false });
    const restarted = await openSystem(config);
    const resumeAt = restarted.engine.sourcePositions(SOURCE);
    expect(resumeAt).toEqual(Array.from({ length: restarted.ingestor.partitionCount }, () => 5 * 8_192));
    await replay(restarted, { resume: resumeAt });
    await restarted.engine.drain();
    expect(sorted(storedProfiles(restarted))).toEqual(expected);
    expect(restarted.store.deadLetters.countDeadLetters()).toBe(1);
  });
});

describe.skipIf(!haveData)('replay with rules keyed by other fields than the user', () => {
  it('copies each event to the partition owning its rule key, as the API does, so every purchase reaches the rules keyed by category', async () => {
    // Per category (a non-entity key): a decision for each purchase, and one when a category
    // has been bought twice within a day (arrival order: the file's own order).
    const buys: Array<{ category: string; time: number }> = [];
    const text = readFileSync(DATA, 'utf8');
    for (const line of text.split('\n')) {
      const [, , category, behaviour, seconds] = line.split(',');
      if (behaviour === 'buy') buys.push({ category: category!, time: Number(seconds) * 1000 });
    }
    const secondBuys = (() => {
      const byCategory = new Map<string, number[]>();
      let n = 0;
      for (const b of buys) {
        let list = byCategory.get(b.category);
        if (list === undefined) byCategory.set(b.category, (list = []));
        list.push(b.time);
        const day = Math.floor(b.time / 86_400_000);
        if (list.filter((t) => Math.floor(t / 86_400_000) === day).length >= 2) n++;
      }
      return n;
    })();

    const system = await openSystem();
    await system.definitions.createRule({ id: 'category_buy', key: ['category_id'], ordering: 'arrival', trigger: { eventTypes: ['buy'] }, condition: { expr: "event.attrs.category_id != ''" } });
    await system.definitions.createRule({
      id: 'category_bought_twice',
      key: ['category_id'],
      ordering: 'arrival',
      trigger: { eventTypes: ['buy'] },
      condition: { aggregate: { fn: 'count', eventTypes: ['buy'], window: { type: 'tumbling', size: '1d' } }, op: '>=', value: 2 },
    });
    for (const id of ['category_buy', 'category_bought_twice']) await system.definitions.setRuleStatus(id, 'online');
    await system.engine.drain();
    const decided = new Map<string, Array<{ key: string }>>();
    system.decisions.subscribe((batch) => {
      for (const d of batch) {
        let list = decided.get(d.ruleId);
        if (list === undefined) decided.set(d.ruleId, (list = []));
        list.push({ key: String(d.key.category_id) });
      }
    });
    await replay(system);
    await system.ingestor.mark();
    await system.engine.drain();

    expect(decided.get('category_buy')?.length).toBe(buys.length);
    expect(new Set(decided.get('category_buy')!.map((d) => d.key))).toEqual(new Set(buys.map((b) => b.category)));
    expect(decided.get('category_bought_twice')?.length).toBe(secondBuys);
  });
});

describe('replay through the parser thread', () => {
  /** Demo events as NDJSON with refused lines among them: bad JSON, a wrong field type, a missing key, a blank line. */
  async function demoFile(): Promise<{ file: string; events: number }> {
    const gen = new EventGenerator({ seed: 11, users: 400, devices: 300, eventsPerSecond: 50, startTime: Date.UTC(2024, 0, 1) });
    const lines: string[] = [];
    let events = 0;
    for (let i = 0; i < 20_000; i++) {
      const e = gen.next();
      lines.push(JSON.stringify({ type: e.type, time: e.time, user_id: e.key, ...e.attrs }));
      events++;
      if (i % 2_500 === 7) lines.push('{"type":"login", "time": 1', JSON.stringify({ type: 'payment', time: e.time, user_id: e.key, amount: 'lots' }), JSON.stringify({ type: 'login', time: e.time }), '');
    }
    const file = join(await tempDir(), 'demo.ndjson');
    writeFileSync(file, `${lines.join('\n')}\n`);
    return { file, events };
  }

  async function run(file: string, parser: 'thread' | 'inline', parserThreads?: number, latePolicy = 'deadletter'): Promise<{ progress: ReplayProgress; profiles: Profile[]; decisions: string[]; letters: unknown[] }> {
    // Late events to the dead letters keep whole events, so the parser thread's records are decoded in full.
    const system = await openTestSystem(await testConfig({ 'engine.latePolicy': latePolicy }), { start: false });
    system.engine.start();
    await system.definitions.createTag({ id: 'payments_1h', kind: 'statistic', eventTypes: ['payment'], aggregate: 'sum', field: 'amount', window: { type: 'sliding', size: '1h', slide: '5m' } });
    await system.definitions.setTagStatus('payments_1h', 'online');
    await system.definitions.createRule({ id: 'device_logins', key: ['device_id'], ordering: 'event-time', trigger: { eventTypes: ['login'] }, condition: { aggregate: { fn: 'count', eventTypes: ['login'], window: { type: 'tumbling', size: '1h' } }, op: '>=', value: 3 } });
    await system.definitions.setRuleStatus('device_logins', 'online');
    await system.engine.drain();
    const decisions: string[] = [];
    system.decisions.subscribe((batch) => {
      for (const d of batch) decisions.push(`${d.ruleId} ${JSON.stringify(d.key)} ${d.time} ${d.aggregates.join(',')}`);
    });
    const progress = await replayFile(system.ingestor, system.catalog, system.limits, system.clock, { ...defaultReplayOptions, chunkLines: 1_000, file, sourceId: 'test:demo', referenceNow: Date.UTC(2025, 0, 1), parser, ...(parserThreads === undefined ? {} : { parserThreads }) });
    await system.ingestor.mark();
    await system.engine.drain();
    const letters = system.store.deadLetters.listDeadLetters(100).map((l) => [l.stage, l.code, l.path, l.position, l.payload]).sort((a, b) => Number(a[3]) - Number(b[3]));
    return { progress, profiles: sorted(storedProfiles(system)), decisions: decisions.sort(), letters };
  }

  it.each([1, 2, 3])('with %i parser threads, writes what the inline parser writes: the same events, refusals, profiles and decisions', async (threads) => {
    const { file, events } = await demoFile();
    const threaded = await run(file, 'thread', threads);
    const inline = await run(file, 'inline');
    expect(threaded.progress.parser).toBe('thread');
    expect(inline.progress.parser).toBe('inline');
    expect(threaded.progress).toEqual({ ...inline.progress, parser: 'thread' });
    expect(threaded.progress).toMatchObject({ appended: events, rejected: 24 });
    expect(threaded.letters).toHaveLength(24);
    expect(threaded.letters.map((l) => (l as unknown[])[1])).toEqual(expect.arrayContaining(['PRT_INGEST_BAD_JSON', 'PRT_INGEST_WRONG_TYPE', 'PRT_INGEST_MISSING_FIELD']));
    expect(threaded.letters).toEqual(inline.letters);
    expect(threaded.profiles.length).toBeGreaterThan(100);
    expect(threaded.profiles).toEqual(inline.profiles);
    expect(threaded.decisions.length).toBeGreaterThan(0);
    expect(threaded.decisions).toEqual(inline.decisions);
  });

  it('decodes for the engine only the attributes the online definitions read, with the same profiles and decisions as whole events', async () => {
    const { file } = await demoFile();
    // latePolicy `count`: the parser thread's records are decoded with only `amount` of payments
    // (the tag's field) and every attribute of logins (a rule reads them); the inline parser's whole.
    const projected = await run(file, 'thread', 2, 'count');
    const whole = await run(file, 'inline', undefined, 'count');
    expect(projected.profiles.length).toBeGreaterThan(100);
    expect(projected.profiles).toEqual(whole.profiles);
    expect(projected.decisions.length).toBeGreaterThan(0);
    expect(projected.decisions).toEqual(whole.decisions);
  });

  /**
   * Replays `file` through two parser threads in chunks of 500 lines. The replay asks whether the
   * engine can take more after decoding a chunk and before routing and appending it: at the ninth
   * chunk the answer is "wait" until `change` (a definition going online) is done.
   */
  async function replayChangingWhileWaiting(system: EmbeddedSystem, file: string, change: () => Promise<void>): Promise<void> {
    let chunks = 0;
    let changed: Promise<void> | undefined;
    let changing = false;
    const isOverloaded = system.ingestor.isOverloaded.bind(system.ingestor);
    system.ingestor.isOverloaded = () => {
      if (changed === undefined && chunks === 8) {
        changing = true;
        changed = change().then(() => void (changing = false));
      }
      return changing || isOverloaded();
    };
    await replayFile(system.ingestor, system.catalog, system.limits, system.clock, {
      ...defaultReplayOptions,
      chunkLines: 500,
      file,
      sourceId: 'test:demo',
      referenceNow: Date.UTC(2025, 0, 1),
      parser: 'thread',
      onChunk: () => void chunks++,
    });
    await changed;
  }

  /** Each partition's records, read back from the log in full, split at its last `$definitions` record. */
  async function splitAtLastDefinitions(system: EmbeddedSystem): Promise<Array<{ before: LogRecord[]; after: LogRecord[] }>> {
    const out: Array<{ before: LogRecord[]; after: LogRecord[] }> = [];
    for (let p = 0; p < system.log.partitionCount; p++) {
      const records = (await system.log.read(p, 0, 1_000_000)).map((e) => decodeRecord(e.payload));
      let at = records.length;
      while (at > 0 && records[at - 1]!.type !== '$definitions') at--;
      expect(at).toBeGreaterThan(0);
      out.push({ before: records.slice(0, at), after: records.slice(at) });
    }
    return out;
  }

  it('decodes a chunk again in full when definitions that read more of it go online while it waits to be appended', async () => {
    const { file } = await demoFile();
    const system = await openTestSystem(await testConfig(), { start: false });
    system.engine.start();
    await system.definitions.createTag({ id: 'logins', kind: 'statistic', eventTypes: ['login'], aggregate: 'count', window: { type: 'lifetime' } });
    await system.definitions.setTagStatus('logins', 'online');
    await system.engine.drain();
    await replayChangingWhileWaiting(system, file, async () => {
      await system.definitions.createTag({ id: 'paid', kind: 'statistic', eventTypes: ['payment'], aggregate: 'sum', field: 'amount', window: { type: 'lifetime' } });
      await system.definitions.setTagStatus('paid', 'online');
    });
    await system.ingestor.mark();
    await system.engine.drain();
    // What the tag must hold: per user, the amounts of the payments after the definition record
    // that put it online, read back from the log in full.
    const expected = new Map<string, number>();
    for (const { after } of await splitAtLastDefinitions(system)) {
      for (const r of after) {
        if (r.type === 'payment' && typeof r.attrs.amount === 'number') expected.set(r.key, (expected.get(r.key) ?? 0) + r.attrs.amount);
      }
    }
    expect(expected.size).toBeGreaterThan(10);
    const profiles = storedProfiles(system);
    for (const [user, sum] of expected) expect(profiles.get(user)?.tags.paid?.value, user).toBeCloseTo(sum, 6);
  });

  it('routes a chunk by the definitions it is appended under: a rule keyed by device going online while the chunk waits gets its copies', async () => {
    const { file } = await demoFile();
    const system = await openTestSystem(await testConfig(), { start: false });
    system.engine.start();
    await replayChangingWhileWaiting(system, file, async () => {
      await system.definitions.createRule({ id: 'device_logins', key: ['device_id'], ordering: 'arrival', trigger: { eventTypes: ['login'] }, condition: { aggregate: { fn: 'count', eventTypes: ['login'], window: { type: 'tumbling', size: '1h' } }, op: '>=', value: 3 } });
      await system.definitions.setRuleStatus('device_logins', 'online');
    });
    // After the rule's definition record, each login in its user's partition has a copy in the
    // partition owning its device (when that is another one), and no login is copied before it.
    const n = system.log.partitionCount;
    const split = await splitAtLastDefinitions(system);
    const before = split.map((x) => x.before);
    const after = split.map((x) => x.after);
    const id = (r: LogRecord): string => `${r.key} ${r.time} ${String(r.attrs.device_id)}`;
    let copies = 0;
    for (let p = 0; p < n; p++) {
      expect(before[p]!.filter((r) => r.type === 'login' && partitionOf(r.key, n) !== p)).toEqual([]);
      for (const r of after[p]!) {
        if (r.type !== 'login' || partitionOf(r.key, n) !== p || typeof r.attrs.device_id !== 'string') continue;
        const q = partitionOf(r.attrs.device_id, n);
        if (q === p) continue;
        expect(after[q]!.some((c) => c.type === 'login' && id(c) === id(r)), id(r)).toBe(true);
        copies++;
      }
    }
    expect(copies).toBeGreaterThan(100);
  });

  it('fails the replay with the file error when the file cannot be read', async () => {
    const system = await openTestSystem();
    const missing = join(await tempDir(), 'missing.ndjson');
    await expect(replayFile(system.ingestor, system.catalog, system.limits, system.clock, { ...defaultReplayOptions, file: missing, parser: 'thread' })).rejects.toThrow(/ENOENT/);
  });
});
