/**
 * How far V8 lets the old generation grow between full garbage collections, for `serve`.
 *
 * Measured on Node 20 (V8 11.3), 500 CT instances of 0.5 MB into the embedded default: after
 * each full GC, V8's own heuristics set the next old-generation limit only about 12 MB above
 * the ~30 MB that stays live. That is less than one semi-space of the young generation (up to
 * 16 MB), and V8 starts incremental marking as soon as the room left under the limit is smaller
 * than the young generation (Heap::IncrementalMarkingLimitReached, "soft limit"). So it starts
 * at once after every full GC: while instances arrive, a full GC ran every ~70 ms, and marking
 * and sweeping took 40–60 % of the process's CPU. With the growing factor fixed at 2 (the limit
 * one live heap above the live heap), the same send ran 1–3 full GCs instead of ~70.
 *
 * An operator who passes `--heap-growing-percent` (on the command line or in NODE_OPTIONS)
 * keeps theirs. The flag is one of V8's GC heuristics, read each time a limit is computed, so
 * setting it after start takes effect from the next full GC (test/integration/heap-growth.test.ts
 * counts the full GCs of a send through the real CLI).
 */
import { setFlagsFromString } from 'node:v8';

/** Old-generation growth between full GCs, in percent of the live heap (factor 2). */
export const HEAP_GROWING_PERCENT = 100;

const FLAG = /--heap[-_]growing[-_]percent/;

/**
 * Sets the growing factor unless the operator set one. Returns the percent it set, or undefined
 * when the operator's flag stands.
 */
export function setHeapGrowth(
  execArgv: readonly string[] = process.execArgv,
  nodeOptions: string | undefined = process.env.NODE_OPTIONS,
): number | undefined {
  if (execArgv.some((a) => FLAG.test(a)) || FLAG.test(nodeOptions ?? '')) return undefined;
  setFlagsFromString(`--heap-growing-percent=${HEAP_GROWING_PERCENT}`);
  return HEAP_GROWING_PERCENT;
}
