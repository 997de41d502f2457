import { defineConfig } from 'vitest/config';

// Tests import workspace packages through the `@bevzoo/source` export condition, so they run
// against the TypeScript sources without a build.
const conditions = ['@bevzoo/source', 'module', 'node', 'import', 'default'];

export default defineConfig({
  resolve: { conditions },
  ssr: { resolve: { conditions, externalConditions: ['node'] } },
  test: {
    include: ['packages/**/src/**/*.test.ts', 'apps/**/src/**/*.test.ts', 'tests/**/*.test.ts', 'examples/**/src/**/*.test.ts'],
    exclude: ['**/node_modules/**', '**/dist/**'],
    testTimeout: 120_000,
    hookTimeout: 300_000,
    pool: 'forks',
    maxWorkers: 2,
    // Two test files run at once on the 2-core CI machine: one kernel thread each (libtorch's OpenMP threads of two
    // processes would otherwise compete for the cores). Tests that need more threads ask for them explicitly.
    env: { BEVZOO_THREADS: '1' },
    reporters: ['default'],
    // A temporary folder per run (TMPDIR), removed at the end: nothing the tests write is left in /tmp.
    globalSetup: ['./scripts/vitest-tmpdir.ts'],
  },
});
