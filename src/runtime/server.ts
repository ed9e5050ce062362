import { readFileSync } from 'node:fs';
import type { FastifyInstance } from 'fastify';
import type { PortraitConfig } from '../config/index.js';
import { PortraitError } from '../errors/index.js';
import { DemoStream, type DemoStreamOptions } from '../ingest/index.js';
import { partitionOf } from '../engine/index.js';
import { createApp, type ServingContext } from '../serving/index.js';
import { openEmbeddedSystem, type EmbeddedSystem, type EmbeddedSystemOptions } from './embedded-system.js';
import { demoTags } from './demo-tags.js';

/** A running embedded server: the system, its HTTP app and the optional demo stream. */
export interface RunningServer {
  readonly system: EmbeddedSystem;
  readonly app: FastifyInstance;
  /** Base URL the API listens on, e.g. `http://127.0.0.1:8080`. */
  readonly url: string;
  readonly demo: DemoStream | undefined;
  /** Stops the demo, the HTTP server and the system (with a final checkpoint). */
  close(): Promise<void>;
}

/** The package version, shown in the OpenAPI document. */
export function packageVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version?: string };
    return pkg.version ?? '0.0.0';
  } catch {
    return '0.0.0';
  }
}

/** The serving context of an embedded system. */
export function servingContext(system: EmbeddedSystem): ServingContext {
  const { config } = system;
  return {
    clock: system.clock,
    // Reads come from the engine's state (always current); listing uses the store, written at most every engine.profileFlushIntervalMs.
    profiles: {
      getProfile: (key) => system.engine.profile(key),
      getProfiles: (keys) => keys.map((key) => system.engine.profile(key)),
      countProfiles: () => system.engine.entityCount(),
      listProfileIds: async (limit, after) => {
        await system.engine.storeProfiles();
        return system.store.profiles.listProfileIds(limit, after);
      },
    },
    deadLetters: system.store.deadLetters,
    definitions: system.definitions,
    catalog: system.catalog,
    limits: system.limits,
    schemas: system.schemas,
    ingestor: system.ingestor,
    engine: system.engine,
    decisions: {
      list: (query) => system.decisions.store.list(query),
      get: (id) => system.decisions.store.get(id),
      count: () => system.decisions.store.count(),
      flushed: () => system.decisions.store.flushed(),
      subscribe: (listener) => system.decisions.subscribe(listener),
      outputStats: () => system.decisions.outputStats(),
    },
    metrics: system.metrics,
    partitionOf: (key) => partitionOf(key, config.partitions),
    limitsHttp: { maxBodyBytes: config.ingest.maxBodyBytes, maxBatchKeys: config.serving.maxBatchKeys, waitTimeoutMs: config.serving.waitTimeoutMs },
  };
}

/**
 * Opens the embedded system, serves the HTTP API on `config.port` and, with
 * `config.demo.enabled`, puts the demo tags online (first start only) and
 * starts the synthetic event stream.
 */
export async function startServer(config: PortraitConfig, options: EmbeddedSystemOptions & { demo?: Partial<DemoStreamOptions> } = {}): Promise<RunningServer> {
  const system = await openEmbeddedSystem(config, options);
  let app: FastifyInstance | undefined;
  try {
    app = await createApp(servingContext(system), { logLevel: config.logLevel, version: packageVersion() });
    let demo: DemoStream | undefined;
    if (config.demo.enabled) {
      await installDemoTags(system);
      demo = new DemoStream(system.ingestor, system.clock, {
        eventsPerSecond: config.demo.eventsPerSecond,
        users: config.demo.users,
        seed: config.demo.seed,
        ...options.demo,
      });
    }
    const address = await app.listen({ port: config.port, host: config.host });
    demo?.start();
    const listening = app;
    return {
      system,
      app: listening,
      url: address,
      demo,
      async close() {
        demo?.stop();
        await listening.close();
        await system.close();
      },
    };
  } catch (err: unknown) {
    await app?.close().catch(() => undefined);
    await system.close().catch(() => undefined);
    throw err;
  }
}

/** Creates the demo tags that do not exist yet and puts every one of them online. */
export async function installDemoTags(system: EmbeddedSystem): Promise<void> {
  const defs = system.definitions;
  for (const doc of demoTags) {
    let status: string | undefined;
    try {
      status = (await defs.getTag(doc.id)).status;
    } catch (err: unknown) {
      if (!(err instanceof PortraitError) || err.code !== 'PRT_DEF_NOT_FOUND') throw err;
      status = (await defs.createTag(doc)).status;
    }
    if (status === 'draft') await defs.setTagStatus(doc.id, 'online');
  }
}
