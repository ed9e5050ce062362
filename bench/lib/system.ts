import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadConfig, type PortraitConfig } from '../../src/config/index.js';
import { defaultReplayOptions, replayFile, type ReplayProgress } from '../../src/ingest/index.js';
import { openEmbeddedSystem, type EmbeddedSystem, type EmbeddedSystemOptions } from '../../src/runtime/embedded-system.js';
import { cachePath, type BenchContext } from './common.js';
import type { DatasetManifest } from './dataset.js';
import { installBenchTags } from './tags.js';

/**
 * The configuration the benchmarks run with: the defaults (4 partitions,
 * `log.fsync` batch, checkpoints every 10 s), a data dir, a free port and no
 * request logging. Dotted `overrides` as in `loadConfig`.
 */
export function benchConfig(dataDir: string, overrides: Record<string, unknown> = {}): PortraitConfig {
  return loadConfig({ overrides: { dataDir, port: 0, logLevel: 'silent', ...overrides } });
}

/** A fresh (emptied) data dir under `.cache/bench/runs`. */
export function freshDataDir(name: string): string {
  const dir = join(cachePath('runs'), name);
  rmSync(dir, { recursive: true, force: true });
  return dir;
}

/** Deletes a data dir made by {@link freshDataDir} once its system is closed. */
export function removeDataDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}

/** Opens a system on a fresh data dir and puts the 50 bench tags online. */
export async function openWithTags(dir: string, options: EmbeddedSystemOptions = {}, overrides: Record<string, unknown> = {}): Promise<EmbeddedSystem> {
  const system = await openEmbeddedSystem(benchConfig(dir, overrides), options);
  await installBenchTags(system);
  await system.engine.drain();
  return system;
}

/**
 * Replays an NDJSON dataset into a system and waits until the engine has
 * processed (and stored) everything appended. With `signal`, appending stops
 * at the next chunk boundary once it is aborted.
 */
export async function replayAndDrain(system: EmbeddedSystem, file: string, options: { signal?: AbortSignal; onChunk?: (p: ReplayProgress) => void } = {}): Promise<{ progress: ReplayProgress; appendedAtMs: number }> {
  const started = performance.now();
  const progress = await replayFile(system.ingestor, system.catalog, system.limits, system.clock, {
    ...defaultReplayOptions,
    file,
    resume: system.engine.sourcePositions(`file:${file}`),
    ...(options.signal === undefined ? {} : { signal: options.signal }),
    ...(options.onChunk === undefined ? {} : { onChunk: options.onChunk }),
  });
  const appendedAtMs = performance.now() - started;
  await system.ingestor.mark();
  await system.engine.drain();
  return { progress, appendedAtMs };
}

/**
 * Wall-clock budget of a replay of the 1M-user dataset in the default run, so
 * the whole suite stays near half an hour on 2 cores: appending stops at the next
 * chunk after it, and the figures describe the events and users reached.
 * `--full-size` lifts it; `--quick` replays a small dataset well within it.
 */
export function replayBudgetS(ctx: Pick<BenchContext, 'quick' | 'fullSize'>): number {
  if (ctx.fullSize) return Infinity;
  return ctx.quick ? 60 : 480;
}

/** An AbortSignal that fires after `seconds` (never for Infinity), and a function to cancel it. */
export function budgetSignal(seconds: number): { signal: AbortSignal; cancel: () => void } {
  const controller = new AbortController();
  const timer = Number.isFinite(seconds) ? setTimeout(() => controller.abort(), seconds * 1000) : undefined;
  return { signal: controller.signal, cancel: () => clearTimeout(timer) };
}

/** A data dir holding the replayed 1M-user state, left by engine-replay for the scenarios that need loaded state. */
export interface StateManifest {
  dataset: string;
  dir: string;
  events: number;
  entities: number;
  profiles: number;
  createdAt: string;
}

function stateManifestPath(dataset: DatasetManifest): string {
  return join(cachePath('runs'), `state-${dataset.spec.name}.json`);
}

/** Folder of the replayed state of a dataset. */
export function stateDir(dataset: DatasetManifest): string {
  return join(cachePath('runs'), `state-${dataset.spec.name}`);
}

/** Records that `stateDir(dataset)` holds the complete replay of `dataset` (closed with a final checkpoint). */
export function saveStateManifest(dataset: DatasetManifest, manifest: StateManifest): void {
  writeFileSync(stateManifestPath(dataset), JSON.stringify(manifest, null, 2));
}

/** The replayed state of a dataset, if a complete one exists. */
export function loadStateManifest(dataset: DatasetManifest): StateManifest | undefined {
  const path = stateManifestPath(dataset);
  if (!existsSync(path)) return undefined;
  const manifest = JSON.parse(readFileSync(path, 'utf8')) as StateManifest;
  return manifest.dataset === dataset.file && existsSync(manifest.dir) ? manifest : undefined;
}

/** Forgets (and deletes) the replayed state of a dataset. */
export function dropState(dataset: DatasetManifest): void {
  rmSync(stateManifestPath(dataset), { force: true });
  rmSync(stateDir(dataset), { recursive: true, force: true });
}

/**
 * Returns the replayed state of `dataset`, building it (untimed) when no
 * earlier engine-replay run left one.
 */
export async function ensureState(dataset: DatasetManifest, ctx: Pick<BenchContext, 'quick' | 'fullSize' | 'log'>): Promise<StateManifest> {
  const existing = loadStateManifest(dataset);
  if (existing !== undefined) return existing;
  const budgetS = replayBudgetS(ctx);
  ctx.log(`no replayed state of ${dataset.spec.name}; replaying it (untimed${Number.isFinite(budgetS) ? `, budget ${budgetS} s` : ''})`);
  dropState(dataset);
  const dir = stateDir(dataset);
  const system = await openWithTags(dir);
  const budget = budgetSignal(budgetS);
  await replayAndDrain(system, dataset.file, { signal: budget.signal });
  budget.cancel();
  return closeAsState(system, dataset, dir);
}

/** Closes a system that replayed `dataset` (final checkpoint) and records it as the dataset's state. */
export async function closeAsState(system: EmbeddedSystem, dataset: DatasetManifest, dir: string): Promise<StateManifest> {
  const entities = system.engine.stats().partitions.reduce((n, p) => n + p.entities, 0);
  const profiles = system.store.profiles.countProfiles();
  await system.close();
  const manifest: StateManifest = { dataset: dataset.file, dir, events: dataset.events, entities, profiles, createdAt: new Date().toISOString() };
  saveStateManifest(dataset, manifest);
  return manifest;
}
