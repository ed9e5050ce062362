/** A scalar attribute value carried by an event or stored on a profile. */
export type AttrValue = string | number | boolean | null;

/**
 * One fact about an entity at an event time: the unit the engine consumes.
 * Every event has this one shape so the hot path stays monomorphic.
 */
export interface Event {
  /** Event type, e.g. `login`, `payment`, `pv`. Types starting with `$` are control records. */
  type: string;
  /** Event time, epoch milliseconds. */
  time: number;
  /** The entity (profile) id the event belongs to, e.g. the user id. */
  key: string;
  /** All other fields: secondary keys (device, shop, order…) and attributes. */
  attrs: Record<string, AttrValue>;
}

/**
 * Control record types. They travel in the log beside events so that a replay
 * of the log reproduces time progress, attribute changes and definition
 * changes at exactly the same positions as the original run.
 */
export const ControlType = {
  /**
   * Time progress: `time` is the source's stream time (the highest event time
   * accepted so far across all partitions); `attrs.now` is the wall-clock time
   * of the writer, used as processing time.
   */
  Mark: '$mark',
  /** Static attribute upsert for entity `key`: `attrs` holds the new values; `null` removes one. */
  Attributes: '$attributes',
  /** Definition change: `attrs.revision` is the definition-set revision to apply from here on. */
  Definitions: '$definitions',
  /**
   * Replay progress: `key` names the source (e.g. a file) and `attrs.position` the
   * last input position whose events precede this record in the partition. Lets a
   * replay resume after a crash without losing or repeating events.
   */
  Source: '$source',
} as const;

/** Anything stored in the event log: an event or a control record (same shape). */
export type LogRecord = Event;

/**
 * Sets an attribute as an own property, also one named `__proto__` (which a
 * plain assignment takes as the object's prototype and drops), so whoever
 * reads an event back sees exactly the attributes that were written.
 */
export function setAttr(attrs: Record<string, AttrValue>, name: string, value: AttrValue): void {
  if (name === '__proto__') Object.defineProperty(attrs, name, { value, enumerable: true, writable: true, configurable: true });
  else attrs[name] = value;
}

/** True when the record is a control record rather than a user event. */
export function isControl(record: LogRecord): boolean {
  return record.type.charCodeAt(0) === 36; // '$'
}
