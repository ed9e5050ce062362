import type { DefinitionStatus } from './tag-document.js';

/** Kinds of definitions kept in the store. */
export type DefinitionKind = 'tag' | 'rule';

/** The current state of one definition. */
export interface StoredDefinition {
  kind: DefinitionKind;
  id: string;
  /** Current version (the latest document). */
  version: number;
  status: DefinitionStatus;
  /** The document of the current version. */
  document: Record<string, unknown>;
  /** Epoch ms. */
  createdAt: number;
  updatedAt: number;
}

/** One immutable version of a definition's document. */
export interface StoredVersion {
  kind: DefinitionKind;
  id: string;
  version: number;
  document: Record<string, unknown>;
  createdAt: number;
}

/** A definition that is online at some revision, at a version. */
export interface OnlineEntry {
  kind: DefinitionKind;
  id: string;
  version: number;
}

/** One change to the store and the online set it left. Revisions are consecutive from 1. */
export interface RevisionRecord {
  revision: number;
  /** Epoch ms. */
  at: number;
  kind: DefinitionKind;
  id: string;
  version: number;
  /** Status after the change; `deleted` when the definition was removed. */
  status: DefinitionStatus | 'deleted';
  /** Everything online after this change. */
  online: OnlineEntry[];
}

/** A change the store applies atomically. */
export interface DefinitionWrite {
  kind: DefinitionKind;
  id: string;
  /** The version the writer read; 0 means the definition must not exist yet. */
  expectedVersion: number;
  /** A new document: becomes version `expectedVersion + 1`. */
  document?: Record<string, unknown>;
  /** A new status. */
  status?: DefinitionStatus;
  /** Removes the definition (its versions stay for audit; a new one with the same id continues the numbering). */
  delete?: boolean;
  /** Epoch ms of the change. */
  at: number;
}

/**
 * Where definitions, their versions and the history of changes are kept,
 * separate from the engine. Every write is atomic and gets the next revision
 * number; a revision records the full online set so any revision can be
 * resolved later (for replays and restores).
 */
export interface DefinitionStore {
  /** Current definitions of a kind, ordered by id. */
  list(kind: DefinitionKind): Promise<StoredDefinition[]>;
  get(kind: DefinitionKind, id: string): Promise<StoredDefinition | undefined>;
  /** Every version of a definition, oldest first. */
  versions(kind: DefinitionKind, id: string): Promise<StoredVersion[]>;
  getVersion(kind: DefinitionKind, id: string, version: number): Promise<StoredVersion | undefined>;
  /**
   * Applies a write if the stored version still equals `expectedVersion`;
   * otherwise throws `PRT_DEF_VERSION_CONFLICT` (or `PRT_DEF_EXISTS` / `PRT_DEF_NOT_FOUND`).
   * Returns the new state and the revision recorded for it.
   */
  write(change: DefinitionWrite): Promise<{ definition: StoredDefinition; revision: RevisionRecord }>;
  /**
   * Applies several writes in one transaction, all or none, recording one
   * revision for all of them (undefined when `changes` is empty). Each write is
   * checked as {@link write} checks it.
   */
  writeBatch(changes: ReadonlyArray<DefinitionWrite>): Promise<{ definitions: StoredDefinition[]; revision: RevisionRecord | undefined }>;
  /** The newest revision, or undefined when nothing was ever written. */
  latestRevision(): Promise<RevisionRecord | undefined>;
  getRevision(revision: number): Promise<RevisionRecord | undefined>;
  /** Revisions after `revision`, oldest first, at most `limit`. */
  revisionsAfter(revision: number, limit: number): Promise<RevisionRecord[]>;
  /**
   * Calls `listener` with the revision number whenever any writer — this
   * process, another one, or a person editing the tables with SQL — records a
   * revision. Delivery is best effort (a dropped connection loses pushes), so
   * callers also poll `latestRevision`. Resolves with a function that stops it.
   */
  watch(listener: (revision: number) => void): Promise<() => Promise<void>>;
  close(): Promise<void>;
}
