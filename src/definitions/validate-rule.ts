import { Ajv } from 'ajv';
import { compileExpression, type ExpressionScope } from '../expr/index.js';
import { DefinitionError, PortraitError, showValue, type ErrorDetail } from '../errors/index.js';
import type { EventCatalog } from '../ingest/index.js';
import { parseDuration } from './duration.js';
import { ruleDocumentSchema, type ConditionDocument, type PatternStageDocument, type RuleDocument } from './rule-document.js';
import { MAX_WINDOW_BUCKETS, schemaDetails } from './validate-tag.js';

const ajv = new Ajv({ allErrors: true, strict: false, verbose: true });
const defs = ruleDocumentSchema.definitions.condition.oneOf;
// The document without the condition tree, and one schema per kind of condition node, so
// an error names the exact node (`/condition/all/1/aggregate/window/size`), not a oneOf.
const checkTop = ajv.compile({ ...ruleDocumentSchema, properties: { ...ruleDocumentSchema.properties, condition: { type: 'object' } }, definitions: undefined });
const checkNode = {
  expr: ajv.compile(defs[3]),
  aggregate: ajv.compile(defs[4]),
  sequence: ajv.compile(defs[5]),
};

const NUMERIC = new Set(['sum', 'avg', 'min', 'max']);
/** Stage names the CEP compiler refuses (they would shadow object internals). */
const RESERVED_STAGE_NAMES: ReadonlyArray<string> = ['__proto__', 'constructor', 'prototype'];
const NODE_KINDS = ['all', 'any', 'not', 'expr', 'aggregate', 'sequence'] as const;

/** What validation learns about a rule besides its problems. */
export interface RuleFacts {
  /** The rule key includes the entity key: its state lives beside the entity's profile. */
  entityKeyed: boolean;
  /** Every event type the condition reads. */
  eventTypes: string[];
}

/**
 * Validates a rule document against the published schema and the event
 * catalog, and compiles its expressions. Reports every problem at once with
 * its JSON path: throws a {@link DefinitionError} (`PRT_DEF_INVALID`, or
 * `PRT_DEF_EXPRESSION` when the only problem is an expression) whose `details`
 * list all of them. Returns the document without read-only fields.
 */
export function validateRuleDocument(input: unknown, catalog: EventCatalog): RuleDocument {
  return checkRule(input, catalog).doc;
}

/** {@link validateRuleDocument}, also returning what the compiler needs to know. */
export function checkRule(input: unknown, catalog: EventCatalog): { doc: RuleDocument; facts: RuleFacts } {
  const subject = typeof input === 'object' && input !== null && typeof (input as { id?: unknown }).id === 'string' ? (input as { id: string }).id : undefined;
  const details: ErrorDetail[] = checkTop(input) ? [] : schemaDetails(checkTop.errors ?? []);
  if (typeof input !== 'object' || input === null || Array.isArray(input)) throw invalid(subject, details);
  const doc = { ...(input as RuleDocument & { status?: unknown; createdAt?: unknown; updatedAt?: unknown }) };
  delete doc.status;
  delete doc.createdAt;
  delete doc.updatedAt;

  let expressionError: PortraitError | undefined;
  const expression = (source: unknown, scope: ExpressionScope, path: string): ReturnType<typeof compileExpression> | undefined => {
    if (typeof source !== 'string' || source.length === 0) return undefined;
    try {
      return compileExpression(source, scope, path, subject);
    } catch (err: unknown) {
      if (!(err instanceof PortraitError)) throw err;
      expressionError ??= err;
      details.push({ path, message: err.message });
      return undefined;
    }
  };
  const key = Array.isArray(doc.key) ? doc.key.filter((k): k is string => typeof k === 'string') : [];
  const entityKeyed = key.includes(catalog.entityKey);
  const eventTypes = new Set<string>();
  const checkTypes = (types: unknown, path: string): void => {
    if (!Array.isArray(types)) return;
    types.forEach((type, i) => {
      if (typeof type !== 'string') return;
      eventTypes.add(type);
      const spec = catalog.types[type];
      if (spec === undefined) {
        details.push({ path: `${path}/${i}`, message: `event type ${showValue(type)} is not declared in the event catalog` });
        return;
      }
      for (const k of key) {
        if (k !== catalog.entityKey && spec.fields[k] === undefined && catalog.additionalFields !== 'keep') {
          details.push({ path: `${path}/${i}`, message: `events of type "${type}" have no key field "${k}"` });
        }
      }
    });
  };

  const visit = (node: unknown, path: string, depth: number): void => {
    if (depth > 32) {
      details.push({ path, message: 'nests conditions more than 32 levels deep' });
      return;
    }
    if (typeof node !== 'object' || node === null || Array.isArray(node)) {
      details.push({ path, message: 'must be a condition object (all, any, not, expr, aggregate or sequence)' });
      return;
    }
    const kinds = NODE_KINDS.filter((k) => k in node);
    if (kinds.length !== 1) {
      details.push({ path, message: kinds.length === 0 ? `must have one of ${NODE_KINDS.join(', ')}` : `has ${kinds.join(' and ')}; a condition has exactly one kind` });
      return;
    }
    const n = node as Record<string, unknown>;
    switch (kinds[0]!) {
      case 'all':
      case 'any': {
        const kind = kinds[0]!;
        const list = n[kind];
        const extra = Object.keys(n).filter((k) => k !== kind);
        for (const k of extra) details.push({ path: `${path}/${k}`, message: 'is not a known property' });
        if (!Array.isArray(list) || list.length === 0) details.push({ path: `${path}/${kind}`, message: 'must be a non-empty array of conditions' });
        else list.forEach((child, i) => visit(child, `${path}/${kind}/${i}`, depth + 1));
        return;
      }
      case 'not':
        for (const k of Object.keys(n).filter((k) => k !== 'not')) details.push({ path: `${path}/${k}`, message: 'is not a known property' });
        visit(n.not, `${path}/not`, depth + 1);
        return;
      case 'expr': {
        if (!checkNode.expr(n)) details.push(...prefix(path, schemaDetails(checkNode.expr.errors ?? [])));
        const compiled = expression(n.expr, 'rule', `${path}/expr`);
        if (compiled !== undefined && !entityKeyed && (compiled.references.tags !== undefined || compiled.references.attrs !== undefined || compiled.dynamic.some((d) => d === 'tags' || d === 'attrs'))) {
          details.push({ path: `${path}/expr`, message: `reads the profile (tags or attrs), which only rules keyed by the entity key "${catalog.entityKey}" can` });
        }
        return;
      }
      case 'aggregate': {
        if (!checkNode.aggregate(n)) details.push(...prefix(path, schemaDetails(checkNode.aggregate.errors ?? [])));
        const agg = n.aggregate as { fn?: unknown; field?: unknown; eventTypes?: unknown; filter?: unknown; window?: { type?: unknown; size?: unknown; slide?: unknown } } | undefined;
        if (typeof agg !== 'object' || agg === null) return;
        checkTypes(agg.eventTypes, `${path}/aggregate/eventTypes`);
        if (agg.fn !== 'count' && agg.field === undefined && typeof agg.fn === 'string') details.push({ path: `${path}/aggregate/field`, message: `is required for aggregate "${agg.fn}"` });
        if (typeof agg.field === 'string' && NUMERIC.has(String(agg.fn)) && Array.isArray(agg.eventTypes)) {
          for (const t of agg.eventTypes) {
            const type = catalog.types[String(t)]?.fields[agg.field];
            if (type !== undefined && type !== 'number' && type !== 'integer') {
              details.push({ path: `${path}/aggregate/field`, message: `aggregate "${String(agg.fn)}" needs a number, but ${String(t)}.${agg.field} is declared as ${type}` });
            }
          }
        }
        if (agg.window?.type === 'sliding') {
          const size = parseDuration(agg.window.size);
          const slide = parseDuration(agg.window.slide);
          if (size !== undefined && slide !== undefined) {
            if (size % slide !== 0) details.push({ path: `${path}/aggregate/window/size`, message: `must be a multiple of the slide (${showValue(agg.window.slide)}), got ${showValue(agg.window.size)}` });
            else if (size / slide > MAX_WINDOW_BUCKETS) details.push({ path: `${path}/aggregate/window/slide`, message: `makes ${size / slide} buckets per window; at most ${MAX_WINDOW_BUCKETS} are allowed` });
          }
        }
        expression(agg.filter, 'event', `${path}/aggregate/filter`);
        return;
      }
      case 'sequence': {
        if (!checkNode.sequence(n)) details.push(...prefix(path, schemaDetails(checkNode.sequence.errors ?? [])));
        const seq = n.sequence as { pattern?: unknown; within?: unknown; skip?: unknown } | undefined;
        if (typeof seq !== 'object' || seq === null || !Array.isArray(seq.pattern)) return;
        checkPattern(seq.pattern as PatternStageDocument[], seq, `${path}/sequence`, n.on, details, checkTypes, expression);
        return;
      }
    }
  };
  visit(doc.condition, '/condition', 0);
  if (doc.trigger !== undefined) checkTypes(doc.trigger.eventTypes, '/trigger/eventTypes');
  else if (eventTypes.size === 0 && details.length === 0) {
    details.push({ path: '/trigger', message: 'is required: the condition reads no event type (only expressions), so no event would ever evaluate the rule' });
  }
  if (doc.outputs?.setTag !== undefined) {
    if (!entityKeyed) details.push({ path: '/outputs/setTag', message: `sets a profile tag, which only rules keyed by the entity key "${catalog.entityKey}" can` });
    expression(doc.outputs.setTag.expr, 'rule', '/outputs/setTag/expr');
  }
  if (details.length > 0) {
    if (expressionError !== undefined && details.length === 1) {
      throw new DefinitionError(expressionError.code, expressionError.message, { path: expressionError.path ?? '', ...(subject === undefined ? {} : { subject }), details });
    }
    throw invalid(subject, details);
  }
  return { doc, facts: { entityKeyed, eventTypes: [...eventTypes].sort() } };
}

function checkPattern(
  pattern: PatternStageDocument[],
  seq: { within?: unknown; skip?: unknown },
  path: string,
  on: unknown,
  details: ErrorDetail[],
  checkTypes: (types: unknown, path: string) => void,
  expression: (source: unknown, scope: ExpressionScope, path: string) => unknown,
): void {
  const names = new Map<string, number>();
  pattern.forEach((stage, i) => {
    if (typeof stage !== 'object' || stage === null) return;
    const at = `${path}/pattern/${i}`;
    if (typeof stage.name === 'string') {
      if (names.has(stage.name)) details.push({ path: `${at}/name`, message: `repeats stage name "${stage.name}" of stage ${names.get(stage.name)}` });
      else names.set(stage.name, i);
    }
    checkTypes(stage.eventTypes, `${at}/eventTypes`);
    expression(stage.where, 'pattern', `${at}/where`);
    expression(stage.until, 'pattern', `${at}/until`);
    const negated = stage.contiguity === 'notNext' || stage.contiguity === 'notFollowedBy';
    const looping = stage.oneOrMore === true || (typeof stage.times === 'object' && stage.times !== null ? stage.times.max > 1 : typeof stage.times === 'number' && stage.times > 1);
    if (i === 0 && stage.contiguity !== undefined && stage.contiguity !== 'followedBy') {
      details.push({ path: `${at}/contiguity`, message: 'does not apply to the first stage of a pattern' });
    }
    if (negated && (stage.times !== undefined || stage.oneOrMore === true || stage.optional === true || stage.greedy === true)) {
      details.push({ path: at, message: `a ${stage.contiguity} stage cannot have a quantifier (times, oneOrMore, optional, greedy)` });
    }
    if (negated && i === pattern.length - 1 && stage.contiguity === 'notNext') {
      details.push({ path: `${at}/contiguity`, message: 'a pattern cannot end with notNext' });
    }
    if (negated && i === pattern.length - 1 && seq.within === undefined) {
      details.push({ path: `${path}/within`, message: 'is required when the pattern ends with notFollowedBy (the absence is decided when it runs out)' });
    }
    if (typeof stage.times === 'object' && stage.times !== null && stage.times.min > stage.times.max) {
      details.push({ path: `${at}/times/min`, message: `must not exceed max (${stage.times.max}), got ${stage.times.min}` });
    }
    // The CEP compiler's rules for which quantifiers combine (Flink's), checked here with the
    // document's paths: a rule they reject would otherwise be accepted and then fail to
    // compile in the engine's partitions when it goes online.
    if (typeof stage.name === 'string' && RESERVED_STAGE_NAMES.includes(stage.name)) {
      details.push({ path: `${at}/name`, message: `must not be a reserved word, got "${stage.name}"` });
    }
    if (!negated && stage.greedy === true && !looping) {
      details.push({ path: `${at}/greedy`, message: 'applies only to a looping stage (oneOrMore, or times with more than one event)' });
    }
    if (!negated && stage.greedy === true && stage.inner === 'allowCombinations') {
      details.push({ path: `${at}/greedy`, message: 'cannot be combined with inner "allowCombinations"' });
    }
    const previous = i > 0 ? pattern[i - 1] : undefined;
    if (typeof previous === 'object' && previous !== null) {
      if (!negated && stage.optional === true && previous.greedy === true) {
        details.push({ path: `${at}/optional`, message: `an optional stage cannot follow the greedy stage "${previous.name}"` });
      }
      if (negated && previous.optional === true) {
        details.push({ path: `${at}/contiguity`, message: `a ${stage.contiguity} stage cannot follow the optional stage "${previous.name}"` });
      }
    }
    if (!looping && (stage.inner !== undefined || stage.until !== undefined)) {
      details.push({ path: `${at}/${stage.inner !== undefined ? 'inner' : 'until'}`, message: 'applies only to a looping stage (oneOrMore, or times with more than one event)' });
    }
    if (stage.until !== undefined && stage.oneOrMore !== true) {
      details.push({ path: `${at}/until`, message: 'applies only to a oneOrMore stage' });
    }
  });
  const first = pattern[0];
  if (first !== undefined && (first.contiguity === 'notNext' || first.contiguity === 'notFollowedBy')) {
    details.push({ path: `${path}/pattern/0/contiguity`, message: 'a pattern cannot start with a negated stage' });
  }
  if (pattern.every((s) => s?.optional === true)) details.push({ path: `${path}/pattern`, message: 'needs at least one stage that is not optional' });
  const skip = seq.skip;
  if (typeof skip === 'object' && skip !== null && 'stage' in skip) {
    const stage = (skip as { stage: unknown }).stage;
    if (typeof stage === 'string' && !names.has(stage)) details.push({ path: `${path}/skip/stage`, message: `names no stage of the pattern, got ${showValue(stage)}` });
  }
  if (on === 'timeout' && seq.within === undefined) details.push({ path: `${path}/within`, message: 'is required for on: "timeout" (a partial match times out when within runs out)' });
}

function prefix(path: string, list: ErrorDetail[]): ErrorDetail[] {
  return list.map((d) => ({ path: `${path}${d.path}`, message: d.message }));
}

function invalid(subject: string | undefined, details: ErrorDetail[]): DefinitionError {
  const first = details[0] ?? { path: '', message: 'is invalid' };
  const who = subject === undefined ? 'rule definition' : `rule "${subject}"`;
  const more = details.length > 1 ? ` (and ${details.length - 1} more problem${details.length > 2 ? 's' : ''})` : '';
  return new DefinitionError('PRT_DEF_INVALID', `${who} ${first.path || '/'} ${first.message}${more}`, {
    path: first.path,
    ...(subject === undefined ? {} : { subject }),
    details,
  });
}
