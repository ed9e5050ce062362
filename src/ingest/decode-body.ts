import type { Event } from '../engine/index.js';
import { InputError, PortraitError } from '../errors/index.js';
import { validateEvent, type EventCatalog, type EventLimits } from './catalog.js';
import { splitCsvLine, type SchemaMapper } from './input-schema.js';

/** Formats of an ingest request body. */
export type BodyFormat = 'json' | 'ndjson' | 'csv';

/** One refused item of a body, with the text it came from. */
export interface RejectedInput {
  error: PortraitError;
  payload: string;
}

/** Events decoded from a body and the items refused. */
export interface DecodedBody {
  events: Event[];
  rejected: RejectedInput[];
}

/**
 * Decodes and validates the events of one ingest request. `json` is an event
 * object or an array of them (already parsed); `ndjson` and `csv` are text, one
 * event per line. Without a schema, items must be canonical events; with one
 * they are mapped through it (CSV always needs one). Items that fail are
 * returned with their error; they never fail the others.
 */
export function decodeBody(
  body: unknown,
  format: BodyFormat,
  mapper: SchemaMapper | undefined,
  catalog: EventCatalog,
  limits: EventLimits,
  now: number,
): DecodedBody {
  const events: Event[] = [];
  const rejected: RejectedInput[] = [];
  const accept = (item: unknown, path: string, payload: () => string): void => {
    try {
      if (mapper === undefined) events.push(validateEvent(item, catalog, limits, now, path));
      else {
        if (typeof item !== 'object' || item === null || Array.isArray(item)) {
          throw new InputError('PRT_INGEST_WRONG_TYPE', `${path || '/'} must be a JSON object`, { path });
        }
        events.push(mapper.map(item as Record<string, unknown>, now, path));
      }
    } catch (err: unknown) {
      if (!(err instanceof PortraitError)) throw err;
      rejected.push({ error: err, payload: payload() });
    }
  };
  if (format === 'json') {
    if (Array.isArray(body)) body.forEach((item, i) => accept(item, `/${i}`, () => JSON.stringify(item) ?? ''));
    else accept(body, '', () => JSON.stringify(body) ?? '');
    return { events, rejected };
  }
  if (typeof body !== 'string') throw new InputError('PRT_INGEST_BAD_JSON', 'the request body must be text', { path: '' });
  const lines = body.split('\n');
  const skipHeader = format === 'csv' && mapper?.schema.header === true;
  for (let i = 0; i < lines.length; i++) {
    let line = lines[i]!;
    if (line.charCodeAt(line.length - 1) === 13) line = line.slice(0, -1);
    if (line.trim() === '' || (skipHeader && i === 0)) continue;
    const path = `/line/${i + 1}`;
    if (format === 'csv') {
      if (mapper === undefined) throw new InputError('PRT_INGEST_UNKNOWN_SCHEMA', 'CSV input needs a schema (?schema=name)', { path: '/query/schema' });
      const fields = splitCsvLine(line, mapper.schema.delimiter ?? ',');
      try {
        if (fields === undefined) throw new InputError('PRT_INGEST_BAD_CSV', `${path} has an unterminated quoted field`, { path });
        events.push(mapper.mapRow(fields, now, path));
      } catch (err: unknown) {
        if (!(err instanceof PortraitError)) throw err;
        rejected.push({ error: err, payload: line });
      }
      continue;
    }
    let item: unknown;
    try {
      item = JSON.parse(line);
    } catch (err: unknown) {
      rejected.push({ error: new InputError('PRT_INGEST_BAD_JSON', `${path} is not valid JSON: ${(err as Error).message}`, { path }), payload: line });
      continue;
    }
    accept(item, path, () => line);
  }
  return { events, rejected };
}
