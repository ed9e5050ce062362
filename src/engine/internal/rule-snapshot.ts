import { Unpackr } from 'msgpackr';
import { BinaryReader, BinaryWriter } from '../binary.js';
import { setAttr, type AttrValue, type Event } from '../event.js';
import type { EntitySnapshot } from '../ports.js';
import type { CepPartialMatch, CepState } from './cep/index.js';
import type { StatisticOperator } from './statistic-operators.js';

/**
 * First byte of a binary rule-state snapshot. Format 2 (no shared sequences)
 * and the msgpack arrays written before it (first byte 0x94) are still read.
 */
const FORMAT = 0x03;
const FORMAT_2 = 0x02;
const LEGACY_ARRAY4 = 0x94;
const NONE = 0xffffffff;

/** One key's rule state as a key space holds it. */
export interface RuleKeyState {
  /** The key's slot in the aggregates' operators. */
  slot: number;
  lastTime: number;
  buffer: Event[] | undefined;
  /** Aggregates with state: identity and operator (its state written in place). */
  aggs: Array<{ identity: string; op: StatisticOperator }>;
  /** Per rule with a partial match: its state id and one NFA state per sequence. */
  rules: Array<{ stateId: string; states: Array<CepState | undefined> }>;
  /** Per shared sequence with a partial match: its share key and state (partial matches carry member bits). */
  seqs: Array<{ key: string; state: CepState }>;
}

/** A decoded snapshot: aggregate states are handed over as readers positioned on their bytes. */
export interface DecodedRuleKeyState {
  lastTime: number;
  buffer: Event[] | null;
  aggs: Array<[identity: string, read: (op: StatisticOperator, slot: number) => void]>;
  rules: Array<[stateId: string, states: Array<CepState | null>]>;
  seqs: Array<[key: string, state: CepState]>;
}

const writer = new BinaryWriter(256 * 1024);
/** Events of the snapshot being written, by identity: an event held by many partial matches is written once. */
const eventIds = new Map<Event, number>();
const eventList: Event[] = [];

function internEvent(e: Event): number {
  let id = eventIds.get(e);
  if (id === undefined) {
    id = eventList.length;
    eventIds.set(e, id);
    eventList.push(e);
  }
  return id;
}

function collectMatch(pm: CepPartialMatch): void {
  const ev = pm.ev;
  for (let i = 0; i < ev.length; i++) internEvent(ev[i]!);
}

function writeMatch(w: BinaryWriter, pm: CepPartialMatch): void {
  w.u32(pm.n);
  w.f64(pm.st);
  w.f64(pm.ss);
  const ev = pm.ev;
  w.u32(ev.length);
  for (let i = 0; i < ev.length; i++) w.u32(eventIds.get(ev[i]!)!);
  const k = pm.k;
  w.u32(k.length);
  w.f64s(k, 0, k.length);
  const m = pm.m;
  if (m === undefined) w.u32(NONE);
  else {
    w.u32(m.length);
    for (let i = 0; i < m.length; i++) w.u32(m[i]! >>> 0);
  }
}

function writeState(w: BinaryWriter, st: CepState): void {
  w.f64(st.seq);
  w.u32(st.pm.length);
  for (const pm of st.pm) writeMatch(w, pm);
  w.u32(st.done.length);
  for (const pm of st.done) writeMatch(w, pm);
}

function writeEvent(w: BinaryWriter, e: Event): void {
  w.str(e.type);
  w.f64(e.time);
  w.str(e.key);
  const countAt = w.pos;
  w.u32(0);
  let n = 0;
  const attrs = e.attrs;
  for (const name in attrs) {
    w.str(name);
    w.value(attrs[name]);
    n++;
  }
  w.patchU32(countAt, n);
}

/**
 * Encodes one key's rule state: format byte, last time, an event table (each
 * distinct event once), the ordering buffer, each aggregate's state with its
 * length (so a restore can skip one no rule uses), each rule's NFA states
 * referring to events by table index.
 */
export function encodeRuleKeyState(s: RuleKeyState): EntitySnapshot {
  return writeRuleKeyState(s).bytes();
}

/** As {@link encodeRuleKeyState}, into a writer shared by all calls: its bytes are valid until the next call. */
export function writeRuleKeyState(s: RuleKeyState): BinaryWriter {
  eventIds.clear();
  eventList.length = 0;
  try {
    if (s.buffer !== undefined) for (const e of s.buffer) internEvent(e);
    for (const r of s.rules) {
      for (const st of r.states) {
        if (st === undefined) continue;
        for (const pm of st.pm) collectMatch(pm);
        for (const pm of st.done) collectMatch(pm);
      }
    }
    for (const q of s.seqs) {
      for (const pm of q.state.pm) collectMatch(pm);
      for (const pm of q.state.done) collectMatch(pm);
    }
    const w = writer.reset();
    w.u8(FORMAT);
    w.f64(s.lastTime);
    w.u32(eventList.length);
    for (const e of eventList) writeEvent(w, e);
    if (s.buffer === undefined) w.u32(NONE);
    else {
      w.u32(s.buffer.length);
      for (const e of s.buffer) w.u32(eventIds.get(e)!);
    }
    w.u32(s.aggs.length);
    for (const a of s.aggs) {
      w.str(a.identity);
      const lengthAt = w.pos;
      w.u32(0);
      a.op.write(s.slot, w);
      w.patchU32(lengthAt, w.pos - lengthAt - 4);
    }
    w.u32(s.rules.length);
    for (const r of s.rules) {
      w.str(r.stateId);
      w.u32(r.states.length);
      for (const st of r.states) {
        if (st === undefined) {
          w.u8(0);
          continue;
        }
        w.u8(1);
        writeState(w, st);
      }
    }
    w.u32(s.seqs.length);
    for (const q of s.seqs) {
      w.str(q.key);
      writeState(w, q.state);
    }
    return w;
  } finally {
    eventIds.clear();
    eventList.length = 0;
  }
}

function readEvent(r: BinaryReader): Event {
  const type = r.str();
  const time = r.f64();
  const key = r.str();
  const n = r.u32();
  const attrs: Record<string, AttrValue> = {};
  for (let i = 0; i < n; i++) {
    const name = r.str();
    setAttr(attrs, name, r.value());
  }
  return { type, time, key, attrs };
}

function readState(r: BinaryReader, events: Event[], format: number): CepState {
  const seq = r.f64();
  const pmCount = r.u32();
  const pm = new Array<CepPartialMatch>(pmCount);
  for (let m = 0; m < pmCount; m++) pm[m] = readMatch(r, events, format);
  const doneCount = r.u32();
  const done = new Array<CepPartialMatch>(doneCount);
  for (let m = 0; m < doneCount; m++) done[m] = readMatch(r, events, format);
  return { v: 1, seq, pm, done };
}

function readMatch(r: BinaryReader, events: Event[], format: number): CepPartialMatch {
  const n = r.u32();
  const st = r.f64();
  const ss = r.f64();
  const evCount = r.u32();
  const ev = new Array<Event>(evCount);
  for (let i = 0; i < evCount; i++) ev[i] = events[r.u32()]!;
  const kCount = r.u32();
  const k = new Array<number>(kCount);
  r.f64s(k, 0, kCount);
  let m: number[] | undefined;
  if (format !== FORMAT_2) {
    const words = r.u32();
    if (words !== NONE) {
      m = new Array<number>(words);
      for (let i = 0; i < words; i++) m[i] = r.u32() | 0;
    }
  }
  return { n, st, ss, ev, k, m };
}

const legacy = new Unpackr({ useRecords: false, moreTypes: false });

/**
 * Decodes a snapshot written by {@link encodeRuleKeyState}, or by the earlier
 * msgpack format. Events shared by several partial matches come back as one
 * object, as they were when written.
 */
export function decodeRuleKeyState(bytes: Uint8Array): DecodedRuleKeyState {
  if (bytes[0] === LEGACY_ARRAY4) {
    const [lastTime, buffer, aggs, rules] = legacy.unpack(bytes) as [number, Event[] | null, Array<[string, Uint8Array]>, Array<[string, Array<CepState | null>]>];
    return { lastTime, buffer, aggs: aggs.map(([identity, data]) => [identity, (op, slot) => op.restore(slot, data)]), rules, seqs: [] };
  }
  const r = new BinaryReader(bytes);
  const format = r.u8();
  if (format !== FORMAT && format !== FORMAT_2) throw new Error(`unknown rule-state snapshot format ${bytes[0]}`);
  const lastTime = r.f64();
  const eventCount = r.u32();
  const events = new Array<Event>(eventCount);
  for (let i = 0; i < eventCount; i++) events[i] = readEvent(r);
  const bufferCount = r.u32();
  let buffer: Event[] | null = null;
  if (bufferCount !== NONE) {
    buffer = new Array<Event>(bufferCount);
    for (let i = 0; i < bufferCount; i++) buffer[i] = events[r.u32()]!;
  }
  const aggCount = r.u32();
  const aggs: DecodedRuleKeyState['aggs'] = [];
  for (let i = 0; i < aggCount; i++) {
    const identity = r.str();
    const length = r.u32();
    const at = r.pos;
    r.pos += length;
    aggs.push([
      identity,
      (op, slot) => {
        r.pos = at;
        op.read(slot, r);
      },
    ]);
  }
  const ruleCount = r.u32();
  const rules: DecodedRuleKeyState['rules'] = [];
  for (let i = 0; i < ruleCount; i++) {
    const stateId = r.str();
    const n = r.u32();
    const states = new Array<CepState | null>(n);
    for (let j = 0; j < n; j++) {
      if (r.u8() === 0) {
        states[j] = null;
        continue;
      }
      states[j] = readState(r, events, format);
    }
    rules.push([stateId, states]);
  }
  const seqs: DecodedRuleKeyState['seqs'] = [];
  if (format !== FORMAT_2) {
    const seqCount = r.u32();
    for (let i = 0; i < seqCount; i++) {
      const key = r.str();
      seqs.push([key, readState(r, events, format)]);
    }
  }
  return { lastTime, buffer, aggs, rules, seqs };
}
