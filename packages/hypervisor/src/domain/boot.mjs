// Piscina worker entry: each task is one pCPU, { task, mirror }. With a
// mirror (mirror.ts: the packages' code compiled once to JavaScript) the
// worker imports that, with no loader hooks, and registers tsx only if it is
// asked for a module the mirror does not hold (loader.ts). Without one
// (XSIM_NO_BUNDLE=1, or it could not be made) it registers tsx first, as
// workers do not inherit the TypeScript loader of the process (or of vitest)
// that started them, and loads the pCPU worker module from its source.
let worker = null;

export default function boot({ task, mirror }) {
  worker ??= load(mirror);
  return worker.then((run) => run(task));
}

async function load(mirror) {
  if (mirror) {
    // Stack traces name the sources' lines, as under tsx.
    process.setSourceMapsEnabled(true);
    const loader = await import(`${mirror.out}hypervisor/src/domain/loader.mjs`);
    loader.useMirror(mirror);
    return (await import(`${mirror.out}hypervisor/src/sched/worker.mjs`)).default;
  }
  const { register } = await import('tsx/esm/api');
  register();
  return (await import(new URL('../sched/worker.ts', import.meta.url).href)).default;
}
