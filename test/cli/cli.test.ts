import { spawn } from 'node:child_process';
import { copyFile, writeFile } from 'node:fs/promises';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/index.js';
import { openEmbeddedSystem } from '../../src/runtime/embedded-system.js';
import { BATCH_NODE_FLAGS, SERVER_NODE_FLAGS, missingServerNodeFlags } from '../../src/runtime/index.js';
import { cleanup, tempDir } from '../helpers/system.js';
import { cli, fixture, portrait } from './portrait-cli.js';

afterEach(cleanup);

beforeAll(() => {
  // These tests run the compiled CLI, as users do; `npm test` builds it first (pretest).
  if (!existsSync(cli)) throw new Error(`${cli} does not exist: run \`npm run build\` before these tests`);
});

describe('portrait serve: invalid configuration', () => {
  it('PORT=abc exits non-zero naming the setting port and the variable PORT', async () => {
    const dataDir = await tempDir();
    const run = await portrait(['serve'], { PORT: 'abc', PORTRAIT_DATA_DIR: dataDir }, 30_000);
    expect(run.code).not.toBe(0);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('PRT_CONFIG_INVALID');
    expect(run.stderr).toContain('"port"');
    expect(run.stderr).toContain('environment variable PORT');
    expect(run.stderr).not.toMatch(/\n\s+at /); // a message, not a stack trace
    expect(run.stdout).not.toContain('serving');
  });

  it('a flag and a configuration file are named as the origin', async () => {
    const dataDir = await tempDir();
    const flag = await portrait(['serve', '--port', '70000', '--data-dir', dataDir], {}, 30_000);
    expect(flag.code).toBe(2);
    expect(flag.stderr).toContain('"port"');
    expect(flag.stderr).toContain('option --port');

    const file = join(dataDir, 'portrait.json');
    await writeFile(file, JSON.stringify({ dataDir, engine: { latePolicy: 'sometimes' } }));
    const viaEnv = await portrait(['serve'], { PORTRAIT_CONFIG: file }, 30_000);
    expect(viaEnv.code).toBe(2);
    expect(viaEnv.stderr).toContain('"engine.latePolicy"');
    expect(viaEnv.stderr).toContain(`file ${file}`);
  });
});

describe('portrait validate', () => {
  it('accepts good definition files with exit code 0', async () => {
    const many = await portrait(['validate', fixture('good-tags.json')]);
    expect(many.code).toBe(0);
    const lines = many.stdout.trim().split('\n');
    expect(lines).toHaveLength(3);
    expect(lines[0]).toMatch(/^ok\s+\S*good-tags\.json\[0\] \(tag "clicks_1h"\)$/);
    expect(lines[2]).toMatch(/^ok\s+\S*good-tags\.json\[2\] \(tag "high_value"\)$/);
    const one = await portrait(['validate', fixture('one-tag.json')]);
    expect(one.code).toBe(0);
    expect(one.stdout).toMatch(/^ok\s+\S*one-tag\.json \(tag "logins_10m"\)\n$/);
  });

  it('reports every problem of a bad file with its code and JSON path, with exit code 1', async () => {
    const run = await portrait(['validate', fixture('bad-tags.json')]);
    expect(run.code).toBe(1);
    const out = run.stdout;
    expect(out).toMatch(/^ok\s+\S*bad-tags\.json\[0\]/m);
    expect(out).toMatch(/^error\s+\S*bad-tags\.json\[1\]: PRT_DEF_INVALID /m);
    expect(out).toMatch(/^error\s+\S*bad-tags\.json\[2\]: PRT_DEF_EXPRESSION /m);
    // the detail lines under [1] give each path
    const broken = out.slice(out.indexOf('bad-tags.json[1]'), out.indexOf('bad-tags.json[2]'));
    const paths = [...broken.matchAll(/^\s+(\/\S*) /gm)].map((m) => m[1]);
    expect(paths.sort()).toEqual(['/eventTypes/0', '/field', '/window/size']);
    expect(out.slice(out.indexOf('bad-tags.json[2]'))).toMatch(/^\s+\/filter /m);
  });

  it('a file that is not JSON fails validation; a missing file is a usage error', async () => {
    const dir = await tempDir();
    const notJson = join(dir, 'tags.json');
    await writeFile(notJson, '{ "id": ');
    const bad = await portrait(['validate', notJson]);
    expect(bad.code).toBe(1);
    expect(bad.stdout).toContain(`error  ${notJson}: PRT_DEF_INVALID`);
    expect(bad.stderr).toBe('');
    const missing = await portrait(['validate', join(dir, 'nope.json')]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('nope.json');
    expect(missing.stderr).not.toMatch(/\n\s+at /);
    const none = await portrait(['validate']);
    expect(none.code).toBe(2);
  });
});

describe('portrait replay', () => {
  it('replays an NDJSON file into a data dir and prints the summary with the right counts, then resumes without duplicates', async () => {
    const dataDir = await tempDir('portrait-replay-');
    const env = { PORTRAIT_FSYNC: 'none', PORTRAIT_PARTITIONS: '4' };
    const config = loadConfig({ env, overrides: { dataDir, logLevel: 'silent' } });
    // tags online before the replay, so the events make profiles
    const setup = await openEmbeddedSystem(config);
    await setup.definitions.createTag({ id: 'clicks', kind: 'statistic', eventTypes: ['click'], aggregate: 'count', window: { type: 'lifetime' } });
    await setup.definitions.createTag({ id: 'spend', kind: 'statistic', eventTypes: ['payment'], aggregate: 'sum', field: 'amount', window: { type: 'lifetime' } });
    await setup.definitions.setTagStatus('clicks', 'online');
    await setup.definitions.setTagStatus('spend', 'online');
    await setup.close();

    const file = join(dataDir, 'events.ndjson');
    await copyFile(fixture('events.ndjson'), file);
    const run = await portrait(['replay', file, '--data-dir', dataDir], env);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    const summary = JSON.parse(run.stdout.trim()) as Record<string, unknown>;
    // 11 lines: 7 events, 1 blank line, 3 refused (not JSON, unknown type, amount "ten")
    expect(summary).toMatchObject({ lines: 11, appended: 7, skipped: 0, rejected: 3, maxTime: '2025-01-01T00:00:08.000Z', profiles: 3 });
    expect(summary.seconds).toEqual(expect.any(Number));

    // the same file again resumes after the last line: nothing appended twice
    const again = await portrait(['replay', file, '--data-dir', dataDir], env);
    expect(again.code).toBe(0);
    expect(JSON.parse(again.stdout.trim())).toMatchObject({ lines: 11, appended: 0, skipped: 7, profiles: 3 });

    const system = await openEmbeddedSystem(config);
    try {
      const profiles = system.store.profiles;
      expect(profiles.getProfile('alice')?.tags.clicks?.value).toBe(3);
      expect(profiles.getProfile('bob')?.tags.clicks?.value).toBe(1);
      expect(profiles.getProfile('bob')?.tags.spend?.value).toBe(99.5);
      expect(profiles.getProfile('carol')?.tags.clicks?.value).toBe(1);
      const letters = system.store.deadLetters.listDeadLetters(10);
      expect(letters.map((l) => [l.code, l.position]).sort()).toEqual([
        ['PRT_INGEST_BAD_JSON', 5],
        ['PRT_INGEST_UNKNOWN_EVENT_TYPE', 7],
        ['PRT_INGEST_WRONG_TYPE', 8],
      ]);
    } finally {
      await system.close();
    }
  });

  it('refuses an unknown schema and a missing file argument with exit code 2', async () => {
    const dataDir = await tempDir();
    const schema = await portrait(['replay', fixture('events.ndjson'), '--schema', 'nope', '--data-dir', dataDir], { PORTRAIT_FSYNC: 'none' });
    expect(schema.code).toBe(2);
    expect(schema.stderr).toContain('--schema "nope"');
    const none = await portrait(['replay']);
    expect(none.code).toBe(2);
    expect(none.stderr).toContain('replay needs a FILE');
  });
});

describe('portrait usage', () => {
  it('prints help with exit 0 and refuses an unknown command with exit 2', async () => {
    const help = await portrait(['help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('portrait serve');
    expect(help.stdout).toContain('portrait rules list|get ID|create FILE|update ID FILE|start ID|stop ID|archive ID|delete ID|versions ID');
    expect(help.stdout).toContain('portrait definitions export [FILE] | import FILE');
    const unknown = await portrait(['frobnicate']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('unknown command "frobnicate"');
  });
});

describe('the Node.js flags', () => {
  const start = (JSON.parse(readFileSync(fileURLToPath(new URL('../../package.json', import.meta.url)), 'utf8')) as { scripts: Record<string, string> }).scripts.start!;
  const shebang = readFileSync(cli, 'utf8').split('\n')[0]!;

  it('the server runs with Node\'s default young generation: neither the command\'s first line nor `npm start` passes the batch flags', () => {
    expect(BATCH_NODE_FLAGS.length).toBeGreaterThan(0);
    for (const flag of BATCH_NODE_FLAGS) {
      const name = flag.split('=')[0]!;
      expect(start).not.toContain(name);
      expect(shebang).not.toContain(name);
    }
  });

  it('`npm start` passes the server\'s flags; `portrait serve` started without them says which', async () => {
    expect(shebang).toBe('#!/usr/bin/env node');
    expect(SERVER_NODE_FLAGS.length).toBeGreaterThan(0);
    expect(start).toContain(`node ${SERVER_NODE_FLAGS.join(' ')} dist/src/cli/main.js serve`);
    expect(missingServerNodeFlags([])).toEqual([...SERVER_NODE_FLAGS]);
    expect(missingServerNodeFlags(['--inspect', ...SERVER_NODE_FLAGS])).toEqual([]);
    expect(missingServerNodeFlags(SERVER_NODE_FLAGS.map((f) => f.replace(/^--([^=]*)/, (_m, name: string) => `--${name.replaceAll('-', '_')}`)))).toEqual([]);

    const serveWith = async (nodeFlags: ReadonlyArray<string>): Promise<string> => {
      const dataDir = await tempDir('flags');
      return new Promise<string>((resolve, reject) => {
        const child = spawn(process.execPath, [...nodeFlags, cli, 'serve', '--port', '0', '--data-dir', dataDir], { stdio: ['ignore', 'pipe', 'pipe'] });
        let out = '';
        const timer = setTimeout(() => {
          child.kill('SIGKILL');
          reject(new Error(`portrait serve did not start within 60 s: ${out}`));
        }, 60_000);
        const read = (d: string): void => {
          out += d;
          if (out.includes('portrait serving') && out.endsWith('\n')) child.kill('SIGTERM');
        };
        child.stdout.setEncoding('utf8').on('data', read);
        child.stderr.setEncoding('utf8').on('data', read);
        child.on('error', reject);
        child.on('close', () => {
          clearTimeout(timer);
          resolve(out);
        });
      });
    };
    const without = await serveWith([]);
    expect(without).toContain(`note: for shorter pauses under load, start Node with ${SERVER_NODE_FLAGS.join(' ')}`);
    const withFlags = await serveWith(SERVER_NODE_FLAGS);
    expect(withFlags).toContain('portrait serving');
    expect(withFlags).not.toContain('note: for shorter pauses');
  }, 150_000);
});
