/**
 * The plugin conformance suite (`xsim plugin test`): what xsim promises of an
 * accelerator plugin, checked on a simulation of its own. runConformance()
 * returns a typed report (a row per check); conformanceTable() prints it.
 */
export { runConformance, CHECKS, CHECK_IDS } from './runner.ts';
export { conformanceTable } from './format.ts';
export type { Check, CheckContext, CheckResult, CheckStatus, ConformanceOptions, ConformanceReport, PluginUnderTest, Verdict } from './types.ts';
