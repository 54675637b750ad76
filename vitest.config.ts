import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 60_000,
    // Multi-process tests share 2 cores: files run one at a time unless scripts/run-tests.mjs says
    // otherwise for the end-to-end files that can share them (each file in its own scope).
    fileParallelism: false,
    setupFiles: ['test/helpers/scope.ts', 'test/helpers/remove-temp-dirs.ts'],
  },
});
