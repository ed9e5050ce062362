import { existsSync, readFileSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { partitionOf, type Decision } from '../../src/engine/index.js';
import { cleanup, tempDir } from '../helpers/system.js';
import { ev, MINUTE, openRules, SECOND, summary, T0 } from './harness.js';

afterEach(cleanup);

const transfer = (user: string, at: number, amount: number) => ev('transfer', user, at, { to_account: 'acc', amount });
const bigTransfer = (id: string, ordering: string) => ({
  id,
  key: ['user_id'],
  ordering,
  condition: { sequence: { pattern: [{ name: 'big', eventTypes: ['transfer'], where: 'event.attrs.amount > 10000.0' }] } },
});

describe('rule outputs', () => {
  it('outputs.setTag sets a tag visible on GET /v1/profiles/{id}', async () => {
    const rs = await openRules();
    await rs.addRule({ ...bigTransfer('flag_big_mover', 'event-time'), outputs: { setTag: { id: 'big_mover', value: true } } });
    await rs.addRule({ ...bigTransfer('record_amount', 'arrival'), outputs: { setTag: { id: 'last_big_amount', expr: 'event.attrs.amount' } } });
    await rs.send(transfer('u1', 0, 20_000), transfer('u2', 1 * SECOND, 50));
    await rs.advanceTo(10 * SECOND);
    const u1 = await rs.app.inject({ method: 'GET', url: '/v1/profiles/u1' });
    expect(u1.statusCode, u1.body).toBe(200);
    expect(u1.json().tags).toMatchObject({
      big_mover: { value: true, version: 1, updatedAt: new Date(T0).toISOString() },
      last_big_amount: { value: 20_000, version: 1, updatedAt: new Date(T0).toISOString() },
    });
    // u2 matched nothing, and no tag reads transfers: no profile at all.
    const u2 = await rs.app.inject({ method: 'GET', url: '/v1/profiles/u2' });
    expect(u2.statusCode).toBe(404);
    // Once the rule stops, its tag is no longer served.
    expect((await rs.app.inject({ method: 'POST', url: '/v1/rules/flag_big_mover/stop' })).statusCode).toBe(200);
    expect((await rs.app.inject({ method: 'GET', url: '/v1/profiles/u1' })).json().tags.big_mover).toBeUndefined();
  });

  it('POST /v1/decide answers the decisions of arrival rules for that event at once', async () => {
    const rs = await openRules();
    await rs.addRule(bigTransfer('big_now', 'arrival'));
    await rs.addRule(bigTransfer('big_later', 'event-time'));
    await rs.addRule({ ...bigTransfer('big_processing', 'event-time'), time: 'processing' });
    const res = await rs.app.inject({ method: 'POST', url: '/v1/decide', payload: transfer('u1', 0, 25_000) });
    expect(res.statusCode, res.body).toBe(200);
    const body = res.json() as { decisions: Decision[]; positions: Array<{ partition: number; offset: number }> };
    // Arrival rules and processing-time rules decide on the event as it is processed.
    expect(body.decisions.map((d) => d.ruleId).sort()).toEqual(['big_now', 'big_processing']);
    expect(summary(body.decisions.find((d) => d.ruleId === 'big_now')!)).toEqual({ rule: 'big_now', version: 1, key: { user_id: 'u1' }, outcome: 'match', trigger: 'event', at: 0, matched: { big: [0] } });
    expect(body.positions).toEqual([{ partition: body.decisions[0]!.partition, offset: body.decisions[0]!.offset }]);
    // The same decision is stored; the event-time rule decides once the watermark passes the event.
    expect((await rs.decisions('big_now')).map((d) => d.id)).toEqual([body.decisions[0]!.id]);
    expect(await rs.decisions('big_later')).toEqual([]);
    // A small transfer of the same user decides nothing now. Processing it moves the watermark past
    // the first transfer, so the event-time rule decides on that one at this record: not an answer to this event.
    const none = await rs.app.inject({ method: 'POST', url: '/v1/decide', payload: transfer('u1', 20 * SECOND, 5) });
    expect(none.statusCode, none.body).toBe(200);
    expect(none.json().decisions).toEqual([]);
    expect((await rs.decisions('big_later')).map(summary)).toEqual([{ rule: 'big_later', version: 1, key: { user_id: 'u1' }, outcome: 'match', trigger: 'event', at: 0, matched: { big: [0] } }]);
    // Each call's wait is in the metrics: once for the durable append, once for the engine.
    const metrics = (await rs.app.inject({ method: 'GET', url: '/metrics' })).body;
    for (const phase of ['append', 'engine']) expect(metrics).toMatch(new RegExp(`^portrait_decide_wait_seconds_count\\{phase="${phase}"\\} 2$`, 'm'));
  });

  it('POST /v1/decide answers every decision of its event when many calls across partitions are in flight at once', async () => {
    const rs = await openRules();
    await rs.addRule(bigTransfer('big_now', 'arrival'));
    // Calls in flight together: the engine processes some events while others are still being
    // appended, so a call may find its event processed before the batch's decisions are handed on.
    for (let round = 0; round < 5; round++) {
      const replies = await Promise.all(
        Array.from({ length: 60 }, (_, i) => rs.app.inject({ method: 'POST', url: '/v1/decide', payload: transfer(`c${round}-${i}`, round * SECOND + i, 20_000) })),
      );
      for (const res of replies) {
        expect(res.statusCode, res.body).toBe(200);
        expect((res.json() as { decisions: Decision[] }).decisions.map((d) => d.ruleId), res.body).toEqual(['big_now']);
      }
    }
  });

  it('POST /v1/decide answers the decision of an arrival rule keyed by another field, made in the partition owning that key', async () => {
    const rs = await openRules({ partitions: 4 });
    await rs.addRule({ id: 'shared_device', key: ['device_id'], ordering: 'arrival', condition: { aggregate: { fn: 'count', eventTypes: ['coupon_claim'], window: { type: 'lifetime' } }, op: '>=', value: 2 } });
    const claim = (user: string, at: number) => ev('coupon_claim', user, at, { campaign_id: 'c1', coupon_id: `k-${user}`, device_id: 'dev1' });
    expect(partitionOf('ub', 4)).not.toBe(partitionOf('dev1', 4));
    const first = await rs.app.inject({ method: 'POST', url: '/v1/decide', payload: claim('ua', 0) });
    expect(first.json().decisions).toEqual([]);
    const second = await rs.app.inject({ method: 'POST', url: '/v1/decide', payload: claim('ub', 1 * SECOND) });
    expect(second.statusCode, second.body).toBe(200);
    const body = second.json() as { decisions: Decision[]; positions: Array<{ partition: number; offset: number }> };
    // The event was written to its user's partition and copied to the device's.
    expect(body.positions.map((p) => p.partition).sort()).toEqual([partitionOf('ub', 4), partitionOf('dev1', 4)].sort());
    expect(body.decisions.map((d) => ({ rule: d.ruleId, key: d.key, entity: d.entity, partition: d.partition, count: d.aggregates[0] }))).toEqual([
      { rule: 'shared_device', key: { device_id: 'dev1' }, entity: 'ub', partition: partitionOf('dev1', 4), count: 2 },
    ]);
  });

  it('GET /v1/decisions:stream delivers decisions as Server-Sent Events', async () => {
    const rs = await openRules();
    await rs.addRule(bigTransfer('streamed', 'arrival'));
    await rs.addRule(bigTransfer('other_rule', 'arrival'));
    const address = await rs.app.listen({ port: 0, host: '127.0.0.1' });
    const abort = new AbortController();
    try {
      const res = await fetch(`${address}/v1/decisions:stream?rule=streamed`, { signal: abort.signal });
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toContain('text/event-stream');
      const reader = res.body!.getReader();
      const decoder = new TextDecoder();
      let text = '';
      const readUntil = async (done: (t: string) => boolean): Promise<void> => {
        while (!done(text)) {
          const chunk = await reader.read();
          if (chunk.done) throw new Error(`stream ended: ${text}`);
          text += decoder.decode(chunk.value, { stream: true });
        }
      };
      await readUntil((t) => t.includes(': connected'));
      await rs.send(transfer('u1', 0, 30_000));
      await readUntil((t) => /event: decision\ndata: .*\n\n/.test(t));
      const [, id, data] = /id: (.*)\nevent: decision\ndata: (.*)\n\n/.exec(text)!;
      const decision = JSON.parse(data!) as Decision;
      expect(summary(decision)).toEqual({ rule: 'streamed', version: 1, key: { user_id: 'u1' }, outcome: 'match', trigger: 'event', at: 0, matched: { big: [0] } });
      expect(id).toBe(decision.id);
      // The stream of one rule carries no decision of another.
      expect(text).not.toContain('other_rule');
      expect((await rs.decisions('other_rule'))).toHaveLength(1);
    } finally {
      abort.abort();
    }
  });

  it('the webhook output POSTs decisions to a real HTTP server', async () => {
    const received: Array<{ headers: IncomingHttpHeaders; body: { decisions: Decision[] } }> = [];
    const server = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        received.push({ headers: req.headers, body: JSON.parse(body) });
        res.writeHead(204).end();
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const port = (server.address() as AddressInfo).port;
      const rs = await openRules({ 'decisions.webhookUrl': `http://127.0.0.1:${port}/hook` });
      await rs.addRule(bigTransfer('hooked', 'arrival'));
      await rs.send(transfer('u1', 0, 11_000), transfer('u2', 1 * MINUTE, 12_000));
      const deadline = Date.now() + 5_000;
      while (received.flatMap((r) => r.body.decisions).length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      const delivered = received.flatMap((r) => r.body.decisions);
      expect(delivered.map(summary).sort((a, b) => a.at - b.at)).toEqual([
        { rule: 'hooked', version: 1, key: { user_id: 'u1' }, outcome: 'match', trigger: 'event', at: 0, matched: { big: [0] } },
        { rule: 'hooked', version: 1, key: { user_id: 'u2' }, outcome: 'match', trigger: 'event', at: 1 * MINUTE, matched: { big: [1 * MINUTE] } },
      ]);
      const stored = await rs.decisions('hooked');
      expect(delivered.map((d) => d.id).sort()).toEqual(stored.map((d) => d.id).sort());
      for (const r of received) {
        expect(r.headers['content-type']).toBe('application/json');
        expect(r.headers['idempotency-key']).toBe(`${r.body.decisions[0]!.id}..${r.body.decisions[r.body.decisions.length - 1]!.id}`);
      }
    } finally {
      await cleanup();
      await new Promise((resolve) => server.close(resolve));
    }
  });

  it('the NDJSON file output (decisions.file) writes one JSON line per decision with its fields; closing the system flushes it', async () => {
    const file = join(await tempDir(), 'decisions.ndjson');
    const rs = await openRules({ 'decisions.file': file });
    await rs.addRule(bigTransfer('filed', 'arrival'));
    await rs.addRule(bigTransfer('filed_later', 'event-time'));
    const handed: Decision[] = [];
    rs.system.decisions.subscribe((decisions) => handed.push(...decisions));
    await rs.send(transfer('u1', 0, 11_000), transfer('u2', 1 * SECOND, 50), transfer('u3', 2 * SECOND, 12_000));
    await rs.advanceTo(10 * SECOND);
    const stored = [...(await rs.decisions('filed')), ...(await rs.decisions('filed_later'))];
    expect(stored.map(summary).map((d) => [d.rule, d.key.user_id])).toEqual([
      ['filed', 'u1'],
      ['filed', 'u3'],
      ['filed_later', 'u1'],
      ['filed_later', 'u3'],
    ]);
    await rs.system.close();

    const text = readFileSync(file, 'utf8');
    expect(text.endsWith('\n')).toBe(true);
    const lines = text.slice(0, -1).split('\n');
    // One line per decision, in the order they were handed on, each the whole decision.
    expect(lines).toHaveLength(4);
    const written = lines.map((line) => JSON.parse(line) as Decision);
    expect(written).toEqual(JSON.parse(JSON.stringify(handed)));
    expect(written.map((d) => d.id).sort()).toEqual(stored.map((d) => d.id).sort());
    for (const d of written) {
      expect(Object.keys(d).sort()).toEqual(['aggregates', 'entity', 'event', 'id', 'key', 'matched', 'offset', 'outcome', 'partition', 'processingTime', 'ruleId', 'time', 'trigger', 'version']);
    }
    expect(summary(written.find((d) => d.ruleId === 'filed' && d.key.user_id === 'u3')!)).toEqual({
      rule: 'filed', version: 1, key: { user_id: 'u3' }, outcome: 'match', trigger: 'event', at: 2 * SECOND, matched: { big: [2 * SECOND] },
    });
    expect(rs.system.decisions.outputStats()).toEqual([{ name: `file:${file}`, delivered: 4, failed: 0, dropped: 0, queued: 0, lastError: undefined }]);
  });

  it('an NDJSON file output whose folder does not exist counts its decisions as failed with the reason, and the system keeps deciding', async () => {
    const file = join(await tempDir(), 'no-such-folder', 'decisions.ndjson');
    const rs = await openRules({ 'decisions.file': file });
    await rs.addRule(bigTransfer('filed', 'arrival'));
    await rs.send(transfer('u1', 0, 11_000));
    await rs.send(transfer('u2', 1 * SECOND, 12_000));
    expect((await rs.decisions('filed')).map((d) => d.key.user_id)).toEqual(['u1', 'u2']);
    await rs.system.close();
    expect(existsSync(file)).toBe(false);
    const [stats] = rs.system.decisions.outputStats();
    expect(stats).toMatchObject({ name: `file:${file}`, delivered: 0, failed: 2, dropped: 0, queued: 0 });
    expect(stats!.lastError).toContain('ENOENT');
    expect(stats!.lastError).toContain(file);
  });
});
