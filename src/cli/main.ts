#!/usr/bin/env node
import { spawnSync } from 'node:child_process';
import { resolve as resolvePath } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { loadConfig, type PortraitConfig } from '../config/index.js';
import { PortraitError } from '../errors/index.js';
import { replayFile, defaultReplayOptions } from '../ingest/index.js';
import { defaultCatalog, missingServerNodeFlags, openEmbeddedSystem, startServer } from '../runtime/index.js';
import { usage } from './command-line.js';
import { definitionsCommand, rulesCommand, tagsCommand } from './definition-commands.js';
import { DEFAULT_TIMEOUT_MS, ServerUnreachableError, report, request, type ServerOptions } from './server-client.js';
import { validateFile } from './validate-command.js';

const USAGE = `portrait — real-time user profiles and tags

Usage:
  portrait serve [--demo] [--config FILE] [--port N] [--data-dir DIR]
      Serve the embedded system (HTTP API, engine, stores); --demo adds demo tags and a synthetic event stream.
  portrait replay FILE [--schema NAME] [--time-shift MS] [--url URL] [--config FILE] [--data-dir DIR]
      Replay a CSV or NDJSON file. With --url, send it to a running server; otherwise
      open the data directory (no server may hold it), replay, wait until processed.
  portrait validate FILE
      Validate tag and rule documents (one object, an array, or an export document)
      against the schemas and catalog; every problem is shown with its path.
  portrait tags list|get ID|create FILE|update ID FILE|online ID|offline ID|archive ID|versions ID|export [--url URL]
      Manage tag definitions on a running server.
  portrait rules list|get ID|create FILE|update ID FILE|start ID|stop ID|archive ID|delete ID|versions ID [--url URL]
      Manage rules on a running server: start puts a rule online, stop takes it offline.
  portrait definitions export [FILE] | import FILE [--url URL]
      Export every tag and rule (status and version history) as one document, to FILE or
      stdout; import such a document into a server (version history and statuses).
  portrait profile ID [--tags a,b] [--url URL]
      Read a profile from a running server.
  portrait bench [ARGS…]
      Run the benchmarks (same as npm run bench).

Commands that talk to a running server use --url URL (or PORTRAIT_URL, else
http://127.0.0.1:$PORT, port 8080 by default) and wait at most --timeout MS (default 60000)
for each answer. A refusal prints its code and field paths on stderr and exits with 1;
a usage error, an unreachable server or a timeout exits with 2.

Settings come from --config FILE (or PORTRAIT_CONFIG), then environment variables
(PORT, HOST, PORTRAIT_DATA_DIR, PORTRAIT_PARTITIONS, PORTRAIT_DEMO, …), then flags.`;

const options = {
  demo: { type: 'boolean' },
  config: { type: 'string' },
  port: { type: 'string' },
  'data-dir': { type: 'string' },
  schema: { type: 'string' },
  'time-shift': { type: 'string' },
  url: { type: 'string' },
  timeout: { type: 'string' },
  tags: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const satisfies ParseArgsConfig['options'];

type Flags = { [K in keyof typeof options]?: (typeof options)[K]['type'] extends 'boolean' ? boolean : string };

async function main(argv: string[]): Promise<number> {
  const command = argv[0];
  if (command === 'bench') return runBench(argv.slice(1));
  const parsed = parseArgs({ args: argv.slice(1), options, allowPositionals: true, strict: true });
  const flags = parsed.values as Flags;
  const args = parsed.positionals;
  if (command === undefined || command === 'help' || flags.help === true) {
    process.stdout.write(`${USAGE}\n`);
    return command === undefined ? 1 : 0;
  }
  switch (command) {
    case 'serve':
      return serve(flags);
    case 'replay':
      return replay(args, flags);
    case 'validate': {
      const file = args[0];
      if (file === undefined) throw usage('validate needs a FILE');
      return validateFile(file, defaultCatalog);
    }
    case 'tags':
      return tagsCommand(args, serverOptions(flags));
    case 'rules':
      return rulesCommand(args, serverOptions(flags));
    case 'definitions':
      return definitionsCommand(args, serverOptions(flags));
    case 'profile':
      return profile(args, flags);
    default:
      process.stderr.write(`portrait: unknown command "${command}"\n\n${USAGE}\n`);
      return 2;
  }
}

function configFrom(flags: Flags): PortraitConfig {
  const overrides: Record<string, unknown> = {};
  if (flags.port !== undefined) overrides.port = /^\d+$/.test(flags.port) ? Number(flags.port) : flags.port;
  if (flags['data-dir'] !== undefined) overrides.dataDir = flags['data-dir'];
  if (flags.demo === true) overrides['demo.enabled'] = true;
  return loadConfig({ ...(flags.config === undefined ? {} : { file: flags.config }), env: process.env, overrides });
}

async function serve(flags: Flags): Promise<number> {
  const config = configFrom(flags);
  const server = await startServer(config);
  const missing = missingServerNodeFlags();
  if (missing.length > 0) process.stdout.write(`  note: for shorter pauses under load, start Node with ${missing.join(' ')} (as npm start does; see README)\n`);
  process.stdout.write(`portrait serving ${server.url} (data in ${config.dataDir}${config.demo.enabled ? `, demo stream at ${config.demo.eventsPerSecond} events/s` : ''})\n`);
  if (config.demo.enabled) process.stdout.write(`  try: curl ${server.url}/v1/profiles   curl ${server.url}/v1/profiles/<id>   curl ${server.url}/v1/tags   curl ${server.url}/metrics\n`);
  await new Promise<void>((resolve) => {
    let closing = false;
    const shutdown = (signal: string): void => {
      if (closing) return;
      closing = true;
      process.stdout.write(`portrait: ${signal}, stopping (final checkpoint)…\n`);
      server.close().then(resolve, (err: unknown) => {
        process.stderr.write(`portrait: error while stopping: ${(err as Error).message}\n`);
        resolve();
      });
    };
    // A signal repeated while stopping (a second Ctrl+C) does not cut the final checkpoint short.
    process.on('SIGINT', () => shutdown('SIGINT'));
    process.on('SIGTERM', () => shutdown('SIGTERM'));
  });
  return 0;
}

async function replay(args: string[], flags: Flags): Promise<number> {
  const file = args[0];
  if (file === undefined) throw usage('replay needs a FILE');
  const timeShiftMs = flags['time-shift'] === undefined ? 0 : Number(flags['time-shift']);
  if (!Number.isFinite(timeShiftMs)) throw usage(`--time-shift must be a number of milliseconds, got "${flags['time-shift']}"`);
  if (flags.url !== undefined) return replayOverHttp(file, serverOptions(flags), flags.schema);
  const config = configFrom(flags);
  const system = await openEmbeddedSystem(config);
  try {
    const schema = flags.schema === undefined ? undefined : system.schemas.get(flags.schema);
    if (flags.schema !== undefined && schema === undefined) throw usage(`--schema "${flags.schema}" is not a known input schema (known: ${[...system.schemas.keys()].join(', ')})`);
    const started = performance.now();
    const progress = await replayFile(system.ingestor, system.catalog, system.limits, system.clock, {
      ...defaultReplayOptions,
      file,
      ...(schema === undefined ? {} : { schema }),
      timeShiftMs,
      resume: system.engine.sourcePositions(`file:${resolvePath(file)}`),
    });
    await system.ingestor.mark();
    await system.engine.drain();
    const seconds = (performance.now() - started) / 1000;
    process.stdout.write(`${JSON.stringify({ ...progress, maxTime: Number.isFinite(progress.maxTime) ? new Date(progress.maxTime).toISOString() : null, seconds: round(seconds), eventsPerSecond: Math.round(progress.appended / seconds), profiles: system.store.profiles.countProfiles() })}\n`);
  } finally {
    await system.close();
  }
  return 0;
}

async function replayOverHttp(file: string, server: ServerOptions, schema: string | undefined): Promise<number> {
  const { readLines } = await import('../ingest/index.js');
  const csv = schema !== undefined && file.endsWith('.csv');
  let accepted = 0;
  let rejected = 0;
  let chunk: string[] = [];
  const send = async (): Promise<void> => {
    if (chunk.length === 0) return;
    const query = schema === undefined ? '' : `?schema=${encodeURIComponent(schema)}`;
    const res = await request(server, 'POST', `/v1/events${query}`, `${chunk.join('\n')}\n`, csv ? 'text/csv' : 'application/x-ndjson');
    const body = res.body as { accepted?: number; rejected?: number };
    if (res.status === 200) {
      accepted += body.accepted ?? 0;
      rejected += body.rejected ?? 0;
    } else if (res.status === 400) {
      rejected += chunk.length;
    } else {
      throw new Error(`server answered ${res.status}: ${JSON.stringify(res.body)}`);
    }
    chunk = [];
  };
  for await (const lines of readLines(file)) {
    for (const line of lines) {
      if (line.trim() === '') continue;
      chunk.push(line);
      if (chunk.length >= 5_000) await send();
    }
  }
  await send();
  process.stdout.write(`${JSON.stringify({ accepted, rejected })}\n`);
  return 0;
}

async function profile(args: string[], flags: Flags): Promise<number> {
  const id = args[0];
  if (id === undefined) throw usage('profile needs an ID');
  const query = flags.tags === undefined ? '' : `?tags=${encodeURIComponent(flags.tags)}`;
  return report('profile', await request(serverOptions(flags), 'GET', `/v1/profiles/${encodeURIComponent(id)}${query}`));
}

/** The server a command talks to: --url, else PORTRAIT_URL, else this machine on PORT; and --timeout. */
function serverOptions(flags: Flags): ServerOptions {
  const url = flags.url ?? process.env.PORTRAIT_URL ?? `http://127.0.0.1:${process.env.PORT ?? 8080}`;
  let protocol: string;
  try {
    protocol = new URL(url).protocol;
  } catch {
    throw usage(`the server URL (--url or PORTRAIT_URL) must be an http:// or https:// URL, got "${url}"`);
  }
  if (protocol !== 'http:' && protocol !== 'https:') throw usage(`the server URL (--url or PORTRAIT_URL) must be an http:// or https:// URL, got "${url}"`);
  const timeoutMs = flags.timeout === undefined ? DEFAULT_TIMEOUT_MS : Number(flags.timeout);
  if (!Number.isInteger(timeoutMs) || timeoutMs <= 0) throw usage(`--timeout must be a positive whole number of milliseconds, got "${flags.timeout}"`);
  return { url, timeoutMs };
}

function runBench(args: string[]): number {
  const script = fileURLToPath(new URL('../../bench/run.js', import.meta.url));
  const result = spawnSync(process.execPath, ['--expose-gc', script, ...args], { stdio: 'inherit' });
  return result.status ?? 1;
}

function round(n: number): number {
  return Math.round(n * 100) / 100;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    if (err instanceof PortraitError) {
      process.stderr.write(`portrait: ${err.code}: ${err.message}\n`);
      process.exitCode = 2;
    } else if (err instanceof ServerUnreachableError) {
      process.stderr.write(`portrait: ${err.message}\n`);
      process.exitCode = 2;
    } else {
      process.stderr.write(`portrait: ${(err as Error).stack ?? String(err)}\n`);
      process.exitCode = 1;
    }
  },
);
