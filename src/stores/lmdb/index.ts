export { createLmdbStore, defaultLmdbStoreOptions } from './lmdb-store.js';
export type { LmdbStore, LmdbStoreOptions } from './lmdb-store.js';
