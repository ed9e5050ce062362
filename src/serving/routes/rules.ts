import type { FastifyInstance } from 'fastify';
import { ruleDocumentSchema, type DefinitionStatus, type RuleView } from '../../definitions/index.js';
import type { RuleCountersView, ServingContext } from '../context.js';
import { errors } from './schemas.js';

const idParams = { type: 'object', properties: { id: { type: 'string', minLength: 1, maxLength: 64 } } } as const;
const ruleDocument = { type: 'object', additionalProperties: true, description: 'A rule definition; see `GET /v1/schemas/rule-definition.json`.' } as const;
const ruleView = { type: 'object', additionalProperties: true } as const;

/** How long after its latest error a rule shows as degraded, ms. */
const DEGRADED_FOR_MS = 5 * 60_000;

/** Rule management: create, update, start, stop, delete, versions, import/export, schema. */
export function registerRuleRoutes(app: FastifyInstance, ctx: ServingContext): void {
  const defs = ctx.definitions;

  /**
   * A rule with its run-time state: running, degraded (with the reason), stopped, or
   * invalid (online in the store, but its stored document does not compile, so it does not run).
   */
  const withRuntime = (rule: RuleView, counters: ReadonlyMap<string, RuleCountersView>): RuleView & { runtime: Record<string, unknown> } => {
    const c = counters.get(rule.id);
    const now = ctx.clock.now();
    const invalid = rule.status === 'online' ? defs.invalidDefinition('rule', rule.id) : undefined;
    const degraded = invalid === undefined && c !== undefined && c.errors > 0 && now - c.lastErrorAt < DEGRADED_FOR_MS;
    const state = rule.status !== 'online' ? 'stopped' : invalid !== undefined ? 'invalid' : degraded ? 'degraded' : 'running';
    const reason = invalid !== undefined ? { reason: invalid.reason } : degraded ? { reason: c!.lastError } : {};
    return { ...rule, runtime: { state, ...reason, ...(c === undefined ? {} : { counters: c }) } };
  };

  app.get('/v1/schemas/rule-definition.json', { schema: { tags: ['rules'], summary: 'The JSON Schema of rule definitions' } }, async () => ruleDocumentSchema);

  app.get<{ Querystring: { status?: DefinitionStatus } }>(
    '/v1/rules',
    {
      schema: {
        tags: ['rules'],
        summary: 'List rules with their run-time state',
        querystring: { type: 'object', additionalProperties: false, properties: { status: { enum: ['draft', 'online', 'offline', 'archived'] } } },
        response: { 200: { type: 'object', properties: { revision: { type: 'integer' }, items: { type: 'array', items: ruleView } } }, ...errors(400) },
      },
    },
    async (req) => {
      const counters = ctx.engine.ruleCounters();
      const items = await defs.listRules(req.query.status === undefined ? {} : { status: req.query.status });
      return { revision: defs.revision, items: items.map((r) => withRuntime(r, counters)) };
    },
  );

  app.post<{ Body: unknown }>(
    '/v1/rules',
    { schema: { tags: ['rules'], summary: 'Create a rule (as a draft)', body: ruleDocument, response: { 201: ruleView, ...errors(400, 409) } } },
    async (req, reply) => reply.status(201).send(await defs.createRule(req.body)),
  );

  app.post<{ Body: unknown }>(
    '/v1/rules::validate',
    {
      schema: {
        tags: ['rules'],
        summary: 'Validate a rule without storing it',
        body: ruleDocument,
        response: { 200: { type: 'object', properties: { valid: { type: 'boolean' }, document: ruleView } }, ...errors(400, 409) },
      },
    },
    async (req) => ({ valid: true, document: await defs.validateRule(req.body) }),
  );

  app.get<{ Params: { id: string } }>(
    '/v1/rules/:id',
    { schema: { tags: ['rules'], summary: 'Read a rule with its run-time state', params: idParams, response: { 200: ruleView, ...errors(404) } } },
    async (req) => withRuntime(await defs.getRule(req.params.id), ctx.engine.ruleCounters()),
  );

  app.put<{ Params: { id: string }; Body: unknown }>(
    '/v1/rules/:id',
    {
      schema: {
        tags: ['rules'],
        summary: 'Store a new version of a rule',
        description:
          'A running rule switches to the new version within a second. When the computation changed, partial matches of the old version are dropped; aggregate windows are state of the key, shared by identity with other versions and rules, and carry over (a new threshold applies at once to the window the key already has). Send `version` to refuse the update if someone changed the rule in between.',
        params: idParams,
        body: ruleDocument,
        response: { 200: ruleView, ...errors(400, 404, 409) },
      },
    },
    async (req) => defs.updateRule(req.params.id, req.body),
  );

  const lifecycle: Array<[string, DefinitionStatus, string]> = [
    ['start', 'online', 'Start a rule: the engine evaluates it within a second'],
    ['stop', 'offline', 'Stop a rule: its partial matches are dropped, and its aggregate windows unless another online rule uses them'],
    ['archive', 'archived', 'Archive a stopped or draft rule; it can no longer change'],
  ];
  for (const [verb, status, summary] of lifecycle) {
    app.post<{ Params: { id: string } }>(
      `/v1/rules/:id/${verb}`,
      { schema: { tags: ['rules'], summary, params: idParams, response: { 200: ruleView, ...errors(400, 404, 409) } } },
      async (req) => defs.setRuleStatus(req.params.id, status),
    );
  }

  app.delete<{ Params: { id: string } }>(
    '/v1/rules/:id',
    { schema: { tags: ['rules'], summary: 'Delete a rule (stopping it); its versions stay for audit', params: idParams, response: { 200: ruleView, ...errors(404, 409) } } },
    async (req) => defs.deleteRule(req.params.id),
  );

  app.get<{ Params: { id: string } }>(
    '/v1/rules/:id/versions',
    {
      schema: {
        tags: ['rules'],
        summary: 'Every version of a rule, oldest first',
        params: idParams,
        response: { 200: { type: 'object', properties: { items: { type: 'array', items: { type: 'object', additionalProperties: true } } } }, ...errors(404) },
      },
    },
    async (req) => ({
      items: (await defs.ruleVersions(req.params.id)).map((v) => ({ version: v.version, createdAt: new Date(v.createdAt).toISOString(), document: v.document })),
    }),
  );

  app.post<{ Body: unknown }>(
    '/v1/definitions::import',
    {
      schema: {
        tags: ['rules'],
        summary: 'Import an export document: definitions get their exported version history and status',
        body: { type: 'object', additionalProperties: true },
        response: {
          200: {
            type: 'object',
            properties: {
              created: { type: 'array', items: { type: 'string' } },
              updated: { type: 'array', items: { type: 'string' } },
              statusChanged: { type: 'array', items: { type: 'string' } },
              diverged: { type: 'array', items: { type: 'string' } },
            },
          },
          ...errors(400, 409),
        },
      },
    },
    async (req) => defs.importAll(req.body),
  );
}
