import type { Clock, DefinitionSet, DefinitionSetResolver, RuleSpec, RuleTagSpec, TagSpec } from '../engine/index.js';
import { emptyDefinitionSet } from '../engine/index.js';
import { DefinitionError, NotFoundError, PortraitError, showValue, type ErrorCode, type ErrorDetail } from '../errors/index.js';
import { compileExpression } from '../expr/index.js';
import type { EventCatalog } from '../ingest/index.js';
import { compileTag, withAllTagInputs, type CompiledTag } from './compile-tag.js';
import type { DefinitionKind, DefinitionStore, DefinitionWrite, OnlineEntry, RestoredVersion, RevisionRecord, StoredDefinition, StoredVersion } from './definition-store.js';
import type { DefinitionStatus, TagDocument } from './tag-document.js';
import { validateTagDocument } from './validate-tag.js';
import { compileRule } from './compile-rule.js';
import type { RuleDocument } from './rule-document.js';
import { validateRuleDocument } from './validate-rule.js';

/** A tag as the API shows it: the document of its current version plus lifecycle fields. */
export type TagView = TagDocument & {
  version: number;
  status: DefinitionStatus;
  createdAt: string;
  updatedAt: string;
};

/** A rule as the API shows it: the document of its current version plus lifecycle fields. */
export type RuleView = RuleDocument & {
  version: number;
  status: DefinitionStatus;
  createdAt: string;
  updatedAt: string;
};

/** Status changes the lifecycle allows. */
const TRANSITIONS: Record<DefinitionStatus, ReadonlyArray<DefinitionStatus>> = {
  draft: ['online', 'archived'],
  online: ['offline'],
  offline: ['online', 'archived'],
  archived: [],
};

/** Every status a definition can have. */
const STATUSES = Object.keys(TRANSITIONS) as DefinitionStatus[];

/** Called after a change of the online set, with its revision. */
export type OnlineChangeListener = (revision: number) => Promise<void> | void;

/**
 * Manages tag definitions: validation, versions, the lifecycle
 * (draft → online → offline → archived) with dependency checks, and the
 * compiled definition set of every revision for the engine.
 */
export class DefinitionService implements DefinitionSetResolver {
  private readonly compiled = new Map<string, CompiledTag>();
  private readonly compiledRules = new Map<string, RuleSpec>();
  private current: DefinitionSet = emptyDefinitionSet;
  private serving = new Map<string, ServingTag>();
  private latestRevision = 0;
  private readonly listeners: OnlineChangeListener[] = [];
  private invalid = new Map<string, InvalidDefinition>();
  /** Serialises writes so dependency checks see a consistent online set. */
  private queue: Promise<unknown> = Promise.resolve();

  private constructor(private readonly store: DefinitionStore, private readonly catalog: EventCatalog, private readonly clock: Clock) {}

  /** Opens the service on a store and loads the latest online set. */
  static async open(store: DefinitionStore, catalog: EventCatalog, clock: Clock): Promise<DefinitionService> {
    const service = new DefinitionService(store, catalog, clock);
    await service.refresh();
    return service;
  }

  /**
   * Re-reads the latest revision (e.g. after another process changed the store)
   * and, when it is newer than the one in use, switches to it. Returns it.
   * Listeners hear of the switch only with `notify`.
   */
  async refresh(notify = false): Promise<number> {
    const latest = await this.store.latestRevision();
    if (latest !== undefined && latest.revision > this.latestRevision) {
      if (notify) await this.publish(latest);
      else {
        const set = await this.compileSet(latest);
        this.serving = await this.computeServing(set);
        this.current = set;
        this.latestRevision = latest.revision;
      }
    }
    return this.latestRevision;
  }

  /**
   * Follows changes other writers make to the store: pushed by the store's
   * `watch` (LISTEN/NOTIFY), and polled every `pollIntervalMs` in case a push
   * was lost. Each newer revision is applied once, in order of arrival, and
   * passed to the listeners. Returns a function that stops following.
   */
  async follow(options: { pollIntervalMs: number; onError?: (err: unknown) => void }): Promise<() => Promise<void>> {
    const check = (): void => {
      void this.serial(() => this.refresh(true)).catch((err: unknown) => options.onError?.(err));
    };
    const unwatch = await this.store.watch((revision) => {
      if (revision > this.latestRevision) check();
    });
    const timer = setInterval(check, options.pollIntervalMs);
    timer.unref();
    return async () => {
      clearInterval(timer);
      await unwatch();
    };
  }

  /**
   * Definitions online in the newest revision whose stored documents fail to
   * compile (edited into the store by hand), with the reason. They are left
   * out of the compiled set: nothing of them runs until a valid version is stored.
   */
  invalidDefinitions(): ReadonlyArray<InvalidDefinition> {
    return [...this.invalid.values()];
  }

  /** The problem of one online definition left out of the compiled set, or undefined when it compiled. */
  invalidDefinition(kind: DefinitionKind, id: string): InvalidDefinition | undefined {
    return this.invalid.get(`${kind}:${id}`);
  }

  /** Registers a listener for changes of the online set. */
  onOnlineChange(listener: OnlineChangeListener): void {
    this.listeners.push(listener);
  }

  /** The newest revision number. */
  get revision(): number {
    return this.latestRevision;
  }

  /** The compiled set of the newest revision (what is online now). */
  currentSet(): DefinitionSet {
    return this.current;
  }

  /**
   * What a profile read should show of each online tag: the versions whose
   * stored values are still valid (same computation as the online version)
   * and the value shown when an entity has none.
   */
  servingTags(): ReadonlyMap<string, ServingTag> {
    return this.serving;
  }

  private async computeServing(set: DefinitionSet): Promise<Map<string, ServingTag>> {
    const out = new Map<string, ServingTag>();
    for (const spec of set.tags) {
      const versions = new Set<number>([spec.version]);
      for (let v = spec.version - 1; v >= 1; v--) {
        const older = await this.compiledEntry({ kind: 'tag', id: spec.id, version: v }).catch(() => undefined);
        if (older === undefined || older.spec.stateId !== spec.stateId) break;
        versions.add(v);
      }
      const additive = spec.kind === 'statistic' && (spec.aggregate === 'count' || spec.aggregate === 'sum' || spec.aggregate === 'distinct');
      out.set(spec.id, { id: spec.id, version: spec.version, kind: spec.kind, versions, defaultValue: additive ? 0 : null });
    }
    // Tags set by online rules are shown whichever version of the rule set them.
    for (const rule of set.rules ?? []) {
      if (rule.setTag === null || out.has(rule.setTag.id)) continue;
      const versions = new Set<number>();
      for (let v = 1; v <= rule.version; v++) versions.add(v);
      out.set(rule.setTag.id, { id: rule.setTag.id, version: rule.version, kind: 'rule', versions, defaultValue: null });
    }
    return out;
  }

  /** Validates a document without storing it; throws the same errors create would. */
  async validate(input: unknown): Promise<TagDocument> {
    const doc = validateTagDocument(input, this.catalog);
    await this.checkReferences(doc);
    return doc;
  }

  async createTag(input: unknown): Promise<TagView> {
    return this.serial(async () => {
      const doc = validateTagDocument(input, this.catalog);
      await this.checkReferences(doc);
      const { definition, revision } = await this.store.write({ kind: 'tag', id: doc.id, expectedVersion: 0, document: stripVersion(doc), status: 'draft', at: this.clock.now() });
      this.advance(revision);
      return toView(definition);
    });
  }

  /** Stores a new version of a tag. An online tag switches to it at once. */
  async updateTag(id: string, input: unknown): Promise<TagView> {
    return this.serial(async () => {
      const doc = validateTagDocument(input, this.catalog);
      if (doc.id !== id) {
        throw new DefinitionError('PRT_DEF_INVALID', `tag "${id}" /id must equal the id in the path, got "${doc.id}"`, { path: '/id', subject: id });
      }
      const existing = await this.requireTag(id);
      if (existing.status === 'archived') {
        throw new DefinitionError('PRT_DEF_BAD_TRANSITION', `tag "${id}" is archived and can no longer change`, { subject: id });
      }
      if (doc.version !== undefined && doc.version !== existing.version) {
        throw new DefinitionError('PRT_DEF_VERSION_CONFLICT', `tag "${id}" is at version ${existing.version}, not ${doc.version}; read it again and reapply the change`, { subject: id, path: '/version' });
      }
      const previousKind = (existing.document as { kind?: string }).kind;
      if (previousKind !== doc.kind) {
        throw new DefinitionError('PRT_DEF_INVALID', `tag "${id}" /kind cannot change from "${previousKind}" to "${doc.kind}"; create a new tag`, { subject: id, path: '/kind' });
      }
      await this.checkReferences(doc);
      if (existing.status === 'online') {
        this.checkInputsOnline(doc, id);
        this.checkNoCycle(doc);
      }
      const result = await this.store.write({ kind: 'tag', id, expectedVersion: existing.version, document: stripVersion(doc), at: this.clock.now() });
      if (existing.status === 'online') await this.publish(result.revision);
      else this.advance(result.revision);
      return toView(result.definition);
    });
  }

  /** Moves a tag through its lifecycle. */
  async setTagStatus(id: string, status: DefinitionStatus): Promise<TagView> {
    return this.serial(async () => {
      const existing = await this.requireTag(id);
      if (existing.status === status) return toView(existing);
      if (!TRANSITIONS[existing.status].includes(status)) {
        throw new DefinitionError(
          'PRT_DEF_BAD_TRANSITION',
          `tag "${id}" cannot go from ${existing.status} to ${status}; allowed: ${TRANSITIONS[existing.status].join(', ') || 'none'}`,
          { subject: id, path: '/status' },
        );
      }
      const doc = existing.document as unknown as TagDocument;
      if (status === 'online') {
        this.checkInputsOnline(doc, id);
        this.checkNoCycle(doc);
      } else if (existing.status === 'online') {
        const dependents = this.onlineDependents(id);
        if (dependents.length > 0) {
          throw new DefinitionError('PRT_DEF_DEPENDENCY', `tag "${id}" is read by online tag${dependents.length > 1 ? 's' : ''} ${dependents.map((d) => `"${d}"`).join(', ')}; take ${dependents.length > 1 ? 'them' : 'it'} offline first`, { subject: id });
        }
      }
      const result = await this.store.write({ kind: 'tag', id, expectedVersion: existing.version, status, at: this.clock.now() });
      if (status === 'online' || existing.status === 'online') await this.publish(result.revision);
      else this.advance(result.revision);
      return toView(result.definition);
    });
  }

  async getTag(id: string): Promise<TagView> {
    return toView(await this.requireTag(id));
  }

  async listTags(filter: { status?: DefinitionStatus } = {}): Promise<TagView[]> {
    const all = await this.store.list('tag');
    return all.filter((d) => filter.status === undefined || d.status === filter.status).map(toView);
  }

  async tagVersions(id: string): Promise<StoredVersion[]> {
    await this.requireTag(id);
    return this.store.versions('tag', id);
  }

  // ------------------------------------------------------------------ rules

  /** Validates a rule document without storing it; throws the same errors create would. */
  async validateRule(input: unknown): Promise<RuleDocument> {
    const doc = validateRuleDocument(input, this.catalog);
    await this.checkRuleOutputs(doc);
    return doc;
  }

  /** Stores a new rule as a draft. */
  async createRule(input: unknown): Promise<RuleView> {
    return this.serial(async () => {
      const doc = validateRuleDocument(input, this.catalog);
      await this.checkRuleOutputs(doc);
      const { definition, revision } = await this.store.write({ kind: 'rule', id: doc.id, expectedVersion: 0, document: stripVersion(doc), status: 'draft', at: this.clock.now() });
      this.advance(revision);
      return toRuleView(definition);
    });
  }

  /**
   * Stores a new version of a rule. An online rule switches to it at once; when
   * the computation changed, the partial matches of the old version are dropped,
   * while aggregate windows, state of the key shared by identity with other
   * versions and rules, carry over (see docs/rules.md, Lifecycle).
   */
  async updateRule(id: string, input: unknown): Promise<RuleView> {
    return this.serial(async () => {
      const doc = validateRuleDocument(input, this.catalog);
      if (doc.id !== id) throw new DefinitionError('PRT_DEF_INVALID', `rule "${id}" /id must equal the id in the path, got "${doc.id}"`, { path: '/id', subject: id });
      const existing = await this.require('rule', id);
      if (existing.status === 'archived') throw new DefinitionError('PRT_DEF_BAD_TRANSITION', `rule "${id}" is archived and can no longer change`, { subject: id });
      if (doc.version !== undefined && doc.version !== existing.version) {
        throw new DefinitionError('PRT_DEF_VERSION_CONFLICT', `rule "${id}" is at version ${existing.version}, not ${doc.version}; read it again and reapply the change`, { subject: id, path: '/version' });
      }
      await this.checkRuleOutputs(doc);
      const result = await this.store.write({ kind: 'rule', id, expectedVersion: existing.version, document: stripVersion(doc), at: this.clock.now() });
      if (existing.status === 'online') await this.publish(result.revision);
      else this.advance(result.revision);
      return toRuleView(result.definition);
    });
  }

  /** Moves a rule through its lifecycle: `online` starts it, `offline` stops it. */
  async setRuleStatus(id: string, status: DefinitionStatus): Promise<RuleView> {
    return this.serial(async () => {
      const existing = await this.require('rule', id);
      if (existing.status === status) return toRuleView(existing);
      if (!TRANSITIONS[existing.status].includes(status)) {
        throw new DefinitionError('PRT_DEF_BAD_TRANSITION', `rule "${id}" cannot go from ${existing.status} to ${status}; allowed: ${TRANSITIONS[existing.status].join(', ') || 'none'}`, { subject: id, path: '/status' });
      }
      if (status === 'online') {
        // Revalidated against today's catalog: a draft written long ago must still make sense.
        const doc = validateRuleDocument(existing.document, this.catalog);
        await this.checkRuleOutputs(doc);
      }
      const result = await this.store.write({ kind: 'rule', id, expectedVersion: existing.version, status, at: this.clock.now() });
      if (status === 'online' || existing.status === 'online') await this.publish(result.revision);
      else this.advance(result.revision);
      return toRuleView(result.definition);
    });
  }

  /** Deletes a rule (stopping it if it runs). Its versions stay in the store for audit. */
  async deleteRule(id: string): Promise<RuleView> {
    return this.serial(async () => {
      const existing = await this.require('rule', id);
      const result = await this.store.write({ kind: 'rule', id, expectedVersion: existing.version, delete: true, at: this.clock.now() });
      if (existing.status === 'online') await this.publish(result.revision);
      else this.advance(result.revision);
      return toRuleView(result.definition);
    });
  }

  async getRule(id: string): Promise<RuleView> {
    return toRuleView(await this.require('rule', id));
  }

  async listRules(filter: { status?: DefinitionStatus } = {}): Promise<RuleView[]> {
    const all = await this.store.list('rule');
    return all.filter((d) => filter.status === undefined || d.status === filter.status).map(toRuleView);
  }

  async ruleVersions(id: string): Promise<StoredVersion[]> {
    await this.require('rule', id);
    return this.store.versions('rule', id);
  }

  /**
   * Imports an export document, restoring version histories. A definition the
   * target does not have gets every exported version under its own number,
   * with its document and creation time, then its exported status and times.
   * One the target has with a history that is a prefix of the exported one
   * (the same documents under the same numbers) gets the missing versions and
   * the exported status. One whose history differs (`diverged`) keeps it, and
   * the exported latest document becomes a new version when it differs from
   * the current one; the exported status is applied. An archived definition
   * never changes. Statuses are set directly (import restores a state; a
   * draft may become offline without running). Everything is written in one
   * transaction as one revision, so the engine switches to the whole imported
   * set at once — thousands of rules included — or nothing changes. Every
   * entry is checked before anything is written (kind, id, a known status,
   * times, version numbers increasing, each version's document an object
   * carrying the entry's id, the latest document valid against today's
   * catalog; older versions are history, never run, and are not validated);
   * a `PRT_DEF_INVALID` names the first problem's path, e.g.
   * `/definitions/3/status`, and lists all of them in `details`.
   * Returns what changed: `created`, `updated` (new versions stored),
   * `statusChanged`, and `diverged`.
   */
  async importAll(input: unknown): Promise<ImportResult> {
    const exported = input as Partial<DefinitionExport>;
    if (typeof input !== 'object' || input === null || exported.format !== 'portrait-definitions' || !Array.isArray(exported.definitions)) {
      throw new DefinitionError('PRT_DEF_INVALID', 'import /format must be "portrait-definitions" with a /definitions array (the document GET /v1/definitions:export returns)', { path: '/format' });
    }
    const result: ImportResult = { created: [], updated: [], statusChanged: [], diverged: [] };
    // Check every entry first, so an invalid one changes nothing, and report all problems at once.
    const problems: ErrorDetail[] = [];
    const items: ImportItem[] = [];
    const seen = new Map<string, number>();
    for (const [i, entry] of (exported.definitions as unknown[]).entries()) {
      const item = checkImportEntry(entry, i, problems);
      if (item === undefined) continue;
      const name = `${item.kind}:${item.id}`;
      const first = seen.get(name);
      if (first !== undefined) problems.push({ path: `/definitions/${i}/id`, message: `${item.kind} "${item.id}" appears twice (also at /definitions/${first})` });
      else seen.set(name, i);
      items.push(item);
    }
    if (problems.length > 0) {
      const first = problems[0]!;
      const more = problems.length > 1 ? ` (and ${problems.length - 1} more problem${problems.length > 2 ? 's' : ''})` : '';
      throw new DefinitionError('PRT_DEF_INVALID', `import ${first.path} ${first.message}${more}`, { path: first.path, details: problems });
    }
    for (const item of items) {
      try {
        if (item.kind === 'tag') validateTagDocument(item.document, this.catalog);
        else validateRuleDocument(item.document, this.catalog);
      } catch (err: unknown) {
        if (!(err instanceof DefinitionError)) throw err;
        const at = `/definitions/${item.index}/versions/${item.versionIndex}/document`;
        throw new DefinitionError(err.code, `import ${at}${err.path ?? ''}: ${err.message}`, {
          path: `${at}${err.path ?? ''}`,
          subject: item.id,
          ...(err.details === undefined ? {} : { details: err.details.map((d) => ({ path: `${at}${d.path}`, message: d.message })) }),
        });
      }
    }
    return this.serial(async () => {
      const at = this.clock.now();
      const changes: DefinitionWrite[] = [];
      const finalStatus = new Map<string, DefinitionStatus>();
      for (const d of [...(await this.store.list('tag')), ...(await this.store.list('rule'))]) finalStatus.set(`${d.kind}:${d.id}`, d.status);
      for (const item of items) {
        const name = `${item.kind}:${item.id}`;
        const existing = await this.store.get(item.kind, item.id);
        if (existing?.status === 'archived') continue; // an archived definition no longer changes
        // Versions of a deleted definition stay stored, so a definition the target lacks may still have a history there.
        const stored = await this.store.versions(item.kind, item.id);
        const prefix = stored.length <= item.versions.length && stored.every((v, k) => v.version === item.versions[k]!.version && canonical(v.document) === canonical(item.versions[k]!.document));
        if (!prefix) result.diverged.push(name);
        const restore = prefix ? item.versions.map((v): RestoredVersion => ({ version: v.version, document: v.document, createdAt: v.createdAt ?? at })) : undefined;
        if (existing === undefined) {
          changes.push({
            kind: item.kind,
            id: item.id,
            expectedVersion: 0,
            ...(restore === undefined ? { document: item.document } : { restore }),
            status: item.status,
            at,
            createdAt: item.createdAt ?? at,
            updatedAt: item.updatedAt ?? at,
          });
          result.created.push(name);
          finalStatus.set(name, item.status);
          continue;
        }
        const newVersions = restore !== undefined ? item.versions.length > stored.length : canonical(existing.document) !== canonical(item.document);
        const statusChanges = existing.status !== item.status;
        if (!newVersions && !statusChanges) continue;
        changes.push({
          kind: item.kind,
          id: item.id,
          expectedVersion: existing.version,
          ...(!newVersions ? {} : restore === undefined ? { document: item.document } : { restore }),
          status: item.status,
          at,
        });
        if (newVersions) result.updated.push(name);
        if (statusChanges) result.statusChanged.push(name);
        finalStatus.set(name, item.status);
      }
      if (changes.length === 0) return result;
      // The set online after the import must hold together: rule tags read online tags only,
      // and no rule sets a profile tag under a tag definition's id.
      const documentOf = async (kind: 'tag' | 'rule', id: string): Promise<Record<string, unknown> | undefined> =>
        items.find((i) => i.kind === kind && i.id === id)?.document ?? (await this.store.get(kind, id))?.document;
      for (const [name, status] of finalStatus) {
        if (status !== 'online') continue;
        const sep = name.indexOf(':');
        const kind = name.slice(0, sep) as 'tag' | 'rule';
        const id = name.slice(sep + 1);
        const doc = await documentOf(kind, id);
        if (kind === 'tag' && (doc as { kind?: string } | undefined)?.kind === 'rule') {
          const reads = compileExpression((doc as unknown as { condition: string }).condition, 'profile', '/condition', id).references.tags ?? [];
          const offline = reads.filter((t) => finalStatus.get(`tag:${t}`) !== 'online');
          if (offline.length > 0) {
            throw new DefinitionError('PRT_DEF_DEPENDENCY', `import would put tag "${id}" online while ${offline.map((t) => `"${t}"`).join(', ')} it reads would not be`, { subject: id, path: '/condition' });
          }
        }
        if (kind === 'rule') {
          const setTag = (doc as unknown as RuleDocument | undefined)?.outputs?.setTag?.id;
          if (setTag !== undefined && finalStatus.has(`tag:${setTag}`)) {
            throw new DefinitionError('PRT_DEF_DEPENDENCY', `rule "${id}" /outputs/setTag/id "${setTag}" is the id of a tag definition; choose another id`, { subject: id, path: '/outputs/setTag/id' });
          }
        }
      }
      // One transaction and one revision: the engine switches to the imported set at once, or nothing changes.
      const { revision } = await this.store.writeBatch(changes);
      if (revision !== undefined) await this.publish(revision);
      return result;
    });
  }

  /** A rule may set a profile tag only under an id no tag definition uses. */
  private async checkRuleOutputs(doc: RuleDocument): Promise<void> {
    const id = doc.outputs?.setTag?.id;
    if (id === undefined) return;
    if ((await this.store.get('tag', id)) !== undefined) {
      throw new DefinitionError('PRT_DEF_DEPENDENCY', `rule "${doc.id}" /outputs/setTag/id "${id}" is the id of a tag definition; choose another id`, { subject: doc.id, path: '/outputs/setTag/id' });
    }
  }

  private async require(kind: 'tag' | 'rule', id: string): Promise<StoredDefinition> {
    const found = await this.store.get(kind, id);
    if (found === undefined) throw new NotFoundError('PRT_DEF_NOT_FOUND', `${kind} "${id}" does not exist`, { subject: id });
    return found;
  }

  /** Every definition with its full version history, as one document. */
  async exportAll(): Promise<DefinitionExport> {
    const definitions: DefinitionExport['definitions'] = [];
    for (const d of [...(await this.store.list('tag')), ...(await this.store.list('rule'))]) {
      const versions = await this.store.versions(d.kind, d.id);
      definitions.push({
        kind: d.kind,
        id: d.id,
        status: d.status,
        version: d.version,
        createdAt: new Date(d.createdAt).toISOString(),
        updatedAt: new Date(d.updatedAt).toISOString(),
        versions: versions.map((v) => ({ version: v.version, createdAt: new Date(v.createdAt).toISOString(), document: v.document })),
      });
    }
    return { format: 'portrait-definitions', formatVersion: 1, exportedAt: new Date(this.clock.now()).toISOString(), revision: this.latestRevision, definitions };
  }

  /** The compiled set of tags online at a revision. */
  async resolve(revision: number): Promise<DefinitionSet> {
    if (revision === 0) return emptyDefinitionSet;
    if (revision === this.latestRevision && this.current.revision === revision) return this.current;
    const record = await this.store.getRevision(revision);
    if (record === undefined) throw new NotFoundError('PRT_DEF_NOT_FOUND', `definition revision ${revision} does not exist`, { subject: String(revision) });
    return this.compileSet(record);
  }

  private async compileSet(record: RevisionRecord): Promise<DefinitionSet> {
    const compiled: CompiledTag[] = [];
    const rules: RuleSpec[] = [];
    const invalid = new Map<string, InvalidDefinition>();
    for (const entry of record.online) {
      try {
        if (entry.kind === 'rule') rules.push(await this.compiledRule(entry));
        else compiled.push(await this.compiledEntry(entry));
      } catch (err: unknown) {
        // A document edited into the store by hand may be invalid: it is left out, never partly applied.
        if (!(err instanceof PortraitError) || err.code === 'PRT_STORE_UNAVAILABLE') throw err;
        invalid.set(`${entry.kind}:${entry.id}`, Object.freeze({ kind: entry.kind, id: entry.id, version: entry.version, code: err.code, reason: err.message }));
      }
    }
    if (record.revision >= this.latestRevision) this.invalid = invalid;
    const ids = compiled.map((c) => c.spec.id);
    const tags: TagSpec[] = compiled.map((c) => (c.readsAllTags ? withAllTagInputs(c.spec as RuleTagSpec, ids) : c.spec));
    return Object.freeze({ revision: record.revision, tags: Object.freeze(tags), rules: Object.freeze(rules) });
  }

  private async compiledRule(entry: OnlineEntry): Promise<RuleSpec> {
    const cacheKey = `${entry.kind}:${entry.id}:${entry.version}`;
    let spec = this.compiledRules.get(cacheKey);
    if (spec === undefined) {
      const version = await this.store.getVersion('rule', entry.id, entry.version);
      if (version === undefined) throw new NotFoundError('PRT_DEF_NOT_FOUND', `rule "${entry.id}" version ${entry.version} is missing from the store`, { subject: entry.id });
      checkStoredId(version);
      spec = compileRule(version.document, entry.version, this.catalog);
      this.compiledRules.set(cacheKey, spec);
    }
    return spec;
  }

  private async compiledEntry(entry: OnlineEntry): Promise<CompiledTag> {
    const cacheKey = `${entry.kind}:${entry.id}:${entry.version}`;
    let compiled = this.compiled.get(cacheKey);
    if (compiled === undefined) {
      const version = await this.store.getVersion(entry.kind, entry.id, entry.version);
      if (version === undefined) throw new NotFoundError('PRT_DEF_NOT_FOUND', `tag "${entry.id}" version ${entry.version} is missing from the store`, { subject: entry.id });
      checkStoredId(version);
      compiled = compileTag(validateTagDocument(version.document, this.catalog), entry.version);
      this.compiled.set(cacheKey, compiled);
    }
    return compiled;
  }

  private async publish(revision: RevisionRecord): Promise<void> {
    const set = await this.compileSet(revision);
    this.serving = await this.computeServing(set);
    this.current = set;
    this.latestRevision = revision.revision;
    for (const listener of this.listeners) await listener(revision.revision);
  }

  /**
   * Records a local write that left the online set as it was (a draft created or
   * updated, an offline tag archived): the revision moves on, the compiled set
   * stays. Without this, `revision` lagged behind the store until the next
   * online change or a reopen (which reads the store's newest revision), and
   * `follow` took the write for another writer's change and published it again.
   */
  private advance(revision: RevisionRecord): void {
    // Only right after the revision in use: a gap means another writer changed the
    // store in between, possibly the online set, and refresh must apply that.
    if (revision.revision !== this.latestRevision + 1) return;
    this.current = Object.freeze({ ...this.current, revision: revision.revision });
    this.latestRevision = revision.revision;
  }

  private serial<T>(task: () => Promise<T>): Promise<T> {
    const run = this.queue.then(task, task);
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async requireTag(id: string): Promise<StoredDefinition> {
    const found = await this.store.get('tag', id);
    if (found === undefined) throw new NotFoundError('PRT_DEF_NOT_FOUND', `tag "${id}" does not exist`, { subject: id });
    return found;
  }

  /** Tags a rule reads must exist (any status). */
  private async checkReferences(doc: TagDocument): Promise<void> {
    if (doc.kind !== 'rule') return;
    const reads = compileExpression(doc.condition, 'profile', '/condition', doc.id).references.tags ?? [];
    const missing: string[] = [];
    for (const input of reads) if (input !== doc.id && (await this.store.get('tag', input)) === undefined) missing.push(input);
    if (reads.includes(doc.id)) {
      throw new DefinitionError('PRT_DEF_DEPENDENCY', `tag "${doc.id}" /condition reads the tag itself`, { subject: doc.id, path: '/condition' });
    }
    if (missing.length > 0) {
      throw new DefinitionError('PRT_DEF_DEPENDENCY', `tag "${doc.id}" /condition reads tag${missing.length > 1 ? 's' : ''} ${missing.map((m) => `"${m}"`).join(', ')} that do${missing.length > 1 ? '' : 'es'} not exist`, {
        subject: doc.id,
        path: '/condition',
      });
    }
  }

  /** Tags a rule reads must be online before it is. */
  private checkInputsOnline(doc: TagDocument, id: string): void {
    if (doc.kind !== 'rule') return;
    const online = new Set(this.current.tags.map((t) => t.id));
    const spec = compileTag(doc, 0).spec as RuleTagSpec;
    const offline = spec.tagInputs.filter((input) => !online.has(input));
    if (offline.length > 0) {
      throw new DefinitionError('PRT_DEF_DEPENDENCY', `tag "${id}" reads ${offline.map((m) => `"${m}"`).join(', ')}, which ${offline.length > 1 ? 'are' : 'is'} not online; put ${offline.length > 1 ? 'them' : 'it'} online first`, { subject: id, path: '/condition' });
    }
  }

  /** A rule may not, through other online rules, read itself. */
  private checkNoCycle(doc: TagDocument): void {
    if (doc.kind !== 'rule') return;
    const reads = new Map<string, ReadonlyArray<string>>();
    for (const t of this.current.tags) if (t.kind === 'rule') reads.set(t.id, t.tagInputs);
    reads.set(doc.id, (compileTag(doc, 0).spec as RuleTagSpec).tagInputs);
    const visiting = new Set<string>();
    const visit = (id: string, path: string[]): void => {
      if (id === doc.id && path.length > 0) {
        throw new DefinitionError('PRT_DEF_DEPENDENCY', `tag "${doc.id}" would read itself through ${path.join(' → ')}`, { subject: doc.id, path: '/condition' });
      }
      if (visiting.has(id)) return;
      visiting.add(id);
      for (const next of reads.get(id) ?? []) visit(next, [...path, next]);
    };
    visit(doc.id, []);
  }

  /** Online rule tags that read a tag. */
  private onlineDependents(id: string): string[] {
    return this.current.tags.filter((t) => t.kind === 'rule' && t.tagInputs.includes(id)).map((t) => t.id);
  }
}

/** How profile reads treat one online tag. */
export interface ServingTag {
  id: string;
  kind: 'statistic' | 'rule';
  /** The online version. */
  version: number;
  /** Versions whose stored values are valid now (same computation as the online version). */
  versions: ReadonlySet<number>;
  /** Value shown when an entity has none (0 for count, sum and distinct; otherwise null). */
  defaultValue: number | null;
}

/** An online definition whose stored document does not compile, left out of the compiled set. */
export interface InvalidDefinition {
  kind: DefinitionKind;
  id: string;
  /** The version online in the store. */
  version: number;
  /** Error code of the problem, e.g. `PRT_DEF_INVALID`. */
  code: ErrorCode;
  /** What is wrong, naming the field, e.g. `rule "x" /condition must …`. */
  reason: string;
}

/** The document `exportAll` produces. */
export interface DefinitionExport {
  format: 'portrait-definitions';
  formatVersion: 1;
  exportedAt: string;
  revision: number;
  definitions: Array<{
    kind: string;
    id: string;
    status: DefinitionStatus;
    version: number;
    createdAt: string;
    updatedAt: string;
    versions: Array<{ version: number; createdAt: string; document: Record<string, unknown> }>;
  }>;
}

/** What `importAll` changed, as `kind:id` names, e.g. `"rule:failed_logins"`. */
export interface ImportResult {
  /** Definitions the target did not have. */
  created: string[];
  /** Existing definitions that got new versions. */
  updated: string[];
  /** Existing definitions whose status changed. */
  statusChanged: string[];
  /**
   * Definitions whose stored history is not a prefix of the exported one: the
   * target's versions are kept and the exported latest document, when it
   * differs, is stored as the next version (also listed in `created` or `updated`).
   */
  diverged: string[];
}

/** One checked entry of an import document: its versions, times and status. */
interface ImportItem {
  kind: DefinitionKind;
  id: string;
  status: DefinitionStatus;
  /** Every exported version, oldest first, documents without a `version` field. */
  versions: ImportVersion[];
  /** The document of the latest exported version (the last of `versions`). */
  document: Record<string, unknown>;
  /** Epoch ms, when the entry has them. */
  createdAt: number | undefined;
  updatedAt: number | undefined;
  /** Position in `/definitions`. */
  index: number;
  /** Position of the latest version in the entry's `/versions`. */
  versionIndex: number;
}

interface ImportVersion {
  version: number;
  document: Record<string, unknown>;
  /** Epoch ms, when the version has one. */
  createdAt: number | undefined;
}

/**
 * Checks the shape of one import entry: kind, id, status, its times, and every
 * version's number (a positive integer above the one before; the one after the
 * previous when left out), time and document naming the entry's id. Adds each
 * problem (with its path) to `problems`; returns the entry when it has none.
 */
function checkImportEntry(entry: unknown, i: number, problems: ErrorDetail[]): ImportItem | undefined {
  const at = `/definitions/${i}`;
  if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) {
    problems.push({ path: at, message: `must be an object, got ${showValue(entry)}` });
    return undefined;
  }
  const before = problems.length;
  const d = entry as { kind?: unknown; id?: unknown; status?: unknown; versions?: unknown; createdAt?: unknown; updatedAt?: unknown };
  if (d.kind !== 'tag' && d.kind !== 'rule') problems.push({ path: `${at}/kind`, message: `must be "tag" or "rule", got ${showValue(d.kind)}` });
  if (typeof d.id !== 'string' || d.id === '') problems.push({ path: `${at}/id`, message: `must be a non-empty string, got ${showValue(d.id)}` });
  if (typeof d.status !== 'string' || !(STATUSES as string[]).includes(d.status)) {
    problems.push({ path: `${at}/status`, message: `must be one of ${STATUSES.join(', ')}, got ${showValue(d.status)}` });
  }
  const createdAt = checkImportTime(d.createdAt, `${at}/createdAt`, problems);
  const updatedAt = checkImportTime(d.updatedAt, `${at}/updatedAt`, problems);
  const versions: ImportVersion[] = [];
  if (!Array.isArray(d.versions) || d.versions.length === 0) {
    problems.push({ path: `${at}/versions`, message: 'must be a non-empty array of versions' });
  } else {
    let previous = 0;
    for (const [j, v] of (d.versions as unknown[]).entries()) {
      const vat = `${at}/versions/${j}`;
      if (typeof v !== 'object' || v === null || Array.isArray(v)) {
        problems.push({ path: vat, message: `must be an object with a document, got ${showValue(v)}` });
        continue;
      }
      const { document, version, createdAt: versionCreatedAt } = v as { document?: unknown; version?: unknown; createdAt?: unknown };
      if (typeof document !== 'object' || document === null || Array.isArray(document)) {
        problems.push({ path: `${vat}/document`, message: `must be an object, got ${showValue(document)}` });
      } else if (typeof d.id === 'string' && (document as { id?: unknown }).id !== d.id) {
        problems.push({ path: `${vat}/document/id`, message: `must equal the definition's id ${showValue(d.id)}, got ${showValue((document as { id?: unknown }).id)}` });
      }
      const number = version === undefined ? previous + 1 : version;
      if (typeof number !== 'number' || !Number.isSafeInteger(number) || number <= previous) {
        problems.push({ path: `${vat}/version`, message: `must be an integer above ${previous} (versions are listed oldest first), got ${showValue(version)}` });
      } else {
        previous = number;
      }
      const time = checkImportTime(versionCreatedAt, `${vat}/createdAt`, problems);
      if (typeof number === 'number' && typeof document === 'object' && document !== null) {
        versions.push({ version: number, document: stripVersion(document), createdAt: time });
      }
    }
  }
  if (problems.length > before) return undefined;
  const versionIndex = versions.length - 1;
  return { kind: d.kind as DefinitionKind, id: d.id as string, status: d.status as DefinitionStatus, versions, document: versions[versionIndex]!.document, createdAt, updatedAt, index: i, versionIndex };
}

/** An optional time of an import document: an ISO 8601 string, as the export writes it. Returns epoch ms. */
function checkImportTime(value: unknown, path: string, problems: ErrorDetail[]): number | undefined {
  if (value === undefined) return undefined;
  const ms = typeof value === 'string' ? Date.parse(value) : Number.NaN;
  if (Number.isNaN(ms)) problems.push({ path, message: `must be a date and time like "2024-05-01T12:00:00.000Z", got ${showValue(value)}` });
  return ms;
}

/** A stored document must carry the id it is stored under (one edited by hand may not). */
function checkStoredId(version: StoredVersion): void {
  const id = (version.document as { id?: unknown }).id;
  if (id !== version.id) {
    throw new DefinitionError('PRT_DEF_INVALID', `${version.kind} "${version.id}" version ${version.version} /id must equal the id it is stored under, got ${showValue(id)}`, {
      path: '/id',
      subject: version.id,
    });
  }
}

function stripVersion(doc: object): Record<string, unknown> {
  const copy: Record<string, unknown> = { ...doc };
  delete copy.version;
  return copy;
}

/** JSON with object keys sorted, so documents compare equal whatever order a store keeps keys in. */
function canonical(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    v !== null && typeof v === 'object' && !Array.isArray(v) ? Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) : v,
  );
}

function toRuleView(d: StoredDefinition): RuleView {
  return {
    ...(d.document as unknown as RuleDocument),
    // The id it is stored under, even when a document edited by hand names another.
    id: d.id,
    version: d.version,
    status: d.status,
    createdAt: new Date(d.createdAt).toISOString(),
    updatedAt: new Date(d.updatedAt).toISOString(),
  };
}

function toView(d: StoredDefinition): TagView {
  return {
    ...(d.document as unknown as TagDocument),
    // The id it is stored under, even when a document edited by hand names another.
    id: d.id,
    version: d.version,
    status: d.status,
    createdAt: new Date(d.createdAt).toISOString(),
    updatedAt: new Date(d.updatedAt).toISOString(),
  };
}
