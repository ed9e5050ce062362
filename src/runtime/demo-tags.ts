import type { TagDocument } from '../definitions/index.js';

/**
 * Tags the demo puts online on first start, over the demo event stream:
 * sliding, tumbling and lifetime statistics and rule tags over them.
 */
export const demoTags: ReadonlyArray<TagDocument> = Object.freeze([
  { id: 'page_views_1h', kind: 'statistic', description: 'Page views in the last hour.', owner: 'demo', eventTypes: ['page_view'], aggregate: 'count', window: { type: 'sliding', size: '1h', slide: '1m' } },
  { id: 'clicks_1h', kind: 'statistic', description: 'Clicks in the last hour.', owner: 'demo', eventTypes: ['click'], aggregate: 'count', window: { type: 'sliding', size: '1h', slide: '1m' } },
  { id: 'carts_today', kind: 'statistic', description: 'Items put in the cart today (UTC day).', owner: 'demo', eventTypes: ['add_to_cart'], aggregate: 'sum', field: 'quantity', window: { type: 'tumbling', size: '1d' } },
  { id: 'spend_30d', kind: 'statistic', description: 'Successful payments in the last 30 days.', owner: 'demo', eventTypes: ['payment'], filter: 'attrs.success == true', aggregate: 'sum', field: 'amount', window: { type: 'sliding', size: '30d', slide: '1d' } },
  { id: 'cumulative_spend', kind: 'statistic', description: 'All successful payments since the tag went online.', owner: 'demo', eventTypes: ['payment'], filter: 'attrs.success == true', aggregate: 'sum', field: 'amount', window: { type: 'lifetime' } },
  { id: 'avg_order_amount', kind: 'statistic', description: 'Average order amount.', owner: 'demo', eventTypes: ['order_created'], aggregate: 'avg', field: 'amount', window: { type: 'lifetime' } },
  { id: 'first_purchase_at', kind: 'statistic', description: 'Time of the first successful payment.', owner: 'demo', eventTypes: ['payment'], filter: 'attrs.success == true', aggregate: 'first', window: { type: 'lifetime' } },
  { id: 'last_purchase_at', kind: 'statistic', description: 'Time of the latest successful payment.', owner: 'demo', eventTypes: ['payment'], filter: 'attrs.success == true', aggregate: 'last', window: { type: 'lifetime' } },
  { id: 'failed_logins_10m', kind: 'statistic', description: 'Failed logins in the last 10 minutes.', owner: 'risk', eventTypes: ['login'], filter: 'attrs.success == false', aggregate: 'count', window: { type: 'sliding', size: '10m', slide: '1m' } },
  { id: 'devices_7d', kind: 'statistic', description: 'Distinct devices logged in from in 7 days.', owner: 'risk', eventTypes: ['login'], aggregate: 'distinct', field: 'device_id', window: { type: 'sliding', size: '7d', slide: '1h' } },
  { id: 'max_transfer_24h', kind: 'statistic', description: 'Largest transfer in the last 24 hours.', owner: 'risk', eventTypes: ['transfer'], aggregate: 'max', field: 'amount', window: { type: 'sliding', size: '24h', slide: '1h' } },
  { id: 'last_login_channel', kind: 'statistic', description: 'Channel of the latest login.', owner: 'demo', eventTypes: ['login'], aggregate: 'latest', field: 'channel', window: { type: 'lifetime' } },
  { id: 'high_value', kind: 'rule', description: 'Spent over 1000 in 30 days (and is at least 25 when the age is known).', owner: 'marketing', condition: 'tags.spend_30d > 1000 && (!has(attrs.age) || attrs.age >= 25)' },
  { id: 'risky_login', kind: 'rule', description: 'Three or more failed logins in 10 minutes, or logins from more than 3 devices in 7 days.', owner: 'risk', condition: 'tags.failed_logins_10m >= 3 || tags.devices_7d > 3' },
  { id: 'segment', kind: 'rule', description: 'Marketing segment.', owner: 'marketing', condition: "has(tags.high_value) && tags.high_value ? 'vip' : (tags.clicks_1h + tags.page_views_1h >= 5 ? 'active' : 'casual')" },
] as TagDocument[]);
