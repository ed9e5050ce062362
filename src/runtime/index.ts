export { openEmbeddedSystem } from './embedded-system.js';
export type { EmbeddedSystem, EmbeddedSystemOptions } from './embedded-system.js';
export { startServer, servingContext, installDemoTags, packageVersion } from './server.js';
export type { RunningServer } from './server.js';
export { defaultCatalog } from './default-catalog.js';
export { demoTags } from './demo-tags.js';
export { BATCH_NODE_FLAGS, SERVER_NODE_FLAGS, missingServerNodeFlags } from './node-flags.js';
