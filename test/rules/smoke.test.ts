import { afterEach, describe, expect, it } from 'vitest';
import { cleanup, openTestApp } from '../helpers/system.js';

afterEach(cleanup);

describe('rules smoke', () => {
  it('three failed logins within 2 minutes give one decision', async () => {
    const { app } = await openTestApp();
    const rule = {
      id: 'failed_logins',
      key: ['user_id'],
      ordering: 'arrival',
      condition: { sequence: { pattern: [{ name: 'fail', eventTypes: ['login'], where: 'event.attrs.success == false', times: 3 }], within: '2m', skip: 'skipPastLastEvent' } },
    };
    const created = await app.inject({ method: 'POST', url: '/v1/rules', payload: rule });
    expect(created.statusCode, created.body).toBe(201);
    expect((await app.inject({ method: 'POST', url: '/v1/rules/failed_logins/start' })).statusCode).toBe(200);
    const t = Date.now() - 60_000;
    for (let i = 0; i < 3; i++) {
      const r = await app.inject({ method: 'POST', url: '/v1/events?wait=true', payload: { type: 'login', user_id: 'u1', success: false, time: t + i * 10_000 } });
      expect(r.statusCode, r.body).toBe(200);
    }
    const res = await app.inject({ method: 'GET', url: '/v1/decisions?rule=failed_logins' });
    const body = res.json();
    expect(body.items).toHaveLength(1);
    expect(body.items[0]).toMatchObject({ ruleId: 'failed_logins', version: 1, key: { user_id: 'u1' }, outcome: 'match', trigger: 'event' });
    expect(body.items[0].matched.fail).toHaveLength(3);
    const decide = await app.inject({ method: 'POST', url: '/v1/decide', payload: { type: 'login', user_id: 'u2', success: false, time: t } });
    expect(decide.statusCode, decide.body).toBe(200);
    const view = await app.inject({ method: 'GET', url: '/v1/rules/failed_logins' });
    expect(view.json().runtime.state).toBe('running');
  });
});
