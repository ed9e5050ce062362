export type { ProfileReader, DeadLetterReader } from './ports.js';
export { createApp } from './app.js';
export type { AppOptions } from './app.js';
export type { ServingContext, RuleCountersView } from './context.js';
export { viewOf } from './routes/profiles.js';
export type { ProfileView } from './routes/profiles.js';
export { withTimeout } from './with-timeout.js';
