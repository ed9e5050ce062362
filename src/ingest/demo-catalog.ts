import type { EventCatalog, EventTypeSpec } from './catalog.js';

/** Freezes a catalog and everything inside it, keeping its mutable type for callers. */
function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    for (const inner of Object.values(value)) deepFreeze(inner);
    Object.freeze(value);
  }
  return value;
}

/** The Taobao user-behaviour dataset's four types: page view, add to cart, favourite, purchase. */
function taobaoTypes(): Record<string, EventTypeSpec> {
  const item = (description: string): EventTypeSpec => ({
    description,
    fields: { item_id: 'string', category_id: 'string' },
    required: ['item_id', 'category_id'],
  });
  return {
    pv: item('Taobao dataset: the user viewed an item detail page.'),
    cart: item('Taobao dataset: the user added an item to the cart.'),
    fav: item('Taobao dataset: the user marked an item as a favourite.'),
    buy: item('Taobao dataset: the user bought an item.'),
  };
}

/**
 * The event catalog of the demo stream: e-commerce, fintech and Taobao-dataset
 * event types, keyed by `user_id`. Undeclared fields are kept. This is the
 * catalog every event of `EventGenerator` (`generator.ts`) validates against.
 *
 * Amounts and prices are in currency units (two decimals); `term_months` is in
 * months and `overdue_days` in days.
 */
export const demoCatalog: EventCatalog = deepFreeze<EventCatalog>({
  entityKey: 'user_id',
  additionalFields: 'keep',
  types: {
    // --- e-commerce -------------------------------------------------------
    page_view: {
      description: 'A page was shown; item_id and category_id are null on pages without an item.',
      fields: { page: 'string', item_id: 'string', category_id: 'string', channel: 'string' },
      required: ['page', 'channel'],
    },
    click: {
      description: 'The user clicked an item.',
      fields: { item_id: 'string', category_id: 'string', channel: 'string' },
      required: ['item_id'],
    },
    add_to_cart: {
      description: 'The user put an item in the cart; price is per unit.',
      fields: { item_id: 'string', category_id: 'string', shop_id: 'string', price: 'number', quantity: 'integer' },
      required: ['item_id', 'price', 'quantity'],
    },
    order_created: {
      description: 'An order was placed; coupon_id is null when no coupon was used.',
      fields: { order_id: 'string', shop_id: 'string', amount: 'number', item_count: 'integer', coupon_id: 'string' },
      required: ['order_id', 'amount', 'item_count'],
    },
    payment: {
      description: 'A payment attempt for an order.',
      fields: { order_id: 'string', shop_id: 'string', amount: 'number', method: 'string', success: 'boolean' },
      required: ['order_id', 'amount', 'success'],
    },
    coupon_claim: {
      description: 'A coupon of a campaign was claimed from a device.',
      fields: { campaign_id: 'string', coupon_id: 'string', device_id: 'string' },
      required: ['campaign_id', 'coupon_id'],
    },
    refund: {
      description: 'An order was (partly) refunded.',
      fields: { order_id: 'string', amount: 'number' },
      required: ['order_id', 'amount'],
    },
    // --- fintech ----------------------------------------------------------
    login: {
      description: 'A login attempt.',
      fields: { device_id: 'string', ip: 'string', channel: 'string', success: 'boolean' },
      required: ['success'],
    },
    register: {
      description: 'The account was created.',
      fields: { device_id: 'string', channel: 'string', city: 'string' },
    },
    transfer: {
      description: 'Money sent to another account.',
      fields: { to_account: 'string', amount: 'number', device_id: 'string', channel: 'string' },
      required: ['to_account', 'amount'],
    },
    loan_application: {
      description: 'A loan was applied for.',
      fields: { loan_id: 'string', amount: 'number', term_months: 'integer' },
      required: ['loan_id', 'amount', 'term_months'],
    },
    loan_approved: {
      description: 'A loan application was approved, possibly for less than asked.',
      fields: { loan_id: 'string', amount: 'number' },
      required: ['loan_id', 'amount'],
    },
    repayment: {
      description: 'A loan instalment was repaid; overdue_days is 0 when paid on time.',
      fields: { loan_id: 'string', amount: 'number', overdue_days: 'integer' },
      required: ['loan_id', 'amount', 'overdue_days'],
    },
    // --- Taobao public dataset ---------------------------------------------
    ...taobaoTypes(),
  },
});

/**
 * Catalog of the public Taobao user-behaviour dataset: `pv`, `cart`, `fav` and
 * `buy`, each with `item_id` and `category_id`, keyed by `user_id`. Used by
 * `taobaoStyleEvents` benchmarks and Taobao CSV replays.
 */
export const taobaoCatalog: EventCatalog = deepFreeze<EventCatalog>({
  entityKey: 'user_id',
  additionalFields: 'keep',
  types: taobaoTypes(),
});
