import { Packr } from 'msgpackr';
import type { LogRecord } from './event.js';

// Plain maps (no shared record structures) so a log written by one process
// decodes in any other without extra state.
const packr = new Packr({ useRecords: false, moreTypes: false, int64AsType: 'number' });

/** Encodes a log record to bytes for the event log. */
export function encodeRecord(record: LogRecord): Uint8Array {
  return packr.pack(record);
}

/** Decodes bytes written by {@link encodeRecord}. */
export function decodeRecord(bytes: Uint8Array): LogRecord {
  return packr.unpack(bytes) as LogRecord;
}
