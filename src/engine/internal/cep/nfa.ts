import type { Event } from '../../event.js';
import { Action, compileGraph, NodeKind, type Cond, type Edge, type GraphNode } from './compiler.js';
import { normalizePattern, type CepCondition, type CepContext, type CepPatternSpec, type NormalizedPattern } from './pattern.js';

/**
 * One partial match: where it is in the NFA and the events it accepted.
 * Plain data (msgpack-safe); conditions are looked up by node and stage index
 * in the compiled pattern, never stored here.
 */
export interface CepPartialMatch {
  /** NFA node index. */
  n: number;
  /** Timestamp of the first accepted event (the window starts here). */
  st: number;
  /** Sequence number of the first accepted event. */
  ss: number;
  /** Accepted events, oldest first. */
  ev: Event[];
  /** Per accepted event, three numbers: stage index, sequence number, timestamp. */
  k: number[];
  /**
   * For an NFA shared by a {@link CepFamily}: the members this partial match
   * belongs to (bit set, 32 members per word). Undefined otherwise.
   */
  m?: number[] | undefined;
}

/**
 * Per-key NFA state. `undefined` stands for "only the start state", so a key
 * that never starts a match costs nothing. Snapshot it as is (msgpack/JSON).
 */
export interface CepState {
  /** Format version. */
  v: 1;
  /** Sequence number the next processed event gets (Flink's EventId counter). */
  seq: number;
  /** Partial matches, ordered by (start timestamp, start sequence), stable. */
  pm: CepPartialMatch[];
  /** Completed matches held back by a skip strategy until no earlier partial match exists. */
  done: CepPartialMatch[];
}

/** A completed match. */
export interface CepMatch {
  /** Accepted events by stage name, stages in pattern order, events oldest first. */
  readonly events: Readonly<Record<string, readonly Event[]>>;
  /** Timestamp of the first event of the match. */
  readonly firstTimestamp: number;
  /** Timestamp of the last event of the match. */
  readonly lastTimestamp: number;
  /** For an NFA shared by a {@link CepFamily}: the members it is a match of (bit set). */
  readonly members?: readonly number[];
}

/** A partial match that timed out (Flink's timeout side output). */
export interface CepTimeout extends CepMatch {
  /** When it timed out: first timestamp + `withinMs`. */
  readonly timeoutTimestamp: number;
}

/** Where `process` and `advanceTime` put their output; reuse one across calls and clear it. */
export interface CepSink {
  readonly matches: CepMatch[];
  readonly timeouts: CepTimeout[];
  /** Partial matches dropped because `maxPartialMatches` was reached. */
  dropped: number;
  /** Condition evaluations that threw (each counted as `false`). */
  conditionErrors: number;
  /** The latest error a condition threw, if any. */
  lastConditionError: unknown;
  /** For an NFA shared by a {@link CepFamily}: one member index per error above, for the member it counts against. */
  readonly errorMembers: number[];
  /** For an NFA shared by a {@link CepFamily}: one member index per partial match dropped for that member. */
  readonly droppedMembers: number[];
  /** Partial matches dropped because the key's state expired ({@link CepNfa.expireInto}). */
  expired: number;
  /** For an NFA shared by a {@link CepFamily}: one member index per partial match expired for that member. */
  readonly expiredMembers: number[];
}

/** Output of one call, for callers that prefer a value to a sink. */
export interface CepStep extends CepSink {
  /** The key's state after the call; `undefined` when only the start state is left. */
  readonly state: CepState | undefined;
}

/** Creates an empty sink. */
export function createCepSink(): CepSink {
  return { matches: [], timeouts: [], dropped: 0, conditionErrors: 0, lastConditionError: undefined, errorMembers: [], droppedMembers: [], expired: 0, expiredMembers: [] };
}

/** Empties a sink for reuse. */
export function clearCepSink(sink: CepSink): void {
  if (sink.matches.length !== 0) sink.matches.length = 0;
  if (sink.timeouts.length !== 0) sink.timeouts.length = 0;
  sink.dropped = 0;
  sink.conditionErrors = 0;
  sink.lastConditionError = undefined;
  if (sink.errorMembers.length !== 0) sink.errorMembers.length = 0;
  if (sink.droppedMembers.length !== 0) sink.droppedMembers.length = 0;
  sink.expired = 0;
  if (sink.expiredMembers.length !== 0) sink.expiredMembers.length = 0;
}

/** True when the state holds nothing but the start state (the engine may drop it). */
export function isCepStateEmpty(state: CepState | undefined): boolean {
  return state === undefined || (state.pm.length === 0 && state.done.length === 0);
}

interface Node {
  readonly id: number;
  readonly stage: number;
  readonly kind: NodeKind;
  readonly start: boolean;
  readonly final: boolean;
  readonly edges: readonly RtEdge[];
}

interface RtEdge {
  readonly action: Action;
  readonly target: number;
  readonly source: number;
  /** Stage of the source node: the name the taken event is filed under. */
  readonly stage: number;
  /** True for an IGNORE edge back to its own node (does not count as a branch). */
  readonly selfIgnore: boolean;
  readonly cond: Cond;
}

/**
 * The members of one NFA shared by several rules: the same pattern, except
 * for the number in one condition (`slot`), whose answer must be monotone in
 * that number (false then true, or true then false, as it grows). Each
 * partial match carries the set of members it belongs to; where members
 * answer a condition differently, the partial match splits. The answers of
 * all members come from evaluating the condition of a few of them (binary
 * search over the members ordered by their number), so a step costs about the
 * same for one member as for a thousand.
 *
 * A member index is reused only after its bits are gone from every state
 * ({@link CepNfa.removeMember}).
 */
export class CepFamily {
  /** Bit set of the members online. */
  live: number[] = [];
  /** Members online, by ascending number. */
  order: number[] = [];
  /** `prefix[i]`: bit set of `order[0..i-1]`. */
  prefix: number[][] = [[]];
  private readonly params: number[] = [];
  private readonly windows: number[] = [];
  readonly conds: Array<CepCondition | undefined> = [];
  /** Members online by ascending window (`within`, ms), their windows, and `windowPrefix[i]`: bit set of `byWindow[0..i-1]`. */
  byWindow: number[] = [];
  windowSorted: number[] = [];
  windowPrefix: number[][] = [[]];
  /** The shortest window of a member online (0: none has a window). */
  minWindow = 0;
  /** Members online have different windows. */
  variableWindow = false;
  private readonly free: number[] = [];
  private readonly present: boolean[] = [];

  /** @param slot condition slot whose number differs between members (stage index; stages + index for `until`); -1: none. */
  constructor(readonly slot: number) {}

  /**
   * Adds a member with its number, its condition at the slot and its window
   * (`within`, ms; members may differ in it, but all have one or none);
   * returns its index.
   */
  add(parameter: number, cond: CepCondition | undefined, windowMs = 0): number {
    const index = this.free.length > 0 ? this.free.pop()! : this.conds.length;
    this.conds[index] = cond;
    this.params[index] = parameter;
    this.windows[index] = windowMs;
    this.present[index] = true;
    this.reorder();
    return index;
  }

  /** Takes a member out; its index is free again (call once its bits are gone from every state). */
  remove(index: number): void {
    this.conds[index] = undefined;
    this.present[index] = false;
    this.free.push(index);
    this.reorder();
  }

  has(index: number): boolean {
    return ((this.live[index >>> 5] ?? 0) & (1 << (index & 31))) !== 0;
  }

  private reorder(): void {
    const order: number[] = [];
    for (let i = 0; i < this.present.length; i++) if (this.present[i] === true) order.push(i);
    order.sort((a, b) => this.params[a]! - this.params[b]! || a - b);
    this.order = order;
    const words = (this.present.length + 31) >>> 5;
    const prefix: number[][] = [new Array<number>(words).fill(0)];
    for (let i = 0; i < order.length; i++) {
      const next = prefix[i]!.slice();
      next[order[i]! >>> 5]! |= 1 << (order[i]! & 31);
      prefix.push(next);
    }
    this.prefix = prefix;
    this.live = prefix[order.length]!;
    const byWindow = [...order].sort((a, b) => this.windows[a]! - this.windows[b]! || a - b);
    const windowPrefix: number[][] = [prefix[0]!];
    for (let i = 0; i < byWindow.length; i++) {
      const next = windowPrefix[i]!.slice();
      next[byWindow[i]! >>> 5]! |= 1 << (byWindow[i]! & 31);
      windowPrefix.push(next);
    }
    this.byWindow = byWindow;
    this.windowSorted = byWindow.map((m) => this.windows[m]!);
    this.windowPrefix = windowPrefix;
    this.minWindow = this.windowSorted[0] ?? 0;
    this.variableWindow = byWindow.length > 0 && this.windowSorted[byWindow.length - 1] !== this.minWindow;
  }

  /** The shortest window among the members of `set` (Infinity when none is online). */
  minWindowOf(set: readonly number[]): number {
    const order = this.byWindow;
    for (let i = 0; i < order.length; i++) {
      const m = order[i]!;
      if (((set[m >>> 5] ?? 0) & (1 << (m & 31))) !== 0) return this.windowSorted[i]!;
    }
    return Infinity;
  }
}

/** Bits in both sets. */
export function maskAnd(a: readonly number[], b: readonly number[]): number[] {
  const n = Math.min(a.length, b.length);
  const out = new Array<number>(n);
  for (let i = 0; i < n; i++) out[i] = a[i]! & b[i]!;
  return out;
}

/** Bits in either set. */
function maskOr(a: readonly number[], b: readonly number[]): number[] {
  const out = new Array<number>(Math.max(a.length, b.length));
  for (let i = 0; i < out.length; i++) out[i] = (a[i] ?? 0) | (b[i] ?? 0);
  return out;
}

/** Bits of `a` not in `b`. */
function maskAndNot(a: readonly number[], b: readonly number[]): number[] {
  const out = new Array<number>(a.length);
  for (let i = 0; i < a.length; i++) out[i] = a[i]! & ~(b[i] ?? 0);
  return out;
}

export function maskEmpty(a: readonly number[]): boolean {
  for (let i = 0; i < a.length; i++) if (a[i] !== 0) return false;
  return true;
}

/** Calls `fn` with each member index in the set. */
export function forEachMember(a: readonly number[], fn: (index: number) => void): void {
  for (let w = 0; w < a.length; w++) {
    let bits = a[w]!;
    while (bits !== 0) {
      const low = bits & -bits;
      fn((w << 5) + 31 - Math.clz32(low));
      bits ^= low;
    }
  }
}

const NO_TIMER = Infinity;
const EMPTY_EVENTS: readonly Event[] = Object.freeze([]);

/**
 * A compiled pattern: the frozen NFA graph plus the functions that run it on
 * a key's state. Stateless between calls, so one instance serves every key.
 * Not reentrant: a condition must not call back into the same instance.
 */
export class CepNfa {
  /** The validated pattern. */
  readonly pattern: NormalizedPattern;
  /** Stage names, index = stage index. */
  readonly stageNames: readonly string[];
  private readonly nodes: readonly Node[];
  private readonly startId: number;
  private readonly stageIndex: ReadonlyMap<string, number>;
  private readonly conditions: readonly (CepCondition | null)[];
  private readonly untils: readonly (CepCondition | null)[];
  private readonly windowMs: number;
  private readonly skipKind: number;

  // Scratch, reused by every call (the engine runs one call at a time).
  private readonly ctx: EvalContext;
  /** Condition per slot: slot `s` is stage s's condition, slot `stages + s` its until. */
  private readonly slots: readonly (CepCondition | null)[];
  /** 1 where the condition does not read the context, so one answer serves every partial match. */
  private readonly contextFree: Uint8Array;
  private readonly anyContextual: boolean;
  /** Answers for the current event (context-free slots): 0 unknown, 1 true, 2 false. */
  private readonly memoEvent: Uint8Array;
  /**
   * The first stage's condition when every match must begin with an event it
   * accepts and it reads no context: a key with no partial match skips an
   * event it rejects without running the NFA.
   */
  private readonly startGate: ((event: Event) => boolean) | null;
  /** Answers for the current (partial match, event) (contextual slots). */
  private readonly memoMatch: Uint8Array;
  private readonly edgeBuf: RtEdge[] = [];
  /** Per edge of `edgeBuf`: for a TAKE, the final node reached from its target by PROCEED edges (-1: none). */
  private readonly finals: number[] = [];
  private readonly stack: number[] = [];
  private readonly stack2: number[] = [];
  private readonly nextPm: CepPartialMatch[] = [];
  private readonly keep: CepPartialMatch[] = [];
  private readonly potential: CepPartialMatch[] = [];
  private evalEvent: Event | null = null;
  private sink: CepSink | null = null;

  // Family mode (see CepFamily): the members' answers at the slot whose number differs.
  private readonly fam: CepFamily | null;
  /** The family's slot, or -1 (never a slot). */
  private readonly holeSlot: number;
  /** Members of the partial match being stepped, in the pass being run. */
  private famSet: number[] = [];
  /** The slot's answer in this pass: 0 unknown, 1 true, 2 false. */
  private holeMemo = 0;
  /** Second pass of a split: the slot answers false. */
  private holeForced = false;
  /** The members split: `holeT` answer true, `holeF` false. */
  private holeSplit = false;
  private holeT: number[] = [];
  private holeF: number[] = [];
  /** Members whose (context-free) slot condition accepts the current event. */
  private eventOutcome: number[] | null = null;
  /** Members whose (context-free) slot condition threw on the current event. */
  private eventErred: number[] | null = null;
  /** Per once-per-event slot that threw on the current event: the members charged for it so far. */
  private readonly eventErrors: Array<number[] | undefined> = [];

  /**
   * @param family members sharing this NFA; the pattern's own condition at the
   *   family's slot is then never used (each member's is).
   */
  constructor(spec: CepPatternSpec, family?: CepFamily) {
    const pattern = normalizePattern(spec);
    this.pattern = pattern;
    const graph = compileGraph(pattern);
    this.nodes = Object.freeze(
      graph.nodes.map((n: GraphNode) =>
        Object.freeze({
          id: n.id,
          stage: n.stage,
          kind: n.kind,
          start: n.start,
          final: n.kind === NodeKind.Final,
          edges: Object.freeze(
            n.edges.map((e: Edge) =>
              Object.freeze({
                action: e.action,
                target: e.target.id,
                source: n.id,
                stage: n.stage,
                selfIgnore: e.action === Action.Ignore && e.target.id === n.id,
                cond: freezeCond(e.cond),
              }),
            ),
          ),
        }),
      ),
    );
    this.startId = graph.start.id;
    this.stageNames = Object.freeze(pattern.stages.map((s) => s.name));
    this.stageIndex = new Map(pattern.stages.map((s, i) => [s.name, i]));
    this.conditions = Object.freeze(pattern.stages.map((s) => s.condition));
    this.untils = Object.freeze(pattern.stages.map((s) => s.until));
    this.windowMs = pattern.withinMs;
    this.skipKind = SKIP_KINDS[pattern.skip.kind];
    this.ctx = new EvalContext(this.stageIndex);
    const n = pattern.stages.length;
    this.slots = Object.freeze([...this.conditions, ...this.untils]);
    this.contextFree = new Uint8Array(2 * n);
    let anyContextual = false;
    this.slots.forEach((fn, i) => {
      // A condition declared with fewer than two parameters cannot read the context.
      const free = fn === null || fn.length < 2;
      this.contextFree[i] = free ? 1 : 0;
      if (!free) anyContextual = true;
    });
    this.anyContextual = anyContextual;
    this.memoEvent = new Uint8Array(2 * n);
    this.memoMatch = new Uint8Array(2 * n);
    this.fam = family ?? null;
    this.holeSlot = family === undefined || family.slot < 0 ? -1 : family.slot;
    const first = pattern.stages[0];
    this.startGate =
      first !== undefined && first.kind === 'match' && !first.optional && first.min >= 1 && first.until === null && first.condition !== null && first.condition.length < 2
        ? this.holeSlot === 0
          ? (event: Event) => !maskEmpty(this.outcomeFor(event)) || this.eventErred !== null
          : (first.condition as (event: Event) => boolean)
        : null;
  }

  /** Number of NFA nodes (for diagnostics and tests). */
  get nodeCount(): number {
    return this.nodes.length;
  }

  /**
   * Processes one event at `timestamp` for a key, Flink CepOperator style:
   * time first advances to `timestamp` (timeouts, pending absences), then the
   * event is matched. Appends output to `sink` and returns the new state.
   * Events must come in the order the caller wants them matched (the engine
   * sorts by event time in event-time mode).
   */
  processInto(state: CepState | undefined, event: Event, timestamp: number, sink: CepSink): CepState | undefined {
    this.eventOutcome = null;
    if (state === undefined && this.startGate !== null) {
      // Nothing to advance and no match can start: the state stays the start state. A condition
      // that throws goes the long way, which counts the error.
      this.sink = sink;
      try {
        if (!this.startGate(event)) {
          this.sink = null;
          return undefined;
        }
      } catch {
        // evaluated again below
      }
    }
    if (state !== undefined) state = this.advanceTimeInto(state, timestamp, sink);
    return this.processEventInto(state, event, timestamp, sink);
  }

  /**
   * Drops the key's partial matches because its state expired: all of them,
   * or for an NFA shared by a {@link CepFamily}, those of the members in
   * `members` (a bit set; others keep theirs). They are counted in
   * `sink.expired` (and `sink.expiredMembers`), reported neither as matches
   * nor as timeouts. Completed matches a skip strategy held back behind them
   * are released into `sink.matches`, as when `maxPartialMatches` drops them.
   */
  expireInto(state: CepState | undefined, sink: CepSink, members?: readonly number[]): CepState | undefined {
    if (state === undefined) return undefined;
    const pms = state.pm;
    if (this.fam === null || members === undefined) {
      sink.expired += pms.length;
      pms.length = 0;
    } else {
      let n = 0;
      for (let i = 0; i < pms.length; i++) {
        const pm = pms[i]!;
        const hit = maskAnd(pm.m!, members);
        if (!maskEmpty(hit)) {
          forEachMember(hit, (m) => {
            sink.expired++;
            sink.expiredMembers.push(m);
          });
          // Masks may be shared between partial matches: a new one, never a change in place.
          pm.m = maskAndNot(pm.m!, members);
          if (maskEmpty(pm.m)) continue;
        }
        pms[n++] = pm;
      }
      pms.length = n;
    }
    if (state.done.length > 0) {
      if (this.potential.length !== 0) this.potential.length = 0;
      this.emitCompleted(state, this.potential, sink);
    }
    return isCepStateEmpty(state) ? undefined : state;
  }

  /** {@link processInto} returning a fresh {@link CepStep}. */
  process(state: CepState | undefined, event: Event, timestamp: number): CepStep {
    const sink = createCepSink();
    return stepOf(this.processInto(state, event, timestamp, sink), sink);
  }

  /**
   * Advances time to `timestamp` without an event: partial matches whose
   * window has elapsed (`timestamp - start >= withinMs`) time out, a pending
   * trailing `notFollowedBy` becomes a match, and matches held back by a skip
   * strategy are released when nothing earlier is left.
   */
  advanceTimeInto(state: CepState | undefined, timestamp: number, sink: CepSink): CepState | undefined {
    if (state === undefined) return undefined;
    const fam = this.fam;
    if (fam !== null && fam.variableWindow) return this.advanceMembers(state, timestamp, sink, fam);
    // A family's members share one window, which may not be the pattern's own.
    const window = fam !== null && fam.order.length > 0 ? fam.minWindow : this.windowMs;
    if (window <= 0) return state;
    const pms = state.pm;
    // Partial matches are ordered by start, so the expired ones are a prefix.
    let expired = 0;
    while (expired < pms.length && timestamp - pms[expired]!.st >= window) expired++;
    if (expired === 0) return state;
    const potential = this.potential;
    if (potential.length !== 0) potential.length = 0;
    for (let i = 0; i < expired; i++) {
      const pm = pms[i]!;
      if (this.nodes[pm.n]!.kind === NodeKind.Pending) {
        // A trailing notFollowedBy whose window elapsed without the forbidden event: a match.
        potential.push(pm);
      } else if (this.pattern.emitTimeouts) {
        sink.timeouts.push(this.timeoutOf(pm, pm.st + window));
      }
    }
    pms.splice(0, expired);
    this.emitCompleted(state, potential, sink);
    if (potential.length !== 0) potential.length = 0;
    return isCepStateEmpty(state) ? undefined : state;
  }

  /**
   * {@link advanceTimeInto} for a family whose members have different
   * windows: each partial match times out (or, pending, completes) for the
   * members whose window elapsed, in groups of one window each, and lives on
   * for the others.
   */
  private advanceMembers(state: CepState, timestamp: number, sink: CepSink, fam: CepFamily): CepState | undefined {
    const pms = state.pm;
    const potential = this.potential;
    if (potential.length !== 0) potential.length = 0;
    const sorted = fam.windowSorted;
    let w = 0;
    let i = 0;
    for (; i < pms.length; i++) {
      const pm = pms[i]!;
      const elapsed = timestamp - pm.st;
      // Ordered by start: no later partial match has reached even the shortest window.
      if (elapsed < fam.minWindow) break;
      let k = 0;
      while (k < sorted.length && sorted[k]! <= elapsed) k++;
      const ended = maskAnd(pm.m!, fam.windowPrefix[k]!);
      if (!maskEmpty(ended)) {
        const pending = this.nodes[pm.n]!.kind === NodeKind.Pending;
        for (let j = 0; j < k; ) {
          let j2 = j + 1;
          while (j2 < k && sorted[j2] === sorted[j]) j2++;
          const group = maskAnd(ended, maskAndNot(fam.windowPrefix[j2]!, fam.windowPrefix[j]!));
          if (!maskEmpty(group)) {
            const part: CepPartialMatch = { n: pm.n, st: pm.st, ss: pm.ss, ev: pm.ev.slice(), k: pm.k.slice(), m: group };
            if (pending) potential.push(part);
            else if (this.pattern.emitTimeouts) sink.timeouts.push(this.timeoutOf(part, pm.st + sorted[j]!));
          }
          j = j2;
        }
        const rest = maskAndNot(pm.m!, ended);
        if (maskEmpty(rest)) continue;
        pm.m = rest;
      }
      pms[w++] = pm;
    }
    for (; i < pms.length; i++) pms[w++] = pms[i]!;
    pms.length = w;
    this.emitCompleted(state, potential, sink);
    if (potential.length !== 0) potential.length = 0;
    return isCepStateEmpty(state) ? undefined : state;
  }

  /** {@link advanceTimeInto} returning a fresh {@link CepStep}. */
  advanceTime(state: CepState | undefined, timestamp: number): CepStep {
    const sink = createCepSink();
    return stepOf(this.advanceTimeInto(state, timestamp, sink), sink);
  }

  /**
   * The earliest timestamp at which {@link advanceTimeInto} would change the
   * state (a timeout or a pending absence), or `Infinity` when time alone
   * changes nothing. Register one timer per key at this time.
   */
  nextTimerAt(state: CepState | undefined): number {
    if (state === undefined || state.pm.length === 0) return NO_TIMER;
    const fam = this.fam;
    if (fam !== null && fam.variableWindow) {
      // The earliest start plus the shortest window among its members, over the partial
      // matches that could still come first.
      let next = NO_TIMER;
      for (const pm of state.pm) {
        if (pm.st + fam.minWindow >= next) break;
        const t = pm.st + fam.minWindowOf(pm.m!);
        if (t < next) next = t;
      }
      return next;
    }
    const window = fam !== null && fam.order.length > 0 ? fam.minWindow : this.windowMs;
    if (window <= 0) return NO_TIMER;
    // Partial matches are ordered by start timestamp.
    return state.pm[0]!.st + window;
  }

  /** True when the state holds nothing but the start state. */
  isEmpty(state: CepState | undefined): boolean {
    return isCepStateEmpty(state);
  }

  private processEventInto(state: CepState | undefined, event: Event, timestamp: number, sink: CepSink): CepState | undefined {
    const seq = state === undefined ? 0 : state.seq;
    const next = this.nextPm;
    const potential = this.potential;
    if (next.length !== 0) next.length = 0;
    if (potential.length !== 0) potential.length = 0;
    this.sink = sink;
    this.memoEvent.fill(0);
    if (state !== undefined) {
      const pms = state.pm;
      for (let i = 0; i < pms.length; i++) this.step(pms[i]!, event, timestamp, seq);
    }
    this.step(null, event, timestamp, seq);
    this.evalEvent = null;
    this.sink = null;
    this.ctx.unbind();

    if (next.length === 0 && potential.length === 0 && (state === undefined || (state.pm.length === 0 && state.done.length === 0))) {
      // Nothing started, nothing was pending: stay at the start state.
      return undefined;
    }
    if (state === undefined) state = { v: 1, seq: seq + 1, pm: [], done: [] };
    else state.seq = seq + 1;
    sortByStart(next);
    copyInto(state.pm, next);
    if (next.length !== 0) next.length = 0;
    this.emitCompleted(state, potential, sink);
    if (potential.length !== 0) potential.length = 0;
    this.enforceBound(state, sink);
    return isCepStateEmpty(state) ? undefined : state;
  }

  /**
   * Flink's computeNextStates for one partial match (`null` = the start
   * state): builds the decision graph for the event, then creates the
   * successors. Final successors go to `potential`, live ones to `nextPm`;
   * a successor in a STOP state kills every live successor of this match.
   */
  private step(pm: CepPartialMatch | null, event: Event, timestamp: number, seq: number): void {
    const fam = this.fam;
    if (fam === null) {
      this.bind(pm, event, timestamp);
      if (this.explore(pm)) this.spawn(pm, event, timestamp, seq, undefined, true);
      return;
    }
    // A partial match belongs to the members it was made for that are still online.
    const set = pm === null ? fam.live : maskAnd(pm.m!, fam.live);
    if (maskEmpty(set)) return;
    this.famSet = set;
    this.holeMemo = 0;
    this.holeForced = false;
    this.holeSplit = false;
    this.bind(pm, event, timestamp);
    // Every condition the step needs is evaluated before any successor is made, so a split
    // is known by then.
    const any = this.explore(pm);
    if (!this.holeSplit) {
      if (any) this.spawn(pm, event, timestamp, seq, set, true);
      return;
    }
    // Members that answered true, then those that answered false, each with the successors
    // their answer leads to; the partial match object goes to the second.
    const onFalse = this.holeF;
    if (any) this.spawn(pm, event, timestamp, seq, this.holeT, false);
    this.famSet = onFalse;
    this.holeForced = true;
    this.holeMemo = 0;
    if (this.explore(pm)) this.spawn(pm, event, timestamp, seq, onFalse, true);
    this.holeForced = false;
  }

  /** Collects the edges the event takes from the partial match's node (following PROCEED edges) into `edgeBuf`; false when none. */
  private explore(pm: CepPartialMatch | null): boolean {
    const nodeId = pm === null ? this.startId : pm.n;
    const edges = this.edgeBuf;
    if (edges.length !== 0) edges.length = 0;
    const stack = this.stack;
    if (stack.length !== 0) stack.length = 0;
    stack.push(nodeId);
    while (stack.length > 0) {
      const node = this.nodes[stack.pop()!]!;
      const out = node.edges;
      for (let i = 0; i < out.length; i++) {
        const edge = out[i]!;
        if (!this.evalCond(edge.cond)) continue;
        if (edge.action === Action.Proceed) stack.push(edge.target);
        else edges.push(edge);
      }
    }
    // No transition: the partial match dies (start state stays implicitly).
    if (edges.length === 0) return false;
    // Where each TAKE may also complete the match (evaluated here, in edge order, so that all
    // of the step's conditions are known before its successors are made).
    const finals = this.finals;
    finals.length = edges.length;
    for (let i = 0; i < edges.length; i++) finals[i] = edges[i]!.action === Action.Take ? this.findFinalAfterProceed(edges[i]!.target) : -1;
    return true;
  }

  /**
   * Creates the successors of a partial match along the edges in `edgeBuf`,
   * belonging to `members` (family mode). With `own`, the last successor takes
   * over the partial match object.
   */
  private spawn(pm: CepPartialMatch | null, event: Event, timestamp: number, seq: number, members: number[] | undefined, own: boolean): void {
    const isStart = pm === null;
    const edges = this.edgeBuf;
    const keep = this.keep;
    if (keep.length !== 0) keep.length = 0;
    let stopped = false;
    // The last successor takes over the partial match object and its arrays (the
    // match is replaced by its successors); the others copy them first.
    const lastOwner = isStart || !own ? -1 : edges.length - 1;
    for (let i = 0; i < edges.length; i++) {
      const edge = edges[i]!;
      const target = this.nodes[edge.target]!;
      if (edge.action === Action.Ignore) {
        if (isStart) continue; // the start state never ignores: it is always kept anyway
        let succ: CepPartialMatch;
        if (i === lastOwner) {
          // The match itself moves on: no allocation for the common "keep waiting" case.
          succ = pm;
          succ.n = target.id;
          succ.m = members;
        } else {
          succ = { n: target.id, st: pm.st, ss: pm.ss, ev: pm.ev.slice(), k: pm.k.slice(), m: members };
        }
        if (this.route(succ, target, keep)) stopped = true;
      } else {
        // TAKE: accept the event, filed under the stage of the edge's source.
        // Look for a PROCEED path to the final state first: its conditions see the
        // partial match as it was before this event (as Flink's context does).
        const finalId = this.finals[i]!;
        let succ: CepPartialMatch;
        if (pm === null) {
          succ = { n: target.id, st: timestamp, ss: seq, ev: [event], k: [edge.stage, seq, timestamp], m: members };
        } else {
          succ = i === lastOwner ? pm : { n: target.id, st: pm.st, ss: pm.ss, ev: pm.ev.slice(), k: pm.k.slice(), m: members };
          succ.n = target.id;
          succ.m = members;
          succ.ev.push(event);
          succ.k.push(edge.stage, seq, timestamp);
        }
        if (this.route(succ, target, keep)) stopped = true;
        if (finalId >= 0) {
          // The stage may end here: also complete the match now.
          this.potential.push({ n: finalId, st: succ.st, ss: succ.ss, ev: succ.ev.slice(), k: succ.k.slice(), m: members });
        }
      }
    }
    if (!stopped) {
      const next = this.nextPm;
      for (let i = 0; i < keep.length; i++) next.push(keep[i]!);
    }
    if (keep.length !== 0) keep.length = 0;
  }

  /** Files a successor; returns true if it reached a STOP state. */
  private route(succ: CepPartialMatch, target: Node, keep: CepPartialMatch[]): boolean {
    if (target.final) {
      this.potential.push(succ);
      return false;
    }
    if (target.kind === NodeKind.Stop) return true;
    keep.push(succ);
    return false;
  }

  /** Is the final node reachable from `from` through PROCEED edges alone, for this event? */
  private findFinalAfterProceed(from: number): number {
    const stack = this.stack2;
    if (stack.length !== 0) stack.length = 0;
    stack.push(from);
    while (stack.length > 0) {
      const node = this.nodes[stack.pop()!]!;
      const out = node.edges;
      for (let i = 0; i < out.length; i++) {
        const edge = out[i]!;
        if (edge.action !== Action.Proceed || !this.evalCond(edge.cond)) continue;
        if (this.nodes[edge.target]!.final) {
          if (stack.length !== 0) stack.length = 0;
          return edge.target;
        }
        stack.push(edge.target);
      }
    }
    return -1;
  }

  private bind(pm: CepPartialMatch | null, event: Event, timestamp: number): void {
    this.evalEvent = event;
    this.ctx.bind(pm, timestamp);
    if (this.anyContextual) this.memoMatch.fill(0);
  }

  private evalCond(cond: Cond): boolean {
    switch (cond.op) {
      case 'true':
        return true;
      case 'take':
        return this.leaf(cond.stage);
      case 'until':
        return this.leaf(this.conditions.length + cond.stage);
      case 'not':
        return !this.evalCond(cond.arg);
      case 'and':
        return this.evalCond(cond.left) && this.evalCond(cond.right);
    }
  }

  /**
   * Evaluates a condition slot at most once per (partial match, event), or once
   * per event for a condition that does not read the context.
   */
  private leaf(slot: number): boolean {
    if (slot === this.holeSlot) return this.hole();
    const memo = this.contextFree[slot] === 1 ? this.memoEvent : this.memoMatch;
    const known = memo[slot]!;
    if (known !== 0) {
      // An error of this event's once-per-event answer counts against each member that asks.
      if (known === ERRED && this.fam !== null) this.chargeEventError(slot, this.famSet);
      return known === 1;
    }
    const fn = this.slots[slot]!;
    let result = true;
    if (fn !== null) {
      try {
        result = fn(this.evalEvent!, this.ctx) === true;
      } catch (err: unknown) {
        // A failing condition is a "no" for this event; the caller counts it.
        result = false;
        const sink = this.sink!;
        sink.lastConditionError = err;
        if (this.fam === null) sink.conditionErrors++;
        else if (this.contextFree[slot] === 1) {
          // Counted once per event against each member that asks (as each member's own NFA would).
          this.eventErrors[slot] = [];
          this.chargeEventError(slot, this.famSet);
          memo[slot] = ERRED;
          return false;
        } else this.charge(this.famSet);
      }
    }
    memo[slot] = result ? 1 : 2;
    return result;
  }

  /** Counts one error against each member of `set`. */
  private charge(set: readonly number[]): void {
    const sink = this.sink!;
    forEachMember(set, (m) => {
      sink.conditionErrors++;
      sink.errorMembers.push(m);
    });
  }

  /** Counts this event's error of a once-per-event slot against the members of `set` not yet charged for it. */
  private chargeEventError(slot: number, set: readonly number[]): void {
    const charged = this.eventErrors[slot]!;
    const fresh = maskAndNot(set, charged);
    if (maskEmpty(fresh)) return;
    this.charge(fresh);
    this.eventErrors[slot] = maskOr(charged, fresh);
  }

  /**
   * The family's slot for the partial match being stepped: true or false when
   * all its members answer alike, else true for this pass with a split noted
   * (the members answering false get a second pass).
   */
  private hole(): boolean {
    if (this.holeMemo !== 0) return this.holeMemo === 1;
    let result: boolean;
    if (this.holeForced) {
      result = false;
    } else {
      const set = this.famSet;
      let answers: number[];
      if (this.contextFree[this.holeSlot] === 1) {
        answers = this.outcomeFor(this.evalEvent!);
        // Members that threw on this event: counted once per event against each that asks.
        const erred = this.eventErred;
        if (erred !== null) {
          const asking = maskAnd(set, erred);
          if (!maskEmpty(asking)) this.chargeEventError(this.holeSlot, asking);
        }
      } else {
        answers = this.outcome(set);
      }
      const onTrue = maskAnd(set, answers);
      if (maskEmpty(onTrue)) result = false;
      else {
        const onFalse = maskAndNot(set, answers);
        if (!maskEmpty(onFalse)) {
          this.holeSplit = true;
          this.holeT = onTrue;
          this.holeF = onFalse;
        }
        result = true;
      }
    }
    this.holeMemo = result ? 1 : 2;
    return result;
  }

  /**
   * The members whose context-free slot condition accepts `event` (once per
   * event; the members whose condition threw are in `eventErred`, charged as
   * they ask).
   */
  private outcomeFor(event: Event): number[] {
    if (this.eventOutcome === null) {
      this.evalEvent = event;
      this.eventErred = null;
      this.eventErrors[this.holeSlot] = [];
      this.eventOutcome = this.outcome(null);
    }
    return this.eventOutcome;
  }

  /**
   * The members online whose condition at the slot accepts the event in the
   * bound context. The answer is monotone in the members' numbers, so it is
   * the same for all, or changes once along `order`: the two ends and a
   * binary search find it. A condition that throws at a probe makes every
   * member of `charged` (all online when null) answer on its own, each error
   * counted against its member.
   */
  private outcome(charged: readonly number[] | null): number[] {
    const fam = this.fam!;
    const order = fam.order;
    const n = order.length;
    if (n === 0) return fam.live;
    const first = this.memberAnswer(order[0]!);
    if (first === THREW) return this.eachAnswer(charged ?? fam.live, charged === null);
    if (n === 1) return first === 1 ? fam.prefix[1]! : fam.prefix[0]!;
    const last = this.memberAnswer(order[n - 1]!);
    if (last === THREW) return this.eachAnswer(charged ?? fam.live, charged === null);
    if (first === last) return first === 1 ? fam.live : fam.prefix[0]!;
    // order[0..lo] answer `first`, order[hi..n-1] answer `last`.
    let lo = 0;
    let hi = n - 1;
    while (hi - lo > 1) {
      const mid = (lo + hi) >>> 1;
      const answer = this.memberAnswer(order[mid]!);
      if (answer === THREW) return this.eachAnswer(charged ?? fam.live, charged === null);
      if (answer === last) hi = mid;
      else lo = mid;
    }
    // True for a prefix (first true) or for the rest.
    return first === 1 ? fam.prefix[hi]! : maskAndNot(fam.live, fam.prefix[hi]!);
  }

  private memberAnswer(member: number): number {
    try {
      return this.fam!.conds[member]!(this.evalEvent!, this.ctx) === true ? 1 : 0;
    } catch {
      return THREW;
    }
  }

  /**
   * Every member of `set` answers on its own. Errors count against their
   * members, or, for the once-per-event answer (`perEvent`), are noted in
   * `eventErred` to be counted as members ask.
   */
  private eachAnswer(set: readonly number[], perEvent: boolean): number[] {
    const fam = this.fam!;
    const out = new Array<number>(fam.live.length).fill(0);
    const sink = this.sink!;
    forEachMember(set, (m) => {
      if (!fam.has(m)) return;
      try {
        if (fam.conds[m]!(this.evalEvent!, this.ctx) === true) out[m >>> 5]! |= 1 << (m & 31);
      } catch (err: unknown) {
        sink.lastConditionError = err;
        if (perEvent) {
          const erred = (this.eventErred ??= new Array<number>(fam.live.length).fill(0));
          erred[m >>> 5]! |= 1 << (m & 31);
        } else {
          sink.conditionErrors++;
          sink.errorMembers.push(m);
        }
      }
    });
    return out;
  }

  /**
   * Emits completed matches. Without a skip strategy all are emitted at once.
   * With one, Flink holds a completed match back while a partial match that
   * started earlier (or at the same event) is still alive, emits in start
   * order, and after each emitted match prunes partial and held matches.
   */
  private emitCompleted(state: CepState, potential: CepPartialMatch[], sink: CepSink): void {
    if (this.skipKind === SKIP_NONE) {
      if (potential.length > 1) potential.sort(compareCompleted);
      for (let i = 0; i < potential.length; i++) sink.matches.push(this.matchOf(potential[i]!));
      return;
    }
    if (this.fam !== null) {
      this.emitCompletedMembers(state, potential, sink);
      return;
    }
    const done = state.done;
    for (let i = 0; i < potential.length; i++) done.push(potential[i]!);
    if (done.length === 0) return;
    done.sort(compareCompleted);
    const pms = state.pm;
    while (done.length > 0) {
      const m = done[0]!;
      const earliest = pms[0];
      if (earliest !== undefined && compareStart(m, earliest) > 0) break;
      done.shift();
      this.prune(m, pms);
      this.prune(m, done);
      sink.matches.push(this.matchOf(m));
    }
  }

  /**
   * {@link emitCompleted} with a skip strategy, for each member as its own NFA
   * would: a completed match is released to the members with no partial match
   * that started before it, and prunes for those members only; the others keep
   * it held (and, as their partial match started before every later match too,
   * every later one).
   */
  private emitCompletedMembers(state: CepState, potential: CepPartialMatch[], sink: CepSink): void {
    const done = state.done;
    for (let i = 0; i < potential.length; i++) done.push(potential[i]!);
    if (done.length === 0) return;
    done.sort(compareCompleted);
    const pms = state.pm;
    let w = 0;
    for (let i = 0; i < done.length; i++) {
      const m = done[i]!;
      const mask = m.m!;
      if (maskEmpty(mask)) continue; // pruned away for all its members
      let before: number[] = [];
      for (let j = 0; j < pms.length; j++) {
        const pm = pms[j]!;
        if (compareStart(m, pm) <= 0) break;
        before = maskOr(before, pm.m!);
      }
      const release = maskAndNot(mask, before);
      const held = maskAndNot(mask, release);
      if (!maskEmpty(release)) {
        this.pruneMembers(m, pms, 0, release);
        this.pruneMembers(m, done, i + 1, release);
        sink.matches.push(this.matchOf({ n: m.n, st: m.st, ss: m.ss, ev: m.ev, k: m.k, m: release }));
      }
      if (!maskEmpty(held)) {
        m.m = held;
        done[w++] = m;
      }
    }
    done.length = w;
    // Partial matches left to no member go.
    let n = 0;
    for (let j = 0; j < pms.length; j++) if (!maskEmpty(pms[j]!.m!)) pms[n++] = pms[j]!;
    pms.length = n;
  }

  /** {@link prune} for the members of `members` only, from `list[from]` on (a match left to no member keeps an empty set). */
  private pruneMembers(match: CepPartialMatch, list: CepPartialMatch[], from: number, members: readonly number[]): void {
    const point = this.prunePoint(match);
    if (point === null) return;
    for (let r = from; r < list.length; r++) {
      const x = list[r]!;
      if (skippedPast(x, point)) x.m = maskAndNot(x.m!, members);
    }
  }

  /** Where AfterMatchSkipStrategy.prune cuts after `match` (null: nowhere, e.g. skipTo* a stage the match lacks). */
  private prunePoint(match: CepPartialMatch): PrunePoint | null {
    const k = match.k;
    switch (this.skipKind) {
      case SKIP_TO_NEXT:
        return { ts: k[2]!, seq: k[1]!, inclusive: true };
      case SKIP_PAST_LAST:
        return { ts: k[k.length - 1]!, seq: k[k.length - 2]!, inclusive: true };
      default: {
        const stage = this.pattern.skipStage;
        let at = -1;
        for (let i = 0; i < k.length; i += 3) {
          if (k[i] === stage) {
            at = i;
            if (this.skipKind === SKIP_TO_FIRST) break;
          }
        }
        return at < 0 ? null : { ts: k[at + 2]!, seq: k[at + 1]!, inclusive: false };
      }
    }
  }

  /** AfterMatchSkipStrategy.prune: drops matches whose start the strategy skips past. */
  private prune(match: CepPartialMatch, list: CepPartialMatch[]): void {
    const point = this.prunePoint(match);
    if (point === null) return;
    let w = 0;
    for (let r = 0; r < list.length; r++) {
      const x = list[r]!;
      if (!skippedPast(x, point)) list[w++] = x;
    }
    list.length = w;
  }

  /** Keeps at most `maxPartialMatches` partial matches, dropping those that started first. */
  private enforceBound(state: CepState, sink: CepSink): void {
    const max = this.pattern.maxPartialMatches;
    const pms = state.pm;
    if (pms.length <= max) return;
    if (this.fam !== null) {
      this.enforceMemberBound(pms, max, sink);
      // Dropping the earliest partial matches may release held completed ones.
      if (state.done.length > 0) {
        if (this.potential.length !== 0) this.potential.length = 0;
        this.emitCompleted(state, this.potential, sink);
      }
      return;
    }
    const drop = pms.length - max;
    pms.splice(0, drop);
    sink.dropped += drop;
    // Dropping the earliest partial matches may release held completed ones.
    if (state.done.length > 0) {
      if (this.potential.length !== 0) this.potential.length = 0;
      this.emitCompleted(state, this.potential, sink);
    }
  }

  /**
   * The bound per member: each keeps its `max` latest partial matches; a
   * partial match left to no member goes.
   */
  private enforceMemberBound(pms: CepPartialMatch[], max: number, sink: CepSink): void {
    const counts: number[] = [];
    let w = pms.length;
    for (let i = pms.length - 1; i >= 0; i--) {
      const pm = pms[i]!;
      let mask = pm.m!;
      let changed = false;
      forEachMember(mask, (m) => {
        const c = (counts[m] ?? 0) + 1;
        counts[m] = c;
        if (c <= max) return;
        if (!changed) {
          mask = mask.slice();
          changed = true;
        }
        mask[m >>> 5]! &= ~(1 << (m & 31));
        sink.dropped++;
        sink.droppedMembers.push(m);
      });
      if (changed) pm.m = mask;
      if (!maskEmpty(mask)) pms[--w] = pm;
    }
    // Survivors were written from the end, in order.
    pms.splice(0, w);
  }

  private matchOf(pm: CepPartialMatch): CepMatch {
    if (pm.m !== undefined) return { events: this.eventsByStage(pm), firstTimestamp: pm.k[2]!, lastTimestamp: pm.k[pm.k.length - 1]!, members: pm.m };
    return { events: this.eventsByStage(pm), firstTimestamp: pm.k[2]!, lastTimestamp: pm.k[pm.k.length - 1]! };
  }

  private timeoutOf(pm: CepPartialMatch, at: number): CepTimeout {
    if (pm.m !== undefined) return { events: this.eventsByStage(pm), firstTimestamp: pm.k[2]!, lastTimestamp: pm.k[pm.k.length - 1]!, timeoutTimestamp: at, members: pm.m };
    return { events: this.eventsByStage(pm), firstTimestamp: pm.k[2]!, lastTimestamp: pm.k[pm.k.length - 1]!, timeoutTimestamp: at };
  }

  private eventsByStage(pm: CepPartialMatch): Record<string, Event[]> {
    const out: Record<string, Event[]> = {};
    const names = this.stageNames;
    const k = pm.k;
    // Stages are accepted in pattern order, so insertion order is stage order.
    for (let i = 0, e = 0; i < k.length; i += 3, e++) {
      const name = names[k[i]!]!;
      const list = out[name];
      if (list === undefined) out[name] = [pm.ev[e]!];
      else list.push(pm.ev[e]!);
    }
    return out;
  }
}

function stepOf(state: CepState | undefined, sink: CepSink): CepStep {
  return {
    state,
    matches: sink.matches,
    timeouts: sink.timeouts,
    dropped: sink.dropped,
    conditionErrors: sink.conditionErrors,
    lastConditionError: sink.lastConditionError,
    errorMembers: sink.errorMembers,
    droppedMembers: sink.droppedMembers,
    expired: sink.expired,
    expiredMembers: sink.expiredMembers,
  };
}

/** Compiles a pattern; throws {@link CepPatternError} when it is malformed. */
export function compileCepPattern(spec: CepPatternSpec): CepNfa {
  return new CepNfa(spec);
}

class EvalContext implements CepContext {
  timestamp = 0;
  private pm: CepPartialMatch | null = null;

  constructor(private readonly stageIndex: ReadonlyMap<string, number>) {}

  bind(pm: CepPartialMatch | null, timestamp: number): void {
    this.pm = pm;
    this.timestamp = timestamp;
  }

  unbind(): void {
    this.pm = null;
  }

  eventsFor(name: string): readonly Event[] {
    const pm = this.pm;
    if (pm === null) return EMPTY_EVENTS;
    const stage = this.stageIndex.get(name);
    if (stage === undefined) return EMPTY_EVENTS;
    const k = pm.k;
    let out: Event[] | null = null;
    for (let i = 0, e = 0; i < k.length; i += 3, e++) {
      if (k[i] === stage) (out ??= []).push(pm.ev[e]!);
    }
    return out ?? EMPTY_EVENTS;
  }
}

/** Where a skip strategy cuts: partial matches that started before it (or at it, when inclusive) go. */
interface PrunePoint {
  ts: number;
  seq: number;
  inclusive: boolean;
}

function skippedPast(x: CepPartialMatch, point: PrunePoint): boolean {
  const c = x.st !== point.ts ? x.st - point.ts : x.ss - point.seq;
  return c < 0 || (point.inclusive && c === 0);
}

/** A member's condition threw (see CepNfa.outcome). */
const THREW = 2;
/** memoEvent: the once-per-event answer threw (false). */
const ERRED = 3;

const SKIP_NONE = 0;
const SKIP_TO_NEXT = 1;
const SKIP_PAST_LAST = 2;
const SKIP_TO_FIRST = 3;
const SKIP_TO_LAST = 4;
const SKIP_KINDS = { noSkip: SKIP_NONE, skipToNext: SKIP_TO_NEXT, skipPastLastEvent: SKIP_PAST_LAST, skipToFirst: SKIP_TO_FIRST, skipToLast: SKIP_TO_LAST } as const;

/** Flink's COMPUTATION_STATE_COMPARATOR: start timestamp, then start event. */
function compareStart(a: CepPartialMatch, b: CepPartialMatch): number {
  return a.st !== b.st ? a.st - b.st : a.ss - b.ss;
}

/**
 * Order of completed matches: by start; among matches that start at the same
 * event, the one whose events come first (compared event by event; a prefix
 * before its extensions). Flink leaves that tie to its priority queue.
 */
function compareCompleted(a: CepPartialMatch, b: CepPartialMatch): number {
  const c = compareStart(a, b);
  if (c !== 0) return c;
  const ka = a.k;
  const kb = b.k;
  const n = Math.min(ka.length, kb.length);
  for (let i = 0; i < n; i += 3) {
    const t = ka[i + 2]! - kb[i + 2]!;
    if (t !== 0) return t;
    const s = ka[i + 1]! - kb[i + 1]!;
    if (s !== 0) return s;
  }
  return ka.length - kb.length;
}

/** Stable insertion sort by start: the list is almost always sorted already. */
function sortByStart(list: CepPartialMatch[]): void {
  for (let i = 1; i < list.length; i++) {
    const x = list[i]!;
    if (compareStart(list[i - 1]!, x) <= 0) continue;
    let j = i - 1;
    while (j >= 0 && compareStart(list[j]!, x) > 0) {
      list[j + 1] = list[j]!;
      j--;
    }
    list[j + 1] = x;
  }
}

function copyInto<T>(target: T[], source: readonly T[]): void {
  target.length = source.length;
  for (let i = 0; i < source.length; i++) target[i] = source[i]!;
}

function freezeCond(cond: Cond): Cond {
  switch (cond.op) {
    case 'not':
      freezeCond(cond.arg);
      break;
    case 'and':
      freezeCond(cond.left);
      freezeCond(cond.right);
      break;
    default:
      break;
  }
  return Object.freeze(cond);
}
