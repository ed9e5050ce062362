import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { loadConfig, type PortraitConfig } from '../../src/config/index.js';
import { openEmbeddedSystem, type EmbeddedSystem, type EmbeddedSystemOptions } from '../../src/runtime/embedded-system.js';
import { servingContext } from '../../src/runtime/server.js';
import { createApp } from '../../src/serving/index.js';

/** A temporary folder removed by {@link cleanup}. */
export async function tempDir(prefix = 'portrait-test-'): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

const cleanups: Array<() => Promise<unknown>> = [];

/** Runs every registered cleanup, newest first. Call from `afterEach`. */
export async function cleanup(): Promise<void> {
  while (cleanups.length > 0) await cleanups.pop()!().catch(() => undefined);
}

/** A configuration for tests: a temp data dir, no fsync, quick checkpoints; `overrides` use dotted paths. */
export async function testConfig(overrides: Record<string, unknown> = {}): Promise<PortraitConfig> {
  // A new definitions folder starts from PGlite's cluster image (see createPgliteDefinitionStore).
  const dataDir = await tempDir();
  return loadConfig({
    overrides: { dataDir, port: 0, logLevel: 'silent', 'log.fsync': 'none', partitions: 4, ...overrides },
  });
}

/** An embedded system in a temp dir, closed by {@link cleanup}. */
export async function openTestSystem(config?: PortraitConfig, options: EmbeddedSystemOptions = {}): Promise<EmbeddedSystem> {
  const system = await openEmbeddedSystem(config ?? (await testConfig()), options);
  let closed = false;
  const close = system.close.bind(system);
  (system as { close: EmbeddedSystem['close'] }).close = async (o) => {
    if (closed) return;
    closed = true;
    await close(o);
  };
  // Registered after the temp dir, so it runs before the dir is removed.
  cleanups.push(() => system.close());
  return system;
}

/** A system with its HTTP app (in-process, use `app.inject`). */
export async function openTestApp(config?: PortraitConfig, options: EmbeddedSystemOptions = {}): Promise<{ system: EmbeddedSystem; app: FastifyInstance }> {
  const system = await openTestSystem(config, options);
  const app = await createApp(servingContext(system), { logLevel: 'silent', version: 'test' });
  cleanups.push(() => app.close());
  return { system, app };
}
