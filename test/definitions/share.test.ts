import { describe, expect, it } from 'vitest';
import { compileRule } from '../../src/definitions/index.js';
import { defaultCatalog } from '../../src/runtime/default-catalog.js';

// Which rules the engine runs as one computation is decided when a rule compiles: these pin the
// shapes that must share (they differ in one number or in their window) and those that must not.

const compile = (doc: object) => compileRule(doc, 1, defaultCatalog);

const unpaid = (amount: number, within: string, extra = '') =>
  compile({
    id: `unpaid_${amount}_${within}`,
    key: ['user_id'],
    condition: {
      sequence: {
        pattern: [
          { name: 'order', eventTypes: ['order_created'], where: `event.attrs.amount >= ${amount}${extra}` },
          { name: 'paid', eventTypes: ['payment'], where: 'event.attrs.order_id == matched.order[0].attrs.order_id' },
        ],
        within,
      },
      on: 'timeout',
    },
  }).sequences[0]!.share!;

const bigger = (delta: number) =>
  compile({
    id: `bigger_${delta}`,
    key: ['user_id'],
    condition: { sequence: { pattern: [{ name: 'first', eventTypes: ['transfer'] }, { name: 'bigger', eventTypes: ['transfer'], where: `event.attrs.amount > matched.first[0].attrs.amount + ${delta}` }], within: '30m' } },
  }).sequences[0]!.share!;

const fails = (times: number, within: string, skip = 'skipPastLastEvent') =>
  compile({ id: `fails_${times}`, key: ['user_id'], condition: { sequence: { pattern: [{ name: 'fail', eventTypes: ['login'], where: 'event.attrs.success == false', times }], within, skip } } }).sequences[0]!.share!;

const spend = (op: string, value: number, window = '10m') =>
  compile({ id: `spend_${value}`, key: ['user_id'], condition: { aggregate: { fn: 'sum', field: 'amount', eventTypes: ['payment'], window: { type: 'sliding', size: window, slide: '1m' } }, op, value } }).conditionShare![0]!;

describe('sequences that share one computation', () => {
  it('share when they differ in one number of a condition and in their window', () => {
    const a = unpaid(100, '15m');
    const b = unpaid(250, '30m');
    expect(a.key).toBe(b.key);
    expect([a.slot, a.parameter, b.parameter]).toEqual([0, 100, 250]);
    expect(bigger(10).key).toBe(bigger(75).key);
    expect([bigger(10).slot, bigger(75).parameter]).toEqual([1, 75]);
    expect(fails(3, '2m').key).toBe(fails(3, '5m').key);
    expect(fails(3, '2m').slot).toBe(-1);
  });

  it('do not share when anything else differs', () => {
    expect(unpaid(100, '15m').key).not.toBe(unpaid(100, '15m', ' && event.attrs.item_count > 1').key);
    expect(unpaid(100, '15m').key).not.toBe(bigger(100).key);
    expect(fails(3, '2m').key).not.toBe(fails(4, '2m').key); // a repetition count is part of the shape
    expect(fails(3, '2m').key).not.toBe(fails(3, '2m', 'skipToNext').key);
    expect(fails(3, '2m').key).not.toBe(fails(3, '2m', 'noSkip').key);
  });
});

describe('conditions evaluated together', () => {
  it('share when an aggregate threshold or an expression number differs', () => {
    expect(spend('>=', 500).key).toBe(spend('>=', 900).key);
    expect([spend('>=', 500).parameter, spend('>=', 900).parameter]).toEqual([500, 900]);
    const big = (n: number) => compile({ id: `big_${n}`, key: ['user_id'], trigger: { eventTypes: ['transfer'] }, condition: { expr: `event.attrs.amount > ${n}` } }).conditionShare![0]!;
    expect(big(1).key).toBe(big(2).key);
  });

  it('with several numbers, offer one option per number, the others part of the shape', () => {
    const two = (a: number, b: number) =>
      compile({ id: `two_${a}_${b}`, key: ['user_id'], trigger: { eventTypes: ['transfer'] }, condition: { all: [{ expr: `event.attrs.amount > ${a}` }, { aggregate: { fn: 'count', eventTypes: ['transfer'], window: { type: 'sliding', size: '1h', slide: '5m' } }, op: '>=', value: b }] } }).conditionShare!;
    expect(two(1, 2).map((o) => o.parameter)).toEqual([1, 2]);
    // The first number differs: they share by the first option only.
    expect(two(1, 2)[0]!.key).toBe(two(5, 2)[0]!.key);
    expect(two(1, 2)[1]!.key).not.toBe(two(5, 2)[1]!.key);
    // The second differs: by the second only.
    expect(two(1, 2)[1]!.key).toBe(two(1, 3)[1]!.key);
    expect(two(1, 2)[0]!.key).not.toBe(two(1, 3)[0]!.key);
    // The options of one condition never meet each other.
    expect(two(1, 2)[0]!.key).not.toBe(two(1, 2)[1]!.key);
  });

  it('do not share across operators, windows or equalities, and not with sequences', () => {
    expect(spend('>=', 500).key).not.toBe(spend('>', 500).key);
    expect(spend('>=', 500).key).not.toBe(spend('>=', 500, '20m').key);
    expect(spend('==', 500).key).not.toBe(spend('==', 600).key);
    expect(compile({ id: 's', key: ['user_id'], condition: { sequence: { pattern: [{ name: 'a', eventTypes: ['login'] }] } } }).conditionShare).toBeNull();
  });
});
