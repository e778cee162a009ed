/**
 * `xsim` (Xen's xl): argument parsing, one command table, formatting. The
 * library it calls is @xsim/toolstack (and @xsim/bench for the benchmarks);
 * import those, not this, from code.
 */
export { manageCommand } from './commands/manage.ts';
export { domainCommand, DOMAIN_USAGE } from './commands/domain.ts';
export { migrationCommand } from './commands/migration.ts';
