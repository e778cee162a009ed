import { defineConfig } from 'vitest/config';

/**
 * `npm run test:unit`: the fast tier. The packages' in-process unit tests
 * only: no pCPU worker threads, no child processes, no outside tools; 10-17 s
 * on 2 cores shared with other work (load 9-13). `npm test` (vitest.config.ts) runs everything, these included.
 */
export default defineConfig({
  test: {
    include: ['packages/*/test/**/*.test.ts'],
    exclude: [
      '**/node_modules/**',
      // Starts real pCPU worker threads (ThreadRuntime) and waits on them.
      'packages/hypervisor/test/pcpu-worker.test.ts',
      // Long properties (fast-check, thousands of runs), each as long as the rest together on 2 busy cores.
      'packages/netback/test/tx.test.ts', // hostile-frontend TX property, ~18 s
      'packages/nic/test/hw-nic.test.ts', // arbitrary descriptors and mid-DMA rewrites, ~14 s
      'packages/netfront/test/netfront.test.ts', // hostile-backend property (1500 runs): 3 s on a quiet machine, 18 s on a busy one
    ],
    // Fast to start: vitest's own worker threads, and each keeps the modules it has loaded from
    // one file to the next (import is most of these files' time: ~20 s isolated, ~5 s shared, on
    // 2 busy cores). The unit tests keep no global state (no spies, no env, their own tracers);
    // `npm test` runs them isolated anyway.
    pool: 'threads',
    isolate: false,
    testTimeout: 20_000,
  },
});
