import { describe, expect, it } from 'vitest';
import type { Event } from '../../src/engine/index.js';
import { decodeRuleKeyState, encodeRuleKeyState } from '../../src/engine/internal/rule-snapshot.js';

describe('rule key state codec', () => {
  it('keeps buffered events whole, an attribute named __proto__ included', () => {
    const attrs: Record<string, string | number | boolean | null> = { amount: 12.5, ok: true, note: null };
    Object.defineProperty(attrs, '__proto__', { value: 'p', enumerable: true, writable: true, configurable: true });
    const event: Event = { type: 'login', time: 1_700_000_000_000, key: 'u1', attrs };
    const { buffer, lastTime } = decodeRuleKeyState(encodeRuleKeyState({ slot: 0, lastTime: 5, buffer: [event], aggs: [], rules: [], seqs: [] }));
    expect(lastTime).toBe(5);
    expect(buffer).toHaveLength(1);
    const back = buffer![0]!;
    expect(Object.getPrototypeOf(back.attrs)).toBe(Object.prototype);
    expect(Object.entries(back.attrs)).toEqual(Object.entries(attrs));
    expect(back).toMatchObject({ type: 'login', time: event.time, key: 'u1' });
  });
});
