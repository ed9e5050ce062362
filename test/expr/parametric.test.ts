import { describe, expect, it } from 'vitest';
import { compileExpression } from '../../src/expr/index.js';

const form = (source: string) => compileExpression(source, 'pattern', '/where').parametric;

describe('the parametric form of an expression', () => {
  it('takes out the one number a comparison answers monotonically in', () => {
    expect(form('event.attrs.amount >= 500').parameter).toEqual({ value: 500, type: 'int' });
    expect(form('event.attrs.amount > matched.first[0].attrs.amount + 12').parameter).toEqual({ value: 12, type: 'int' });
    expect(form('!(event.attrs.price <= -1.5) && event.attrs.ok == true').parameter).toEqual({ value: 1.5, type: 'double' });
    expect(form('3 - event.attrs.x < event.attrs.y').parameter).toEqual({ value: 3, type: 'int' });
    expect(form('event.attrs.tags.size() > 2').parameter).toEqual({ value: 2, type: 'int' });
  });

  it('expressions that differ only in that number have one template; other differences, other templates', () => {
    expect(form('event.attrs.amount >= 500').template).toBe(form('event.attrs.amount   >=   800').template);
    expect(form('event.attrs.amount >= 500').template).not.toBe(form('event.attrs.amount >= 500.0').template); // int and double differ in CEL
    expect(form('event.attrs.amount >= 500').template).not.toBe(form('event.attrs.price >= 500').template);
    expect(form('event.attrs.amount >= 500').template).not.toBe(form('event.attrs.amount > 500').template);
    // The index of matched.first[0] is not a parameter: it stays in the shape.
    expect(form('event.attrs.amount > matched.first[0].attrs.amount + 12').template).not.toBe(form('event.attrs.amount > matched.first[1].attrs.amount + 12').template);
  });

  it('has no parameter where the answer need not be monotone in a number, or where there are several', () => {
    for (const source of [
      'event.attrs.amount == 500', // equality
      'event.attrs.amount * 2 > 500 * event.attrs.rate', // products
      'event.attrs.amount >= 500 && event.attrs.amount < 900', // two numbers
      'event.attrs.level in [1, 2]', // a list
      'event.attrs.ok == true',
      'event.attrs.amount >= 9007199254740993', // not exact as a JS number
    ]) {
      expect(form(source).parameter, source).toBeNull();
      expect(form(source).template, source).toBe(form(source).exact);
    }
  });
});
