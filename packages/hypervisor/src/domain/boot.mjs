// Piscina worker entry. Workers do not inherit the TypeScript loader of the
// process (or of vitest) that started them, so register tsx here, then load
// the pCPU worker module.
import { register } from 'tsx/esm/api';

register();
const worker = await import(new URL('../sched/worker.ts', import.meta.url).href);
export default worker.default;
