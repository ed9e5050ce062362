import { createHash } from 'node:crypto';
import type {
  CepContext,
  CepPatternSpec,
  CepSkipStrategy,
  CepStage,
  Event,
  RuleAggregateSpec,
  RuleConditionNode,
  RulePredicateContext,
  RuleConditionShare,
  RuleSequenceShare,
  RuleSequenceSpec,
  RuleSpec,
  TagValue,
  WindowSpec,
} from '../engine/index.js';
import { compileExpression, toPlainValue, type ParametricForm } from '../expr/index.js';
import type { EventCatalog } from '../ingest/index.js';
import { DEFAULT_MAX_DISTINCT } from './compile-tag.js';
import { parseDuration } from './duration.js';
import type { ConditionDocument, PatternStageDocument, RuleDocument, RuleWindowDocument, SkipStrategyDocument } from './rule-document.js';
import { checkRule } from './validate-rule.js';

/** Partial matches kept per key and sequence when a rule does not say. */
export const DEFAULT_MAX_PARTIAL_MATCHES = 1_000;

/**
 * Validates and compiles a rule document at a version into the engine's
 * spec: expressions compiled once into closures, durations into milliseconds,
 * sequences into CEP patterns, and a `stateId` that changes only when the
 * computation does.
 */
export function compileRule(input: unknown, version: number, catalog: EventCatalog): RuleSpec {
  const { doc, facts } = checkRule(input, catalog);
  const aggregates: RuleAggregateSpec[] = [];
  const sequences: RuleSequenceSpec[] = [];
  const tagInputs = new Set<string>();
  const maxPartialMatches = doc.limits?.maxPartialMatches ?? DEFAULT_MAX_PARTIAL_MATCHES;
  let longestMs = 0;
  /** What the condition's template is made of: each expression's form and each aggregate's identity, by path. */
  const exprForms = new Map<string, ParametricForm>();
  const aggIdentities = new Map<string, string>();
  /** A lifetime aggregate never forgets: the key's state must not expire by default. */
  let lifetime = false;

  const compileNode = (node: ConditionDocument, path: string): RuleConditionNode => {
    if ('all' in node) return Object.freeze({ op: 'all', children: Object.freeze(node.all.map((c, i) => compileNode(c, `${path}/all/${i}`))) });
    if ('any' in node) return Object.freeze({ op: 'any', children: Object.freeze(node.any.map((c, i) => compileNode(c, `${path}/any/${i}`))) });
    if ('not' in node) return Object.freeze({ op: 'not', child: compileNode(node.not, `${path}/not`) });
    if ('expr' in node) {
      const expr = compileExpression(node.expr, 'rule', `${path}/expr`, doc.id);
      for (const t of expr.references.tags ?? []) tagInputs.add(t);
      exprForms.set(path, expr.parametric);
      return Object.freeze({ op: 'expr', evaluate: (ctx: RulePredicateContext) => expr.evaluate(ctx) === true });
    }
    if ('aggregate' in node) {
      const a = node.aggregate;
      let filter: ((event: Event) => boolean) | null = null;
      if (a.filter !== undefined) {
        const f = compileExpression(a.filter, 'event', `${path}/aggregate/filter`, doc.id);
        filter = (event: Event) => f.evaluate({ attrs: event.attrs, eventType: event.type, time: event.time, key: event.key }) === true;
      }
      const window = compileWindow(a.window);
      if (window.kind !== 'lifetime') longestMs = Math.max(longestMs, window.sizeMs);
      else lifetime = true;
      const identity = createHash('sha256')
        .update(JSON.stringify({ eventTypes: [...a.eventTypes].sort(), filter: a.filter ?? null, fn: a.fn, field: a.field ?? null, window }))
        .digest('hex')
        .slice(0, 16);
      aggIdentities.set(path, identity);
      aggregates.push(
        Object.freeze({
          identity,
          eventTypes: Object.freeze([...a.eventTypes]),
          filter,
          aggregate: a.fn,
          field: a.field ?? null,
          window,
          maxDistinct: DEFAULT_MAX_DISTINCT,
        }),
      );
      return Object.freeze({ op: 'aggregate', index: aggregates.length - 1, comparison: node.op, threshold: node.value });
    }
    const seq = node.sequence;
    const withinMs = seq.within === undefined ? 0 : parseDuration(seq.within)!;
    longestMs = Math.max(longestMs, withinMs);
    const forms: StageForms[] = [];
    const pattern: CepPatternSpec = Object.freeze({
      stages: Object.freeze(seq.pattern.map((stage, i) => compileStage(stage, `${path}/sequence/pattern/${i}`, doc.id, seq.pattern.map((s) => s.name), (forms[i] = {})))),
      withinMs,
      skip: compileSkip(seq.skip),
      maxPartialMatches,
      emitTimeouts: node.on === 'timeout',
    });
    const types = new Set<string>();
    for (const stage of seq.pattern) for (const t of stage.eventTypes) types.add(t);
    sequences.push(Object.freeze({ eventTypes: Object.freeze([...types].sort()), pattern, share: shareOf(seq, node.on ?? 'match', withinMs, maxPartialMatches, forms) }));
    return Object.freeze({ op: 'sequence', index: sequences.length - 1, on: node.on ?? 'match' });
  };

  const condition = compileNode(doc.condition, '/condition');
  let setTag: RuleSpec['setTag'] = null;
  const out = doc.outputs?.setTag;
  if (out !== undefined) {
    if (out.expr !== undefined) {
      const expr = compileExpression(out.expr, 'rule', '/outputs/setTag/expr', doc.id);
      for (const t of expr.references.tags ?? []) tagInputs.add(t);
      setTag = Object.freeze({ id: out.id, value: (ctx: RulePredicateContext): TagValue => toPlainValue(expr.evaluate(ctx)) });
    } else {
      const constant: TagValue = out.value ?? true;
      setTag = Object.freeze({ id: out.id, value: () => constant });
    }
  }
  const computation = {
    key: doc.key,
    trigger: doc.trigger ?? null,
    condition: doc.condition,
    ordering: doc.ordering ?? 'event-time',
    time: doc.time ?? 'event',
    outputs: doc.outputs ?? null,
    limits: doc.limits ?? null,
  };
  const triggerTypes = doc.trigger === undefined ? facts.eventTypes : [...doc.trigger.eventTypes].sort();
  const conditionShare =
    sequences.length > 0 ? null : conditionShareOf(doc.condition, exprForms, aggIdentities, { keyFields: doc.key, triggerTypes, tagInputs: [...tagInputs].sort() });
  return Object.freeze({
    id: doc.id,
    version,
    stateId: `${doc.id}:${createHash('sha256').update(JSON.stringify(computation)).digest('hex').slice(0, 16)}`,
    keyFields: Object.freeze([...doc.key]),
    entityKeyField: catalog.entityKey,
    entityKeyed: facts.entityKeyed,
    eventTypes: Object.freeze(facts.eventTypes),
    triggerTypes: Object.freeze(triggerTypes),
    conditionShare,
    ordering: doc.ordering ?? 'event-time',
    time: doc.time ?? 'event',
    condition,
    aggregates: Object.freeze(aggregates),
    sequences: Object.freeze(sequences),
    tagInputs: Object.freeze([...tagInputs].sort()),
    setTag,
    stateTtlMs: doc.limits?.stateTtl !== undefined ? parseDuration(doc.limits.stateTtl)! : lifetime ? 0 : longestMs,
  });
}

/** Comparisons whose answer is monotone in the number compared with. */
const ORDERED = new Set(['<', '<=', '>', '>=']);

/**
 * What lets rules of a key space be evaluated together: conditions with the
 * same key are the same (aggregates of the same identity, expressions of the
 * same shape, the same triggers and tags read) except, at most, for one
 * number — an aggregate's threshold under `<`, `<=`, `>` or `>=`, or an
 * expression's parameter. A condition with several such numbers has one
 * option per number (that number open, the others part of the shape); the
 * engine picks, per rule, the option most rules share. With none, identical
 * conditions share. Rules with sequences do not (they are evaluated on their
 * sequences' outputs).
 */
function conditionShareOf(
  condition: ConditionDocument,
  forms: ReadonlyMap<string, ParametricForm>,
  aggs: ReadonlyMap<string, string>,
  context: Record<string, unknown>,
): ReadonlyArray<RuleConditionShare> {
  const holes: Array<{ path: string; value: number }> = [];
  const collect = (node: ConditionDocument, path: string): void => {
    if ('all' in node) node.all.forEach((c, i) => collect(c, `${path}/all/${i}`));
    else if ('any' in node) node.any.forEach((c, i) => collect(c, `${path}/any/${i}`));
    else if ('not' in node) collect(node.not, `${path}/not`);
    else if ('expr' in node) {
      const p = forms.get(path)!.parameter;
      if (p !== null) holes.push({ path, value: p.value });
    } else if ('aggregate' in node && ORDERED.has(node.op)) holes.push({ path, value: node.value });
  };
  collect(condition, '/condition');
  /** The condition's shape with the number at `open` (a path) left out. */
  const shape = (node: ConditionDocument, path: string, open: string | null): unknown => {
    if ('all' in node) return { all: node.all.map((c, i) => shape(c, `${path}/all/${i}`, open)) };
    if ('any' in node) return { any: node.any.map((c, i) => shape(c, `${path}/any/${i}`, open)) };
    if ('not' in node) return { not: shape(node.not, `${path}/not`, open) };
    if ('expr' in node) {
      const f = forms.get(path)!;
      return { expr: path === open ? f.template : f.exact };
    }
    if ('aggregate' in node) return { aggregate: aggs.get(path), op: node.op, value: path === open ? null : node.value };
    return null;
  };
  const keyOf = (open: string | null) => createHash('sha256').update(JSON.stringify({ condition: shape(condition, '/condition', open), open, ...context })).digest('hex').slice(0, 16);
  if (holes.length === 0) return Object.freeze([Object.freeze({ key: keyOf(null), parameter: 0 })]);
  return Object.freeze(holes.map((h) => Object.freeze({ key: keyOf(h.path), parameter: h.value })));
}

function compileWindow(window: RuleWindowDocument): WindowSpec {
  switch (window.type) {
    case 'lifetime':
      return Object.freeze({ kind: 'lifetime' });
    case 'tumbling':
      return Object.freeze({ kind: 'tumbling', sizeMs: parseDuration(window.size)! });
    case 'sliding':
      return Object.freeze({ kind: 'sliding', sizeMs: parseDuration(window.size)!, slideMs: parseDuration(window.slide)! });
  }
}

function compileSkip(skip: SkipStrategyDocument | undefined): CepSkipStrategy {
  if (skip === undefined || skip === 'noSkip') return Object.freeze({ kind: 'noSkip' });
  if (skip === 'skipToNext' || skip === 'skipPastLastEvent') return Object.freeze({ kind: skip });
  return Object.freeze({ kind: skip.strategy, stage: skip.stage });
}

const CONTIGUITY = { next: 'strict', followedBy: 'relaxed', followedByAny: 'nondeterministic' } as const;
const INNER = { relaxed: 'relaxed', consecutive: 'strict', allowCombinations: 'nondeterministic' } as const;

/** What a stage condition that reads no earlier match is given for the context it ignores. */
const NO_CONTEXT = Object.freeze({}) as CepContext;

/** The parametric forms of a stage's `where` and `until`, filled in by {@link compileStage}. */
interface StageForms {
  where?: ParametricForm;
  until?: ParametricForm;
}

/**
 * What lets rules share one sequence computation: sequences of one key space
 * with the same `key` are the same pattern except, at most, for the number at
 * condition `slot` (the NFA's slot: stage index for `where`, number of stages
 * plus stage index for `until`), and their windows (`within`) may differ.
 */
function shareOf(seq: { pattern: PatternStageDocument[]; skip?: SkipStrategyDocument }, on: string, withinMs: number, maxPartialMatches: number, forms: StageForms[]): RuleSequenceShare {
  const holes: Array<{ slot: number; value: number }> = [];
  forms.forEach((f, i) => {
    if (f.where?.parameter) holes.push({ slot: i, value: f.where.parameter.value });
    if (f.until?.parameter) holes.push({ slot: forms.length + i, value: f.until.parameter.value });
  });
  // One number may vary; with several, every number is part of the shape.
  const parametric = holes.length === 1;
  const stages = seq.pattern.map((stage, i) => ({
    ...stage,
    where: forms[i]!.where === undefined ? null : parametric ? forms[i]!.where!.template : forms[i]!.where!.exact,
    until: forms[i]!.until === undefined ? null : parametric ? forms[i]!.until!.template : forms[i]!.until!.exact,
  }));
  // The window may differ between rules (each partial match times out per rule); whether there is one may not.
  const key = createHash('sha256').update(JSON.stringify({ stages, on, windowed: withinMs > 0, skip: seq.skip ?? 'noSkip', maxPartialMatches })).digest('hex').slice(0, 16);
  return Object.freeze(parametric ? { key, slot: holes[0]!.slot, parameter: holes[0]!.value } : { key, slot: -1, parameter: 0 });
}

function compileStage(stage: PatternStageDocument, path: string, ruleId: string, names: string[], forms: StageForms): CepStage {
  const types = new Set(stage.eventTypes);
  const where = stage.where === undefined ? undefined : stageCondition(stage.where, `${path}/where`, ruleId, names, (f) => (forms.where = f));
  // Declared with one parameter when it cannot read earlier matches: the NFA then evaluates it
  // once per event for all partial matches, and skips keys it cannot start a match for.
  const condition =
    where === undefined
      ? (event: Event) => types.has(event.type)
      : where.length < 2
        ? (event: Event) => types.has(event.type) && where(event, NO_CONTEXT)
        : (event: Event, ctx: CepContext) => types.has(event.type) && where(event, ctx);
  const out: { -readonly [K in keyof CepStage]: CepStage[K] } = { name: stage.name, condition };
  if (stage.contiguity === 'notNext' || stage.contiguity === 'notFollowedBy') {
    out.kind = stage.contiguity;
    return Object.freeze(out);
  }
  out.contiguity = CONTIGUITY[stage.contiguity ?? 'followedBy'];
  let min = 1;
  let max: number | null = 1;
  if (typeof stage.times === 'number') min = max = stage.times;
  else if (stage.times !== undefined) ({ min, max } = stage.times);
  if (stage.oneOrMore === true) max = null;
  out.min = min;
  out.max = max;
  if (stage.optional === true) out.optional = true;
  if (stage.greedy === true) out.greedy = true;
  if (stage.inner !== undefined) out.inner = INNER[stage.inner];
  if (stage.until !== undefined) {
    const until = stageCondition(stage.until, `${path}/until`, ruleId, names, (f) => (forms.until = f));
    out.until = until;
  }
  return Object.freeze(out);
}

/** A CEL stage condition reading the candidate `event` and the events earlier stages took (`matched.<stage>`). */
function stageCondition(source: string, path: string, ruleId: string, names: string[], form: (f: ParametricForm) => void): (event: Event, ctx: CepContext) => boolean {
  const expr = compileExpression(source, 'pattern', path, ruleId);
  form(expr.parametric);
  const stages = expr.dynamic.includes('matched') ? names : (expr.references.matched ?? []);
  if (stages.length === 0) {
    const context = { event: undefined as unknown, matched: {} };
    return (event) => {
      context.event = event;
      return expr.evaluate(context) === true;
    };
  }
  return (event, ctx) => {
    const matched: Record<string, readonly Event[]> = {};
    for (const name of stages) matched[name] = ctx.eventsFor(name);
    return expr.evaluate({ event, matched }) === true;
  };
}
