import type { FastifyInstance } from 'fastify';
import { NotFoundError, PortraitError, showValue } from '../../errors/index.js';
import type { Profile } from '../../engine/index.js';
import type { ServingTag } from '../../definitions/index.js';
import type { ServingContext } from '../context.js';
import { errors, profileSchema } from './schemas.js';

/** A profile as the API shows it. */
export interface ProfileView {
  id: string;
  attributes: Record<string, { value: unknown; updatedAt: string | null }>;
  tags: Record<string, { value: unknown; updatedAt: string | null; version: number }>;
}

/** `GET /v1/profiles/{id}` and `POST /v1/profiles:batchGet`. */
export function registerProfileRoutes(app: FastifyInstance, ctx: ServingContext): void {
  app.get<{ Querystring: { limit?: number; after?: string } }>(
    '/v1/profiles',
    {
      schema: {
        tags: ['profiles'],
        summary: 'List profile ids',
        description: 'Ids of stored profiles in id order, a page at a time: pass the last id of a page as `after` to get the next.',
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: { limit: { type: 'integer', minimum: 1, maximum: 1000, default: 20 }, after: { type: 'string' } },
        },
        response: { 200: { type: 'object', properties: { total: { type: 'integer' }, ids: { type: 'array', items: { type: 'string' } } } }, ...errors(400) },
      },
    },
    async (req) => {
      const ids = await ctx.profiles.listProfileIds(req.query.limit ?? 20, req.query.after);
      return { total: ctx.profiles.countProfiles(), ids };
    },
  );

  app.get<{ Params: { id: string }; Querystring: { tags?: string } }>(
    '/v1/profiles/:id',
    {
      schema: {
        tags: ['profiles'],
        summary: 'Read one profile',
        description: 'Attributes and online tags of one entity, each with the event time of its last change. `?tags=a,b` limits the tags returned.',
        params: { type: 'object', properties: { id: { type: 'string', minLength: 1, maxLength: 256 } } },
        querystring: { type: 'object', additionalProperties: false, properties: { tags: { type: 'string', description: 'Comma-separated tag ids.' } } },
        response: { 200: profileSchema, ...errors(400, 404) },
      },
    },
    async (req) => {
      const wanted = selectTags(ctx, req.query.tags === undefined ? undefined : req.query.tags.split(','), '/query/tags');
      const profile = ctx.profiles.getProfile(req.params.id);
      if (profile === undefined) throw new NotFoundError('PRT_PROFILE_NOT_FOUND', `no profile exists for id ${showValue(req.params.id)}`, { path: '/params/id', key: req.params.id });
      return viewOf(profile, wanted);
    },
  );

  app.post<{ Body: { ids: string[]; tags?: string[] } }>(
    '/v1/profiles::batchGet',
    {
      schema: {
        tags: ['profiles'],
        summary: 'Read many profiles',
        description: 'Profiles of up to `serving.maxBatchKeys` ids, in the order asked; ids without a profile are listed in `missing`.',
        body: {
          type: 'object',
          required: ['ids'],
          additionalProperties: false,
          properties: {
            ids: { type: 'array', minItems: 1, items: { type: 'string', minLength: 1, maxLength: 256 } },
            tags: { type: 'array', items: { type: 'string' } },
          },
        },
        response: {
          200: { type: 'object', properties: { profiles: { type: 'array', items: profileSchema }, missing: { type: 'array', items: { type: 'string' } } } },
          ...errors(400),
        },
      },
    },
    async (req) => {
      const { ids } = req.body;
      if (ids.length > ctx.limitsHttp.maxBatchKeys) {
        throw new PortraitError('PRT_SERVING_BAD_REQUEST', `/body/ids lists ${ids.length} ids; at most ${ctx.limitsHttp.maxBatchKeys} are allowed per request`, { path: '/body/ids' });
      }
      const wanted = selectTags(ctx, req.body.tags, '/body/tags');
      const found = ctx.profiles.getProfiles(ids);
      const profiles: ProfileView[] = [];
      const missing: string[] = [];
      found.forEach((p, i) => (p === undefined ? missing.push(ids[i]!) : profiles.push(viewOf(p, wanted))));
      return { profiles, missing };
    },
  );

  /** The online tags to show, each with its serving rule. */
  function selectTags(context: ServingContext, ids: ReadonlyArray<string> | undefined, path: string): ServingTag[] {
    const serving = context.definitions.servingTags();
    if (ids === undefined) return [...serving.values()];
    const out: ServingTag[] = [];
    ids.forEach((raw, i) => {
      const id = raw.trim();
      if (id === '') return;
      const tag = serving.get(id);
      if (tag === undefined) throw new PortraitError('PRT_SERVING_BAD_REQUEST', `${path}/${i} ${showValue(id)} is not an online tag`, { path: `${path}/${i}` });
      out.push(tag);
    });
    return out;
  }
}

/**
 * Renders a stored profile: only online tags, each at a version whose stored
 * value is still valid, and the default (0 for counts and sums) where the
 * entity has no value.
 */
export function viewOf(profile: Profile, tags: ReadonlyArray<ServingTag>): ProfileView {
  const attributes: ProfileView['attributes'] = {};
  for (const name of Object.keys(profile.attributes)) {
    const a = profile.attributes[name]!;
    attributes[name] = { value: a.value, updatedAt: isoOrNull(a.updatedAt) };
  }
  const out: ProfileView['tags'] = {};
  for (const tag of tags) {
    const stored = profile.tags[tag.id];
    if (stored !== undefined && tag.versions.has(stored.version)) {
      out[tag.id] = { value: stored.value, updatedAt: isoOrNull(stored.updatedAt), version: tag.version };
    } else if (tag.defaultValue !== null) {
      out[tag.id] = { value: tag.defaultValue, updatedAt: null, version: tag.version };
    }
  }
  return { id: profile.key, attributes, tags: out };
}

function isoOrNull(time: number): string | null {
  return Number.isFinite(time) ? new Date(time).toISOString() : null;
}
