import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 60_000,
    // Multi-process tests share 2 cores; running files one at a time keeps timeouts honest.
    fileParallelism: false,
    setupFiles: ['test/helpers/remove-temp-dirs.ts'],
  },
});
