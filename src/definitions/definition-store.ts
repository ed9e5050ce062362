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

/** A version written under the number its writer gives (restoring a history, e.g. from an export). */
export interface RestoredVersion {
  version: number;
  document: Record<string, unknown>;
  /** Epoch ms the version was created. */
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
  /**
   * Versions to store under their own numbers, in increasing order, before
   * `document` (restoring a history, e.g. from an export). A number already
   * stored for the id (also by a deleted definition) must hold an equal
   * document and is kept as it is, creation time included; any other must be
   * above every stored number. The last becomes the current version, so it
   * must be at least the highest stored number. With `document` too, that
   * document becomes the version after the last.
   */
  restore?: ReadonlyArray<RestoredVersion>;
  /** Removes the definition (its versions stay for audit; a new one with the same id continues the numbering). */
  delete?: boolean;
  /** Epoch ms of the change; the revision recorded for it carries this time. */
  at: number;
  /** Epoch ms stored as the definition's creation time when this write creates it. @defaultValue `at` */
  createdAt?: number;
  /** Epoch ms stored as the definition's last change. @defaultValue `at` */
  updatedAt?: number;
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
   * Restored versions that break the rules of {@link DefinitionWrite.restore}
   * throw `PRT_DEF_VERSION_CONFLICT` (a clash with stored versions) or
   * `PRT_DEF_INVALID` (numbers not positive and increasing).
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
