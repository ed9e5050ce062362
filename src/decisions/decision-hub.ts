import type { Decision, DecisionSink } from '../engine/index.js';

/** Where decisions are kept (the embedded adapter is LMDB). */
export interface DecisionStore {
  /** Stores the decisions whose id is new and returns those, in order; repeats (after a replay) are dropped. */
  addNew(decisions: ReadonlyArray<Decision>): Decision[];
  /** Newest first, filtered; each with its storage position as `cursor` for paging. */
  list(query: { limit: number; ruleId?: string; entity?: string; before?: number }): Array<Decision & { cursor: number }>;
  get(id: string): Decision | undefined;
  count(): number;
  /** Resolves once every decision added so far is visible to reads. */
  flushed(): Promise<void>;
}

/** A downstream system decisions are sent to (a file, a webhook). */
export interface DecisionOutput {
  /** Names the output in its stats and metric labels, e.g. `file:/var/portrait/decisions.ndjson`; holds no secret. */
  readonly name: string;
  /** Takes new decisions; must not block or throw (queue and report failures in `stats`). */
  send(decisions: ReadonlyArray<Decision>): void;
  stats(): DecisionOutputStats;
  /** Delivers what is queued, within a time limit, and releases resources. */
  close(): Promise<void>;
}

/** Delivery counters of an output. */
export interface DecisionOutputStats {
  name: string;
  delivered: number;
  failed: number;
  /** Decisions dropped because the output's queue was full. */
  dropped: number;
  queued: number;
  lastError: string | undefined;
}

/**
 * Receives the engine's decisions: stores them once each (a replay after a
 * crash repeats ids, which are dropped), then hands the new ones to
 * subscribers (the SSE stream, synchronous `decide` calls) and to outputs.
 * Outputs see each decision once unless the process dies before the store has
 * written it (the LMDB store holds new decisions up to 50 ms, and writes them
 * before any checkpoint covering their records): the replay then makes and
 * sends it again. They carry the decision id so a receiver can drop repeats.
 */
export class DecisionHub implements DecisionSink {
  private readonly listeners = new Set<(decisions: ReadonlyArray<Decision>) => void>();
  /** Decisions handed on since start. */
  delivered = 0;

  constructor(readonly store: DecisionStore, private readonly outputs: ReadonlyArray<DecisionOutput>) {}

  add(decisions: ReadonlyArray<Decision>): void {
    const fresh = this.store.addNew(decisions);
    if (fresh.length === 0) return;
    this.delivered += fresh.length;
    for (const listener of this.listeners) {
      try {
        listener(fresh);
      } catch {
        // A failing subscriber must not stop the engine.
      }
    }
    for (const output of this.outputs) output.send(fresh);
  }

  /** Calls `listener` with every batch of new decisions; returns a function that stops it. */
  subscribe(listener: (decisions: ReadonlyArray<Decision>) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Delivery counters of every output. */
  outputStats(): DecisionOutputStats[] {
    return this.outputs.map((o) => o.stats());
  }

  async close(): Promise<void> {
    await Promise.allSettled(this.outputs.map((o) => o.close()));
    this.listeners.clear();
  }
}
