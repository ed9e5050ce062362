export { createMetrics } from './metrics.js';
export type { Metrics, MetricSources } from './metrics.js';
