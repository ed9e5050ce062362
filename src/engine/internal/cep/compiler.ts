import type { NormalizedPattern, NormalizedStage } from './pattern.js';

/*
 * Compiles a validated pattern into an NFA graph with the same shape as
 * Flink's NFACompiler produces (read in flink-cep 1.20, re-expressed here):
 * the graph is built backwards from a final state, one or more states per
 * stage, with three kinds of edges:
 *   TAKE    – accept the event into the partial match and move to the target;
 *   IGNORE  – drop the event, keep the partial match, move to the target;
 *   PROCEED – epsilon edge, followed while evaluating the same event.
 * Negations become STOP states (reaching one kills the branch), and a
 * `notFollowedBy` at the end of a windowed pattern becomes a PENDING state
 * that turns into a match when the window elapses.
 */

export const enum NodeKind {
  Normal = 0,
  Final = 1,
  Stop = 2,
  Pending = 3,
}

export const enum Action {
  Take = 0,
  Ignore = 1,
  Proceed = 2,
}

/**
 * Edge condition, a small expression over the stages' conditions so that each
 * user condition is evaluated at most once per (partial match, event).
 */
export type Cond =
  | { readonly op: 'true' }
  | { readonly op: 'take'; readonly stage: number }
  | { readonly op: 'until'; readonly stage: number }
  | { readonly op: 'not'; readonly arg: Cond }
  | { readonly op: 'and'; readonly left: Cond; readonly right: Cond };

export interface Edge {
  readonly action: Action;
  readonly target: GraphNode;
  /** Mutable only while compiling (greedy rewrites it). */
  cond: Cond;
}

export interface GraphNode {
  /** Index into the compiled node table. */
  readonly id: number;
  /** Stage whose events this node accepts (and whose name a STOP node carries); -1 for the final node. */
  readonly stage: number;
  readonly kind: NodeKind;
  start: boolean;
  readonly edges: Edge[];
}

export interface CompiledGraph {
  readonly nodes: readonly GraphNode[];
  readonly start: GraphNode;
}

const TRUE: Cond = Object.freeze({ op: 'true' });
const not = (arg: Cond): Cond => ({ op: 'not', arg });
const and = (left: Cond, right: Cond): Cond => ({ op: 'and', left, right });

export function compileGraph(pattern: NormalizedPattern): CompiledGraph {
  return new GraphCompiler(pattern).compile();
}

class GraphCompiler {
  private readonly stages: readonly NormalizedStage[];
  private readonly nodes: GraphNode[] = [];
  private readonly stopNodes = new Map<number, GraphNode>();
  /** Greedy + until: the untouched copy of a sink, keyed by the sink. */
  private readonly originalOf = new Map<GraphNode, GraphNode>();
  /** Index of the stage after the one being converted, or -1. */
  private following = -1;

  constructor(private readonly pattern: NormalizedPattern) {
    this.stages = pattern.stages;
  }

  compile(): CompiledGraph {
    const stages = this.stages;
    let sink = this.node(-1, NodeKind.Final);
    for (let cur = stages.length - 1; cur > 0; cur--) {
      const stage = stages[cur]!;
      if (stage.kind === 'notFollowedBy') {
        // In the middle it is folded into the edges of the following stages
        // (stop transitions). Only at the end of a windowed pattern does it
        // need a state of its own: a pending one, resolved by time.
        if (this.pattern.withinMs > 0 && sink.kind === NodeKind.Final) {
          const pending = this.node(cur, NodeKind.Pending);
          const notCond = this.take(cur);
          this.addEdge(pending, Action.Proceed, this.stopNode(cur), notCond);
          this.addEdge(pending, Action.Ignore, pending, not(notCond));
          sink = pending;
        }
      } else if (stage.kind === 'notNext') {
        const notNext = this.node(cur, NodeKind.Normal);
        const notCond = this.take(cur);
        if (sink.kind === NodeKind.Final) {
          // Never PROCEED into the final state: that would emit the match on
          // the very event that should have been checked.
          this.addEdge(notNext, Action.Ignore, sink, not(notCond));
        } else {
          this.addEdge(notNext, Action.Proceed, sink, not(notCond));
        }
        this.addEdge(notNext, Action.Proceed, this.stopNode(cur), notCond);
        sink = notNext;
      } else {
        sink = this.convertStage(cur, sink);
      }
      this.following = cur;
    }
    const start = this.convertStage(0, sink);
    start.start = true;
    return { nodes: this.nodes, start };
  }

  private node(stage: number, kind: NodeKind): GraphNode {
    const n: GraphNode = { id: this.nodes.length, stage, kind, start: false, edges: [] };
    this.nodes.push(n);
    return n;
  }

  private addEdge(from: GraphNode, action: Action, target: GraphNode, cond: Cond): void {
    from.edges.push({ action, target, cond });
  }

  private take(stage: number): Cond {
    return this.stages[stage]!.condition === null ? TRUE : { op: 'take', stage };
  }

  private stopNode(stage: number): GraphNode {
    let stop = this.stopNodes.get(stage);
    if (stop === undefined) {
      stop = this.node(stage, NodeKind.Stop);
      this.addEdge(stop, Action.Take, stop, this.take(stage));
      this.stopNodes.set(stage, stop);
    }
    return stop;
  }

  /** Conditions of the `notFollowedBy` stages that still apply before stage `cur` (through optional stages). */
  private currentNots(cur: number): number[] {
    const nots: number[] = [];
    let p = cur;
    while (p > 0 && (this.stages[p - 1]!.optional || this.stages[p - 1]!.kind === 'notFollowedBy')) {
      p--;
      if (this.stages[p]!.kind === 'notFollowedBy') nots.push(p);
    }
    return nots;
  }

  private convertStage(cur: number, sink: GraphNode): GraphNode {
    const stage = this.stages[cur]!;
    let last: GraphNode;
    if (stage.max === Infinity) {
      const looping = this.createLooping(cur, this.copyWithoutTransitiveNots(cur, sink));
      last = this.createTimes(cur, looping, sink, stage.min, stage.min);
    } else if (stage.max > 1) {
      last = this.createTimes(cur, sink, sink, stage.min, stage.max);
    } else {
      last = this.createSingleton(cur, sink, sink, this.take(cur), this.ignoreCond(cur), stage.optional);
    }
    this.addStopStates(cur, last);
    return last;
  }

  private createTimes(cur: number, sinkState: GraphNode, proceedState: GraphNode, from: number, to: number): GraphNode {
    const stage = this.stages[cur]!;
    const until = this.untilCond(cur);
    const innerIgnore = extendWithUntil(this.innerIgnoreCond(cur), until);
    const takeCond = takeWithUntil(this.take(cur), until);
    if (stage.greedy && from !== to) {
      if (until !== null) this.originalOf.set(sinkState, this.copy(sinkState));
      this.restrictGreedy(sinkState, takeCond);
    }
    let last = sinkState;
    for (let i = from; i < to; i++) {
      last = this.createSingleton(cur, last, proceedState, takeCond, innerIgnore, true);
      this.addStopStateToLooping(last);
    }
    for (let i = 0; i < from - 1; i++) {
      last = this.createSingleton(cur, last, null, takeCond, innerIgnore, false);
      this.addStopStateToLooping(last);
    }
    return this.createSingleton(cur, last, proceedState, takeCond, this.ignoreCond(cur), stage.optional);
  }

  private createSingleton(
    cur: number,
    sinkState: GraphNode,
    proceedState: GraphNode | null,
    takeCond: Cond,
    ignoreCond: Cond | null,
    isOptional: boolean,
  ): GraphNode {
    const stage = this.stages[cur]!;
    const singleton = this.node(cur, NodeKind.Normal);
    // Once an event is taken, earlier negations no longer apply.
    const sink = this.copyWithoutTransitiveNots(cur, sinkState);
    this.addEdge(singleton, Action.Take, sink, takeCond);
    if (isOptional && proceedState !== null) {
      if (stage.greedy) {
        const until = this.untilCond(cur);
        if (until !== null) {
          const original = this.originalOf.get(proceedState);
          if (original !== undefined) this.addEdge(singleton, Action.Proceed, original, and(TRUE, until));
        }
        this.addEdge(singleton, Action.Proceed, proceedState, until !== null ? and(TRUE, not(until)) : TRUE);
      } else {
        this.addEdge(singleton, Action.Proceed, proceedState, TRUE);
      }
    }
    if (ignoreCond !== null) {
      let ignoreState = singleton;
      if (isOptional) {
        ignoreState = this.node(cur, NodeKind.Normal);
        this.addEdge(ignoreState, Action.Take, sink, takeCond);
        this.addEdge(ignoreState, Action.Ignore, ignoreState, ignoreCond);
        this.addStopStates(cur, ignoreState);
      }
      this.addEdge(singleton, Action.Ignore, ignoreState, ignoreCond);
    }
    return singleton;
  }

  private createLooping(cur: number, sinkState: GraphNode): GraphNode {
    const stage = this.stages[cur]!;
    const until = this.untilCond(cur);
    const ignoreCond = extendWithUntil(this.innerIgnoreCond(cur), until);
    const takeCond = takeWithUntil(this.take(cur), until);
    const looping = this.node(cur, NodeKind.Normal);
    if (stage.greedy) {
      if (until !== null) {
        const copy = this.copy(sinkState);
        this.addEdge(looping, Action.Proceed, copy, and(TRUE, until));
        this.originalOf.set(sinkState, copy);
      }
      this.addEdge(looping, Action.Proceed, sinkState, until !== null ? and(TRUE, not(until)) : TRUE);
      this.restrictGreedy(sinkState, this.take(cur));
    } else {
      this.addEdge(looping, Action.Proceed, sinkState, TRUE);
    }
    this.addEdge(looping, Action.Take, looping, takeCond);
    this.addStopStateToLooping(looping);
    if (ignoreCond !== null) {
      const ignoreState = this.node(cur, NodeKind.Normal);
      this.addEdge(ignoreState, Action.Take, looping, takeCond);
      this.addEdge(ignoreState, Action.Ignore, ignoreState, ignoreCond);
      this.addEdge(looping, Action.Ignore, ignoreState, ignoreCond);
      this.addStopStateToLooping(ignoreState);
    }
    return looping;
  }

  /** Greedy: the next stage may only start with an event the repeating stage would not take. */
  private restrictGreedy(state: GraphNode, takeCond: Cond): void {
    for (const edge of state.edges) edge.cond = and(edge.cond, not(takeCond));
  }

  private addStopStates(cur: number, state: GraphNode): void {
    for (const notStage of this.currentNots(cur)) {
      this.addEdge(state, Action.Proceed, this.stopNode(notStage), this.take(notStage));
    }
  }

  private addStopStateToLooping(state: GraphNode): void {
    const f = this.following;
    if (f >= 0 && this.stages[f]!.kind === 'notFollowedBy') {
      this.addEdge(state, Action.Proceed, this.stopNode(f), this.take(f));
    }
  }

  /**
   * For an optional stage preceded by `notFollowedBy`: the path that took an
   * event of this stage must not keep the negation's stop edges (in
   * `a !b c? d`, `a c b d` matches but `a b d` does not).
   */
  private copyWithoutTransitiveNots(cur: number, sinkState: GraphNode): GraphNode {
    const nots = this.currentNots(cur);
    if (nots.length === 0 || !this.stages[cur]!.optional) return sinkState;
    const copy = this.node(sinkState.stage, sinkState.kind);
    for (const edge of sinkState.edges) {
      if (edge.action === Action.Proceed) {
        let target = edge.target;
        if (target.kind === NodeKind.Stop) {
          if (nots.includes(target.stage)) continue;
        } else {
          target = this.copyWithoutTransitiveNots(cur, target);
        }
        this.addEdge(copy, Action.Proceed, target, edge.cond);
      } else {
        this.addEdge(copy, edge.action, edge.target === sinkState ? copy : edge.target, edge.cond);
      }
    }
    return copy;
  }

  private copy(state: GraphNode): GraphNode {
    const copy = this.node(state.stage, state.kind);
    for (const edge of state.edges) {
      this.addEdge(copy, edge.action, edge.target === state ? copy : edge.target, edge.cond);
    }
    return copy;
  }

  private untilCond(cur: number): Cond | null {
    return this.stages[cur]!.until === null ? null : { op: 'until', stage: cur };
  }

  /** Ignore condition towards the previous stage (Flink: the consuming strategy). */
  private ignoreCond(cur: number): Cond | null {
    return this.ignoreFor(cur, this.stages[cur]!.contiguity);
  }

  /** Ignore condition between the events of a repeating stage. */
  private innerIgnoreCond(cur: number): Cond | null {
    return this.ignoreFor(cur, this.stages[cur]!.inner);
  }

  private ignoreFor(cur: number, contiguity: NormalizedStage['contiguity']): Cond | null {
    switch (contiguity) {
      case 'strict':
        return null;
      case 'relaxed':
        return not(this.take(cur));
      case 'nondeterministic':
        return TRUE;
    }
  }
}

/** Flink's extendWithUntilCondition for an ignore condition: an event meeting `until` is never skipped over. */
function extendWithUntil(cond: Cond | null, until: Cond | null): Cond | null {
  return until !== null && cond !== null ? and(not(until), cond) : cond;
}

/** Flink's extendWithUntilCondition for a take condition: an event meeting `until` is never taken. */
function takeWithUntil(cond: Cond, until: Cond | null): Cond {
  return until !== null ? and(not(until), cond) : cond;
}
