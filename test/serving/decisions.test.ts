import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { cleanup, tempDir } from '../helpers/system.js';
import { ev, openRules, SECOND, type RuleSystem } from '../rules/harness.js';

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any -- parsed HTTP bodies

const servers: Server[] = [];

afterEach(async () => {
  // The systems first: closing one stops its webhook output's retries.
  await cleanup();
  for (const server of servers.splice(0)) {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
});

const transfer = (user: string, at: number, amount: number) => ev('transfer', user, at, { to_account: 'acc', amount });
const bigTransfer = {
  id: 'big',
  key: ['user_id'],
  ordering: 'arrival',
  condition: { sequence: { pattern: [{ name: 'big', eventTypes: ['transfer'], where: 'event.attrs.amount > 10000.0' }] } },
};

/** A webhook receiver on loopback that answers every request with `status` and counts the requests and decisions it got. */
async function receiver(status: number): Promise<{ base: string; requests: () => number; decisions: () => number }> {
  let requests = 0;
  let decisions = 0;
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      requests++;
      if (status < 300) decisions += (JSON.parse(body) as { decisions: unknown[] }).decisions.length;
      res.writeHead(status, { 'content-type': 'text/plain' }).end(status < 300 ? 'ok' : 'broken');
    });
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { base: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, requests: () => requests, decisions: () => decisions };
}

async function outputs(rs: RuleSystem): Promise<Json[]> {
  const res = await rs.app.inject({ method: 'GET', url: '/v1/decisions/outputs' });
  expect(res.statusCode, res.body).toBe(200);
  return (res.json() as { items: Json[] }).items;
}

/** Polls the outputs route until `done` holds for its answer or 15 s passed; returns the last answer. */
async function outputsOnce(rs: RuleSystem, done: (items: Json[]) => boolean): Promise<Json[]> {
  const deadline = Date.now() + 15_000;
  let items = await outputs(rs);
  while (!done(items) && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 25));
    items = await outputs(rs);
  }
  return items;
}

/** The value of every `portrait_decision_output_*` series of one output, by metric name. */
async function outputSeries(rs: RuleSystem, output: string): Promise<Record<string, number>> {
  const text = (await rs.app.inject({ method: 'GET', url: '/metrics' })).body;
  const out: Record<string, number> = {};
  for (const line of text.split('\n')) {
    const m = /^(portrait_decision_output_\w+)\{output="(.*)"\} (\S+)$/.exec(line);
    if (m !== null && m[2] === output) out[m[1]!] = Number(m[3]);
  }
  return out;
}

describe('GET /v1/decisions/outputs and the portrait_decision_output_* metrics', () => {
  it('no output configured: an empty list and no series', async () => {
    const rs = await openRules();
    expect(await outputs(rs)).toEqual([]);
    const text = (await rs.app.inject({ method: 'GET', url: '/metrics' })).body;
    expect(text).not.toMatch(/^portrait_decision_output_\w+\{/m);
  });

  it('a webhook answering 500 counts its decisions as failed after the retries, with the status as lastError; the URL query is not shown', async () => {
    const hook = await receiver(500);
    const rs = await openRules({ 'decisions.webhookUrl': `${hook.base}/hook?token=s3cret` });
    await rs.addRule(bigTransfer);
    await rs.send(transfer('u1', 0, 20_000), transfer('u1', 1 * SECOND, 30_000));
    expect(await rs.decisions('big')).toHaveLength(2);

    const name = `webhook:${hook.base}/hook`;
    const items = await outputsOnce(rs, (i) => i[0]?.failed === 2);
    expect(items).toEqual([{ name, delivered: 0, failed: 2, dropped: 0, queued: 0, lastError: 'HTTP 500' }]);
    // Every batch was tried 5 times before it counted as failed.
    expect(hook.requests()).toBeGreaterThanOrEqual(5);
    expect(hook.requests() % 5).toBe(0);
    expect(await outputSeries(rs, name)).toEqual({
      portrait_decision_output_delivered_total: 0,
      portrait_decision_output_failed_total: 2,
      portrait_decision_output_dropped_total: 0,
      portrait_decision_output_queued: 0,
    });
    const text = (await rs.app.inject({ method: 'GET', url: '/metrics' })).body;
    expect(text).not.toContain('s3cret');
  });

  it('a webhook answering 200 counts its decisions as delivered, with no lastError', async () => {
    const hook = await receiver(200);
    const rs = await openRules({ 'decisions.webhookUrl': `${hook.base}/hook` });
    await rs.addRule(bigTransfer);
    await rs.send(transfer('u1', 0, 20_000), transfer('u2', 1 * SECOND, 30_000), transfer('u3', 2 * SECOND, 5));

    const name = `webhook:${hook.base}/hook`;
    const items = await outputsOnce(rs, (i) => i[0]?.delivered === 2);
    expect(items).toEqual([{ name, delivered: 2, failed: 0, dropped: 0, queued: 0, lastError: null }]);
    expect(hook.decisions()).toBe(2);
    expect(await outputSeries(rs, name)).toEqual({
      portrait_decision_output_delivered_total: 2,
      portrait_decision_output_failed_total: 0,
      portrait_decision_output_dropped_total: 0,
      portrait_decision_output_queued: 0,
    });
  });

  it('an NDJSON file output in a folder that does not exist counts its decisions as failed, with the reason', async () => {
    const file = join(await tempDir(), 'no-such-folder', 'decisions.ndjson');
    const rs = await openRules({ 'decisions.file': file });
    await rs.addRule(bigTransfer);
    await rs.send(transfer('u1', 0, 20_000), transfer('u2', 1 * SECOND, 30_000));

    const name = `file:${file}`;
    const [stats] = await outputsOnce(rs, (i) => i[0]?.failed === 2);
    expect(stats).toMatchObject({ name, delivered: 0, failed: 2, dropped: 0, queued: 0 });
    expect(stats!.lastError).toContain('ENOENT');
    expect(stats!.lastError).toContain(file);
    expect(await outputSeries(rs, name)).toEqual({
      portrait_decision_output_delivered_total: 0,
      portrait_decision_output_failed_total: 2,
      portrait_decision_output_dropped_total: 0,
      portrait_decision_output_queued: 0,
    });
  });
});
