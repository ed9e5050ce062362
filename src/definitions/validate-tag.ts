import { Ajv, type ErrorObject } from 'ajv';
import { compileExpression } from '../expr/index.js';
import { DefinitionError, PortraitError, showValue, type ErrorDetail } from '../errors/index.js';
import type { EventCatalog } from '../ingest/index.js';
import { parseDuration } from './duration.js';
import { tagDocumentSchema, type TagDocument, type WindowDocument } from './tag-document.js';

const ajv = new Ajv({ allErrors: true, strict: false });
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
  if (!checkSchema(input)) throw invalid(subject, schemaDetails(checkSchema.errors ?? []));
  const doc = { ...(input as TagDocument & { status?: unknown; createdAt?: unknown; updatedAt?: unknown }) };
  delete doc.status;
  delete doc.createdAt;
  delete doc.updatedAt;
  const details: ErrorDetail[] = [];
  let expressionError: PortraitError | undefined;
  const expression = (source: string, scope: 'event' | 'profile', path: string): void => {
    try {
      compileExpression(source, scope, path, doc.id);
    } catch (err: unknown) {
      if (!(err instanceof PortraitError)) throw err;
      expressionError ??= err;
      details.push({ path, message: err.message });
    }
  };
  if (doc.kind === 'statistic') {
    doc.eventTypes.forEach((type, i) => {
      if (catalog.types[type] === undefined) {
        details.push({ path: `/eventTypes/${i}`, message: `event type ${showValue(type)} is not declared in the event catalog` });
      }
    });
    const field = doc.field;
    if (field === undefined && NEEDS_FIELD.has(doc.aggregate)) {
      details.push({ path: '/field', message: `is required for aggregate "${doc.aggregate}"` });
    }
    if (field !== undefined) {
      const declaring = doc.eventTypes.filter((t) => catalog.types[t]?.fields[field] !== undefined);
      const known = doc.eventTypes.filter((t) => catalog.types[t] !== undefined);
      if (declaring.length === 0 && known.length > 0 && catalog.additionalFields !== 'keep') {
        details.push({ path: '/field', message: `${showValue(field)} is not a field of event type${known.length > 1 ? 's' : ''} ${known.join(', ')}` });
      }
      if (declaring.length === 0 && known.length > 0 && catalog.additionalFields === 'keep' && field === catalog.entityKey) {
        details.push({ path: '/field', message: `${showValue(field)} is the entity key, not an attribute` });
      }
      if (NUMERIC.has(doc.aggregate)) {
        for (const t of declaring) {
          const type = catalog.types[t]!.fields[field]!;
          if (type !== 'number' && type !== 'integer') {
            details.push({ path: '/field', message: `aggregate "${doc.aggregate}" needs a number, but ${t}.${field} is declared as ${type}` });
          }
        }
      }
    }
    checkWindow(doc.window, details);
    if (doc.filter !== undefined) expression(doc.filter, 'event', '/filter');
  } else {
    expression(doc.condition, 'profile', '/condition');
  }
  if (details.length > 0) {
    if (expressionError !== undefined && details.length === 1) {
      throw new DefinitionError(expressionError.code, expressionError.message, { path: expressionError.path ?? '', ...(subject === undefined ? {} : { subject }), details });
    }
    throw invalid(subject, details);
  }
  return doc;
}

function checkWindow(window: WindowDocument, details: ErrorDetail[]): void {
  if (window.type !== 'sliding') return;
  const size = parseDuration(window.size)!;
  const slide = parseDuration(window.slide)!;
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
      case 'not':
        message = 'has a property that does not belong to this kind of definition';
        break;
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
