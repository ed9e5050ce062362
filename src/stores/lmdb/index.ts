export { createLmdbStore, defaultLmdbStoreOptions } from './lmdb-store.js';
export type { LmdbStore, LmdbStoreOptions, LmdbProfiles } from './lmdb-store.js';
export { openLmdbDecisionStore } from './decision-store.js';
export type { LmdbDecisionStore, DecisionQuery } from './decision-store.js';
