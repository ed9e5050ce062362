import { PortraitError } from '../errors/index.js';

/**
 * Resolves with `promise`, or rejects with `PRT_SERVING_TIMEOUT` naming `what`
 * once `timeoutMs` passes. The timer never keeps the process alive.
 */
export function withTimeout<T>(promise: Promise<T>, timeoutMs: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new PortraitError('PRT_SERVING_TIMEOUT', `${what} took longer than ${timeoutMs} ms`)), timeoutMs);
    timer.unref();
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
