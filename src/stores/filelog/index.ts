export { createFileRecordLog } from './file-record-log.js';
export type { FileRecordLog } from './file-record-log.js';
export { defaultFileRecordLogOptions } from './file-record-log-options.js';
export type { FileRecordLogOptions, FileRecordLogFsync } from './file-record-log-options.js';
export type { LogWriteObserver } from './partition-log.js';
