import { defineConfig } from 'vitest/config';
import type { Reporter, TestModule } from 'vitest/node';
import { skippedSummary, type MissingTool } from './test/tools.ts';

/**
 * Prints once, after the run's own summary, which test files had tests skipped
 * for a missing outside tool (test/tools.ts needs()), and one apt-get line for
 * all of them. Workers record the missing tools in each skipped test's meta.
 */
class ToolSkipSummary implements Reporter {
  onTestRunEnd(testModules: ReadonlyArray<TestModule>): void {
    const byFile = new Map<string, MissingTool[]>();
    for (const m of testModules) {
      for (const t of m.children.allTests('skipped')) {
        const missing = t.meta().missingTools;
        if (missing?.length) byFile.set(m.relativeModuleId, [...(byFile.get(m.relativeModuleId) ?? []), ...missing]);
      }
    }
    const text = skippedSummary(byFile);
    if (text) console.log(text);
  }
}

export default defineConfig({
  test: {
    include: ['packages/*/test/**/*.test.ts', 'test/**/*.test.ts', 'bench/**/*.test.ts'],
    // Each test file may start several worker threads of its own; on a 2-core
    // machine running files in parallel would oversubscribe the cores.
    fileParallelism: false,
    testTimeout: 60_000,
    hookTimeout: 60_000,
    reporters: ['default', new ToolSkipSummary()],
  },
});
