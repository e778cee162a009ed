/**
 * Typed counters, declared with their meaning, after Firecracker's metrics.rs.
 *
 * Every layer declares its counters once, with a kind:
 *  - drop:  a frame lost at this point (each is counted here and nowhere else);
 *  - copy:  a frame the system made on its own (a bridge flooding n ports makes n - 1);
 *  - event: something that happened (frames passed, notifications, errors seen
 *           that another layer already counted as a drop);
 *  - gauge: a level (queue length, free buffers), not a count.
 *
 * Conservation is derived from the declarations, never from a hand-kept list
 * of names: over an interval, sent <= delivered + (growth of every drop
 * counter) <= sent + (growth of every copy counter). A name may be declared by
 * several layers only with one kind, so the stats tree can be walked by name;
 * a clash is refused at declaration time.
 *
 * The registry lives in each worker (the modules it imported declared into
 * it); a domain ships its snapshot with its stats so the toolstack learns the
 * kinds of counters it never imported, such as a third-party plugin's.
 */
export type CounterKind = 'drop' | 'copy' | 'event' | 'gauge';

export interface CounterDecl {
  readonly kind: CounterKind;
  /** What one increment means. */
  readonly help: string;
}

export type CounterDecls = Record<string, CounterDecl>;
export type Counters<D extends CounterDecls> = { -readonly [K in keyof D]: number };

interface Registered {
  kind: CounterKind;
  group: string;
  help: string;
}

const registry = new Map<string, Registered>();

export class CounterClashError extends Error {
  constructor(name: string, a: Registered, b: { kind: CounterKind; group: string }) {
    super(`counter "${name}" is declared as ${a.kind} by ${a.group} and as ${b.kind} by ${b.group}: one name, one meaning`);
    this.name = 'CounterClashError';
  }
}

export class CounterGroup<D extends CounterDecls> {
  constructor(
    readonly group: string,
    readonly decls: D,
  ) {}

  /** A fresh, zeroed set of this group's counters (a plain object: cheap to bump, to copy and to pack). */
  zero(): Counters<D> {
    const out = {} as Counters<D>;
    for (const k of Object.keys(this.decls) as (keyof D)[]) out[k] = 0;
    return out;
  }

  names(kind?: CounterKind): string[] {
    return Object.entries(this.decls)
      .filter(([, d]) => kind === undefined || d.kind === kind)
      .map(([n]) => n);
  }
}

/** Declare a group of counters. Throws CounterClashError if a name already means something else. */
export function declareCounters<const D extends CounterDecls>(group: string, decls: D): CounterGroup<D> {
  for (const [name, d] of Object.entries(decls)) {
    const prev = registry.get(name);
    if (prev && prev.kind !== d.kind) throw new CounterClashError(name, prev, { kind: d.kind, group });
    if (!prev) registry.set(name, { kind: d.kind, group, help: d.help });
  }
  return new CounterGroup(group, decls);
}

/** The kind of a declared counter name, or undefined. */
export function counterKind(name: string): CounterKind | undefined {
  return registry.get(name)?.kind;
}

/** name → kind of every counter declared in this worker (what a domain ships with its stats). */
export function counterKinds(): Record<string, CounterKind> {
  const out: Record<string, CounterKind> = {};
  for (const [n, r] of registry) out[n] = r.kind;
  return out;
}

/** Every declaration, for documentation and `xsim` help: name, kind, group, meaning. */
export function counterDeclarations(): { name: string; kind: CounterKind; group: string; help: string }[] {
  return [...registry].map(([name, r]) => ({ name, ...r })).sort((a, b) => a.name.localeCompare(b.name));
}

/**
 * Merge kinds learnt from elsewhere (another worker's snapshot) into a map,
 * refusing a clash just as a declaration would.
 */
export function mergeCounterKinds(into: Map<string, CounterKind>, from: Record<string, unknown>, source: string): void {
  for (const [name, kind] of Object.entries(from)) {
    if (kind !== 'drop' && kind !== 'copy' && kind !== 'event' && kind !== 'gauge') continue;
    const prev = into.get(name);
    if (prev !== undefined && prev !== kind) {
      throw new CounterClashError(name, { kind: prev, group: 'an earlier snapshot', help: '' }, { kind, group: source });
    }
    into.set(name, kind);
  }
}
