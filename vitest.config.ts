import { defineConfig } from 'vitest/config';

// Tests import the packages' compiled output (dist/), as workers and users do: `npm test` builds first.
export default defineConfig({
  test: {
    include: ['packages/*/test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Thread-mode tests start several workers each; two cores are shared with the workers.
    fileParallelism: false,
  },
});
