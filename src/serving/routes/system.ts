import type { FastifyInstance } from 'fastify';
import type { ServingContext } from '../context.js';

/** Health, readiness, Prometheus metrics, engine statistics and the event catalog. */
export function registerSystemRoutes(app: FastifyInstance, ctx: ServingContext): void {
  app.get('/healthz', { schema: { tags: ['system'], summary: 'Liveness: the process serves requests' } }, async () => ({ status: 'ok' }));

  app.get(
    '/readyz',
    { schema: { tags: ['system'], summary: 'Readiness: the engine runs and keeps up with the log' } },
    async (_req, reply) => {
      const stats = ctx.engine.stats();
      const lag = stats.partitions.reduce((n, p) => n + p.lag, 0);
      const overloaded = ctx.ingestor.isOverloaded();
      const ready = stats.running && !overloaded;
      return reply.status(ready ? 200 : 503).send({ status: ready ? 'ready' : 'not ready', engineRunning: stats.running, lag, overloaded });
    },
  );

  app.get('/metrics', { schema: { tags: ['system'], summary: 'Prometheus metrics' } }, async (_req, reply) => {
    const text = await ctx.metrics.registry.metrics();
    return reply.type(ctx.metrics.registry.contentType).send(text);
  });

  app.get('/v1/stats', { schema: { tags: ['system'], summary: 'Engine progress and ingest counters' } }, async () => {
    const stats = ctx.engine.stats();
    return {
      revision: ctx.definitions.revision,
      ingest: ctx.ingestor.counters,
      engine: {
        running: stats.running,
        checkpoints: stats.checkpoints,
        lastCheckpoint: stats.lastCheckpoint ?? null,
        tagErrors: stats.tagErrors,
        partitions: stats.partitions.map((p) => ({
          ...p,
          streamTime: finiteOrNull(p.streamTime),
          watermark: finiteOrNull(p.watermark),
        })),
      },
      profiles: ctx.profiles.countProfiles(),
      deadLetters: ctx.deadLetters.countDeadLetters(),
    };
  });

  app.get('/v1/catalog', { schema: { tags: ['system'], summary: 'Declared event types and input schemas' } }, async () => ({
    catalog: ctx.catalog,
    schemas: [...ctx.schemas.values()],
  }));
}

function finiteOrNull(n: number): number | null {
  return Number.isFinite(n) ? n : null;
}
