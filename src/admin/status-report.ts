/**
 * The status report: what /status answers and `dicom-gateway status` prints. The `gateway`
 * part exists only when a running gateway answers (the command reads the database alone).
 */
import { readSpoolStats, type SpoolStats } from '../ingest/spool.js';
import { readFileSync } from 'node:fs';
import type { IngestStats } from '../ingest/ingest.js';
import type { IndexReports, IndexSummary } from '../index/index-reports.js';
import type { DeliveryCounts, OutboxDeliveries } from '../index/outbox-deliveries.js';
import type { CommitmentCounts, CommitmentTransactions } from '../index/commitment-transactions.js';
import type { BackfillRunSummary, BackfillRuns } from '../index/backfill-runs.js';

export interface GatewayRuntime {
  startedAt: string;
  uptimeSeconds: number;
  pid: number;
  /** Open DICOM connections, established or still negotiating. */
  activeAssociations: number;
  ingest: IngestStats;
}

export interface StatusReport {
  version: string;
  generatedAt: string;
  dicom: { aeTitle: string; host: string; port: number };
  store: string;
  /** S3 stores: the local spool (acknowledged instances waiting for upload). */
  spool?: SpoolStats & { dir: string };
  gateway?: GatewayRuntime;
  /** The summary, or why it could not be read (the rest of the report is still useful). */
  index: IndexSummary | { error: string };
  /** Per notify destination that has claimed events: pending and dead deliveries. */
  notify?: DeliveryCounts[] | { error: string };
  /** Storage Commitment transactions by state (docs/storage-commitment.md). */
  storageCommitment?: CommitmentCounts | { error: string };
  /**
   * The reconcile job's source (when enabled) and the latest run against it: a reconcile
   * round, or a `backfill` command of the same source. No `lastRun`: none yet.
   */
  reconcile?: { source: string; lastRun?: BackfillRunSummary } | { error: string };
}

let cachedVersion: string | undefined;

/** The package version; package.json is one level above src/ and dist/ alike. */
export function gatewayVersion(): string {
  if (cachedVersion === undefined) {
    try {
      const pkg = JSON.parse(
        readFileSync(new URL('../../package.json', import.meta.url), 'utf8'),
      ) as { version?: unknown };
      cachedVersion = typeof pkg.version === 'string' ? pkg.version : 'unknown';
    } catch {
      cachedVersion = 'unknown';
    }
  }
  return cachedVersion;
}

export async function readIndexSummary(
  index: Pick<IndexReports, 'summary'>,
): Promise<IndexSummary | { error: string }> {
  try {
    return await index.summary();
  } catch (err) {
    return failure(err);
  }
}

/** A part of the report that could not be read: why (the rest of the report still is). */
function failure(err: unknown): { error: string } {
  return { error: err instanceof Error ? err.message : String(err) };
}

export async function buildStatusReport(o: {
  index: Pick<IndexReports, 'summary'> &
    Partial<Pick<OutboxDeliveries, 'deliveryCounts'>> & {
      commitments?: Pick<CommitmentTransactions, 'commitmentCounts'>;
    } & Partial<Pick<BackfillRuns, 'lastBackfillRun'>>;
  /** `reconcile.source` when the job is enabled. */
  reconcileSource?: string;
  dicom: StatusReport['dicom'];
  store: string;
  spoolDir?: string;
  runtime?: () => GatewayRuntime;
}): Promise<StatusReport> {
  const [index, spool, notify, storageCommitment, reconcile] = await Promise.all([
    readIndexSummary(o.index),
    o.spoolDir ? readSpoolStats(o.spoolDir).then((s) => ({ dir: o.spoolDir!, ...s })) : undefined,
    o.index.deliveryCounts?.().catch(failure),
    o.index.commitments?.commitmentCounts().catch(failure),
    readReconcile(o.index, o.reconcileSource),
  ]);
  return {
    version: gatewayVersion(),
    generatedAt: new Date().toISOString(),
    dicom: o.dicom,
    store: o.store,
    ...(spool ? { spool } : {}),
    ...(o.runtime ? { gateway: o.runtime() } : {}),
    index,
    ...(notify ? { notify } : {}),
    ...(storageCommitment ? { storageCommitment } : {}),
    ...(reconcile ? { reconcile } : {}),
  };
}

async function readReconcile(
  index: Partial<Pick<BackfillRuns, 'lastBackfillRun'>>,
  source: string | undefined,
): Promise<StatusReport['reconcile']> {
  if (source === undefined || !index.lastBackfillRun) return undefined;
  try {
    const lastRun = await index.lastBackfillRun(source);
    return { source, ...(lastRun ? { lastRun } : {}) };
  } catch (err) {
    return failure(err);
  }
}
