/**
 * Metrics of the reconcile job (src/scu/reconcile.ts): rounds by result, instances moved,
 * when a round last found everything complete, and how many studies the last round left
 * incomplete.
 */
import { Counter, Gauge } from 'prom-client';
import type { Metrics } from './metrics.js';

export const RECONCILE_RESULTS = [
  'complete',
  'incomplete',
  'failed',
  'interrupted',
  'skipped',
] as const;
export type ReconcileResult = (typeof RECONCILE_RESULTS)[number];

export interface ReconcileObserver {
  /** Instances one C-MOVE of a round brought in. */
  moved(n: number): void;
  /** A round ended; `incomplete` is its count of studies still incomplete (ended rounds only). */
  round(result: ReconcileResult, incomplete?: number): void;
}

export function registerReconcileMetrics(metrics: Metrics): ReconcileObserver {
  const registers = [metrics.registry];
  const runs = new Counter({
    name: 'dicomgw_reconcile_runs_total',
    help: 'Reconcile rounds by result (skipped: another gateway held the round)',
    labelNames: ['result'] as const,
    registers,
  });
  for (const r of RECONCILE_RESULTS) runs.inc({ result: r }, 0);
  const moved = new Counter({
    name: 'dicomgw_reconcile_instances_moved_total',
    help: 'Instances the reconcile job moved in from its source (C-MOVE sub-operations completed)',
    registers,
  });
  const lastSuccess = new Gauge({
    name: 'dicomgw_reconcile_last_success_timestamp_seconds',
    help: 'When a reconcile round last ended with every study complete (Unix time; 0: never)',
    registers,
  });
  const incomplete = new Gauge({
    name: 'dicomgw_reconcile_studies_incomplete',
    help: 'Studies the last ended reconcile round left incomplete against its source',
    registers,
  });
  return {
    moved: (n) => moved.inc(n),
    round: (result, n) => {
      runs.inc({ result });
      if (n !== undefined) incomplete.set(n);
      if (result === 'complete') lastSuccess.set(Date.now() / 1000);
    },
  };
}
