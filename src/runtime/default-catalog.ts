import { demoCatalog, type EventCatalog } from '../ingest/index.js';

/**
 * The catalog the embedded system starts with: the fintech/e-commerce demo
 * types, the public Taobao behaviour types (`pv`, `cart`, `fav`, `buy`) and the
 * public ad-click log (`ad_click`).
 */
export const defaultCatalog: EventCatalog = Object.freeze({
  ...demoCatalog,
  types: Object.freeze({
    ...demoCatalog.types,
    ad_click: Object.freeze({
      description: 'A click on an ad (public ad-click log).',
      fields: Object.freeze({ ad_id: 'string', province: 'string', city: 'string' }),
      required: ['ad_id'],
    }),
  }),
}) as EventCatalog;
