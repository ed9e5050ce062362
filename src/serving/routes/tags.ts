import type { FastifyInstance } from 'fastify';
import { tagDocumentSchema, type DefinitionStatus, type TagView } from '../../definitions/index.js';
import type { ServingContext } from '../context.js';
import { errors } from './schemas.js';

const idParams = { type: 'object', properties: { id: { type: 'string', minLength: 1, maxLength: 64 } } } as const;
const tagDocument = { type: 'object', additionalProperties: true, description: 'A tag definition; see `GET /v1/schemas/tag-definition.json`.' } as const;
const tagView = { type: 'object', additionalProperties: true } as const;

/** Tag definition management: create, update, lifecycle, versions, export, schema. */
export function registerTagRoutes(app: FastifyInstance, ctx: ServingContext): void {
  const defs = ctx.definitions;

  /**
   * A tag as the read routes show it. An online tag whose stored document does not compile
   * (edited into the store by hand, or no longer fitting the event catalog) is not computed:
   * it carries `invalid` with the error code and the reason, naming the field.
   */
  const withProblem = (tag: TagView): TagView & { invalid?: { code: string; reason: string } } => {
    const invalid = tag.status === 'online' ? defs.invalidDefinition('tag', tag.id) : undefined;
    return invalid === undefined ? tag : { ...tag, invalid: { code: invalid.code, reason: invalid.reason } };
  };

  app.get('/v1/schemas/tag-definition.json', { schema: { tags: ['tags'], summary: 'The JSON Schema of tag definitions' } }, async () => tagDocumentSchema);

  app.get<{ Querystring: { status?: DefinitionStatus } }>(
    '/v1/tags',
    {
      schema: {
        tags: ['tags'],
        summary: 'List tag definitions',
        querystring: { type: 'object', additionalProperties: false, properties: { status: { enum: ['draft', 'online', 'offline', 'archived'] } } },
        response: { 200: { type: 'object', properties: { revision: { type: 'integer' }, items: { type: 'array', items: tagView } } }, ...errors(400) },
      },
    },
    async (req) => ({ revision: defs.revision, items: (await defs.listTags(req.query.status === undefined ? {} : { status: req.query.status })).map(withProblem) }),
  );

  app.post<{ Body: unknown }>(
    '/v1/tags',
    {
      schema: {
        tags: ['tags'],
        summary: 'Create a tag definition (as a draft)',
        body: tagDocument,
        response: { 201: tagView, ...errors(400, 409) },
      },
    },
    async (req, reply) => reply.status(201).send(await defs.createTag(req.body)),
  );

  app.post<{ Body: unknown }>(
    '/v1/tags::validate',
    {
      schema: {
        tags: ['tags'],
        summary: 'Validate a tag definition without storing it',
        body: tagDocument,
        response: { 200: { type: 'object', properties: { valid: { type: 'boolean' }, document: tagView } }, ...errors(400, 409) },
      },
    },
    async (req) => ({ valid: true, document: await defs.validate(req.body) }),
  );

  app.get<{ Params: { id: string } }>(
    '/v1/tags/:id',
    {
      schema: {
        tags: ['tags'],
        summary: 'Read a tag definition',
        description: 'An online tag whose stored document does not compile is not computed; it carries `invalid: { code, reason }`.',
        params: idParams,
        response: { 200: tagView, ...errors(404) },
      },
    },
    async (req) => withProblem(await defs.getTag(req.params.id)),
  );

  app.put<{ Params: { id: string }; Body: unknown }>(
    '/v1/tags/:id',
    {
      schema: {
        tags: ['tags'],
        summary: 'Store a new version of a tag definition',
        description: 'An online tag switches to the new version at once. Send `version` (the version you read) to refuse the update when someone changed the tag in between.',
        params: idParams,
        body: tagDocument,
        response: { 200: tagView, ...errors(400, 404, 409) },
      },
    },
    async (req) => defs.updateTag(req.params.id, withoutProblem(req.body)),
  );

  const lifecycle: Array<[string, DefinitionStatus, string]> = [
    ['online', 'online', 'Put a tag online: the engine starts computing it within a second'],
    ['offline', 'offline', 'Take a tag offline: the engine stops computing it and drops its state'],
    ['archive', 'archived', 'Archive an offline or draft tag; it can no longer change'],
  ];
  for (const [verb, status, summary] of lifecycle) {
    app.post<{ Params: { id: string } }>(
      `/v1/tags/:id/${verb}`,
      { schema: { tags: ['tags'], summary, params: idParams, response: { 200: tagView, ...errors(404, 409) } } },
      async (req) => defs.setTagStatus(req.params.id, status),
    );
  }

  app.get<{ Params: { id: string } }>(
    '/v1/tags/:id/versions',
    {
      schema: {
        tags: ['tags'],
        summary: 'Every version of a tag definition, oldest first',
        params: idParams,
        response: { 200: { type: 'object', properties: { items: { type: 'array', items: { type: 'object', additionalProperties: true } } } }, ...errors(404) },
      },
    },
    async (req) => ({
      items: (await defs.tagVersions(req.params.id)).map((v) => ({ version: v.version, createdAt: new Date(v.createdAt).toISOString(), document: v.document })),
    }),
  );

  app.get(
    '/v1/definitions::export',
    {
      schema: {
        tags: ['tags'],
        summary: 'Export every definition with status and version history as one document',
        response: { 200: { type: 'object', additionalProperties: true } },
      },
    },
    async () => defs.exportAll(),
  );
}

/** A body as `GET /v1/tags/{id}` showed it is accepted back: its read-only `invalid` is left out. */
function withoutProblem(body: unknown): unknown {
  if (typeof body !== 'object' || body === null || Array.isArray(body) || !('invalid' in body)) return body;
  const { invalid: _invalid, ...document } = body as Record<string, unknown>;
  return document;
}
