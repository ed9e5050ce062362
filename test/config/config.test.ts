import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { configSchema, defaultConfig, environmentSettings, loadConfig } from '../../src/config/index.js';
import { ConfigError, PortraitError } from '../../src/errors/index.js';
import { cleanup, tempDir } from '../helpers/system.js';

afterEach(cleanup);

async function configFile(content: unknown): Promise<string> {
  const dir = await tempDir('portrait-config-');
  const file = join(dir, 'portrait.json');
  await writeFile(file, typeof content === 'string' ? content : JSON.stringify(content));
  return file;
}

/** Runs `load` and returns the PortraitError it throws; fails the test when it throws nothing. */
function failure(load: () => unknown): PortraitError {
  try {
    load();
  } catch (err: unknown) {
    expect(err).toBeInstanceOf(ConfigError);
    return err as PortraitError;
  }
  expect.fail('loadConfig did not throw');
}

describe('loadConfig defaults', () => {
  it('returns the defaults when given nothing, ignoring process.env', () => {
    const before = process.env.PORT;
    process.env.PORT = '1234';
    try {
      const config = loadConfig();
      expect(config).toEqual(defaultConfig);
      expect(config.port).toBe(8080);
    } finally {
      if (before === undefined) delete process.env.PORT;
      else process.env.PORT = before;
    }
  });

  it('has the documented default values', () => {
    const config = loadConfig({ env: {} });
    expect(config).toMatchObject({
      port: 8080,
      host: '127.0.0.1',
      dataDir: './data',
      partitions: 4,
      logLevel: 'info',
      demo: { enabled: false },
      log: { fsync: 'batch' },
      engine: { latePolicy: 'count', checkpointIntervalMs: 10_000 },
      serving: { maxBatchKeys: 1_000 },
    });
  });

  it('returns a deeply frozen result and keeps the exported defaults frozen too', () => {
    const config = loadConfig({ overrides: { port: 1 } });
    expect(Object.isFrozen(config)).toBe(true);
    expect(Object.isFrozen(config.engine)).toBe(true);
    expect(() => {
      (config.engine as { latePolicy: string }).latePolicy = 'apply';
    }).toThrow(TypeError);
    expect(Object.isFrozen(defaultConfig.demo)).toBe(true);
    expect(loadConfig().port).toBe(8080);
  });

  it('accepts its own defaults and every documented environment variable maps to a schema setting', () => {
    for (const [name, setting] of Object.entries(environmentSettings)) {
      const [section, leaf] = setting.path.split('.');
      const properties = configSchema.properties as Record<string, { properties?: Record<string, unknown> }>;
      const node = leaf === undefined ? properties[section!] : properties[section!]?.properties?.[leaf];
      expect(node, `${name} → ${setting.path}`).toBeDefined();
    }
  });
});

describe('loadConfig precedence: defaults < file < environment < overrides', () => {
  it('reads a file, then lets env and overrides win setting by setting', async () => {
    const file = await configFile({ port: 9001, host: '0.0.0.0', dataDir: '/from/file', engine: { latePolicy: 'apply', stateTtlMs: 5 } });
    const fileOnly = loadConfig({ file, env: {} });
    expect(fileOnly).toMatchObject({ port: 9001, host: '0.0.0.0', dataDir: '/from/file', engine: { latePolicy: 'apply', stateTtlMs: 5 } });
    // nested sections merge: settings the file does not name keep their defaults
    expect(fileOnly.engine.checkpointIntervalMs).toBe(defaultConfig.engine.checkpointIntervalMs);

    const withEnv = loadConfig({ file, env: { PORT: '9002', PORTRAIT_DATA_DIR: '/from/env', PORTRAIT_DEMO: 'true', PORTRAIT_FSYNC: 'always' } });
    expect(withEnv).toMatchObject({ port: 9002, host: '0.0.0.0', dataDir: '/from/env', demo: { enabled: true }, log: { fsync: 'always' } });

    const withOverrides = loadConfig({ file, env: { PORT: '9002', PORTRAIT_DATA_DIR: '/from/env' }, overrides: { port: 9003, 'engine.stateTtlMs': 7 } });
    expect(withOverrides).toMatchObject({ port: 9003, dataDir: '/from/env', engine: { latePolicy: 'apply', stateTtlMs: 7 } });
  });

  it('finds the file through PORTRAIT_CONFIG, and an explicit file wins over it', async () => {
    const viaEnv = await configFile({ partitions: 8 });
    const explicit = await configFile({ partitions: 2 });
    expect(loadConfig({ env: { PORTRAIT_CONFIG: viaEnv } }).partitions).toBe(8);
    expect(loadConfig({ file: explicit, env: { PORTRAIT_CONFIG: viaEnv } }).partitions).toBe(2);
  });

  it('converts every kind of environment variable and ignores empty ones', () => {
    const config = loadConfig({
      env: {
        PORT: '0',
        HOST: '::1',
        PORTRAIT_DATA_DIR: '/tmp/x',
        PORTRAIT_PARTITIONS: '16',
        PORTRAIT_LOG_LEVEL: 'debug',
        PORTRAIT_DEMO: 'off',
        PORTRAIT_DEMO_RATE: '50',
        PORTRAIT_FSYNC: 'none',
        PORTRAIT_CHECKPOINT_INTERVAL_MS: '500',
        PORTRAIT_PARTITION: '99', // not a setting: ignored
      },
    });
    expect(config).toMatchObject({ port: 0, host: '::1', dataDir: '/tmp/x', partitions: 16, logLevel: 'debug', demo: { enabled: false, eventsPerSecond: 50 }, log: { fsync: 'none' }, engine: { checkpointIntervalMs: 500 } });
    expect(loadConfig({ env: { PORT: '', PORTRAIT_DATA_DIR: '' } })).toMatchObject({ port: 8080, dataDir: './data' });
  });
});

describe('loadConfig refuses invalid values with PRT_CONFIG_INVALID naming the setting and its origin', () => {
  it('PORT=abc', () => {
    const err = failure(() => loadConfig({ env: { PORT: 'abc' } }));
    expect(err.code).toBe('PRT_CONFIG_INVALID');
    expect(err).toMatchObject({ subject: 'port', path: '/port' });
    expect(err.message).toContain('"port"');
    expect(err.message).toContain('environment variable PORT');
    expect(err.message).toContain('"abc"');
  });

  it('PORT=70000 (out of range) and PORT=80.5 (not an integer)', () => {
    for (const value of ['70000', '80.5', '-1']) {
      const err = failure(() => loadConfig({ env: { PORT: value } }));
      expect(err.code).toBe('PRT_CONFIG_INVALID');
      expect(err.path).toBe('/port');
      expect(err.message).toContain('environment variable PORT');
    }
  });

  it('a nested setting from the environment', () => {
    const err = failure(() => loadConfig({ env: { PORTRAIT_CHECKPOINT_INTERVAL_MS: '10' } }));
    expect(err).toMatchObject({ code: 'PRT_CONFIG_INVALID', path: '/engine/checkpointIntervalMs' });
    expect(err.message).toContain('"engine.checkpointIntervalMs"');
    expect(err.message).toContain('environment variable PORTRAIT_CHECKPOINT_INTERVAL_MS');
  });

  it('a boolean variable that is not one', () => {
    const err = failure(() => loadConfig({ env: { PORTRAIT_DEMO: 'maybe' } }));
    expect(err).toMatchObject({ code: 'PRT_CONFIG_INVALID', path: '/demo/enabled' });
    expect(err.message).toContain('environment variable PORTRAIT_DEMO');
  });

  it('an unknown setting in the file, at the top and nested', async () => {
    const file = await configFile({ port: 9000, dataDirectory: '/x' });
    const err = failure(() => loadConfig({ file }));
    expect(err).toMatchObject({ code: 'PRT_CONFIG_INVALID', path: '/dataDirectory', subject: 'dataDirectory' });
    expect(err.message).toContain(`file ${file}`);
    expect(err.message).toContain('not a known setting');

    const nested = await configFile({ engine: { latePolicy: 'count', lateness: 5 } });
    const err2 = failure(() => loadConfig({ file: nested }));
    expect(err2).toMatchObject({ code: 'PRT_CONFIG_INVALID', path: '/engine/lateness' });
    expect(err2.message).toContain(`file ${nested}`);
  });

  it('a bad enum value, from the file and from an override', async () => {
    const file = await configFile({ logLevel: 'loud' });
    const err = failure(() => loadConfig({ file }));
    expect(err).toMatchObject({ code: 'PRT_CONFIG_INVALID', path: '/logLevel' });
    expect(err.message).toContain(`file ${file}`);
    expect(err.message).toMatch(/must be one of .*debug/);

    const err2 = failure(() => loadConfig({ file, overrides: { logLevel: 'info', 'log.fsync': 'sometimes' } }));
    expect(err2).toMatchObject({ code: 'PRT_CONFIG_INVALID', path: '/log/fsync' });
    expect(err2.message).toContain('option --log.fsync');
  });

  it('names the override that created an unknown section, not "defaults"', () => {
    const err = failure(() => loadConfig({ overrides: { 'cache.sizeMb': 5 } }));
    expect(err).toMatchObject({ code: 'PRT_CONFIG_INVALID', path: '/cache' });
    expect(err.message).toContain('option --cache.sizeMb');
  });

  it('a section of the wrong type in the file', async () => {
    const file = await configFile({ engine: 5 });
    const err = failure(() => loadConfig({ file }));
    expect(err).toMatchObject({ code: 'PRT_CONFIG_INVALID', path: '/engine' });
    expect(err.message).toContain(`file ${file}`);
    // a variable setting a setting inside it must not silently replace the bad section
    // (that dropped every other engine default)
    const err2 = failure(() => loadConfig({ file, env: { PORTRAIT_CHECKPOINT_INTERVAL_MS: '500' } }));
    expect(err2).toMatchObject({ code: 'PRT_CONFIG_INVALID', path: '/engine' });
    expect(err2.message).toContain(`file ${file}`);
  });

  it('a file that is missing, not JSON, or not an object', async () => {
    const dir = await tempDir();
    for (const file of [join(dir, 'missing.json'), await configFile('{ "port": '), await configFile([1, 2])]) {
      const err = failure(() => loadConfig({ file }));
      expect(err.code).toBe('PRT_CONFIG_INVALID');
      expect(err.subject).toBe(file);
      expect(err.message).toContain(file);
    }
  });

  it('reports the value that is wrong, not a later valid one', async () => {
    // the env value is valid, so the file's invalid one is replaced and nothing fails
    const file = await configFile({ port: 'eighty' });
    expect(loadConfig({ file, env: { PORT: '81' } }).port).toBe(81);
    const err = failure(() => loadConfig({ file, env: {} }));
    expect(err.message).toContain(`file ${file}`);
  });
});
