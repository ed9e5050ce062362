export { loadConfig, defaultConfig, configSchema, environmentSettings } from './config.js';
export type { PortraitConfig } from './config.js';
