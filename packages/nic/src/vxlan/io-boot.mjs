// The VXLAN I/O thread's entry. A worker does not inherit the TypeScript
// loader of the thread that started it (the NIC's pCPU worker registered tsx
// in hypervisor's domain/boot.mjs), so register tsx here, then load the thread.
import { register } from 'tsx/esm/api';

register();
await import(new URL('./io-thread.ts', import.meta.url).href);
