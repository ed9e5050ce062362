export { createSqlDefinitionStore, definitionSchemaSql, DEFINITIONS_CHANNEL } from './sql-definition-store.js';
export type { SqlClient, SqlDefinitionStoreOptions } from './sql-definition-store.js';
