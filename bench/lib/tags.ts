import type { StatisticTagDocument } from '../../src/definitions/index.js';
import type { EmbeddedSystem } from '../../src/runtime/embedded-system.js';

type Window = StatisticTagDocument['window'];
const lifetime: Window = { type: 'lifetime' };
const tumbling = (size: string): Window => ({ type: 'tumbling', size });
const sliding = (size: string, slide: string): Window => ({ type: 'sliding', size, slide });
const ALL = ['pv', 'cart', 'fav', 'buy'];

function tag(id: string, eventTypes: string[], aggregate: StatisticTagDocument['aggregate'], window: Window, extra: Partial<StatisticTagDocument> = {}): StatisticTagDocument {
  return { id, kind: 'statistic', owner: 'bench', eventTypes, aggregate, window, ...extra };
}

/**
 * The 50 statistic tags of the benchmarks, over the Taobao behaviour types
 * (`pv` 89 %, `cart` 5.5 %, `fav` 3 %, `buy` 2.2 % of events): 12 count, 8 sum,
 * 2 avg, 4 min, 4 max, 8 distinct, 5 first, 7 last/latest; 16 sliding, 11
 * tumbling and 23 lifetime windows; 6 with a filter. A `pv` event reaches 20
 * of them, a `buy` event 19.
 */
export const benchTags: ReadonlyArray<StatisticTagDocument> = Object.freeze([
  // count (12)
  tag('pv_count_1h', ['pv'], 'count', sliding('1h', '5m')),
  tag('pv_count_10m', ['pv'], 'count', sliding('10m', '1m')),
  tag('pv_count_1d', ['pv'], 'count', tumbling('1d')),
  tag('pv_count_total', ['pv'], 'count', lifetime),
  tag('cart_count_1h', ['cart'], 'count', sliding('1h', '5m')),
  tag('cart_count_1d', ['cart'], 'count', tumbling('1d')),
  tag('fav_count_total', ['fav'], 'count', lifetime),
  tag('buy_count_7d', ['buy'], 'count', sliding('7d', '1d')),
  tag('buy_count_total', ['buy'], 'count', lifetime),
  tag('actions_count_1h', ALL, 'count', sliding('1h', '10m')),
  tag('pv_expensive_count_1d', ['pv'], 'count', tumbling('1d'), { filter: 'attrs.price >= 500.0' }),
  tag('cart_cheap_count_total', ['cart'], 'count', lifetime, { filter: 'attrs.price < 20.0' }),
  // sum (8)
  tag('buy_spend_1d', ['buy'], 'sum', tumbling('1d'), { field: 'price' }),
  tag('buy_spend_7d', ['buy'], 'sum', sliding('7d', '1d'), { field: 'price' }),
  tag('buy_spend_total', ['buy'], 'sum', lifetime, { field: 'price' }),
  tag('cart_value_1h', ['cart'], 'sum', sliding('1h', '5m'), { field: 'price' }),
  tag('cart_value_total', ['cart'], 'sum', lifetime, { field: 'price' }),
  tag('pv_value_1h', ['pv'], 'sum', sliding('1h', '10m'), { field: 'price' }),
  tag('buy_big_spend_total', ['buy'], 'sum', lifetime, { field: 'price', filter: 'attrs.price >= 300.0' }),
  tag('fav_value_1d', ['fav'], 'sum', tumbling('1d'), { field: 'price' }),
  // avg (2)
  tag('buy_avg_price_total', ['buy'], 'avg', lifetime, { field: 'price' }),
  tag('pv_avg_price_1d', ['pv'], 'avg', tumbling('1d'), { field: 'price' }),
  // min (4)
  tag('buy_min_price_total', ['buy'], 'min', lifetime, { field: 'price' }),
  tag('pv_min_price_1h', ['pv'], 'min', sliding('1h', '5m'), { field: 'price' }),
  tag('cart_min_price_1d', ['cart'], 'min', tumbling('1d'), { field: 'price' }),
  tag('buy_min_price_7d', ['buy'], 'min', sliding('7d', '1d'), { field: 'price' }),
  // max (4)
  tag('buy_max_price_total', ['buy'], 'max', lifetime, { field: 'price' }),
  tag('pv_max_price_1h', ['pv'], 'max', sliding('1h', '5m'), { field: 'price' }),
  tag('cart_max_price_1d', ['cart'], 'max', tumbling('1d'), { field: 'price' }),
  tag('fav_max_price_total', ['fav'], 'max', lifetime, { field: 'price' }),
  // distinct (8)
  tag('pv_items_1h', ['pv'], 'distinct', sliding('1h', '5m'), { field: 'item_id' }),
  tag('pv_categories_1d', ['pv'], 'distinct', tumbling('1d'), { field: 'category_id' }),
  tag('pv_categories_total', ['pv'], 'distinct', lifetime, { field: 'category_id', maxDistinct: 1000 }),
  tag('buy_items_total', ['buy'], 'distinct', lifetime, { field: 'item_id', maxDistinct: 1000 }),
  tag('cart_items_1d', ['cart'], 'distinct', tumbling('1d'), { field: 'item_id' }),
  tag('fav_categories_total', ['fav'], 'distinct', lifetime, { field: 'category_id', maxDistinct: 1000 }),
  tag('actions_categories_10m', ALL, 'distinct', sliding('10m', '1m'), { field: 'category_id' }),
  tag('buy_categories_7d', ['buy'], 'distinct', sliding('7d', '1d'), { field: 'category_id' }),
  // first (5)
  tag('first_seen_at', ALL, 'first', lifetime),
  tag('first_buy_at', ['buy'], 'first', lifetime),
  tag('first_cart_at', ['cart'], 'first', lifetime),
  tag('first_pv_today_at', ['pv'], 'first', tumbling('1d')),
  tag('first_expensive_view_at', ['pv'], 'first', lifetime, { filter: 'attrs.price >= 500.0' }),
  // last / latest (7)
  tag('last_seen_at', ALL, 'last', lifetime),
  tag('last_buy_at', ['buy'], 'last', lifetime),
  tag('last_cart_at', ['cart'], 'last', lifetime, { filter: "attrs.category_id != '0'" }),
  tag('last_fav_7d_at', ['fav'], 'last', sliding('7d', '1d')),
  tag('last_pv_1h_at', ['pv'], 'last', sliding('1h', '5m'), { filter: 'attrs.price > 1.0' }),
  tag('last_viewed_category', ['pv'], 'latest', lifetime, { field: 'category_id' }),
  tag('last_bought_item', ['buy'], 'latest', lifetime, { field: 'item_id' }),
]);

if (benchTags.length !== 50) throw new Error(`bench tags: expected 50, got ${benchTags.length}`);

/** Creates the 50 bench tags and puts each online (one definition revision per tag, as an operator would). */
export async function installBenchTags(system: EmbeddedSystem): Promise<void> {
  for (const doc of benchTags) {
    await system.definitions.createTag(doc);
    await system.definitions.setTagStatus(doc.id, 'online');
  }
}
