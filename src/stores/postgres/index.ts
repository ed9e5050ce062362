export { createPostgresDefinitionStore } from './postgres-definition-store.js';
export type { PostgresDefinitionStoreOptions } from './postgres-definition-store.js';
