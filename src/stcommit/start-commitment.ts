import type { Logger } from 'pino';
import type { Metrics } from '../admin/metrics.js';
import type { Config } from '../config.js';
import type { InstanceIndex } from '../index/instance-index.js';
import { registerCommitmentMetrics } from './commitment-metrics.js';
import { CommitmentService } from './commitment-service.js';
import { ReportSender } from './report-sender.js';

/** The Storage Commitment service of `serve`, started when `storageCommitment.enabled`. */
export function startCommitment(
  cfg: Config,
  index: InstanceIndex,
  metrics: Metrics,
  log: Logger,
  /** The uploader's count of instances uploaded (S3 stores), to wake on. */
  progress?: () => number,
): CommitmentService | undefined {
  const c = cfg.storageCommitment;
  if (!c.enabled) return undefined;
  const service = new CommitmentService({
    config: c,
    store: index.commitments,
    sender: new ReportSender({
      peers: cfg.dicom.peers,
      timeoutMs: c.timeoutSeconds * 1000,
      implementationClassUid: cfg.dicom.implementationClassUid,
      implementationVersionName: cfg.dicom.implementationVersionName,
    }),
    log: log.child({ component: 'commitment' }),
    progress,
  });
  registerCommitmentMetrics(metrics, index.commitments, service.stats);
  service.start();
  return service;
}
