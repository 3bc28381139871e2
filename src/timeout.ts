/**
 * A bound on a wait whose work takes no AbortSignal (a readiness check, a gauge read, opening a
 * stream). Work that takes a signal gets `AbortSignal.timeout(ms)` instead, and a plain pause is
 * `setTimeout` from node:timers/promises: neither needs a helper.
 */
import { setTimeout as delay } from 'node:timers/promises';

/**
 * What `work` settles to, or, if `ms` pass first, what `onTimeout` returns or throws. The timer
 * is cancelled either way. The work itself goes on after a timeout (its result is dropped):
 * `onTimeout` is where to release what it holds.
 */
export async function withTimeout<T>(
  work: () => T | Promise<T>,
  ms: number,
  onTimeout: () => T | Promise<T>,
): Promise<T> {
  const cancel = new AbortController();
  // Rejects with an AbortError once cancelled; Promise.race has handled it by then.
  const late = delay(ms, undefined, { signal: cancel.signal }).then(onTimeout);
  try {
    return await Promise.race([Promise.resolve().then(work), late]);
  } finally {
    cancel.abort();
  }
}
