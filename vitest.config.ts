import { defineConfig } from 'vitest/config';

// Unit tests run in parallel; e2e tests spawn real sandboxes and Claude Code, so
// they run one file at a time to stay inside 2 cores.
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Generous: on a loaded 2-core machine a test of several CLI commands spends seconds per process start.
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    fileParallelism: true,
    maxWorkers: 2,
  },
});
