import { setAttr, type AttrValue, type Event } from '../engine/index.js';
import { InputError, showValue, type ErrorCode } from '../errors/index.js';

/** Type of an event field. */
export type FieldType = 'string' | 'number' | 'integer' | 'boolean';

/** Declaration of one event type. */
export interface EventTypeSpec {
  description?: string;
  /** Declared fields and their types (besides type, time and the entity key). */
  fields: Record<string, FieldType>;
  /** Fields that must be present. */
  required?: string[];
}

/**
 * The event catalog: which event types exist, their fields, and which field
 * names the entity (profile) an event belongs to.
 */
export interface EventCatalog {
  /** Field holding the entity id, e.g. `user_id`. */
  entityKey: string;
  types: Record<string, EventTypeSpec>;
  /** What to do with fields a type does not declare. */
  additionalFields: 'keep' | 'drop' | 'reject';
}

/** Limits applied when validating events. */
export interface EventLimits {
  /** Events further than this ahead of the wall clock are refused, ms. */
  maxFutureMs: number;
  /** Longest accepted entity id, characters. */
  maxKeyLength: number;
  /** Longest accepted string attribute, characters. */
  maxStringLength: number;
}

/** Defaults of {@link EventLimits}. */
export const defaultEventLimits: EventLimits = Object.freeze({
  maxFutureMs: 3_600_000,
  maxKeyLength: 256,
  maxStringLength: 4_096,
});

/**
 * A catalog entry by name: own properties only, so input naming `constructor`,
 * `toString` or `__proto__` finds nothing rather than what every object inherits.
 */
export function own<T>(record: Readonly<Record<string, T>>, name: string): T | undefined {
  return Object.hasOwn(record, name) ? record[name] : undefined;
}

function fail(code: ErrorCode, message: string, path: string): never {
  throw new InputError(code, message, { path });
}

/**
 * Validates one event in canonical form — a flat JSON object with `type`,
 * `time` (epoch ms or ISO-8601; absent means `now`), the entity key field and
 * the declared attributes — and returns it as an engine {@link Event}.
 * Throws an {@link InputError} whose code and `path` name the field and reason.
 *
 * @param path JSON pointer of the event in its input, e.g. `/3` or `/line/12`.
 */
export function validateEvent(raw: unknown, catalog: EventCatalog, limits: EventLimits, now: number, path: string): Event {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    fail('PRT_INGEST_WRONG_TYPE', `event at ${path || '/'} must be a JSON object, got ${Array.isArray(raw) ? 'an array' : showValue(raw)}`, path);
  }
  const input = raw as Record<string, unknown>;
  const type = input.type;
  if (type === undefined || type === null) fail('PRT_INGEST_MISSING_FIELD', `event at ${path || '/'} has no "type"`, `${path}/type`);
  if (typeof type !== 'string') fail('PRT_INGEST_WRONG_TYPE', `${path}/type must be a string, got ${showValue(type)}`, `${path}/type`);
  const spec = own(catalog.types, type);
  if (spec === undefined) {
    fail('PRT_INGEST_UNKNOWN_EVENT_TYPE', `${path}/type ${showValue(type)} is not a declared event type (declared: ${Object.keys(catalog.types).slice(0, 12).join(', ')})`, `${path}/type`);
  }
  const keyField = catalog.entityKey;
  const rawKey = input[keyField];
  if (rawKey === undefined || rawKey === null || rawKey === '') {
    fail('PRT_INGEST_MISSING_FIELD', `event at ${path || '/'} has no entity key "${keyField}"`, `${path}/${keyField}`);
  }
  let key: string;
  if (typeof rawKey === 'string') key = rawKey;
  else if (typeof rawKey === 'number' && Number.isFinite(rawKey)) key = String(rawKey);
  else fail('PRT_INGEST_WRONG_TYPE', `${path}/${keyField} must be a string or number, got ${showValue(rawKey)}`, `${path}/${keyField}`);
  if (key.length > limits.maxKeyLength) {
    fail('PRT_INGEST_WRONG_TYPE', `${path}/${keyField} is ${key.length} characters long; the limit is ${limits.maxKeyLength}`, `${path}/${keyField}`);
  }
  const time = parseEventTime(input.time, now, `${path}/time`);
  if (time > now + limits.maxFutureMs) {
    fail(
      'PRT_INGEST_FUTURE_EVENT',
      `${path}/time ${new Date(time).toISOString()} is ${Math.round((time - now) / 1000)} s in the future; at most ${limits.maxFutureMs / 1000} s is allowed`,
      `${path}/time`,
    );
  }
  const attrs: Record<string, AttrValue> = {};
  const fields = spec.fields;
  for (const name in input) {
    if (name === 'type' || name === 'time' || name === keyField) continue;
    const value = input[name];
    const declared = own(fields, name);
    if (declared === undefined) {
      if (catalog.additionalFields === 'drop') continue;
      if (catalog.additionalFields === 'reject') {
        fail('PRT_INGEST_UNKNOWN_FIELD', `${path}/${name} is not a field of event type "${type}"`, `${path}/${name}`);
      }
      if (value !== null && typeof value === 'object') {
        fail('PRT_INGEST_WRONG_TYPE', `${path}/${name} must be a string, number, boolean or null, got ${showValue(value)}`, `${path}/${name}`);
      }
      setAttr(attrs, name, value as AttrValue);
      continue;
    }
    setAttr(attrs, name, value === null ? null : checkType(value, declared, `${path}/${name}`, limits));
  }
  const required = spec.required;
  if (required !== undefined) {
    for (const name of required) {
      if (attrs[name] === undefined || attrs[name] === null) {
        fail('PRT_INGEST_MISSING_FIELD', `event at ${path || '/'} of type "${type}" lacks required field "${name}"`, `${path}/${name}`);
      }
    }
  }
  return { type, time, key, attrs };
}

function checkType(value: unknown, type: FieldType, path: string, limits: EventLimits): AttrValue {
  switch (type) {
    case 'string':
      if (typeof value === 'string') {
        if (value.length > limits.maxStringLength) {
          fail('PRT_INGEST_WRONG_TYPE', `${path} is ${value.length} characters long; the limit is ${limits.maxStringLength}`, path);
        }
        return value;
      }
      if (typeof value === 'number' && Number.isFinite(value)) return String(value);
      break;
    case 'number':
      if (typeof value === 'number' && Number.isFinite(value)) return value;
      break;
    case 'integer':
      if (typeof value === 'number' && Number.isInteger(value)) return value;
      break;
    case 'boolean':
      if (typeof value === 'boolean') return value;
      break;
  }
  return fail('PRT_INGEST_WRONG_TYPE', `${path} must be ${article(type)} ${type}, got ${showValue(value)}`, path);
}

function article(type: FieldType): string {
  return type === 'integer' ? 'an' : 'a';
}

/** Parses an event time: epoch milliseconds or an ISO-8601 string; undefined means `now`. */
export function parseEventTime(value: unknown, now: number, path: string): number {
  if (value === undefined) return now;
  if (typeof value === 'number') {
    if (Number.isFinite(value) && value >= 0) return Math.floor(value);
  } else if (typeof value === 'string' && value.length >= 10) {
    const parsed = Date.parse(value);
    if (!Number.isNaN(parsed)) return parsed;
  }
  return fail('PRT_INGEST_BAD_TIME', `${path} must be epoch milliseconds or an ISO-8601 time, got ${showValue(value)}`, path);
}

/** Event type names may not start with `$` (reserved for control records). */
export function isValidEventTypeName(name: string): boolean {
  return /^[A-Za-z_][A-Za-z0-9_.:-]{0,127}$/.test(name);
}
