import { defineConfig } from 'vitest/config';

/**
 * `npm run test:unit`: the fast tier. The packages' in-process unit tests
 * only: no pCPU worker threads, no child processes, no outside tools; about
 * 20 s on 2 cores. `npm test` (vitest.config.ts) runs everything, these included.
 */
export default defineConfig({
  test: {
    include: ['packages/*/test/**/*.test.ts'],
    exclude: [
      '**/node_modules/**',
      // Starts real pCPU worker threads (ThreadRuntime) and waits on them.
      'packages/hypervisor/test/pcpu-worker.test.ts',
      // Long properties (fast-check, thousands of runs): 9-18 s each on 2 cores.
      'packages/netback/test/tx.test.ts', // hostile-frontend TX property, ~18 s
      'packages/nic/test/hw-nic.test.ts', // arbitrary descriptors and mid-DMA rewrites, ~14 s
      'packages/netfront/test/netfront.test.ts', // hostile-backend property, ~10 s
    ],
    testTimeout: 20_000,
  },
});
