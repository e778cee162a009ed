// A partition process's entry (`xsim run --partitions local` starts one per
// partition, no shell): a child process does not inherit the TypeScript loader
// of its parent, so register tsx here, then load the partition's code.
import { register } from 'tsx/esm/api';

register();
await import(new URL('./child.ts', import.meta.url).href);
