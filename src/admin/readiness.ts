/**
 * Readiness: can this gateway store an instance now? Both the object store and the index must
 * answer, each within a deadline: a dependency that hangs is as unready as one that refuses
 * (a load balancer or orchestrator then sends senders elsewhere, and they retry).
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
