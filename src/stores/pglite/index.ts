export { createPgliteDefinitionStore, openPgliteDatabase } from './pglite-definition-store.js';
export type { PgliteDefinitionStoreOptions } from './pglite-definition-store.js';
