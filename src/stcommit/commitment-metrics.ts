/**
 * Gauges of Storage Commitment transactions by state, read from the index at scrape time (one
 * query per scrape, shared by the four gauges), and the worker's counters.
 */
import type { Metrics } from '../admin/metrics.js';
import type { CommitmentCounts, CommitmentTransactions } from '../index/commitment-transactions.js';
import type { CommitmentStats } from './commitment-service.js';

export function registerCommitmentMetrics(
  metrics: Metrics,
  store: Pick<CommitmentTransactions, 'commitmentCounts'>,
  stats: CommitmentStats,
): void {
  let last: { at: number; counts: Promise<CommitmentCounts> } | undefined;
  const counts = (): Promise<CommitmentCounts> => {
    if (!last || Date.now() - last.at > 1000) {
      last = { at: Date.now(), counts: store.commitmentCounts() };
    }
    return last.counts;
  };
  const gauge = (key: keyof CommitmentCounts, help: string): void =>
    metrics.addGauge({
      name: `dicomgw_commitment_${key}`,
      help,
      read: async () => (await counts())[key],
    });
  gauge('pending', 'Storage commitment transactions not reported yet');
  gauge('committed', 'Storage commitment transactions reported with every instance committed');
  gauge('failed', 'Storage commitment transactions reported with failed instances');
  gauge('abandoned', 'Storage commitment transactions whose report could not be delivered');
  metrics.addCounter({
    name: 'dicomgw_commitment_requests_total',
    help: 'N-ACTION storage commitment requests accepted by this process',
    read: () => stats.requested,
  });
  metrics.addCounter({
    name: 'dicomgw_commitment_refused_total',
    help: 'N-ACTION storage commitment requests refused (malformed) by this process',
    read: () => stats.refused,
  });
  metrics.addCounter({
    name: 'dicomgw_commitment_report_failures_total',
    help: 'Report deliveries that failed (retried with backoff) in this process',
    read: () => stats.deliveryFailures,
  });
}
