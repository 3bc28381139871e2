/**
 * When a failed delivery is tried again: exponential backoff with full jitter (the delay is
 * drawn uniformly from [base/2, base], base = initial * 2^(attempt-1) capped at max), so the
 * deliveries that failed together when a destination went down do not all come back at the
 * same instant. Pure: `random` is injectable for the tests.
 */
export interface BackoffOptions {
  initialMs: number;
  maxMs: number;
}

/** Delay before the next attempt, after `attempts` attempts (>= 1) have failed. */
export function backoffDelayMs(
  attempts: number,
  o: BackoffOptions,
  random: () => number = Math.random,
): number {
  const exp = Math.min(Math.max(attempts, 1) - 1, 40);
  const base = Math.min(o.maxMs, o.initialMs * 2 ** exp);
  // Half fixed, half jitter: never sooner than base/2, so the growth still shows.
  return Math.round(base / 2 + (random() * base) / 2);
}
