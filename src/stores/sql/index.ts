export { createSqlDefinitionStore, definitionSchemaSql } from './sql-definition-store.js';
export type { SqlClient, SqlDefinitionStoreOptions } from './sql-definition-store.js';
