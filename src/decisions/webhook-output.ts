import type { Decision } from '../engine/index.js';
import type { DecisionOutput, DecisionOutputStats } from './decision-hub.js';

/** Options of {@link createWebhookOutput}. */
export interface WebhookOutputOptions {
  url: string;
  /** Time allowed per request, ms. @defaultValue 5000 */
  timeoutMs?: number;
  /** Decisions per request. @defaultValue 500 */
  batchSize?: number;
  /** Attempts per batch before it counts as failed. @defaultValue 5 */
  maxAttempts?: number;
  /** Decisions waiting at most; beyond it new ones are dropped and counted. @defaultValue 100000 */
  maxQueued?: number;
  /** Extra request headers (e.g. an authorization token). */
  headers?: Record<string, string>;
}

/**
 * POSTs decisions to a URL as `{"decisions":[…]}` batches with an
 * `Idempotency-Key` header (the first and last decision id of the batch), a
 * timeout per request, and retries with exponential backoff. One request is
 * in flight at a time, so decisions arrive in order.
 */
export function createWebhookOutput(options: WebhookOutputOptions): DecisionOutput {
  const timeoutMs = options.timeoutMs ?? 5_000;
  const batchSize = options.batchSize ?? 500;
  const maxAttempts = options.maxAttempts ?? 5;
  const maxQueued = options.maxQueued ?? 100_000;
  const stats: DecisionOutputStats = { name: `webhook:${publicUrl(options.url)}`, delivered: 0, failed: 0, dropped: 0, queued: 0, lastError: undefined };
  let queue: Decision[] = [];
  let running: Promise<void> | undefined;
  let closing = false;

  const post = async (batch: Decision[]): Promise<void> => {
    for (let attempt = 1; ; attempt++) {
      try {
        const res = await fetch(options.url, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'idempotency-key': `${batch[0]!.id}..${batch[batch.length - 1]!.id}`, ...options.headers },
          body: JSON.stringify({ decisions: batch }),
          signal: AbortSignal.timeout(timeoutMs),
        });
        await res.body?.cancel().catch(() => undefined);
        if (res.ok) {
          stats.delivered += batch.length;
          return;
        }
        stats.lastError = `HTTP ${res.status}`;
        // A 4xx other than 408/429 will not get better by retrying.
        if (res.status >= 400 && res.status < 500 && res.status !== 408 && res.status !== 429) break;
      } catch (err: unknown) {
        stats.lastError = (err as Error).message;
      }
      if (attempt >= maxAttempts || closing) break;
      await new Promise((r) => setTimeout(r, Math.min(10_000, 100 * 2 ** (attempt - 1))));
    }
    stats.failed += batch.length;
  };
  const drain = async (): Promise<void> => {
    while (queue.length > 0) {
      const batch = queue.slice(0, batchSize);
      queue = queue.slice(batch.length);
      stats.queued = queue.length;
      await post(batch);
    }
    running = undefined;
  };
  return {
    name: stats.name,
    send(decisions) {
      for (const d of decisions) {
        if (queue.length >= maxQueued) stats.dropped++;
        else queue.push(d);
      }
      stats.queued = queue.length;
      running ??= drain();
    },
    stats: () => ({ ...stats }),
    async close() {
      closing = true;
      await Promise.race([running, new Promise((r) => setTimeout(r, timeoutMs).unref())]);
    },
  };
}

/**
 * The URL as the output's name shows it (in `GET /v1/decisions/outputs` and
 * metric labels): without user, password, query and fragment, where tokens
 * are usually passed.
 */
function publicUrl(url: string): string {
  try {
    const u = new URL(url);
    return `${u.origin}${u.pathname}`;
  } catch {
    return url.replace(/[?#].*$/s, '');
  }
}
