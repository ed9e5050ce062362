import { createServer, type Server, type Socket } from 'node:net';
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { cleanup, tempDir } from '../helpers/system.js';
import { cli, fixture, portrait, serve, type Run, type ServeProcess } from './portrait-cli.js';

const servers: ServeProcess[] = [];

afterEach(async () => {
  // Servers stop (final checkpoint) before their data directories are removed.
  await Promise.all(servers.splice(0).map((s) => s.stop()));
  await cleanup();
});

beforeAll(() => {
  // These tests run the compiled CLI, as users do; `npm test` builds it first (pretest).
  if (!existsSync(cli)) throw new Error(`${cli} does not exist: run \`npm run build\` before these tests`);
});

async function startServer(): Promise<string> {
  const server = await serve(await tempDir('portrait-rules-cli-'));
  servers.push(server);
  return server.url;
}

interface RuleBody {
  id: string;
  version: number;
  status: string;
  condition: { sequence?: { pattern: Array<{ times?: number }> } };
  runtime?: { state: string };
}

/** Reads a path of the server's API directly, not through the CLI. */
async function api(url: string, path: string): Promise<{ status: number; body: unknown }> {
  const res = await fetch(new URL(path, url), { signal: AbortSignal.timeout(10_000) });
  return { status: res.status, body: await res.json() };
}

async function apiRule(url: string, id: string): Promise<RuleBody> {
  const res = await api(url, `/v1/rules/${id}`);
  expect(res.status).toBe(200);
  return res.body as RuleBody;
}

/** Statuses of every rule the server holds, by id. */
async function ruleStatuses(url: string): Promise<Record<string, string>> {
  const res = await api(url, '/v1/rules');
  expect(res.status).toBe(200);
  return Object.fromEntries((res.body as { items: RuleBody[] }).items.map((r) => [r.id, r.status]));
}

/** The JSON a successful command printed on stdout, after checking it exited with 0 and printed nothing on stderr. */
function ok<T>(run: Run): T {
  expect(run.stderr).toBe('');
  expect(run.code).toBe(0);
  return JSON.parse(run.stdout) as T;
}

/**
 * Checks a refused command: exit code 1, nothing on stdout, the code on stderr and, for
 * each of `paths`, a problem line starting with that path (a string: exactly that path;
 * a RegExp: a path it matches).
 */
function refused(run: Run, code: string, paths: Array<string | RegExp> = []): void {
  expect(run.code).toBe(1);
  expect(run.stdout).toBe('');
  expect(run.stderr).toMatch(new RegExp(`^portrait: \\S.* failed: HTTP \\d{3} ${code}: `));
  const shown = [...run.stderr.matchAll(/^ {2}(?:at )?(\/\S*)/gm)].map((m) => m[1]!);
  for (const path of paths) expect(shown.some((p) => (typeof path === 'string' ? p === path : path.test(p))), `${String(path)} in ${JSON.stringify(shown)}`).toBe(true);
  expect(run.stderr).not.toMatch(/\n\s+at .*:\d+:\d+/); // a message, not a stack trace
}

describe('portrait rules', () => {
  it('creates, lists, reads, updates (version 2 in versions), stops, starts and deletes a rule', async () => {
    const url = await startServer();
    const rules = (...args: string[]): Promise<Run> => portrait(['rules', ...args, '--url', url]);

    const created = ok<RuleBody>(await rules('create', fixture('rule-failed-logins.json')));
    expect(created).toMatchObject({ id: 'failed_logins', version: 1, status: 'draft' });
    expect(await apiRule(url, 'failed_logins')).toMatchObject({ version: 1, status: 'draft' });

    const listed = ok<{ items: RuleBody[] }>(await rules('list'));
    expect(listed.items.map((r) => r.id)).toEqual(['failed_logins']);
    const got = ok<RuleBody>(await rules('get', 'failed_logins'));
    expect(got).toMatchObject({ id: 'failed_logins', version: 1, status: 'draft', runtime: { state: 'stopped' } });
    expect(got.condition.sequence?.pattern[0]?.times).toBe(3);

    const updated = ok<RuleBody>(await rules('update', 'failed_logins', fixture('rule-failed-logins-v2.json')));
    expect(updated).toMatchObject({ id: 'failed_logins', version: 2 });
    const versions = ok<{ items: Array<{ version: number; document: RuleBody }> }>(await rules('versions', 'failed_logins'));
    expect(versions.items.map((v) => v.version)).toEqual([1, 2]);
    expect(versions.items[0]!.document.condition.sequence?.pattern[0]?.times).toBe(3);
    expect(versions.items[1]!.document.condition.sequence?.pattern[0]?.times).toBe(5);
    expect((await apiRule(url, 'failed_logins')).condition.sequence?.pattern[0]?.times).toBe(5);

    expect(ok<RuleBody>(await rules('start', 'failed_logins')).status).toBe('online');
    expect(await apiRule(url, 'failed_logins')).toMatchObject({ status: 'online', runtime: { state: 'running' } });
    expect(ok<RuleBody>(await rules('stop', 'failed_logins')).status).toBe('offline');
    expect(await apiRule(url, 'failed_logins')).toMatchObject({ status: 'offline', runtime: { state: 'stopped' } });
    expect(ok<RuleBody>(await rules('start', 'failed_logins')).status).toBe('online');
    expect(await apiRule(url, 'failed_logins')).toMatchObject({ status: 'online', runtime: { state: 'running' } });

    // What `rules get` prints goes back as it is (its read-only runtime left out): a new version.
    const dir = await tempDir();
    const edited = join(dir, 'failed_logins.json');
    await writeFile(edited, (await rules('get', 'failed_logins')).stdout.replace('"times": 5', '"times": 4'));
    expect(ok<RuleBody>(await rules('update', 'failed_logins', edited))).toMatchObject({ version: 3, status: 'online' });
    expect((await apiRule(url, 'failed_logins')).condition.sequence?.pattern[0]?.times).toBe(4);

    expect(ok<RuleBody>(await rules('delete', 'failed_logins')).id).toBe('failed_logins');
    expect((await api(url, '/v1/rules/failed_logins')).status).toBe(404);
    expect(await ruleStatuses(url)).toEqual({});
    refused(await rules('get', 'failed_logins'), 'PRT_DEF_NOT_FOUND');
  }, 180_000);

  it('exports every definition to a file and imports it into a fresh server: same rules, versions and statuses', async () => {
    const first = await startServer();
    const run = async (...args: string[]): Promise<Run> => portrait([...args, '--url', first]);
    ok(await run('rules', 'create', fixture('rule-failed-logins.json')));
    ok(await run('rules', 'update', 'failed_logins', fixture('rule-failed-logins-v2.json')));
    ok(await run('rules', 'start', 'failed_logins'));
    ok(await run('rules', 'create', fixture('rule-big-spender.json')));
    ok(await run('rules', 'start', 'big_spender'));
    ok(await run('rules', 'stop', 'big_spender'));
    ok(await run('tags', 'create', fixture('one-tag.json')));
    ok(await run('tags', 'online', 'logins_10m'));
    const statuses = await ruleStatuses(first);
    expect(statuses).toEqual({ failed_logins: 'online', big_spender: 'offline' });

    const file = join(await tempDir(), 'definitions.json');
    expect(ok(await run('definitions', 'export', file))).toEqual({ file, revision: expect.any(Number), tags: 1, rules: 2 });
    const exported = JSON.parse(await readFile(file, 'utf8')) as {
      format: string;
      definitions: Array<{ kind: string; id: string; status: string; versions: Array<{ version: number }> }>;
    };
    expect(exported.format).toBe('portrait-definitions');
    const byId = new Map(exported.definitions.map((d) => [d.id, d]));
    expect(byId.get('failed_logins')).toMatchObject({ kind: 'rule', status: 'online' });
    expect(byId.get('failed_logins')!.versions.map((v) => v.version)).toEqual([1, 2]);
    expect(byId.get('big_spender')).toMatchObject({ kind: 'rule', status: 'offline' });
    expect(byId.get('logins_10m')).toMatchObject({ kind: 'tag', status: 'online' });
    // Without FILE the document goes to stdout.
    const printed = ok<{ format: string; definitions: unknown[] }>(await run('definitions', 'export'));
    expect(printed).toMatchObject({ format: 'portrait-definitions', definitions: exported.definitions });

    const second = await startServer();
    const imported = ok<{ created: string[]; updated: string[] }>(await portrait(['definitions', 'import', file, '--url', second]));
    expect(imported.created.sort()).toEqual(['rule:big_spender', 'rule:failed_logins', 'tag:logins_10m']);
    expect(imported.updated).toEqual([]);
    expect(await ruleStatuses(second)).toEqual(statuses);
    const copy = await apiRule(second, 'failed_logins');
    expect(copy).toMatchObject({ status: 'online', runtime: { state: 'running' } });
    expect(copy.condition.sequence?.pattern[0]?.times).toBe(5);
    // The version history comes along: the same versions under the same numbers.
    expect(copy.version).toBe(2);
    expect((await api(second, '/v1/rules/failed_logins/versions')).body).toEqual((await api(first, '/v1/rules/failed_logins/versions')).body);
    expect(await apiRule(second, 'big_spender')).toMatchObject({ status: 'offline', runtime: { state: 'stopped' } });
    expect((await api(second, '/v1/tags/logins_10m')).body).toMatchObject({ status: 'online' });

    // Importing the same document again changes nothing.
    expect(ok(await portrait(['definitions', 'import', file, '--url', second]))).toEqual({ created: [], updated: [], statusChanged: [], diverged: [] });
    // And the export validates offline, one line per definition.
    const checked = await portrait(['validate', file]);
    expect(checked.code).toBe(0);
    expect(checked.stdout).toMatch(/^ok\s+\S*definitions\.json#\/definitions\/\d \(rule "failed_logins"\)$/m);
    expect(checked.stdout).toMatch(/^ok\s+\S*definitions\.json#\/definitions\/\d \(tag "logins_10m"\)$/m);
  }, 180_000);

  it('prints a refusal with its code and field paths on stderr and exits with 1', async () => {
    const url = await startServer();
    const run = (...args: string[]): Promise<Run> => portrait([...args, '--url', url]);

    const invalid = await run('rules', 'create', fixture('bad-rule.json'));
    refused(invalid, 'PRT_DEF_INVALID', ['/condition/all/1/aggregate/window/size', '/condition/all/2/sequence/pattern/0/eventTypes/0']);
    expect(invalid.stderr).toContain('"no_such_event"');
    expect((await api(url, '/v1/rules/bad_rule')).status).toBe(404);

    ok(await run('rules', 'create', fixture('rule-failed-logins.json')));
    refused(await run('rules', 'create', fixture('rule-failed-logins.json')), 'PRT_DEF_EXISTS');
    refused(await run('rules', 'update', 'failed_logins', fixture('rule-big-spender.json')), 'PRT_DEF_INVALID', ['/id']);
    refused(await run('rules', 'stop', 'failed_logins'), 'PRT_DEF_BAD_TRANSITION', ['/status']);
    expect(await apiRule(url, 'failed_logins')).toMatchObject({ version: 1, status: 'draft' });

    const dir = await tempDir();
    const notExport = join(dir, 'not-export.json');
    await writeFile(notExport, JSON.stringify({ format: 'something-else', definitions: [] }));
    refused(await run('definitions', 'import', notExport), 'PRT_DEF_INVALID', ['/format']);
    const brokenExport = join(dir, 'broken-export.json');
    const bad = JSON.parse(await readFile(fixture('bad-rule.json'), 'utf8')) as unknown;
    await writeFile(brokenExport, JSON.stringify({ format: 'portrait-definitions', formatVersion: 1, definitions: [{ kind: 'rule', id: 'bad_rule', status: 'online', versions: [{ version: 1, document: bad }] }] }));
    // The path points into the import document, down to the field of the rule.
    refused(await run('definitions', 'import', brokenExport), 'PRT_DEF_INVALID', [/^\/definitions\/0\/.*\/condition\/all\/1\/aggregate\/window\/size$/]);
    expect(await ruleStatuses(url)).toEqual({ failed_logins: 'draft' });
  }, 120_000);

  it('refuses a wrong command line with exit code 2 before calling the server', async () => {
    const url = 'http://127.0.0.1:9'; // nothing is sent: each line below is refused first
    for (const [args, message] of [
      [['rules', 'get'], 'rules get needs an ID'],
      [['rules', 'create'], 'rules create needs a FILE'],
      [['rules', 'update', 'failed_logins'], 'rules update needs a FILE'],
      [['rules', 'frobnicate'], 'unknown rules subcommand "frobnicate"'],
      [['definitions', 'import'], 'definitions import needs a FILE'],
      [['definitions', 'publish'], 'unknown definitions subcommand "publish"'],
      [['rules', 'create', fixture('no-such-file.json')], 'no-such-file.json'],
    ] as const) {
      const run = await portrait([...args, '--url', url]);
      expect([args, run.code]).toEqual([args, 2]);
      expect(run.stderr).toContain(message);
      expect(run.stderr).not.toMatch(/\n\s+at /);
    }
    const notJson = join(await tempDir(), 'rule.json');
    await writeFile(notJson, '{ "id": ');
    const parse = await portrait(['rules', 'create', notJson, '--url', url]);
    expect(parse.code).toBe(2);
    expect(parse.stderr).toContain(`PRT_DEF_INVALID: ${notJson} is not valid JSON`);
    const badUrl = await portrait(['rules', 'list', '--url', 'localhost:8080']);
    expect(badUrl.code).toBe(2);
    expect(badUrl.stderr).toContain('"localhost:8080"');
    const badTimeout = await portrait(['rules', 'list', '--url', url, '--timeout', 'soon']);
    expect(badTimeout.code).toBe(2);
    expect(badTimeout.stderr).toContain('--timeout must be a positive whole number of milliseconds, got "soon"');
  });
});

describe('talking to a server that is not there', () => {
  const listen = (server: Server): Promise<number> =>
    new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as { port: number }).port)));
  const close = (server: Server): Promise<void> => new Promise((resolve) => server.close(() => resolve()));

  it('a server that never answers: PRT_SERVING_TIMEOUT after --timeout, exit code 2', async () => {
    const sockets = new Set<Socket>();
    const silent = createServer((socket) => sockets.add(socket));
    const port = await listen(silent);
    try {
      const started = Date.now();
      const run = await portrait(['rules', 'list', '--url', `http://127.0.0.1:${port}`, '--timeout', '300'], {}, 20_000);
      expect(run.code).toBe(2);
      expect(run.stderr).toContain('PRT_SERVING_TIMEOUT');
      expect(run.stderr).toContain('no answer within 300 ms');
      expect(Date.now() - started).toBeLessThan(15_000);
      const exported = await portrait(['definitions', 'export', '--url', `http://127.0.0.1:${port}`, '--timeout', '300'], {}, 20_000);
      expect(exported.code).toBe(2);
      expect(exported.stderr).toContain('PRT_SERVING_TIMEOUT');
    } finally {
      for (const s of sockets) s.destroy();
      await close(silent);
    }
  });

  it('nothing listening: a message naming the address, exit code 2, no stack trace', async () => {
    const probe = createServer();
    const port = await listen(probe);
    await close(probe);
    const run = await portrait(['rules', 'list', '--url', `http://127.0.0.1:${port}`]);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain(`cannot reach the server at http://127.0.0.1:${port}`);
    expect(run.stderr).toContain('ECONNREFUSED');
    expect(run.stderr).not.toMatch(/\n\s+at /);
  });
});

describe('portrait validate: rule documents', () => {
  it('accepts a valid rule file with exit code 0', async () => {
    const run = await portrait(['validate', fixture('rule-failed-logins.json')]);
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/^ok\s+\S*rule-failed-logins\.json \(rule "failed_logins"\)\n$/);
  });

  it('reports every problem of an invalid rule file with its path, with exit code 1', async () => {
    const run = await portrait(['validate', fixture('bad-rule.json')]);
    expect(run.code).toBe(1);
    expect(run.stdout).toMatch(/^error\s+\S*bad-rule\.json: PRT_DEF_INVALID rule "bad_rule" /m);
    const paths = [...run.stdout.matchAll(/^\s+(\/\S*) /gm)].map((m) => m[1]);
    expect(paths.sort()).toEqual(['/condition/all/1/aggregate/window/size', '/condition/all/2/sequence/pattern/0/eventTypes/0']);
  });

  it('tells rules from tags in one array, and names an expression error by its path', async () => {
    const tag = JSON.parse(await readFile(fixture('one-tag.json'), 'utf8')) as unknown;
    const rule = JSON.parse(await readFile(fixture('rule-big-spender.json'), 'utf8')) as Record<string, unknown>;
    const badWhere = JSON.parse(await readFile(fixture('rule-failed-logins.json'), 'utf8')) as { condition: { sequence: { pattern: Array<{ where: string }> } } };
    badWhere.condition.sequence.pattern[0]!.where = 'event.attrs.success ==';
    const file = join(await tempDir(), 'mixed.json');
    await writeFile(file, JSON.stringify([tag, rule, badWhere]));
    const run = await portrait(['validate', file]);
    expect(run.code).toBe(1);
    expect(run.stdout).toMatch(/^ok\s+\S*mixed\.json\[0\] \(tag "logins_10m"\)$/m);
    expect(run.stdout).toMatch(/^ok\s+\S*mixed\.json\[1\] \(rule "big_spender"\)$/m);
    expect(run.stdout).toMatch(/^error\s+\S*mixed\.json\[2\]: PRT_DEF_EXPRESSION /m);
    expect(run.stdout).toMatch(/^\s+\/condition\/sequence\/pattern\/0\/where /m);
  });
});
