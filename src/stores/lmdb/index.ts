export { createLmdbStore, defaultLmdbStoreOptions } from './lmdb-store.js';
export type { LmdbStore, LmdbStoreOptions, LmdbProfiles } from './lmdb-store.js';
export { openLmdbDecisionStore } from './decision-store.js';
export type { LmdbDecisionStore, LmdbDecisionStoreOptions, DecisionQuery } from './decision-store.js';
export { DECISION_WRITE_DELAY_MS } from './decision-store.js';
