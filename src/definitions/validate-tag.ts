import { Ajv, type ErrorObject } from 'ajv';
import { compileExpression } from '../expr/index.js';
import { DefinitionError, PortraitError, showValue, type ErrorDetail } from '../errors/index.js';
import type { EventCatalog } from '../ingest/index.js';
import { parseDuration } from './duration.js';
import { tagDocumentSchema, type TagDocument, type WindowDocument } from './tag-document.js';

// verbose: a `not` error needs its schema and data to name the properties that do not belong.
const ajv = new Ajv({ allErrors: true, strict: false, verbose: true });
const checkSchema = ajv.compile(tagDocumentSchema);

/** Aggregates that read a field's value. */
const NEEDS_FIELD = new Set(['sum', 'avg', 'min', 'max', 'distinct', 'latest']);
const NUMERIC = new Set(['sum', 'avg', 'min', 'max']);
/** Most buckets a sliding window may have (size / slide). */
export const MAX_WINDOW_BUCKETS = 10_000;

/**
 * Validates a tag document against the published schema and the event
 * catalog, and compiles its expressions. Reports every problem at once: throws
 * a {@link DefinitionError} (`PRT_DEF_INVALID` or `PRT_DEF_EXPRESSION`) whose
 * message names the first problem and whose `details` list all of them.
 * Returns the document without read-only fields.
 */
export function validateTagDocument(input: unknown, catalog: EventCatalog): TagDocument {
  const subject = typeof input === 'object' && input !== null && typeof (input as { id?: unknown }).id === 'string' ? (input as { id: string }).id : undefined;
  const schemaValid = checkSchema(input);
  const details: ErrorDetail[] = schemaValid ? [] : schemaDetails(checkSchema.errors ?? []);
  if (typeof input !== 'object' || input === null || Array.isArray(input)) throw invalid(subject, details);
  const doc = { ...(input as TagDocument & { status?: unknown; createdAt?: unknown; updatedAt?: unknown }) };
  delete doc.status;
  delete doc.createdAt;
  delete doc.updatedAt;
  // The checks below also run when the schema failed, on whatever parts are well
  // formed, so an author sees every problem in one pass (allErrors), not the
  // catalog and expression problems only after fixing the schema ones.
  const semantic: ErrorDetail[] = [];
  let expressionError: PortraitError | undefined;
  const expression = (source: unknown, scope: 'event' | 'profile', path: string): void => {
    if (typeof source !== 'string' || source.length === 0) return;
    try {
      compileExpression(source, scope, path, subject);
    } catch (err: unknown) {
      if (!(err instanceof PortraitError)) throw err;
      expressionError ??= err;
      semantic.push({ path, message: err.message });
    }
  };
  if (doc.kind === 'statistic') {
    const eventTypes: unknown[] = Array.isArray(doc.eventTypes) ? doc.eventTypes : [];
    eventTypes.forEach((type, i) => {
      if (typeof type === 'string' && type !== '' && declaredType(catalog, type) === undefined) {
        semantic.push({ path: `/eventTypes/${i}`, message: `event type ${showValue(type)} is not declared in the event catalog` });
      }
    });
    const types = eventTypes.filter((t): t is string => typeof t === 'string');
    const field: unknown = doc.field;
    const aggregate: unknown = doc.aggregate;
    if (field === undefined && typeof aggregate === 'string' && NEEDS_FIELD.has(aggregate)) {
      semantic.push({ path: '/field', message: `is required for aggregate "${aggregate}"` });
    }
    if (typeof field === 'string' && field !== '') {
      const fieldType = (t: string): string | undefined => {
        const declared = declaredType(catalog, t);
        return declared !== undefined && Object.hasOwn(declared.fields, field) ? declared.fields[field] : undefined;
      };
      const declaring = types.filter((t) => fieldType(t) !== undefined);
      const known = types.filter((t) => declaredType(catalog, t) !== undefined);
      if (declaring.length === 0 && known.length > 0 && catalog.additionalFields !== 'keep') {
        semantic.push({ path: '/field', message: `${showValue(field)} is not a field of event type${known.length > 1 ? 's' : ''} ${known.join(', ')}` });
      }
      if (declaring.length === 0 && known.length > 0 && catalog.additionalFields === 'keep' && field === catalog.entityKey) {
        semantic.push({ path: '/field', message: `${showValue(field)} is the entity key, not an attribute` });
      }
      if (typeof aggregate === 'string' && NUMERIC.has(aggregate)) {
        for (const t of declaring) {
          const type = fieldType(t)!;
          if (type !== 'number' && type !== 'integer') {
            semantic.push({ path: '/field', message: `aggregate "${aggregate}" needs a number, but ${t}.${field} is declared as ${type}` });
          }
        }
      }
    }
    if (typeof doc.window === 'object' && doc.window !== null) checkWindow(doc.window, semantic);
    expression(doc.filter, 'event', '/filter');
  } else if (doc.kind === 'rule') {
    expression(doc.condition, 'profile', '/condition');
  }
  for (const d of semantic) if (!details.some((s) => s.path === d.path && s.message === d.message)) details.push(d);
  if (details.length > 0) {
    if (expressionError !== undefined && details.length === 1) {
      throw new DefinitionError(expressionError.code, expressionError.message, { path: expressionError.path ?? '', ...(subject === undefined ? {} : { subject }), details });
    }
    throw invalid(subject, details);
  }
  return doc;
}

/** The catalog's declaration of an event type; own properties only, so `constructor` or `__proto__` are not types. */
function declaredType(catalog: EventCatalog, name: string): EventCatalog['types'][string] | undefined {
  return Object.hasOwn(catalog.types, name) ? catalog.types[name] : undefined;
}

function checkWindow(window: WindowDocument, details: ErrorDetail[]): void {
  if (window.type !== 'sliding') return;
  const size = parseDuration(window.size);
  const slide = parseDuration(window.slide);
  // Malformed durations are reported by the schema.
  if (size === undefined || slide === undefined) return;
  if (size % slide !== 0) {
    details.push({ path: '/window/size', message: `must be a multiple of the slide (${showValue(window.slide)}), got ${showValue(window.size)}` });
  } else if (size / slide > MAX_WINDOW_BUCKETS) {
    details.push({ path: '/window/slide', message: `makes ${size / slide} buckets per window; at most ${MAX_WINDOW_BUCKETS} are allowed` });
  }
}

function invalid(subject: string | undefined, details: ErrorDetail[]): DefinitionError {
  const first = details[0] ?? { path: '', message: 'is invalid' };
  const who = subject === undefined ? 'tag definition' : `tag "${subject}"`;
  const more = details.length > 1 ? ` (and ${details.length - 1} more problem${details.length > 2 ? 's' : ''})` : '';
  return new DefinitionError('PRT_DEF_INVALID', `${who} ${first.path || '/'} ${first.message}${more}`, {
    path: first.path,
    ...(subject === undefined ? {} : { subject }),
    details,
  });
}

/** Turns ajv errors into path + reason pairs, dropping the noise of `if`/`oneOf` wrappers. */
export function schemaDetails(errors: ReadonlyArray<ErrorObject>): ErrorDetail[] {
  const out: ErrorDetail[] = [];
  const seen = new Set<string>();
  const durationPaths = new Set(errors.filter((e) => e.keyword === 'oneOf').map((e) => e.instancePath));
  for (const e of errors) {
    if (e.keyword === 'if') continue;
    let path = e.instancePath;
    let message: string;
    if (durationPaths.has(path) && e.keyword !== 'oneOf') continue;
    switch (e.keyword) {
      case 'oneOf':
        message = 'must be a duration like "15m", "1h" or "30d", or a positive number of milliseconds';
        break;
      case 'required':
        path = `${path}/${(e.params as { missingProperty: string }).missingProperty}`;
        message = 'is required';
        break;
      case 'additionalProperties':
        path = `${path}/${(e.params as { additionalProperty: string }).additionalProperty}`;
        message = 'is not a known property';
        break;
      case 'enum':
        message = `must be one of ${(e.params as { allowedValues: unknown[] }).allowedValues.map((v) => JSON.stringify(v)).join(', ')}`;
        break;
      case 'not': {
        // `not: { required: [...] }` or `not: { anyOf: [{ required: [...] }, ...] }`: name each
        // present property by its own path rather than the object holding it.
        const present = forbiddenPresent(e.schema, e.data);
        if (present.length > 0) {
          for (const name of present) {
            const own = `${path}/${name}`;
            const text = path === '' ? 'does not belong to this kind of definition' : 'does not belong to this type of window';
            if (!seen.has(`${own} ${text}`)) {
              seen.add(`${own} ${text}`);
              out.push({ path: own, message: text });
            }
          }
          continue;
        }
        message = 'has a property that does not belong to this kind of definition';
        break;
      }
      default:
        message = e.message ?? 'is invalid';
    }
    const key = `${path} ${message}`;
    if (seen.has(key)) continue;
    seen.add(key);
    out.push({ path, message });
  }
  return out;
}

/** Properties named by the `required` lists of a `not` schema that `data` has. */
function forbiddenPresent(schema: unknown, data: unknown): string[] {
  if (typeof data !== 'object' || data === null || typeof schema !== 'object' || schema === null) return [];
  const lists: unknown[] = [];
  const s = schema as { required?: unknown; anyOf?: unknown };
  if (Array.isArray(s.required)) lists.push(s.required);
  if (Array.isArray(s.anyOf)) for (const branch of s.anyOf) lists.push((branch as { required?: unknown }).required);
  const names = lists.flatMap((l) => (Array.isArray(l) ? l.filter((n): n is string => typeof n === 'string') : []));
  return [...new Set(names)].filter((n) => Object.prototype.hasOwnProperty.call(data, n));
}
