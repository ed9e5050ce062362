import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    // See src/stores/lmdb/lmdb-store.ts: array buffers swept on the main thread, set before any test code runs.
    poolOptions: { forks: { execArgv: ['--no-concurrent-array-buffer-sweeping'] } },
    reporters: ['default'],
  },
});
