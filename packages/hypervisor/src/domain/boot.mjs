// Piscina worker entry. Workers do not inherit the TypeScript loader of the
// process (or of vitest) that started them, so register tsx here, then load
// the real task module.
import { register } from 'tsx/esm/api';

register();
const task = await import(new URL('./task.ts', import.meta.url).href);
export default task.default;
