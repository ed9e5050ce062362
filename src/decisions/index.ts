export { DecisionHub } from './decision-hub.js';
export type { DecisionStore, DecisionOutput, DecisionOutputStats } from './decision-hub.js';
export { createNdjsonFileOutput } from './ndjson-file-output.js';
export { createWebhookOutput } from './webhook-output.js';
export type { WebhookOutputOptions } from './webhook-output.js';
