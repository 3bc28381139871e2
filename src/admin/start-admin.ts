/**
 * Wires the admin endpoints to a running gateway's parts: readiness from store.ping() and
 * index.ping(), liveness from the embedded PostgreSQL's supervisor, the status report, the
 * scrape-time gauges. Called by startGateway.
 */
import { spoolDirOf } from '../store/store-config.js';
import type { Logger } from 'pino';
import type { Config } from '../config.js';
import { OUTBOX_COUNT_CAP, type IndexReports } from '../index/index-reports.js';
import type { SupervisorHealth } from '../index/embedded-pg-supervisor.js';
import type { InstanceIndex } from '../index/instance-index.js';
import type { IngestStats } from '../ingest/ingest.js';
import type { SpoolStats } from '../ingest/spool.js';
import type { ObjectStore } from '../store/object-store.js';
import { isLoopback } from './auth.js';
import type { Metrics } from './metrics.js';
import { checkLiveness, checkReadiness, coalesce } from './readiness.js';
import { AdminServer } from './server.js';
import { buildStatusReport } from './status-report.js';

/** Each readiness check must answer within this. */
export const READINESS_TIMEOUT_MS = 2_000;

export interface AdminParts {
  cfg: Config;
  log: Logger;
  metrics: Metrics;
  store: ObjectStore;
  index: InstanceIndex;
  /** The embedded PostgreSQL's supervisor (index.type: embedded). */
  indexSupervisor?: { health(): SupervisorHealth };
  /** The bound DICOM port (the configured one may be 0). */
  dicomPort: number;
  activeAssociations: () => number;
  ingestStats: () => IngestStats;
}

export interface RunningAdmin {
  port: number;
  close(): Promise<void>;
}

/** Registers the gateway's scrape-time gauges; without the admin server too (metrics are cheap). */
export function registerGatewayGauges(
  metrics: Metrics,
  parts: { activeAssociations: () => number; reports?: Pick<IndexReports, 'outboxPending'> },
): void {
  metrics.addGauge({
    name: 'dicomgw_associations_active',
    help: 'Open DICOM connections (associations established or negotiating)',
    read: parts.activeAssociations,
  });
  const reports = parts.reports;
  if (reports) {
    metrics.addGauge({
      name: 'dicomgw_outbox_pending',
      help: `Notify deliveries waiting or in flight, over every destination (counted up to ${OUTBOX_COUNT_CAP}; NaN when the index is unreachable)`,
      read: async () => (await reports.outboxPending()).count,
    });
  }
}

/** The spool's scrape-time gauges (S3 stores, which have a spool). */
export function registerSpoolGauges(
  metrics: Metrics,
  spool: { stats: () => SpoolStats; heldFiles: () => number },
): void {
  metrics.addGauge({
    name: 'dicomgw_spool_bytes',
    help: 'Bytes in the local spool, acknowledged and waiting for upload',
    read: () => spool.stats().bytes,
  });
  metrics.addGauge({
    name: 'dicomgw_spool_files',
    help: 'Instances in the local spool waiting for upload',
    read: () => spool.stats().files,
  });
  metrics.addGauge({
    name: 'dicomgw_spool_oldest_age_seconds',
    help: 'Age of the oldest instance waiting in the spool',
    read: () => spool.stats().oldestAgeSeconds,
  });
  metrics.addGauge({
    name: 'dicomgw_spool_held_files',
    help: 'Spool files not uploaded because they no longer hold the acknowledged bytes (spool.file_mismatch)',
    read: spool.heldFiles,
  });
}

export async function startAdmin(p: AdminParts): Promise<RunningAdmin> {
  const startedAt = new Date();
  registerGatewayGauges(p.metrics, {
    activeAssociations: p.activeAssociations,
    reports: p.index,
  });
  const a = p.cfg.admin;
  const server = new AdminServer({
    host: a.host,
    port: a.port,
    token: a.token,
    metrics: p.metrics,
    readiness: coalesce(() =>
      checkReadiness(
        {
          store: () => p.store.ping(),
          index: async () => {
            const state = p.indexSupervisor?.health().state;
            if (state === 'restarting' || state === 'failed')
              throw new Error(`the embedded PostgreSQL is ${state}`);
            await p.index.ping();
          },
        },
        READINESS_TIMEOUT_MS,
      ),
    ),
    liveness: () =>
      checkLiveness({
        index: () => {
          const h = p.indexSupervisor?.health();
          return h?.state === 'failed' ? h.error : undefined;
        },
      }),
    status: () =>
      buildStatusReport({
        index: p.index,
        dicom: { aeTitle: p.cfg.dicom.aeTitle, host: p.cfg.dicom.host, port: p.dicomPort },
        store: p.store.describe(),
        spoolDir: spoolDirOf(p.cfg.store),
        reconcileSource: p.cfg.reconcile.enabled ? p.cfg.reconcile.source : undefined,
        runtime: () => ({
          startedAt: startedAt.toISOString(),
          uptimeSeconds: Math.round((Date.now() - startedAt.getTime()) / 100) / 10,
          pid: process.pid,
          activeAssociations: p.activeAssociations(),
          ingest: { ...p.ingestStats() },
        }),
      }),
    log: p.log,
  });
  const port = await server.listen();
  if (!a.token && !isLoopback(a.host) && a.host !== 'localhost') {
    p.log.warn(
      { event: 'admin.no_token', host: a.host },
      'admin endpoints listen beyond loopback without admin.token: only loopback clients are served',
    );
  }
  p.log.info(
    { event: 'admin.started', host: a.host, port, auth: a.token ? 'token' : 'loopback-only' },
    `admin endpoints on http://${a.host}:${port}/ (healthz, readyz, metrics, status)`,
  );
  return {
    port,
    close: () => server.close(),
  };
}
