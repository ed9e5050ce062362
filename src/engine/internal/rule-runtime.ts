import type { AttrValue, Event } from '../event.js';
import type { Comparison, RuleConditionNode, RulePredicateContext, RuleSequenceSpec, RuleSpec, StatisticTagSpec } from '../definition-set.js';
import type { Decision, EntitySnapshot, TagValue } from '../ports.js';
import { partitionOf } from '../partitioner.js';
import { ruleKeyOf, splitRuleKey } from '../rule-key.js';
import { CepFamily, CepNfa, clearCepSink, createCepSink, forEachMember, maskEmpty, type CepCondition, type CepMatch, type CepSink, type CepState, type CepTimeout } from './cep/index.js';
import { decodeRuleKeyState, writeRuleKeyState, type RuleKeyState } from './rule-snapshot.js';
import { createStatisticOperator, type StatisticOperator } from './statistic-operators.js';
import { TimerQueue } from './timer-queue.js';
import { visitFlagged } from './slices.js';
import type { SnapshotBatch } from '../snapshot-batch.js';

/** What the rule runtime needs from the partition that hosts it. */
export interface RuleHost {
  readonly partition: number;
  readonly partitionCount: number;
  /** Event-time watermark of the partition. */
  readonly watermark: number;
  /** Processing time carried by the log. */
  readonly processingTime: number;
  /** Log offset of the record being processed (for decision ids). */
  readonly currentOffset: number;
  /** Tags (those listed) and attributes of an entity, as the partition holds them now. */
  profileContext(entity: string, tagIds: ReadonlyArray<string>): { tags: Record<string, TagValue>; attrs: Record<string, AttrValue> };
  /** Sets a rule-output tag on an entity's profile. */
  setRuleTag(entity: string, tagId: string, value: TagValue, time: number, version: number): void;
  emitDecision(decision: Decision): void;
}

/** Counters of one rule in one partition. */
export interface RuleCounters {
  id: string;
  version: number;
  /** Condition evaluations. */
  evaluations: number;
  decisions: number;
  /** Predicate or output expressions that failed at run time (counted as false). */
  errors: number;
  lastError: string | undefined;
  /** Processing time of the latest error. */
  lastErrorAt: number;
  /** Events behind the watermark that an event-time rule could not order in (dropped, as Flink CEP does). */
  late: number;
  /** Events lacking a key field. */
  missingKey: number;
  /** Partial matches dropped at `maxPartialMatches`. */
  droppedPartialMatches: number;
  /** Partial matches dropped because their key had no event for the rule's state TTL. */
  expiredPartialMatches: number;
  /** Keys with state. */
  keys: number;
  /**
   * Rules (this one included) that compute together with this one: the most
   * members of a shared sequence or condition it belongs to; 1 when it runs alone.
   */
  sharedWith: number;
}

const NO_TIMER = Infinity;
const NO_RULES: RuleOp[] = [];
/** The aggregate values of a decision of a rule without aggregates (shared: not to be changed). */
const NO_AGGREGATES = Object.freeze([]) as unknown as Array<number | null>;
const NO_SEQS: SharedSequence[] = [];
/** Key (after the space id) of a key space's member tables in checkpoints; entity keys never start with NUL. */
const MEMBERS_KEY = '\u0000members';
const INITIAL_CAPACITY = 64;
/** Prefix of rule state keys in checkpoints; entity keys never start with NUL. */
export const RULE_STATE_PREFIX = '\u0000r\u0000';
/**
 * Default state TTL of the partial matches of a rule that sets no
 * `limits.stateTtl` and has a sequence without `within` (and no window to
 * take a TTL from): 7 days, so no input makes rule state grow without bound.
 */
export const DEFAULT_RULE_STATE_TTL_MS = 7 * 86_400_000;

/** Options of a {@link RuleRuntime}. */
export interface RuleRuntimeOptions {
  /**
   * State TTL (ms, in the rule's time) of the partial matches of rules that
   * have no other bound on them (see {@link DEFAULT_RULE_STATE_TTL_MS}); 0
   * keeps them as long as the NFA does.
   * @defaultValue {@link DEFAULT_RULE_STATE_TTL_MS}
   */
  readonly defaultStateTtlMs?: number;
}

interface Output {
  seq: number;
  kind: 'match' | 'timeout';
  match: CepMatch;
  time: number;
}

/**
 * A sequence computation shared by the rules of a key space whose sequences
 * have one share key: one NFA and one state per key, whatever the number of
 * rules; each partial match knows the rules (members) it belongs to.
 */
class SharedSequence {
  readonly family: CepFamily;
  readonly nfa: CepNfa;
  readonly types: ReadonlySet<string>;
  /** Per member index: the rule, the index of the sequence in it, its window (`within`, ms) and its rule's state TTL (ms; 0: none). */
  members: Array<{ rule: RuleOp; seq: number; within: number; ttl: number } | undefined> = [];
  /** The members' state TTLs, distinct and ascending (none of 0). */
  ttls: number[] = [];
  /** Per entry of {@link ttls}, the members with that TTL (a bit set). */
  ttlMembers: number[][] = [];
  states: Array<CepState | undefined> = [];
  readonly sink: CepSink = createCepSink();

  constructor(readonly key: string, spec: RuleSequenceSpec) {
    this.family = new CepFamily(spec.share!.slot);
    this.nfa = new CepNfa(spec.pattern, this.family);
    this.types = new Set(spec.eventTypes);
  }

  join(rule: RuleOp, seq: number): number {
    const spec = rule.spec.sequences[seq]!;
    const within = spec.pattern.withinMs ?? 0;
    const index = this.family.add(spec.share!.parameter, conditionAt(spec, spec.share!.slot), within);
    this.members[index] = { rule, seq, within, ttl: rule.stateTtlMs };
    return index;
  }

  /** Brings {@link ttls} up to date after members joined or left. */
  refreshTtls(): void {
    const ttls = new Set<number>();
    for (const m of this.members) if (m !== undefined && m.ttl > 0) ttls.add(m.ttl);
    this.ttls = [...ttls].sort((a, b) => a - b);
    this.ttlMembers = this.ttls.map((ttl) => this.membersWithTtl(ttl));
  }

  /** The members whose state TTL is `ttl` (a bit set). */
  private membersWithTtl(ttl: number): number[] {
    const mask: number[] = [];
    this.members.forEach((m, i) => {
      if (m === undefined || m.ttl !== ttl) return;
      while (mask.length <= i >>> 5) mask.push(0);
      mask[i >>> 5]! |= 1 << (i & 31);
    });
    return mask;
  }

  /** The first expiry of a member's state after `now`, for a key whose latest event was at `last` (NO_TIMER when none). */
  nextExpiry(last: number, now: number): number {
    const ttls = this.ttls;
    for (let i = 0; i < ttls.length; i++) if (last + ttls[i]! > now) return last + ttls[i]!;
    return NO_TIMER;
  }

  /** Takes members out, their bits out of every key's partial matches first; returns the keys that changed. */
  leave(indexes: ReadonlyArray<number>): number[] {
    const out = new Array<number>(this.family.live.length).fill(0);
    for (const i of indexes) out[i >>> 5]! |= 1 << (i & 31);
    const changed: number[] = [];
    const states = this.states;
    for (let slot = 0; slot < states.length; slot++) {
      const st = states[slot];
      if (st === undefined) continue;
      let touched = false;
      // Partial matches and completed matches held back by a skip strategy.
      for (const list of [st.pm, st.done]) {
        let n = 0;
        for (const pm of list) {
          const m = pm.m!;
          let hit = false;
          for (let w = 0; w < m.length; w++) if ((m[w]! & (out[w] ?? 0)) !== 0) hit = true;
          if (hit) {
            touched = true;
            pm.m = m.map((x, w) => x & ~(out[w] ?? 0));
            if (maskEmpty(pm.m)) continue;
          }
          list[n++] = pm;
        }
        list.length = n;
      }
      if (st.pm.length === 0 && st.done.length === 0) states[slot] = undefined;
      if (touched) changed.push(slot);
    }
    for (const i of indexes) {
      this.family.remove(i);
      this.members[i] = undefined;
    }
    return changed;
  }

  /** Member table: per index, `stateId#sequence` of its rule (null when free). */
  table(): Array<string | null> {
    return this.members.map((m) => (m === undefined ? null : memberName(m.rule, m.seq)));
  }
}

function memberName(rule: RuleOp, seq: number): string {
  return `${rule.spec.stateId}#${seq}`;
}

/** The condition of a pattern at a condition slot (stage index; stages + index for `until`). */
function conditionAt(spec: RuleSequenceSpec, slot: number): CepCondition | undefined {
  if (slot < 0) return undefined;
  const stages = spec.pattern.stages;
  return slot < stages.length ? stages[slot]!.condition : stages[slot - stages.length]!.until;
}

/** An aggregate shared by every rule of a key space that uses one of its identity. */
interface SharedAggregate {
  readonly identity: string;
  readonly op: StatisticOperator;
  readonly types: ReadonlySet<string>;
}

/**
 * The keys of every rule with the same key fields, time domain and ordering:
 * one slot per key, one ordering buffer and one timer per key however many
 * rules use it, and the aggregates of those rules, each kept once per key.
 */
class KeySpace {
  readonly keyFields: ReadonlyArray<string>;
  readonly entityKeyField: string;
  readonly entityKeyed: boolean;
  readonly time: 'event' | 'processing';
  readonly ordering: 'event-time' | 'arrival';
  aggs: SharedAggregate[] = [];
  rules: RuleOp[] = [];
  /** Rules with sequences of their own: time passing alone can make them decide. */
  seqRules: RuleOp[] = [];
  /** Shared sequences by share key. */
  seqs = new Map<string, SharedSequence>();
  /**
   * By event type: the aggregates and shared sequences that read it, the rules
   * to visit for it (own sequences or a condition to evaluate on it; rules
   * whose sequences are shared are visited when those give them output), and
   * every rule that reads it (for counters).
   */
  routes = new Map<string, { aggs: SharedAggregate[]; seqs: SharedSequence[]; rules: Array<RuleOp | ConditionFamily>; readers: RuleOp[] }>();
  /** The member table of a shared sequence changed since the last checkpoint. */
  private tablesDirty = true;
  /** Restored shared-sequence states waiting for {@link remapRestored}: their member bits are the checkpoint's. */
  private restoredSeqs: Array<[SharedSequence, number]> = [];
  /** Member tables of the checkpoint restored from, by share key. */
  private restoredTables: Record<string, Array<string | null>> | undefined;
  /** Counter of evaluation moments; rules note the moment they were visited in. */
  private stamp = 0;
  /** Keys are dropped this long after their last event; 0 keeps keys with aggregates. */
  ttlMs = 0;
  /** The shortest state TTL of partial matches of the space's rules (ms; Infinity: none expire). */
  seqTtlMs = Infinity;
  /** Position in the runtime's list of spaces (timer owner id). */
  index = 0;
  private slots = new Map<string, number>();
  private keys: string[] = [];
  private free: number[] = [];
  private capacity = INITIAL_CAPACITY;
  lastTime = new Float64Array(INITIAL_CAPACITY).fill(-Infinity);
  timerAt = new Float64Array(INITIAL_CAPACITY).fill(NO_TIMER);
  buffers: Array<Event[] | undefined> = [];
  /**
   * Per key, the rules whose sequences may hold a partial match for it (a
   * superset: pruned as they go idle), so time passing, idleness, timers and
   * snapshots cost what a key holds, not the number of rules in the space.
   */
  active: Array<RuleOp[] | undefined> = [];
  /** Per key, the shared sequences that may hold a partial match for it (a superset, as {@link active}). */
  activeSeqs: Array<SharedSequence[] | undefined> = [];
  private dirty = new Uint8Array(INITIAL_CAPACITY);
  private dirtyList: number[] = [];
  readonly deleted = new Set<string>();
  /**
   * Keys of a checkpoint being written, not yet encoded: each is encoded
   * before its state next changes ({@link touch}), or by {@link encodePending}
   * between batches, so the checkpoint holds every key as it was when the
   * checkpoint was taken without stopping the engine to encode them all.
   */
  private pending = new Uint8Array(INITIAL_CAPACITY);
  private pendingList: number[] = [];
  private pendingCursor = 0;
  private pendingOut: SnapshotBatch | undefined;

  constructor(readonly id: string, spec: RuleSpec) {
    this.keyFields = spec.keyFields;
    this.entityKeyField = spec.entityKeyField;
    this.entityKeyed = spec.entityKeyed;
    this.time = spec.time;
    this.ordering = spec.time === 'processing' ? 'arrival' : spec.ordering;
  }

  /**
   * Installs the space's rules: aggregates of an identity already kept keep
   * their state. Returns the keys that lost state (of a rule or aggregate that
   * left): they may be idle now, or need another timer.
   */
  wire(rules: RuleOp[]): number[] {
    const affected: number[] = [];
    const previous = new Map(this.aggs.map((a) => [a.identity, a]));
    const aggs: SharedAggregate[] = [];
    const byIdentity = new Map<string, number>();
    let ttl = 0;
    let keepForever = false;
    for (const rule of rules) {
      rule.aggIndex = rule.spec.aggregates.map((a) => {
        let index = byIdentity.get(a.identity);
        if (index === undefined) {
          index = aggs.length;
          byIdentity.set(a.identity, index);
          const kept = previous.get(a.identity);
          if (kept !== undefined) {
            previous.delete(a.identity);
            aggs.push(kept);
          } else {
            const tagSpec: StatisticTagSpec = {
              kind: 'statistic',
              id: `aggregate:${a.identity}`,
              version: 1,
              stateId: a.identity,
              eventTypes: a.eventTypes,
              filter: a.filter,
              field: a.field,
              aggregate: a.aggregate,
              window: a.window,
              maxDistinct: a.maxDistinct,
            };
            aggs.push({ identity: a.identity, op: createStatisticOperator(tagSpec, this.capacity), types: new Set(a.eventTypes) });
          }
        }
        return index;
      });
      if (rule.spec.aggregates.length > 0) {
        if (rule.spec.stateTtlMs <= 0) keepForever = true;
        else ttl = Math.max(ttl, rule.spec.stateTtlMs);
      }
    }
    // Aggregates no rule uses any more: their state goes, and the keys that held some are
    // snapshotted again (without it).
    for (const gone of previous.values()) {
      for (const slot of this.slots.values()) {
        if (!gone.op.has(slot)) continue;
        gone.op.clear(slot);
        this.markDirty(slot);
        affected.push(slot);
      }
    }
    const before = this.rules;
    this.aggs = aggs;
    this.rules = rules;
    const leaving = this.seqRules;
    this.seqRules = rules.filter((r) => r.nfas.some((n) => n !== undefined));
    const live = new Set(this.seqRules);
    if (leaving.some((r) => !live.has(r))) {
      for (const slot of this.slots.values()) {
        const act = this.active[slot];
        if (act === undefined) continue;
        const kept = act.filter((r) => live.has(r));
        if (kept.length === act.length) continue;
        // Partial matches of a rule that left: snapshotted again without them, so a restore
        // cannot bring them back if the same computation comes online again.
        for (const r of act) if (!live.has(r)) for (const states of r.nfaStates) states[slot] = undefined;
        this.active[slot] = kept.length > 0 ? kept : undefined;
        this.markDirty(slot);
        affected.push(slot);
      }
    }
    this.ttlMs = keepForever ? 0 : ttl;
    for (const slot of this.wireShared(rules, before)) {
      this.markDirty(slot);
      affected.push(slot);
    }
    let seqTtl = Infinity;
    for (const rule of this.seqRules) if (rule.stateTtlMs > 0) seqTtl = Math.min(seqTtl, rule.stateTtlMs);
    for (const seq of this.seqs.values()) if (seq.ttls.length > 0) seqTtl = Math.min(seqTtl, seq.ttls[0]!);
    this.seqTtlMs = seqTtl;
    this.routes = new Map();
    const route = (type: string) => {
      let r = this.routes.get(type);
      if (r === undefined) this.routes.set(type, (r = { aggs: [], seqs: [], rules: [], readers: [] }));
      return r;
    };
    for (const agg of aggs) for (const type of agg.types) route(type).aggs.push(agg);
    for (const seq of this.seqs.values()) for (const type of seq.types) route(type).seqs.push(seq);
    // Rules whose conditions differ only in a number are visited as one. A condition with
    // several numbers could go with others by any of them: each rule takes the option most
    // rules have.
    const options = new Map<string, number>();
    for (const rule of rules) for (const o of rule.spec.conditionShare ?? []) options.set(o.key, (options.get(o.key) ?? 0) + 1);
    const byCondition = new Map<string, RuleOp[]>();
    for (const rule of rules) {
      const share = rule.spec.conditionShare;
      if (share === null) continue;
      let best = share[0]!;
      for (const o of share) if (options.get(o.key)! > options.get(best.key)!) best = o;
      rule.shareParameter = best.parameter;
      let list = byCondition.get(best.key);
      if (list === undefined) byCondition.set(best.key, (list = []));
      list.push(rule);
    }
    const familyOf = new Map<RuleOp, ConditionFamily>();
    this.foldCounters();
    this.families = [];
    for (const members of byCondition.values()) {
      for (const rule of members) rule.together = members.length;
      if (members.length < 2) continue;
      const family = new ConditionFamily(members);
      this.families.push(family);
      for (const rule of members) familyOf.set(rule, family);
    }
    for (const rule of rules) {
      const family = familyOf.get(rule);
      for (const type of rule.spec.eventTypes) {
        const r = route(type);
        r.readers.push(rule);
        if (!rule.triggers.has(type) && !rule.ownTypes.has(type)) continue;
        if (family === undefined) r.rules.push(rule);
        else if (family.members[0] === rule) r.rules.push(family);
      }
    }
    // Other keys keep their snapshots: a restore matches state to rules by aggregate identity
    // and rule stateId and skips what no online rule owns, so a rule change costs a checkpoint
    // only the keys it took state from.
    return affected;
  }

  /**
   * Members of shared sequences: rules that left take their bits out of every
   * partial match, new rules join (with no partial match yet: a new version
   * starts afresh even where the computation is shared). Returns the keys
   * whose state changed.
   */
  private wireShared(rules: RuleOp[], before: RuleOp[]): number[] {
    const live = new Set(rules);
    const leaving = new Map<SharedSequence, number[]>();
    for (const rule of before) {
      if (live.has(rule)) continue;
      for (const m of rule.shared) {
        if (m === undefined) continue;
        let list = leaving.get(m.seq);
        if (list === undefined) leaving.set(m.seq, (list = []));
        list.push(m.member);
      }
    }
    const changed = new Set<number>();
    for (const [seq, members] of leaving) {
      for (const slot of seq.leave(members)) changed.add(slot);
      this.tablesDirty = true;
    }
    for (const rule of rules) {
      rule.spec.sequences.forEach((spec, j) => {
        if (spec.share === null || rule.shared[j] !== undefined) return;
        let seq = this.seqs.get(spec.share.key);
        if (seq === undefined) this.seqs.set(spec.share.key, (seq = new SharedSequence(spec.share.key, spec)));
        rule.shared[j] = { seq, member: seq.join(rule, j) };
        this.tablesDirty = true;
      });
    }
    for (const seq of this.seqs.values()) seq.refreshTtls();
    // A shared sequence no rule uses any more goes with its state.
    let gone = false;
    for (const [key, seq] of this.seqs) {
      if (seq.family.order.length > 0) continue;
      this.seqs.delete(key);
      gone = true;
      seq.states.forEach((st, slot) => st !== undefined && changed.add(slot));
    }
    if (gone) {
      for (let slot = 0; slot < this.activeSeqs.length; slot++) {
        const act = this.activeSeqs[slot];
        if (act === undefined) continue;
        const kept = act.filter((q) => this.seqs.get(q.key) === q);
        this.activeSeqs[slot] = kept.length > 0 ? kept : undefined;
      }
    }
    return [...changed];
  }

  get keyCount(): number {
    return this.slots.size;
  }

  allocate(key: string): number {
    let slot = this.slots.get(key);
    if (slot !== undefined) return slot;
    slot = this.free.pop();
    if (slot === undefined) {
      slot = this.keys.length;
      if (slot >= this.capacity) this.grow(this.capacity * 2);
      this.keys.push(key);
    } else {
      this.keys[slot] = key;
    }
    this.slots.set(key, slot);
    this.lastTime[slot] = -Infinity;
    this.timerAt[slot] = NO_TIMER;
    this.deleted.delete(key);
    return slot;
  }

  private grow(capacity: number): void {
    this.capacity = capacity;
    this.lastTime = growFloat(this.lastTime, capacity, -Infinity);
    this.timerAt = growFloat(this.timerAt, capacity, NO_TIMER);
    const dirty = new Uint8Array(capacity);
    dirty.set(this.dirty);
    this.dirty = dirty;
    const pending = new Uint8Array(capacity);
    pending.set(this.pending);
    this.pending = pending;
    for (const agg of this.aggs) agg.op.grow(capacity);
  }

  release(slot: number): void {
    const key = this.keys[slot];
    if (key === undefined || this.slots.get(key) !== slot) return;
    this.touch(slot);
    for (const agg of this.aggs) agg.op.clear(slot);
    const act = this.active[slot];
    if (act !== undefined) for (const rule of act) for (const states of rule.nfaStates) states[slot] = undefined;
    this.active[slot] = undefined;
    const seqs = this.activeSeqs[slot];
    if (seqs !== undefined) for (const seq of seqs) seq.states[slot] = undefined;
    this.activeSeqs[slot] = undefined;
    this.buffers[slot] = undefined;
    this.timerAt[slot] = NO_TIMER;
    this.slots.delete(key);
    this.keys[slot] = '';
    this.free.push(slot);
    this.dirty[slot] = 0;
    this.deleted.add(key);
  }

  markDirty(slot: number): void {
    if (this.dirty[slot] === 0) {
      this.dirty[slot] = 1;
      this.dirtyList.push(slot);
    }
  }

  /** Records that `rule` may now hold a partial match for the key. */
  noteActive(slot: number, rule: RuleOp): void {
    const act = this.active[slot];
    if (act === undefined) this.active[slot] = [rule];
    else if (!act.includes(rule)) act.push(rule);
  }

  /** Records that a shared sequence may now hold a partial match for the key. */
  noteActiveSeq(slot: number, seq: SharedSequence): void {
    const act = this.activeSeqs[slot];
    if (act === undefined) this.activeSeqs[slot] = [seq];
    else if (!act.includes(seq)) act.push(seq);
  }

  /** Drops the shared sequences with no partial match left from the key's list; true when none is left. */
  private pruneActiveSeqs(slot: number): boolean {
    const act = this.activeSeqs[slot];
    if (act === undefined) return true;
    let n = 0;
    for (let i = 0; i < act.length; i++) {
      const seq = act[i]!;
      if (!seq.nfa.isEmpty(seq.states[slot])) act[n++] = seq;
      else seq.states[slot] = undefined;
    }
    if (n === 0) {
      this.activeSeqs[slot] = undefined;
      return true;
    }
    act.length = n;
    return false;
  }

  /** Drops the rules with no partial match left from the key's active list; true when none is left. */
  private pruneActive(slot: number): boolean {
    const act = this.active[slot];
    if (act === undefined) return true;
    let n = 0;
    for (let i = 0; i < act.length; i++) {
      const rule = act[i]!;
      if (!rule.idle(slot)) act[n++] = rule;
      // Leaving the list, it holds no state object either, so a state is always on the list.
      else for (const states of rule.nfaStates) states[slot] = undefined;
    }
    if (n === 0) {
      this.active[slot] = undefined;
      return true;
    }
    act.length = n;
    return false;
  }

  /** True when the key holds nothing that time could still change or that must be kept. */
  isIdle(slot: number, now: number): boolean {
    const buffer = this.buffers[slot];
    if (buffer !== undefined && buffer.length > 0) return false;
    const noRules = this.pruneActive(slot);
    if (!this.pruneActiveSeqs(slot) || !noRules) return false;
    if (this.aggs.length > 0) {
      if (this.ttlMs <= 0) return false;
      return this.lastTime[slot]! + this.ttlMs <= now;
    }
    return true;
  }

  /** Earliest time after `now` a timer of this key must fire: buffered events, NFA windows, state expiry. */
  nextTimer(slot: number, now: number): number {
    let next = NO_TIMER;
    const buffer = this.buffers[slot];
    if (buffer !== undefined) for (const e of buffer) if (e.time < next) next = e.time;
    const act = this.active[slot];
    // Partial matches expire this long after the key's latest event; an expiry already passed is
    // not armed again (see the aggregates' below): it is applied at the key's next moment.
    const last = this.lastTime[slot]!;
    if (act !== undefined) for (const rule of act) {
      const t = rule.nextTimer(slot);
      if (t < next) next = t;
      const expiry = last + rule.stateTtlMs;
      if (rule.stateTtlMs > 0 && expiry > now && expiry < next) next = expiry;
    }
    const seqs = this.activeSeqs[slot];
    if (seqs !== undefined) for (const seq of seqs) {
      const t = seq.nfa.nextTimerAt(seq.states[slot]);
      if (t < next) next = t;
      const expiry = seq.nextExpiry(last, now);
      if (expiry < next) next = expiry;
    }
    if (this.aggs.length > 0 && this.ttlMs > 0) {
      const expiry = this.lastTime[slot]! + this.ttlMs;
      // An expiry already passed on a key that is kept (events still buffered, a partial match
      // alive) is not armed again: it would be due at once and fire forever. The key is
      // released at its next moment (the buffered event, the NFA's timer) once idle.
      if (expiry > now && expiry < next) next = expiry;
    }
    return next;
  }

  /**
   * One evaluation moment of a key: feeds the event (if any) to the shared
   * aggregates once, then lets each rule that reads it (or, with no event,
   * each rule with sequences) match and decide.
   */
  moment(host: RuleHost, slot: number, event: Event | null, ts: number): void {
    this.touch(slot);
    const key = this.keys[slot]!;
    // Partial matches of a key with no event for their rule's state TTL are gone before this
    // moment's event or time counts (key time: the same whether a timer or the next event sees it first).
    if (ts - this.lastTime[slot]! >= this.seqTtlMs && (this.active[slot] !== undefined || this.activeSeqs[slot] !== undefined)) this.expire(host, slot, key, ts);
    // Key-local time: the latest event time (state expiry counts from it), or a timer's time.
    if (event !== null && ts > this.lastTime[slot]!) this.lastTime[slot] = ts;
    const now = Math.max(this.lastTime[slot]!, ts);
    let rules: ReadonlyArray<RuleOp | ConditionFamily>;
    if (event !== null) {
      const route = this.routes.get(event.type);
      if (route === undefined) return;
      const aggs = route.aggs;
      for (let i = 0; i < aggs.length; i++) {
        const op = aggs[i]!.op;
        const filter = op.spec.filter;
        if (filter !== null) {
          let pass: boolean;
          try {
            pass = filter(event);
          } catch (err: unknown) {
            for (const rule of route.readers) if (rule.usesAggregate(aggs[i]!, this)) rule.error(host, err);
            continue;
          }
          if (!pass) continue;
        }
        op.apply(slot, event, now);
      }
      rules = route.rules;
      if (route.seqs.length > 0) this.runShared(host, slot, route.seqs, event, ts);
    } else {
      rules = this.active[slot] ?? NO_RULES;
      const seqs = this.activeSeqs[slot];
      if (seqs !== undefined) this.runShared(host, slot, seqs, null, ts);
    }
    const stamp = this.stamp;
    for (let i = 0; i < rules.length; i++) {
      const rule = rules[i]!;
      rule.seen = stamp;
      rule.moment(host, this, slot, key, event, ts, now);
    }
    // Rules with output from shared sequences only.
    const touched = this.touched;
    if (touched.length > 0) {
      for (let i = 0; i < touched.length; i++) {
        const rule = touched[i]!;
        if (rule.seen !== stamp) rule.moment(host, this, slot, key, event, ts, now);
      }
      touched.length = 0;
    }
    this.markDirty(slot);
  }

  /** Rules given output by shared sequences in the current moment. */
  private readonly touched: RuleOp[] = [];

  /**
   * Drops the key's partial matches of every rule whose state TTL passed
   * since the key's latest event (by `at`, key time), counting them. Each
   * rule's sequences first advance to the instant its state expired, so what
   * was due by then (timeouts, absences) is decided as usual; the completed
   * matches the dropped partial matches held back are decided as of that
   * instant too.
   */
  private expire(host: RuleHost, slot: number, key: string, at: number): void {
    const last = this.lastTime[slot]!;
    const idle = at - last;
    const stamp = ++this.stamp;
    const touched = this.touched;
    const act = this.active[slot];
    if (act !== undefined) {
      for (const rule of act) {
        if (rule.stateTtlMs <= 0 || rule.stateTtlMs > idle || !rule.expire(slot, last + rule.stateTtlMs) || rule.given === stamp) continue;
        rule.given = stamp;
        touched.push(rule);
      }
    }
    const seqs = this.activeSeqs[slot];
    if (seqs !== undefined) {
      for (const seq of seqs) {
        const ttls = seq.ttls;
        // Members with a shorter TTL expire first, each group as of its own instant.
        for (let i = 0; i < ttls.length && ttls[i]! <= idle && seq.states[slot] !== undefined; i++) {
          const expiredAt = last + ttls[i]!;
          const sink = seq.sink;
          let state = seq.nfa.advanceTimeInto(seq.states[slot], expiredAt, sink);
          state = seq.nfa.expireInto(state, sink, seq.ttlMembers[i]!);
          seq.states[slot] = state;
          for (const m of sink.expiredMembers) {
            const member = seq.members[m];
            if (member !== undefined) member.rule.counters.expiredPartialMatches++;
          }
          for (const m of sink.matches) this.give(seq, 'match', m, expiredAt, stamp);
          for (const t of sink.timeouts) this.give(seq, 'timeout', t, expiredAt, stamp);
          clearCepSink(sink);
        }
      }
    }
    if (touched.length === 0) return;
    const now = Math.max(this.lastTime[slot]!, at);
    for (const rule of touched) rule.moment(host, this, slot, key, null, at, now);
    touched.length = 0;
  }

  /** The rules evaluated together (see ConditionFamily). */
  private families: ConditionFamily[] = [];

  /** Brings the members' evaluation counts up to date (a family counts its evaluations once for all). */
  foldCounters(): void {
    for (const family of this.families) family.fold();
  }

  private valuesKey: string | undefined;
  private values: Record<string, AttrValue> = {};

  /** The key's field values; the decisions and contexts of one key in a row share the object (it is not to be changed). */
  keyValues(key: string): Record<string, AttrValue> {
    if (key !== this.valuesKey) {
      this.values = splitRuleKey(key, this.keyFields);
      this.valuesKey = key;
    }
    return this.values;
  }

  /**
   * Runs shared sequences on the event (or time passing) once for all their
   * members, and hands each member rule its outputs, errors and drops.
   */
  private runShared(host: RuleHost, slot: number, seqs: ReadonlyArray<SharedSequence>, event: Event | null, ts: number): void {
    const stamp = ++this.stamp;
    const touched = this.touched;
    for (let i = 0; i < seqs.length; i++) {
      const seq = seqs[i]!;
      const states = seq.states;
      const before = states[slot];
      const sink = seq.sink;
      const after = event !== null ? seq.nfa.processInto(before, event, ts, sink) : seq.nfa.advanceTimeInto(before, ts, sink);
      states[slot] = after;
      if (before === undefined && after !== undefined) this.noteActiveSeq(slot, seq);
      if (sink.matches.length === 0 && sink.timeouts.length === 0 && sink.dropped === 0 && sink.conditionErrors === 0) continue;
      for (const m of sink.matches) this.give(seq, 'match', m, ts, stamp);
      for (const t of sink.timeouts) this.give(seq, 'timeout', t, ts, stamp);
      const members = seq.members;
      for (const m of sink.droppedMembers) {
        const member = members[m];
        if (member !== undefined) member.rule.counters.droppedPartialMatches++;
      }
      if (sink.errorMembers.length > 0) {
        // Once per rule and moment, as a rule's own sequence counts its errors.
        const erred = new Set<RuleOp>();
        for (const m of sink.errorMembers) {
          const rule = members[m]?.rule;
          if (rule !== undefined && !erred.has(rule)) {
            erred.add(rule);
            rule.error(host, sink.lastConditionError);
          }
        }
      }
      clearCepSink(sink);
    }
  }

  /** Hands a shared sequence's match (or timeout) to each member rule it completes for. */
  private give(seq: SharedSequence, kind: 'match' | 'timeout', match: CepMatch, ts: number, stamp: number): void {
    const bits = match.members!;
    const members = seq.members;
    const touched = this.touched;
    for (let w = 0; w < bits.length; w++) {
      let word = bits[w]!;
      while (word !== 0) {
        const low = word & -word;
        word ^= low;
        const member = members[(w << 5) + 31 - Math.clz32(low)];
        if (member === undefined) continue;
        const rule = member.rule;
        const within = member.within;
        // A match completed by its last event is decided then; one completed by an absence
        // running out, when it ran out (the member's window after the first event).
        const time = kind === 'timeout' ? (match as CepTimeout).timeoutTimestamp : within > 0 ? Math.max(match.lastTimestamp, Math.min(ts, match.firstTimestamp + within)) : ts;
        rule.pending.push({ seq: member.seq, kind, match, time });
        if (rule.given !== stamp) {
          rule.given = stamp;
          touched.push(rule);
        }
      }
    }
  }

  /** Encodes the key's state into the checkpoint being written if it is still owed to it; call before changing the key's state. */
  touch(slot: number): void {
    if (this.pending[slot] !== 0) this.encodeOne(slot);
  }

  /**
   * Starts a checkpoint: the keys changed since the last one are owed to it
   * (encoded into `upserts` by {@link encodePending} or before they change),
   * the keys dropped since are added to `deletes` now.
   */
  beginCheckpoint(upserts: SnapshotBatch, deletes: string[]): void {
    this.encodePending(Infinity);
    for (const slot of this.dirtyList) {
      if (this.dirty[slot] === 0) continue;
      this.dirty[slot] = 0;
      this.pending[slot] = 1;
      this.pendingList.push(slot);
    }
    this.dirtyList = [];
    this.pendingOut = upserts;
    const prefix = `${RULE_STATE_PREFIX}${this.id}\u0000`;
    for (const key of this.deleted) deletes.push(prefix + key);
    this.deleted.clear();
    if (this.tablesDirty) {
      // Which rule each member bit of the shared sequences' partial matches stands for.
      const tables: Record<string, Array<string | null>> = {};
      for (const seq of this.seqs.values()) tables[seq.key] = seq.table();
      upserts.add(prefix + MEMBERS_KEY, new TextEncoder().encode(JSON.stringify(tables)));
      this.tablesDirty = false;
    }
  }

  /** Encodes owed keys until `deadline` (performance.now() ms); true when none is left. */
  encodePending(deadline: number): boolean {
    const list = this.pendingList;
    const i = visitFlagged(list, this.pending, this.pendingCursor, list.length, deadline, this.encodeOne);
    if (i < list.length) {
      this.pendingCursor = i;
      return false;
    }
    this.pendingList = [];
    this.pendingCursor = 0;
    this.pendingOut = undefined;
    return true;
  }

  private readonly encodeOne = (slot: number): void => {
    this.pending[slot] = 0;
    this.pendingOut!.add(`${RULE_STATE_PREFIX}${this.id}\u0000${this.keys[slot]!}`, writeRuleKeyState(this.snapshot(slot)).written());
  };

  private snapshot(slot: number): RuleKeyState {
    const aggs: RuleKeyState['aggs'] = [];
    for (const a of this.aggs) if (a.op.has(slot)) aggs.push({ identity: a.identity, op: a.op });
    const rules: RuleKeyState['rules'] = [];
    for (const r of this.active[slot] ?? NO_RULES) {
      const states = r.nfaStates.map((s) => s[slot]);
      if (states.some((s) => s !== undefined)) rules.push({ stateId: r.spec.stateId, states });
    }
    const seqs: RuleKeyState['seqs'] = [];
    for (const q of this.activeSeqs[slot] ?? NO_SEQS) {
      const state = q.states[slot];
      if (state !== undefined) seqs.push({ key: q.key, state });
    }
    return { slot, lastTime: this.lastTime[slot]!, buffer: this.buffers[slot], aggs, rules, seqs };
  }

  restore(key: string, bytes: Uint8Array): void {
    if (key === MEMBERS_KEY) {
      this.restoredTables = JSON.parse(new TextDecoder().decode(bytes)) as Record<string, Array<string | null>>;
      return;
    }
    const { lastTime, buffer, aggs, rules, seqs } = decodeRuleKeyState(bytes);
    const slot = this.allocate(key);
    this.lastTime[slot] = lastTime;
    if (buffer !== null && buffer.length > 0) this.buffers[slot] = buffer;
    for (const [identity, read] of aggs) {
      const agg = this.aggs.find((a) => a.identity === identity);
      if (agg !== undefined) read(agg.op, slot);
    }
    for (const [stateId, states] of rules) {
      const rule = this.seqRules.find((r) => r.spec.stateId === stateId);
      if (rule === undefined) continue;
      states.forEach((s, j) => rule.nfas[j] !== undefined && (rule.nfaStates[j]![slot] = s ?? undefined));
      this.noteActive(slot, rule);
    }
    for (const [shareKey, state] of seqs) {
      const seq = this.seqs.get(shareKey);
      if (seq === undefined) continue;
      seq.states[slot] = state;
      this.noteActiveSeq(slot, seq);
      this.restoredSeqs.push([seq, slot]);
    }
  }

  /**
   * After a restore: member bits of restored shared-sequence states are
   * renumbered from the checkpoint's member tables to this run's members (a
   * rule no longer online loses its bits); without a table they are dropped.
   */
  remapRestored(): void {
    const maps = new Map<SharedSequence, Map<number, number> | null>();
    for (const [seq, slot] of this.restoredSeqs) {
      let map = maps.get(seq);
      if (map === undefined) {
        const table = this.restoredTables?.[seq.key];
        if (table === undefined) map = null;
        else {
          const now = new Map(seq.table().map((name, i) => [name, i] as const));
          map = new Map();
          table.forEach((name, old) => {
            const index = name === null ? undefined : now.get(name);
            if (index !== undefined) map!.set(old, index);
          });
        }
        maps.set(seq, map);
      }
      const state = seq.states[slot];
      if (state === undefined) continue;
      if (map === null) {
        seq.states[slot] = undefined;
        continue;
      }
      for (const list of [state.pm, state.done]) {
        let n = 0;
        for (const pm of list) {
          const mask: number[] = [];
          forEachMember(pm.m ?? [], (old) => {
            const index = map!.get(old);
            if (index === undefined) return;
            while (mask.length <= index >>> 5) mask.push(0);
            mask[index >>> 5]! |= 1 << (index & 31);
          });
          if (maskEmpty(mask)) continue;
          pm.m = mask;
          list[n++] = pm;
        }
        list.length = n;
      }
      if (state.pm.length === 0 && state.done.length === 0) seq.states[slot] = undefined;
    }
    this.restoredSeqs = [];
    this.restoredTables = undefined;
    // The tables are written again at the next checkpoint, in this run's numbering.
    this.tablesDirty = true;
  }

  entries(): IterableIterator<[string, number]> {
    return this.slots.entries();
  }
}

/** A rule's answer threw (an error it counted). */
const THREW = 2;

/**
 * Rules of a key space whose conditions are the same but for one number (see
 * RuleConditionShare), visited as one: on a trigger, the rules at both ends
 * of the number order and a binary search between them find where the
 * answer changes; only the rules that hold are decided. Every rule still
 * counts its evaluation. A rule whose condition throws at a probe makes each
 * rule evaluate on its own (each counting its error).
 */
class ConditionFamily {
  seen = 0;
  /** Members by ascending number. */
  private readonly order: RuleOp[];
  /** Per member (in `members` order), its index in `order`. */
  private readonly rank: number[];
  private readonly triggers: ReadonlySet<string>;
  /** The answer of the latest probe (which may be true although the condition counted an error). */
  private probed = false;
  /** Evaluations of every member not yet added to the members' counters ({@link fold}). */
  private evaluations = 0;

  /** @param members in the key space's order of rules */
  constructor(readonly members: RuleOp[]) {
    this.order = [...members].sort((a, b) => a.shareParameter - b.shareParameter);
    const at = new Map(this.order.map((r, i) => [r, i]));
    this.rank = members.map((r) => at.get(r)!);
    this.triggers = members[0]!.triggers;
  }

  /** Adds the evaluations counted since the last fold to each member's counters. */
  fold(): void {
    if (this.evaluations === 0) return;
    for (const rule of this.members) rule.counters.evaluations += this.evaluations;
    this.evaluations = 0;
  }

  moment(host: RuleHost, space: KeySpace, slot: number, key: string, event: Event | null, ts: number, now: number): void {
    if (event === null || !this.triggers.has(event.type)) return;
    this.evaluations++;
    const order = this.order;
    const n = order.length;
    const probe = (i: number): number => {
      const rule = order[i]!;
      const errors = rule.counters.errors;
      rule.bind(host, space, slot, key, event, ts, undefined, now);
      const answer = rule.testCondition();
      this.probed = answer;
      return rule.counters.errors !== errors ? THREW : answer ? 1 : 0;
    };
    // Members order[lo..hi-1] hold: found from both ends and a binary search.
    let lo = 0;
    let hi = 0;
    const first = probe(0);
    const last = first === THREW ? THREW : probe(n - 1);
    if (first === THREW || last === THREW) {
      this.each(host, space, slot, key, event, ts, now, first === THREW ? 0 : n - 1);
      return;
    }
    if (first === last) {
      hi = first === 1 ? n : 0;
    } else {
      let a = 0;
      let b = n - 1;
      while (b - a > 1) {
        const mid = (a + b) >>> 1;
        const answer = probe(mid);
        if (answer === THREW) {
          this.each(host, space, slot, key, event, ts, now, mid);
          return;
        }
        if (answer === last) b = mid;
        else a = mid;
      }
      if (first === 1) hi = b;
      else ((lo = b), (hi = n));
    }
    if (lo === hi) return;
    // The rules that hold decide in the key space's order of rules, as they would one by one.
    const members = this.members;
    const rank = this.rank;
    for (let i = 0; i < members.length; i++) {
      const rule = members[i]!;
      const r = rank[i]!;
      if (r < lo || r >= hi) continue;
      rule.bind(host, space, slot, key, event, ts, undefined, now);
      rule.decide();
    }
  }

  /** Every member evaluates on its own, except the one whose probe threw (`order[threw]`: its answer is {@link probed}). */
  private each(host: RuleHost, space: KeySpace, slot: number, key: string, event: Event, ts: number, now: number, threw: number): void {
    const erred = this.order[threw]!;
    const answer = this.probed;
    for (const rule of this.members) {
      if (rule === erred) {
        if (answer) rule.decide();
        continue;
      }
      rule.bind(host, space, slot, key, event, ts, undefined, now);
      if (rule.testCondition()) rule.decide();
    }
  }
}

/** One rule in one partition: its sequences' NFAs and states per key, its condition and decisions. */
class RuleOp {
  readonly counters: RuleCounters;
  /** Per sequence, its NFA when the rule runs it alone (undefined when shared). */
  readonly nfas: Array<CepNfa | undefined>;
  readonly seqTypes: Array<ReadonlySet<string>>;
  /** Event types the sequences the rule runs alone read. */
  readonly ownTypes: ReadonlySet<string>;
  /**
   * How long the rule's partial matches outlive their key's latest event (ms,
   * in the rule's time): `limits.stateTtl` (or its default from the rule's
   * windows); without one, the runtime's default when a sequence has no
   * `within`; 0: as long as the NFA keeps them. Also 0 when every sequence
   * has a `within` no longer than the TTL: a partial match starts at or
   * before its key's latest event, so its window drops it first.
   */
  readonly stateTtlMs: number;
  /** Per sequence, the shared sequence it runs in and its member index there (wired by the key space). */
  readonly shared: Array<{ seq: SharedSequence; member: number } | undefined>;
  /** Outputs shared sequences gave the rule in the current moment. */
  pending: Output[] = [];
  /** The other of two output lists, swapped with {@link pending} at a moment. */
  private spare: Output[] = [];
  /** Rules evaluated together with this one (its condition family's size; 1 alone). */
  together = 1;
  /** The number its condition family orders it by. */
  shareParameter = 0;
  /** Moment stamps: last given output by a shared sequence, last visited. */
  given = 0;
  seen = 0;
  /**
   * Event types whose events evaluate the condition even when no sequence
   * gave an output: none when the condition cannot hold without one (a
   * sequence alone, or `all` with a sequence among its parts).
   */
  readonly triggers: ReadonlySet<string>;
  nfaStates: Array<Array<CepState | undefined>>;
  /** For each aggregate of the rule, its index in the key space's shared aggregates. */
  aggIndex: number[] = [];
  private readonly sink: CepSink = createCepSink();
  private decisionSeq = 0;
  private decisionOffset = -1;

  /**
   * @param noteUntimedError called when an error happens before the partition knows the processing time.
   * @param defaultStateTtlMs see {@link RuleRuntimeOptions.defaultStateTtlMs}
   */
  constructor(public spec: RuleSpec, private readonly noteUntimedError: () => void, defaultStateTtlMs: number) {
    this.counters = {
      id: spec.id,
      version: spec.version,
      evaluations: 0,
      decisions: 0,
      errors: 0,
      lastError: undefined,
      lastErrorAt: 0,
      late: 0,
      missingKey: 0,
      droppedPartialMatches: 0,
      expiredPartialMatches: 0,
      keys: 0,
      sharedWith: 1,
    };
    // The spec's TTL is part of the rule's computation (stateId), so it never changes under a RuleOp.
    const ttl = spec.stateTtlMs > 0 ? spec.stateTtlMs : spec.sequences.some((s) => !((s.pattern.withinMs ?? 0) > 0)) ? defaultStateTtlMs : 0;
    this.stateTtlMs = spec.sequences.every((s) => (s.pattern.withinMs ?? 0) > 0 && s.pattern.withinMs! <= ttl) ? 0 : ttl;
    this.nfas = spec.sequences.map((s) => (s.share === null ? new CepNfa(s.pattern) : undefined));
    this.seqTypes = spec.sequences.map((s) => new Set(s.eventTypes));
    this.ownTypes = new Set(spec.sequences.flatMap((s) => (s.share === null ? s.eventTypes : [])));
    this.shared = spec.sequences.map(() => undefined);
    this.nfaStates = spec.sequences.map(() => []);
    this.triggers = new Set(mayHoldWithoutSequence(spec.condition) ? spec.triggerTypes : []);
  }

  usesAggregate(agg: SharedAggregate, space: KeySpace): boolean {
    for (const i of this.aggIndex) if (space.aggs[i] === agg) return true;
    return false;
  }

  /** No partial match waits for this key. */
  idle(slot: number): boolean {
    for (let j = 0; j < this.nfas.length; j++) {
      const nfa = this.nfas[j];
      if (nfa !== undefined && !nfa.isEmpty(this.nfaStates[j]![slot])) return false;
    }
    return true;
  }

  /**
   * The key's state expired at `at`: the rule's sequences advance to `at`
   * (timeouts and absences due by then), then their partial matches are
   * dropped and counted. What that produced (those outputs, and completed
   * matches the dropped partial matches held back) becomes outputs of the
   * next {@link moment}, as of `at`. True when there are some.
   */
  expire(slot: number, at: number): boolean {
    const sink = this.sink;
    for (let j = 0; j < this.nfas.length; j++) {
      const nfa = this.nfas[j];
      const states = this.nfaStates[j]!;
      if (nfa === undefined || states[slot] === undefined) continue;
      states[slot] = nfa.expireInto(nfa.advanceTimeInto(states[slot], at, sink), sink);
      this.counters.expiredPartialMatches += sink.expired;
      const within = nfa.pattern.withinMs;
      for (const m of sink.matches) this.pending.push({ seq: j, kind: 'match', match: m, time: within > 0 ? Math.max(m.lastTimestamp, Math.min(at, m.firstTimestamp + within)) : at });
      for (const t of sink.timeouts) this.pending.push({ seq: j, kind: 'timeout', match: t, time: (t as CepTimeout).timeoutTimestamp });
      clearCepSink(sink);
    }
    return this.pending.length > 0;
  }

  /** Keys with a partial match waiting. */
  activeKeys(): number {
    let n = 0;
    for (const states of this.nfaStates) for (const s of states) if (s !== undefined) n++;
    return n;
  }

  nextTimer(slot: number): number {
    let next = NO_TIMER;
    for (let j = 0; j < this.nfas.length; j++) {
      const nfa = this.nfas[j];
      if (nfa === undefined) continue;
      const t = nfa.nextTimerAt(this.nfaStates[j]![slot]);
      if (t < next) next = t;
    }
    return next;
  }

  /** Matches the event (or time passing) against the rule's sequences, then evaluates its condition once per sequence output, or once when the event is a trigger. */
  moment(host: RuleHost, space: KeySpace, slot: number, key: string, event: Event | null, ts: number, now: number): void {
    let outputs: Output[] | undefined;
    const sink = this.sink;
    const pending = this.pending;
    if (pending.length > 0) {
      outputs = pending;
      this.pending = this.spare;
      this.spare = pending;
    }
    for (let j = 0; j < this.nfas.length; j++) {
      const nfa = this.nfas[j];
      if (nfa === undefined) continue;
      const states = this.nfaStates[j]!;
      const before = states[slot];
      if (event !== null && this.seqTypes[j]!.has(event.type)) {
        const after = nfa.processInto(before, event, ts, sink);
        states[slot] = after;
        if (before === undefined && after !== undefined) space.noteActive(slot, this);
      } else if (before !== undefined) {
        states[slot] = nfa.advanceTimeInto(before, ts, sink);
      } else {
        continue;
      }
      if (sink.matches.length > 0 || sink.timeouts.length > 0) {
        outputs ??= [];
        // A match completed by its last event is decided then; one completed by an absence running out, when it ran out.
        const within = nfa.pattern.withinMs;
        for (const m of sink.matches) outputs.push({ seq: j, kind: 'match', match: m, time: within > 0 ? Math.max(m.lastTimestamp, Math.min(ts, m.firstTimestamp + within)) : ts });
        for (const t of sink.timeouts) outputs.push({ seq: j, kind: 'timeout', match: t, time: (t as CepTimeout).timeoutTimestamp });
      }
      if (sink.dropped > 0) this.counters.droppedPartialMatches += sink.dropped;
      if (sink.conditionErrors > 0) this.error(host, sink.lastConditionError);
      if (sink.matches.length > 0 || sink.timeouts.length > 0 || sink.dropped > 0 || sink.conditionErrors > 0) clearCepSink(sink);
    }
    if (outputs !== undefined) {
      // In the order of the rule's sequences, whether run alone or shared.
      if (outputs.length > 1) outputs.sort((a, b) => a.seq - b.seq);
      for (const out of outputs) this.evaluate(host, space, slot, key, event, out.time, out, now);
      if (outputs === this.spare) outputs.length = 0;
    } else if (event !== null && this.triggers.has(event.type)) {
      this.evaluate(host, space, slot, key, event, ts, undefined, now);
    }
  }

  // The evaluation in progress: fields rather than closures, so an evaluation allocates nothing until it decides.
  private evHost!: RuleHost;
  private evSpace!: KeySpace;
  private evSlot = 0;
  private evKey = '';
  private evEvent: Event | null = null;
  private evOutput: Output | undefined;
  private evTime = 0;
  private evNow = 0;
  private evContext: RulePredicateContext | undefined;

  private evaluate(host: RuleHost, space: KeySpace, slot: number, key: string, event: Event | null, time: number, output: Output | undefined, now: number): void {
    this.counters.evaluations++;
    this.bind(host, space, slot, key, event, time, output, now);
    if (this.test(this.spec.condition)) this.decide();
  }

  /** Sets up an evaluation (see {@link testCondition}, {@link decide}). */
  bind(host: RuleHost, space: KeySpace, slot: number, key: string, event: Event | null, time: number, output: Output | undefined, now: number): void {
    this.evHost = host;
    this.evSpace = space;
    this.evSlot = slot;
    this.evKey = key;
    this.evEvent = event;
    this.evOutput = output;
    this.evTime = time;
    this.evNow = now;
    this.evContext = undefined;
  }

  /** The condition in the bound evaluation (errors counted, as false). */
  testCondition(): boolean {
    return this.test(this.spec.condition);
  }

  /** Emits the decision of the bound evaluation (and sets the rule's tag). */
  decide(): void {
    const spec = this.spec;
    const host = this.evHost;
    const key = this.evKey;
    const event = this.evEvent;
    const output = this.evOutput;
    const time = this.evTime;
    const aggregates = this.aggIndex.length === 0 ? NO_AGGREGATES : new Array<number | null>(this.aggIndex.length);
    for (let i = 0; i < aggregates.length; i++) aggregates[i] = this.aggregateValue(i);
    const keyValues = this.evSpace.keyValues(key);
    if (host.currentOffset !== this.decisionOffset) {
      this.decisionOffset = host.currentOffset;
      this.decisionSeq = 0;
    }
    const n = this.decisionSeq++;
    const entity = event?.key ?? (spec.entityKeyed ? String(keyValues[spec.entityKeyField]) : null);
    this.counters.decisions++;
    host.emitDecision({
      id: `${spec.id}:${spec.version}:${host.partition}:${host.currentOffset}:${n}`,
      ruleId: spec.id,
      version: spec.version,
      key: keyValues,
      entity,
      outcome: output?.kind ?? 'match',
      trigger: event === null ? 'timer' : 'event',
      time,
      processingTime: host.processingTime,
      event,
      matched: output === undefined ? null : (output.match.events as Decision['matched']),
      aggregates,
      partition: host.partition,
      offset: host.currentOffset,
    });
    if (spec.setTag !== null && entity !== null) {
      try {
        const value = spec.setTag.value(this.context());
        host.setRuleTag(entity, spec.setTag.id, value, time, spec.version);
      } catch (err: unknown) {
        this.error(host, err);
      }
    }
  }

  /** What expressions see, built on first use in an evaluation. */
  private context(): RulePredicateContext {
    if (this.evContext !== undefined) return this.evContext;
    const spec = this.spec;
    const event = this.evEvent;
    const keyValues = this.evSpace.keyValues(this.evKey);
    const entity = event?.key ?? (spec.entityKeyed ? String(keyValues[spec.entityKeyField]) : undefined);
    const profile = spec.entityKeyed && entity !== undefined ? this.evHost.profileContext(entity, spec.tagInputs) : { tags: {}, attrs: {} };
    this.evContext = { event: event ?? {}, tags: profile.tags, attrs: profile.attrs, key: keyValues, now: this.evNow };
    return this.evContext;
  }

  private aggregateValue(index: number): number | null {
    const agg = this.evSpace.aggs[this.aggIndex[index]!]!.op;
    const slot = this.evSlot;
    if (agg.windowed) agg.advance(slot, this.evNow);
    const v = agg.has(slot) ? agg.value(slot) : agg.defaultValue;
    return typeof v === 'number' ? v : null;
  }

  private test(node: RuleConditionNode): boolean {
    switch (node.op) {
      case 'all': {
        const children = node.children;
        for (let i = 0; i < children.length; i++) if (!this.test(children[i]!)) return false;
        return true;
      }
      case 'any': {
        const children = node.children;
        for (let i = 0; i < children.length; i++) if (this.test(children[i]!)) return true;
        return false;
      }
      case 'not':
        return !this.test(node.child);
      case 'expr':
        try {
          return node.evaluate(this.context());
        } catch (err: unknown) {
          this.error(this.evHost, err);
          return false;
        }
      case 'aggregate':
        return compare(this.aggregateValue(node.index), node.comparison, node.threshold);
      case 'sequence': {
        const output = this.evOutput;
        return output !== undefined && output.seq === node.index && output.kind === node.on;
      }
    }
  }

  error(host: RuleHost, err: unknown): void {
    this.counters.errors++;
    this.counters.lastError = err instanceof Error ? (err.message.split('\n')[0] ?? err.message) : String(err);
    this.counters.lastErrorAt = host.processingTime;
    // Before the partition's first time mark the processing time is unknown (0), and an error
    // stamped 0 would look years old: the next mark stamps it instead (RuleRuntime.advance).
    if (host.processingTime === 0) this.noteUntimedError();
  }
}

/** False when the condition can only hold on a sequence's output (a match or timeout of this moment). */
function mayHoldWithoutSequence(node: RuleConditionNode): boolean {
  switch (node.op) {
    case 'sequence':
      return false;
    case 'all':
      return node.children.every(mayHoldWithoutSequence);
    case 'any':
      return node.children.some(mayHoldWithoutSequence);
    default:
      return true;
  }
}

/** The key space a rule's keys live in: same key fields, time domain and ordering. */
function spaceIdOf(spec: RuleSpec): string {
  const ordering = spec.time === 'processing' ? 'arrival' : spec.ordering;
  return `${spec.keyFields.join(',')}|${spec.time}|${ordering}`;
}

/**
 * The decision rules of one partition: routes events to the key spaces whose
 * rules read their type and own their key here, orders them per key when the
 * rules ask for event-time order, runs timers, and snapshots rule state for
 * checkpoints. Rules with the same key share their keys' slots, ordering
 * buffers, timers and aggregates, so a thousand rules over one stream cost a
 * fraction of a thousand separate ones.
 */
export class RuleRuntime {
  private ops: RuleOp[] = [];
  private spaces: KeySpace[] = [];
  /** Every key space by its index (timer owner id); undefined once no rule uses it. */
  private table: Array<KeySpace | undefined> = [];
  private spaceById = new Map<string, KeySpace>();
  private routes = new Map<string, KeySpace[]>();
  private eventTimers = new TimerQueue();
  private processingTimers = new TimerQueue();
  /** Rule state in the last checkpoint that belongs to no key space any more. */
  private orphaned: string[] = [];
  /** Some rule erred while the processing time was still unknown. */
  private untimedErrors = false;
  private readonly noteUntimedError = (): void => {
    this.untimedErrors = true;
  };

  private readonly defaultStateTtlMs: number;

  constructor(private readonly host: RuleHost, options: RuleRuntimeOptions = {}) {
    this.defaultStateTtlMs = options.defaultStateTtlMs ?? DEFAULT_RULE_STATE_TTL_MS;
  }

  /** Number of online rules. */
  get size(): number {
    return this.ops.length;
  }

  /**
   * Switches to a new rule set. A rule whose computation is unchanged keeps its
   * partial matches; a replaced one starts without. Aggregates are state of
   * the key: kept while some rule uses one of the same identity.
   */
  apply(specs: ReadonlyArray<RuleSpec>): void {
    // A checkpoint still being encoded takes the keys as they are before the change.
    this.encodePending(Infinity);
    const oldByStateId = new Map(this.ops.map((op) => [op.spec.stateId, op]));
    const oldById = new Map(this.ops.map((op) => [op.spec.id, op]));
    const next: RuleOp[] = [];
    const grouped = new Map<string, RuleOp[]>();
    for (const spec of specs) {
      let op = oldByStateId.get(spec.stateId);
      if (op !== undefined) {
        oldByStateId.delete(spec.stateId);
        op.spec = spec;
        op.counters.version = spec.version;
      } else {
        op = new RuleOp(spec, this.noteUntimedError, this.defaultStateTtlMs);
        // A new version of a running rule carries its counters on.
        const previous = oldById.get(spec.id);
        if (previous !== undefined) Object.assign(op.counters, previous.counters, { version: spec.version, keys: 0 });
      }
      next.push(op);
      const id = spaceIdOf(spec);
      let list = grouped.get(id);
      if (list === undefined) grouped.set(id, (list = []));
      list.push(op);
    }
    const spaces: KeySpace[] = [];
    const spaceById = new Map<string, KeySpace>();
    const touched: Array<[KeySpace, number[], boolean]> = [];
    for (const [id, rules] of grouped) {
      let space = this.spaceById.get(id);
      if (space === undefined) {
        space = new KeySpace(id, rules[0]!.spec);
        // Timers name their space by this index, so it never changes while the space exists.
        space.index = this.table.length;
        this.table.push(space);
      }
      const ttlBefore = space.ttlMs;
      const affected = space.wire(rules);
      // State now expires sooner than the keys' timers were armed for: every key is armed again.
      const sooner = space.ttlMs > 0 && (ttlBefore === 0 || space.ttlMs < ttlBefore);
      if (affected.length > 0 || sooner) touched.push([space, affected, sooner]);
      spaces.push(space);
      spaceById.set(id, space);
    }
    // A key space no rule uses any more: all its state goes (its timers find no space and are skipped).
    for (const [id, space] of this.spaceById) {
      if (spaceById.has(id)) continue;
      space.foldCounters();
      for (const [key] of space.entries()) this.orphaned.push(`${RULE_STATE_PREFIX}${id}\u0000${key}`);
      this.orphaned.push(`${RULE_STATE_PREFIX}${id}\u0000${MEMBERS_KEY}`);
      this.table[space.index] = undefined;
    }
    this.ops = next;
    this.spaces = spaces;
    this.spaceById = spaceById;
    this.routes = new Map();
    for (const space of spaces) {
      for (const type of space.routes.keys()) {
        let list = this.routes.get(type);
        if (list === undefined) this.routes.set(type, (list = []));
        list.push(space);
      }
    }
    // Only keys that lost state can have become idle or need another timer; the others' timers
    // stand (a timer due earlier than needed finds nothing to do and arms the next one), so a
    // rule change costs what it touched, not every key of the partition.
    for (const [space, affected, sooner] of touched) {
      const now = space.time === 'processing' ? this.host.processingTime : this.host.watermark;
      const slots = sooner ? [...space.entries()].map(([, slot]) => slot) : affected;
      for (const slot of slots) {
        if (space.isIdle(slot, now)) space.release(slot);
        else this.schedule(space, slot);
      }
    }
  }

  private schedule(space: KeySpace, slot: number): void {
    const next = space.nextTimer(slot, space.time === 'processing' ? this.host.processingTime : this.host.watermark);
    if (next === NO_TIMER || next >= space.timerAt[slot]!) return;
    space.timerAt[slot] = next;
    (space.time === 'processing' ? this.processingTimers : this.eventTimers).push(next, slot, space.index);
  }

  /**
   * An event the partition drops as too late for event time (beyond the
   * allowed lateness): processing-time rules still take it, event-time rules
   * count it as late.
   */
  onTooLate(event: Event): void {
    this.onEvent(event, true);
  }

  /** Routes one event (already judged not too late for the partition) to the key spaces that read it. */
  onEvent(event: Event, tooLate = false): void {
    const spaces = this.routes.get(event.type);
    if (spaces === undefined) return;
    const host = this.host;
    let home: boolean | undefined;
    for (let i = 0; i < spaces.length; i++) {
      const space = spaces[i]!;
      const key = ruleKeyOf(event, space.keyFields, space.entityKeyField);
      if (space.entityKeyed) {
        home ??= partitionOf(event.key, host.partitionCount) === host.partition;
        if (!home) continue;
      } else if (key !== undefined && partitionOf(key, host.partitionCount) !== host.partition) {
        continue;
      }
      const readers = space.routes.get(event.type)!.readers;
      if (key === undefined) {
        // Counted once, in the event's own partition.
        home ??= partitionOf(event.key, host.partitionCount) === host.partition;
        if (home) for (const rule of readers) rule.counters.missingKey++;
        continue;
      }
      if (tooLate && space.time !== 'processing') {
        for (const rule of readers) rule.counters.late++;
        continue;
      }
      if (space.time === 'processing') {
        const slot = space.allocate(key);
        space.moment(host, slot, { type: event.type, time: host.processingTime, key: event.key, attrs: event.attrs }, host.processingTime);
        this.afterMoment(space, slot);
      } else if (space.ordering === 'event-time') {
        // Late as the partition defines it (behind the watermark). An event exactly at the
        // watermark is still in order: only events at or before it were released, and the
        // NFA's exact timeout comparison already treats that time as too late for any
        // partial match it could extend. (With `<=`, and engine.outOfOrdernessMs 0, every
        // newest event sat exactly at the watermark and event-time rules dropped them all.)
        if (event.time < host.watermark) {
          for (const rule of readers) rule.counters.late++;
          continue;
        }
        const slot = space.allocate(key);
        space.touch(slot);
        let buffer = space.buffers[slot];
        if (buffer === undefined) space.buffers[slot] = buffer = [];
        buffer.push(event);
        space.markDirty(slot);
        this.schedule(space, slot);
      } else {
        const slot = space.allocate(key);
        space.moment(host, slot, event, event.time);
        this.afterMoment(space, slot);
      }
    }
  }

  private afterMoment(space: KeySpace, slot: number): void {
    const now = space.time === 'processing' ? this.host.processingTime : this.host.watermark;
    if (space.isIdle(slot, now)) space.release(slot);
    else this.schedule(space, slot);
  }

  /** Fires event-time timers up to the watermark and processing-time timers up to the processing time. */
  advance(): void {
    const host = this.host;
    if (this.untimedErrors && host.processingTime !== 0) {
      this.untimedErrors = false;
      for (const op of this.ops) if (op.counters.errors > 0 && op.counters.lastErrorAt === 0) op.counters.lastErrorAt = host.processingTime;
    }
    if (this.eventTimers.peekTime() <= host.watermark) {
      const upTo = host.watermark;
      while (this.eventTimers.popDue(upTo, this.onEventTimer));
    }
    if (this.processingTimers.peekTime() <= host.processingTime) {
      const upTo = host.processingTime;
      while (this.processingTimers.popDue(upTo, this.onProcessingTimer));
    }
  }

  /** Earliest pending event-time timer (Infinity when none). */
  nextEventTimer(): number {
    return this.eventTimers.peekTime();
  }

  private readonly onEventTimer = (time: number, slot: number, index: number): void => {
    const space = this.table[index];
    if (space === undefined || space.timerAt[slot] !== time) return;
    space.timerAt[slot] = NO_TIMER;
    space.touch(slot);
    const watermark = this.host.watermark;
    const buffer = space.buffers[slot];
    if (buffer !== undefined && buffer.length > 0) {
      // Release, in event-time order (stable: arrival order within one timestamp), every buffered event the watermark passed.
      const due: Event[] = [];
      const rest: Event[] = [];
      for (const e of buffer) (e.time <= watermark ? due : rest).push(e);
      due.sort((a, b) => a.time - b.time);
      space.buffers[slot] = rest.length > 0 ? rest : undefined;
      for (const e of due) space.moment(this.host, slot, e, e.time);
    }
    space.moment(this.host, slot, null, watermark);
    this.afterMoment(space, slot);
  };

  private readonly onProcessingTimer = (time: number, slot: number, index: number): void => {
    const space = this.table[index];
    if (space === undefined || space.timerAt[slot] !== time) return;
    space.timerAt[slot] = NO_TIMER;
    space.moment(this.host, slot, null, this.host.processingTime);
    this.afterMoment(space, slot);
  };

  /**
   * Starts a checkpoint of the rule state changed since the last one: dropped
   * keys go to `deletes` now; changed keys are encoded into `upserts` by
   * {@link encodePending} (in slices, between batches) or, for a key about to
   * change, just before it does, so every key is written as it is now.
   */
  beginCheckpoint(upserts: SnapshotBatch, deletes: string[]): void {
    for (const space of this.spaces) space.beginCheckpoint(upserts, deletes);
    for (const key of this.orphaned) deletes.push(key);
    this.orphaned = [];
  }

  /** Encodes keys owed to the checkpoint until `deadline` (performance.now() ms); true when all are written. */
  encodePending(deadline: number): boolean {
    for (const space of this.spaces) if (!space.encodePending(deadline)) return false;
    return true;
  }

  /** Restores one key's state from a checkpoint entry; state of a key space no longer used is dropped. */
  restore(entryKey: string, data: Uint8Array): void {
    const rest = entryKey.slice(RULE_STATE_PREFIX.length);
    const sep = rest.indexOf('\u0000');
    const space = this.spaceById.get(rest.slice(0, sep));
    if (space === undefined) {
      this.orphaned.push(entryKey);
      return;
    }
    space.restore(rest.slice(sep + 1), data);
  }

  /** Re-arms timers after a restore. */
  restored(): void {
    this.eventTimers.clear();
    this.processingTimers.clear();
    for (const space of this.spaces) space.remapRestored();
    for (const space of this.spaces) {
      const now = space.time === 'processing' ? this.host.processingTime : this.host.watermark;
      const timers = space.time === 'processing' ? this.processingTimers : this.eventTimers;
      for (const [, slot] of space.entries()) {
        space.timerAt[slot] = NO_TIMER;
        this.schedule(space, slot);
        // Partial matches whose state TTL has already run out (a shorter default TTL than the
        // checkpoint's run had): expired by the next round of timers, not left until the key's next event.
        if (now - space.lastTime[slot]! >= space.seqTtlMs && now < space.timerAt[slot]!) {
          space.timerAt[slot] = now;
          timers.push(now, slot, space.index);
        }
      }
    }
  }

  /** Counters of the online rules; `keys` counts the keys of the rule's key space holding state. */
  counters(): RuleCounters[] {
    const out: RuleCounters[] = [];
    for (const space of this.spaces) {
      space.foldCounters();
      for (const rule of space.rules) {
        let sharedWith = rule.together;
        for (const m of rule.shared) if (m !== undefined) sharedWith = Math.max(sharedWith, m.seq.family.order.length);
        out.push({ ...rule.counters, keys: space.keyCount, sharedWith });
      }
    }
    return out;
  }
}

function compare(value: number | null, op: Comparison, threshold: number): boolean {
  if (value === null) return false;
  switch (op) {
    case '>': return value > threshold;
    case '>=': return value >= threshold;
    case '<': return value < threshold;
    case '<=': return value <= threshold;
    case '==': return value === threshold;
    case '!=': return value !== threshold;
  }
}

function growFloat(column: Float64Array<ArrayBuffer>, capacity: number, fill: number): Float64Array<ArrayBuffer> {
  if (column.length >= capacity) return column;
  const next = new Float64Array(capacity);
  next.set(column);
  next.fill(fill, column.length);
  return next;
}

export type { CepSink };
