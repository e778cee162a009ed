/**
 * `xsim` (Xen's xl): argument parsing, one command table, formatting. The
 * library it calls is @xsim/toolstack (and @xsim/bench for the benchmarks);
 * import those, not this, from code.
 */
export { manageCommand, MANAGE_OBJECTS, MANAGE_USAGE } from './commands/manage.ts';
export { DOMAIN_USAGE } from './commands/domain.ts';
export { migrationCommand } from './commands/migration.ts';
