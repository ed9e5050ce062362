import type { AttrValue, Event } from './event.js';

/** Separates the values of a composite rule key (ASCII unit separator). */
export const KEY_SEPARATOR = '\u001f';

/**
 * The rule key of an event as one string: the values of `keyFields` (the
 * entity key field read from `Event.key`) joined by {@link KEY_SEPARATOR}, or
 * undefined when the event lacks one of them. Ingest uses it to route events
 * to the partition owning the key, the engine to find the key's state.
 */
export function ruleKeyOf(event: Event, keyFields: ReadonlyArray<string>, entityKeyField: string): string | undefined {
  if (keyFields.length === 1) {
    const field = keyFields[0]!;
    if (field === entityKeyField) return event.key;
    return keyPart(event.attrs[field]);
  }
  let out = '';
  for (let i = 0; i < keyFields.length; i++) {
    const field = keyFields[i]!;
    const part = field === entityKeyField ? event.key : keyPart(event.attrs[field]);
    if (part === undefined) return undefined;
    out = i === 0 ? part : out + KEY_SEPARATOR + part;
  }
  return out;
}

/** The rule key as a map of field → value, for decisions and predicates. */
export function ruleKeyValues(event: Event, keyFields: ReadonlyArray<string>, entityKeyField: string): Record<string, AttrValue> {
  const out: Record<string, AttrValue> = {};
  for (const field of keyFields) out[field] = field === entityKeyField ? event.key : (event.attrs[field] ?? null);
  return out;
}

/** Splits a key made by {@link ruleKeyOf} back into its field values (as strings). */
export function splitRuleKey(key: string, keyFields: ReadonlyArray<string>): Record<string, AttrValue> {
  const out: Record<string, AttrValue> = {};
  if (keyFields.length === 1) {
    out[keyFields[0]!] = key;
    return out;
  }
  const parts = key.split(KEY_SEPARATOR);
  for (let i = 0; i < keyFields.length; i++) out[keyFields[i]!] = parts[i] ?? null;
  return out;
}

function keyPart(value: AttrValue | undefined): string | undefined {
  if (value === undefined || value === null) return undefined;
  return typeof value === 'string' ? value : String(value);
}
