import { createHash } from 'node:crypto';
import type { Event, RuleContext, StatisticTagSpec, RuleTagSpec, TagSpec, TagValue, WindowSpec } from '../engine/index.js';
import { compileExpression, toPlainValue } from '../expr/index.js';
import { parseDuration } from './duration.js';
import type { TagDocument, WindowDocument } from './tag-document.js';

/** Distinct values kept per entity when a document does not say. */
export const DEFAULT_MAX_DISTINCT = 10_000;

/** A compiled tag and whether its condition reads tags by computed name. */
export interface CompiledTag {
  spec: TagSpec;
  /** The condition reads `tags` with a computed key, so it depends on every tag. */
  readsAllTags: boolean;
}

/**
 * Compiles a validated tag document at a version into the engine's spec:
 * expressions compiled once into closures, durations into milliseconds, and a
 * `stateId` that changes only when the computation does.
 */
export function compileTag(doc: TagDocument, version: number): CompiledTag {
  if (doc.kind === 'statistic') {
    const window = compileWindow(doc.window);
    let filter: ((event: Event) => boolean) | null = null;
    let attrInputs: ReadonlyArray<string> | '*' = doc.field === undefined ? [] : [doc.field];
    if (doc.filter !== undefined) {
      const expr = compileExpression(doc.filter, 'event', '/filter', doc.id);
      filter = (event: Event) => expr.evaluate({ attrs: event.attrs, eventType: event.type, time: event.time, key: event.key }) === true;
      attrInputs = expr.dynamic.includes('attrs') ? '*' : [...new Set([...attrInputs, ...(expr.references.attrs ?? [])])];
    }
    const computation = {
      eventTypes: [...doc.eventTypes].sort(),
      filter: doc.filter ?? null,
      aggregate: doc.aggregate,
      field: doc.field ?? null,
      window,
      maxDistinct: doc.maxDistinct ?? DEFAULT_MAX_DISTINCT,
    };
    const spec: StatisticTagSpec = Object.freeze({
      kind: 'statistic',
      id: doc.id,
      version,
      stateId: stateIdOf(doc.id, computation),
      eventTypes: Object.freeze([...doc.eventTypes]),
      filter,
      field: doc.field ?? null,
      attrInputs: attrInputs === '*' ? attrInputs : Object.freeze(attrInputs),
      aggregate: doc.aggregate,
      window,
      maxDistinct: computation.maxDistinct,
    });
    return { spec, readsAllTags: false };
  }
  const expr = compileExpression(doc.condition, 'profile', '/condition', doc.id);
  const tagInputs = (expr.references.tags ?? []).filter((id) => id !== doc.id);
  const attrInputs = expr.dynamic.includes('attrs') ? ('*' as const) : Object.freeze([...(expr.references.attrs ?? [])]);
  const spec: RuleTagSpec = Object.freeze({
    kind: 'rule',
    id: doc.id,
    version,
    stateId: stateIdOf(doc.id, { condition: doc.condition }),
    tagInputs: Object.freeze(tagInputs),
    attrInputs,
    evaluate: (context: RuleContext): TagValue => toPlainValue(expr.evaluate(context)),
  });
  return { spec, readsAllTags: expr.dynamic.includes('tags') };
}

/** A rule spec that reads every tag of a set except itself. */
export function withAllTagInputs(spec: RuleTagSpec, ids: ReadonlyArray<string>): RuleTagSpec {
  return Object.freeze({ ...spec, tagInputs: Object.freeze(ids.filter((id) => id !== spec.id)) });
}

function compileWindow(window: WindowDocument): WindowSpec {
  switch (window.type) {
    case 'lifetime':
      return Object.freeze({ kind: 'lifetime' });
    case 'tumbling':
      return Object.freeze({ kind: 'tumbling', sizeMs: parseDuration(window.size)! });
    case 'sliding':
      return Object.freeze({ kind: 'sliding', sizeMs: parseDuration(window.size)!, slideMs: parseDuration(window.slide)! });
  }
}

function stateIdOf(id: string, computation: unknown): string {
  const digest = createHash('sha256').update(JSON.stringify(computation)).digest('hex').slice(0, 16);
  return `${id}:${digest}`;
}
