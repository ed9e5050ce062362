import type { Event } from '../engine/index.js';
import { InputError, showValue } from '../errors/index.js';
import { own, validateEvent, type EventCatalog, type EventLimits, type FieldType } from './catalog.js';

/**
 * How raw input that is not in canonical form (a CSV file, a foreign JSON
 * layout) maps to events: where the type, time, entity key and attributes
 * come from. Field types come from the event catalog.
 */
export interface InputSchema {
  /** Name used to select the schema (`?schema=` on ingest, `--schema` on replay). */
  name: string;
  format: 'csv' | 'json';
  /** CSV: column names in order. */
  columns?: string[];
  /** CSV: field delimiter. @defaultValue `,` */
  delimiter?: string;
  /** CSV: the first line is a header to skip. @defaultValue false */
  header?: boolean;
  /** Event type: a constant, or taken from a field and optionally renamed. */
  type: { field: string; map?: Record<string, string> } | { value: string };
  /** Event time: source field and its unit. */
  time: { field: string; unit: 'ms' | 's' | 'iso' };
  /** Source field holding the entity id. */
  key: string;
  /** Event attribute name → source field. */
  attributes: Record<string, string>;
}

/** Converts raw records to events through a schema, then validates them against the catalog. */
export class SchemaMapper {
  private readonly typeField: string | undefined;
  private readonly typeMap: Record<string, string> | undefined;
  private readonly typeValue: string | undefined;
  private readonly attributeNames: string[];
  private readonly attributeSources: string[];
  private readonly timeScale: number;

  constructor(readonly schema: InputSchema, private readonly catalog: EventCatalog, private readonly limits: EventLimits) {
    if ('value' in schema.type) this.typeValue = schema.type.value;
    else {
      this.typeField = schema.type.field;
      this.typeMap = schema.type.map;
    }
    this.attributeNames = Object.keys(schema.attributes);
    this.attributeSources = this.attributeNames.map((n) => schema.attributes[n]!);
    this.timeScale = schema.time.unit === 's' ? 1000 : 1;
  }

  /** Maps a record read as field name → raw value (CSV values are strings). */
  map(record: Record<string, unknown>, now: number, path: string): Event {
    let type: unknown = this.typeValue;
    if (this.typeField !== undefined) {
      type = record[this.typeField];
      if (this.typeMap !== undefined && typeof type === 'string') type = own(this.typeMap, type) ?? type;
    }
    const canonical: Record<string, unknown> = { type };
    const spec = typeof type === 'string' ? own(this.catalog.types, type) : undefined;
    canonical[this.catalog.entityKey] = record[this.schema.key];
    const rawTime = record[this.schema.time.field];
    canonical.time = this.convertTime(rawTime, `${path}/${this.schema.time.field}`);
    const names = this.attributeNames;
    const sources = this.attributeSources;
    for (let i = 0; i < names.length; i++) {
      const name = names[i]!;
      const value = record[sources[i]!];
      if (value === undefined || value === '') continue;
      const declared = spec === undefined ? undefined : own(spec.fields, name);
      canonical[name] = declared === undefined || typeof value !== 'string' ? value : coerce(value, declared);
    }
    return validateEvent(canonical, this.catalog, this.limits, now, path);
  }

  private convertTime(raw: unknown, path: string): unknown {
    if (raw === undefined || raw === '') {
      throw new InputError('PRT_INGEST_BAD_TIME', `${path} is empty; the schema "${this.schema.name}" reads the event time from it`, { path });
    }
    if (this.schema.time.unit === 'iso') return raw;
    const n = typeof raw === 'number' ? raw : Number(raw);
    if (!Number.isFinite(n)) {
      throw new InputError('PRT_INGEST_BAD_TIME', `${path} must be a number of ${this.schema.time.unit === 's' ? 'seconds' : 'milliseconds'}, got ${showValue(raw)}`, { path });
    }
    return n * this.timeScale;
  }

  /** Maps one CSV line (already split into fields). */
  mapRow(fields: string[], now: number, path: string): Event {
    const columns = this.schema.columns ?? [];
    if (fields.length !== columns.length) {
      throw new InputError('PRT_INGEST_BAD_CSV', `${path} has ${fields.length} columns; schema "${this.schema.name}" declares ${columns.length} (${columns.join(',')})`, { path });
    }
    const record: Record<string, string> = {};
    for (let i = 0; i < columns.length; i++) record[columns[i]!] = fields[i]!;
    return this.map(record, now, path);
  }
}

// CSV carries text; convert it to the declared type so validation sees the intended value.
function coerce(value: string, type: FieldType): unknown {
  switch (type) {
    case 'number':
    case 'integer': {
      const n = Number(value);
      return value.trim() === '' || Number.isNaN(n) ? value : n;
    }
    case 'boolean':
      if (value === 'true' || value === '1') return true;
      if (value === 'false' || value === '0') return false;
      return value;
    default:
      return value;
  }
}

/**
 * Splits one CSV line into fields (RFC 4180 quoting within the line; quoted
 * fields cannot span lines). Returns undefined when a quote is left open.
 */
export function splitCsvLine(line: string, delimiter = ','): string[] | undefined {
  if (line.indexOf('"') === -1) return line.split(delimiter);
  const fields: string[] = [];
  let i = 0;
  const n = line.length;
  for (;;) {
    if (line[i] === '"') {
      let value = '';
      i++;
      for (;;) {
        const q = line.indexOf('"', i);
        if (q === -1) return undefined;
        value += line.slice(i, q);
        if (line[q + 1] === '"') {
          value += '"';
          i = q + 2;
          continue;
        }
        i = q + 1;
        break;
      }
      fields.push(value);
      if (i >= n) return fields;
      if (line.startsWith(delimiter, i)) i += delimiter.length;
      else return undefined;
    } else {
      const d = line.indexOf(delimiter, i);
      if (d === -1) {
        fields.push(line.slice(i));
        return fields;
      }
      fields.push(line.slice(i, d));
      i = d + delimiter.length;
    }
  }
}

/** The schema of the public Taobao user-behaviour CSV (`user_id,item_id,category_id,behavior,timestamp`). */
export const taobaoSchema: InputSchema = Object.freeze({
  name: 'taobao-user-behavior',
  format: 'csv',
  columns: ['user_id', 'item_id', 'category_id', 'behavior', 'timestamp'],
  type: { field: 'behavior' },
  time: { field: 'timestamp', unit: 's' },
  key: 'user_id',
  attributes: { item_id: 'item_id', category_id: 'category_id' },
}) as InputSchema;

/** The schema of the ad-click CSV (`user_id,ad_id,province,city,timestamp`), as event type `ad_click`. */
export const adClickSchema: InputSchema = Object.freeze({
  name: 'ad-click-log',
  format: 'csv',
  columns: ['user_id', 'ad_id', 'province', 'city', 'timestamp'],
  type: { value: 'ad_click' },
  time: { field: 'timestamp', unit: 's' },
  key: 'user_id',
  attributes: { ad_id: 'ad_id', province: 'province', city: 'city' },
}) as InputSchema;
