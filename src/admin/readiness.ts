/**
 * Readiness: can this gateway store an instance now? Both the object store and the index must
 * answer, each within a deadline: a dependency that hangs is as unready as one that refuses
 * (a load balancer or orchestrator then sends senders elsewhere, and they retry).
 *
 * Liveness: is this process still of use, now or once it has recovered by itself? It is not when
 * a part has given up for good (the embedded PostgreSQL's supervisor after its last restart
 * attempt): restarting the process is then the remedy, and /healthz answers 503 to ask an
 * orchestrator for it. A dependency that is merely down (an external PostgreSQL, the bucket)
 * fails readiness only: restarting the gateway would not bring it back any sooner.
 */
import { withTimeout } from '../timeout.js';

export interface CheckResult {
  ok: boolean;
  ms: number;
  error?: string;
}

export interface ReadinessReport {
  ready: boolean;
  checks: Record<string, CheckResult>;
}

export type Check = () => Promise<void>;

export interface LivenessReport {
  live: boolean;
  /** What gave up, when not live. */
  error?: string;
}

/** Returns why the part can no longer recover, or undefined while it can. Synchronous: no I/O. */
export type LivenessCheck = () => string | undefined;

export function checkLiveness(checks: Record<string, LivenessCheck>): LivenessReport {
  const dead = Object.entries(checks).flatMap(([name, check]) => {
    const why = check();
    return why === undefined ? [] : [`${name}: ${why}`];
  });
  return dead.length ? { live: false, error: dead.join('; ') } : { live: true };
}

/** Runs every check at once; each fails on its own deadline. */
export async function checkReadiness(
  checks: Record<string, Check>,
  timeoutMs: number,
): Promise<ReadinessReport> {
  const entries = await Promise.all(
    Object.entries(checks).map(
      async ([name, check]) => [name, await run(check, timeoutMs)] as const,
    ),
  );
  return { ready: entries.every(([, r]) => r.ok), checks: Object.fromEntries(entries) };
}

async function run(check: Check, timeoutMs: number): Promise<CheckResult> {
  const t0 = performance.now();
  try {
    await withTimeout(check, timeoutMs, () => {
      throw new Error(`no answer within ${timeoutMs} ms`);
    });
    return { ok: true, ms: elapsed(t0) };
  } catch (err) {
    return { ok: false, ms: elapsed(t0), error: err instanceof Error ? err.message : String(err) };
  }
}

function elapsed(t0: number): number {
  return Math.round((performance.now() - t0) * 10) / 10;
}

/**
 * One check at a time: requests arriving while one runs share its result, so a burst of probes
 * costs the store and the database one round trip, not one each.
 */
export function coalesce<T>(fn: () => Promise<T>): () => Promise<T> {
  let inFlight: Promise<T> | undefined;
  return () => {
    inFlight ??= fn().finally(() => {
      inFlight = undefined;
    });
    return inFlight;
  };
}
