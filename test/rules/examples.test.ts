import { readFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { validateRuleDocument } from '../../src/definitions/index.js';
import type { Decision } from '../../src/engine/index.js';
import { defaultCatalog } from '../../src/runtime/default-catalog.js';
import { cleanup } from '../helpers/system.js';
import { ev, MINUTE, openRules, SECOND, summary, T0 } from './harness.js';

afterEach(cleanup);

/** The JSON block under `<!-- example: name -->` in docs/rules.md: the docs' examples are what these tests run. */
function example(name: string): Record<string, unknown> {
  const text = readFileSync(new URL('../../docs/rules.md', import.meta.url), 'utf8');
  const match = new RegExp(`<!-- example: ${name} -->\\s*\`\`\`json\\n([\\s\\S]*?)\\n\`\`\``).exec(text);
  if (match === null) throw new Error(`docs/rules.md has no example "${name}"`);
  return JSON.parse(match[1]!) as Record<string, unknown>;
}

describe('docs/rules.md', () => {
  it('every rule document and condition it shows is valid', () => {
    const text = readFileSync(new URL('../../docs/rules.md', import.meta.url), 'utf8');
    const blocks = [...text.matchAll(/```json\n([\s\S]*?)\n```/g)].map((m) => m[1]!);
    let checked = 0;
    for (const block of blocks) {
      let doc: Record<string, unknown>;
      try {
        doc = JSON.parse(block) as Record<string, unknown>;
      } catch {
        continue; // the decision example elides fields with …
      }
      const rule = 'condition' in doc ? doc : { id: 'snippet', key: ['user_id'], condition: doc };
      expect(() => validateRuleDocument(rule, defaultCatalog), block).not.toThrow();
      checked++;
    }
    expect(checked).toBeGreaterThanOrEqual(8);
  });
});

describe('the worked examples of docs/rules.md', () => {
  it('coupon abuse (羊毛党): the fifth claim from one device, by five users, is answered with a decision', async () => {
    const rs = await openRules({ partitions: 4 });
    const rule = example('coupon_abuse');
    await rs.addRule(rule);
    const claim = (user: string, at: number, coupon: string, device: string) => ev('coupon_claim', user, at, { campaign_id: 'spring', coupon_id: coupon, device_id: device });
    const decide = async (event: ReturnType<typeof claim>): Promise<Decision[]> => {
      const res = await rs.app.inject({ method: 'POST', url: '/v1/decide', payload: event });
      expect(res.statusCode, res.body).toBe(200);
      return res.json().decisions;
    };
    const users = ['ua', 'ub', 'uc', 'ud', 'ue'];
    for (const [i, user] of users.slice(0, 4).entries()) expect(await decide(claim(user, i * MINUTE, `k${i}`, 'dev1'))).toEqual([]);
    // Another device with five claims of one coupon: many claims, but not of three different coupons.
    for (const [i, user] of users.entries()) await rs.send(claim(user, i * MINUTE + SECOND, 'k0', 'dev2'));
    const fifth = await decide(claim('ue', 4 * MINUTE, 'k4', 'dev1'));
    expect(fifth.map((d) => ({ rule: d.ruleId, version: d.version, key: d.key, entity: d.entity, outcome: d.outcome, at: d.time - T0, aggregates: d.aggregates }))).toEqual([
      { rule: 'coupon_abuse_device', version: 1, key: { device_id: 'dev1' }, entity: 'ue', outcome: 'match', at: 4 * MINUTE, aggregates: [5, 5] },
    ]);
    expect((await rs.decisions('coupon_abuse_device')).map((d) => d.id)).toEqual([fifth[0]!.id]);
  });

  it('failed logins: five within two minutes lock the account (one decision per five with skipPastLastEvent)', async () => {
    const rs = await openRules();
    await rs.addRule(example('failed_logins'));
    const fail = (user: string, at: number) => ev('login', user, at, { success: false, device_id: 'd1' });
    await rs.send(...[0, 20, 40, 60, 80].map((s) => fail('locked', s * SECOND)));
    await rs.send(...[0, 45, 90, 135, 180].map((s) => fail('slow', 2 * MINUTE + s * SECOND)));
    await rs.send(...[0, 10, 20, 30, 40, 50, 60, 70, 80, 90].map((s) => fail('ten', 6 * MINUTE + s * SECOND)));
    const decided = await rs.decisions('failed_logins');
    expect(decided.map(summary)).toEqual([
      { rule: 'failed_logins', version: 1, key: { user_id: 'locked' }, outcome: 'match', trigger: 'event', at: 80 * SECOND, matched: { fail: [0, 20, 40, 60, 80].map((s) => s * SECOND) } },
      { rule: 'failed_logins', version: 1, key: { user_id: 'ten' }, outcome: 'match', trigger: 'event', at: 6 * MINUTE + 40 * SECOND, matched: { fail: [0, 10, 20, 30, 40].map((s) => 6 * MINUTE + s * SECOND) } },
      { rule: 'failed_logins', version: 1, key: { user_id: 'ten' }, outcome: 'match', trigger: 'event', at: 6 * MINUTE + 90 * SECOND, matched: { fail: [50, 60, 70, 80, 90].map((s) => 6 * MINUTE + s * SECOND) } },
    ]);
    const profile = await rs.app.inject({ method: 'GET', url: '/v1/profiles/locked' });
    expect(profile.json().tags.login_locked).toMatchObject({ value: true, version: 1 });
    expect((await rs.app.inject({ method: 'GET', url: '/v1/profiles/slow' })).statusCode).toBe(404);
  });

  it('orders created and not paid within 15 minutes: decided by timer, keyed by order', async () => {
    const rs = await openRules({ partitions: 4 });
    await rs.addRule(example('unpaid_order'));
    const order = (user: string, id: string, at: number) => ev('order_created', user, at, { order_id: id, amount: 199, item_count: 2 });
    const payment = (user: string, id: string, at: number, success: boolean) => ev('payment', user, at, { order_id: id, amount: 199, success });
    await rs.send(order('u1', 'o1', 0), order('u2', 'o2', 1 * MINUTE), order('u3', 'o3', 2 * MINUTE));
    await rs.send(payment('u3', 'o3', 3 * MINUTE, false), payment('u1', 'o1', 5 * MINUTE, true));
    await rs.advanceTo(17 * MINUTE + 5 * SECOND);
    const decided = await rs.decisions('order_unpaid_15m');
    expect(decided.map(summary)).toEqual([
      { rule: 'order_unpaid_15m', version: 1, key: { order_id: 'o2' }, outcome: 'match', trigger: 'timer', at: 16 * MINUTE, matched: { created: [1 * MINUTE] } },
      { rule: 'order_unpaid_15m', version: 1, key: { order_id: 'o3' }, outcome: 'match', trigger: 'timer', at: 17 * MINUTE, matched: { created: [2 * MINUTE] } },
    ]);
    expect(decided.map((d) => [d.entity, d.matched!.created![0]!.key])).toEqual([
      [null, 'u2'],
      [null, 'u3'],
    ]);
  });

  it('cart without buying: only the user aged 25–35 in Shanghai who did not order within 30 minutes gets the coupon', async () => {
    const rs = await openRules();
    await rs.addRule(example('cart_no_buy'));
    const people: Record<string, Record<string, string | number>> = {
      sh30: { age: 30, city: 'Shanghai' },
      bj30: { age: 30, city: 'Beijing' },
      sh50: { age: 50, city: 'Shanghai' },
      buyer: { age: 28, city: 'Shanghai' },
    };
    for (const [id, attrs] of Object.entries(people)) {
      const res = await rs.app.inject({ method: 'PATCH', url: `/v1/profiles/${id}/attributes`, payload: attrs });
      expect(res.statusCode, res.body).toBe(200);
    }
    const cart = (user: string, at: number) => ev('add_to_cart', user, at, { item_id: 'i1', price: 99, quantity: 1 });
    // "anonymous" has no attributes at all: the guarded expression is false, not an error.
    await rs.send(cart('sh30', 0), cart('bj30', 0), cart('sh50', 0), cart('buyer', 0), cart('anonymous', 0));
    await rs.send(ev('order_created', 'buyer', 10 * MINUTE, { order_id: 'o9', amount: 99, item_count: 1 }));
    await rs.advanceTo(30 * MINUTE + 5 * SECOND);
    const decided = await rs.decisions('cart_no_buy_sh_25_35');
    expect(decided.map(summary)).toEqual([
      { rule: 'cart_no_buy_sh_25_35', version: 1, key: { user_id: 'sh30' }, outcome: 'match', trigger: 'timer', at: 30 * MINUTE, matched: { cart: [0] } },
    ]);
    const profile = await rs.app.inject({ method: 'GET', url: '/v1/profiles/sh30' });
    expect(profile.json().tags.cart30_coupon).toMatchObject({ value: 'offered', version: 1, updatedAt: new Date(T0 + 30 * MINUTE).toISOString() });
    expect((await rs.app.inject({ method: 'GET', url: '/v1/profiles/bj30' })).json().tags.cart30_coupon).toBeUndefined();
    // Evaluated on the four absences only (an event alone cannot make a sequence condition true);
    // no error from the profile without attributes.
    expect((await rs.rule('cart_no_buy_sh_25_35')).runtime).toMatchObject({ state: 'running', counters: { errors: 0, evaluations: 4, decisions: 1 } });
  });
});
