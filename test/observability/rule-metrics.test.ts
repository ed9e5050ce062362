import { readFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { cleanup } from '../helpers/system.js';
import { ev, MINUTE, openRules, SECOND, type RuleSystem } from '../rules/harness.js';

afterEach(cleanup);

const failedLogin = (user: string, at: number) => ev('login', user, at, { success: false, device_id: 'd1' });
const transfer = (user: string, at: number, amount: number) => ev('transfer', user, at, { to_account: 'acc', amount });

/** The samples of one metric family in `GET /metrics`, by `rule` label. */
async function byRule(rs: RuleSystem, name: string): Promise<Record<string, number>> {
  const res = await rs.app.inject({ method: 'GET', url: '/metrics' });
  expect(res.statusCode).toBe(200);
  const out: Record<string, number> = {};
  for (const m of res.body.matchAll(new RegExp(`^${name}\\{rule="([^"]+)"\\} (\\S+)$`, 'gm'))) out[m[1]!] = Number(m[2]);
  return out;
}

const RULE_METRICS = {
  portrait_rule_decisions_total: 'counter',
  portrait_rule_errors_total: 'counter',
  portrait_rule_partial_matches_dropped_total: 'counter',
  portrait_rule_partial_matches_expired_total: 'counter',
  portrait_rule_keys: 'gauge',
};

describe('per-rule metrics', () => {
  it('are exposed with their types and documented in the Metrics table of docs/api.md', async () => {
    const rs = await openRules();
    const text = (await rs.app.inject({ method: 'GET', url: '/metrics' })).body;
    const exposed = Object.fromEntries([...text.matchAll(/^# TYPE (portrait_rule_\w+) (\w+)$/gm)].map((m) => [m[1]!, m[2]!]));
    expect(exposed).toEqual(RULE_METRICS);
    const api = readFileSync(new URL('../../docs/api.md', import.meta.url), 'utf8');
    const table = api.slice(api.indexOf('## Metrics'));
    for (const [name, type] of Object.entries(RULE_METRICS)) expect(table).toContain(`| \`${name}\` | ${type} | \`rule\` |`);
  });

  it('GET /metrics has each online rule’s decisions, run-time errors, dropped and expired partial matches and keys; a deleted rule’s series go', async () => {
    const rs = await openRules();
    await rs.addRule({
      id: 'bounded',
      key: ['user_id'],
      ordering: 'arrival',
      limits: { maxPartialMatches: 2, stateTtl: '10m' },
      condition: { sequence: { pattern: [{ name: 'fail', eventTypes: ['login'], where: 'event.attrs.success == false' }, { name: 'move', eventTypes: ['transfer'] }] } },
    });
    await rs.addRule({ id: 'reads_missing', key: ['user_id'], ordering: 'arrival', trigger: { eventTypes: ['transfer'] }, condition: { expr: 'event.attrs.no_such_field > 5.0' } });
    // u1: five partial matches, the three earliest dropped at the limit, the last two complete. u2 and u3 each keep one.
    await rs.send(...[0, 1, 2, 3, 4].map((s) => failedLogin('u1', s * SECOND)), transfer('u1', 5 * SECOND, 10), failedLogin('u2', 6 * SECOND), failedLogin('u3', 7 * SECOND));
    await rs.send(transfer('u4', 8 * SECOND, 10), transfer('u5', 9 * SECOND, 10));

    expect(await byRule(rs, 'portrait_rule_decisions_total')).toEqual({ bounded: 2, reads_missing: 0 });
    expect(await byRule(rs, 'portrait_rule_errors_total')).toEqual({ bounded: 0, reads_missing: 3 });
    expect(await byRule(rs, 'portrait_rule_partial_matches_dropped_total')).toEqual({ bounded: 3, reads_missing: 0 });
    expect(await byRule(rs, 'portrait_rule_partial_matches_expired_total')).toEqual({ bounded: 0, reads_missing: 0 });
    // Keys of each rule's key space holding state: the two with a partial match (both rules are keyed alike, with the same ordering and time).
    expect(await byRule(rs, 'portrait_rule_keys')).toEqual({ bounded: 2, reads_missing: 2 });

    await rs.advanceTo(30 * MINUTE);
    expect(await byRule(rs, 'portrait_rule_partial_matches_expired_total')).toEqual({ bounded: 2, reads_missing: 0 });
    expect(await byRule(rs, 'portrait_rule_keys')).toEqual({ bounded: 0, reads_missing: 0 });
    // The rules API shows the same counters.
    expect((await rs.rule('bounded')).runtime.counters).toMatchObject({ decisions: 2, droppedPartialMatches: 3, expiredPartialMatches: 2, keys: 0 });

    const deleted = await rs.app.inject({ method: 'DELETE', url: '/v1/rules/reads_missing' });
    expect(deleted.statusCode, deleted.body).toBe(200);
    await rs.advanceTo(31 * MINUTE);
    for (const name of ['portrait_rule_decisions_total', 'portrait_rule_errors_total', 'portrait_rule_partial_matches_dropped_total', 'portrait_rule_partial_matches_expired_total', 'portrait_rule_keys']) {
      expect(Object.keys(await byRule(rs, name)), name).toEqual(['bounded']);
    }
  });
});
