import { mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Logger } from 'pino';
import { Metrics } from './admin/metrics.js';
import { registerSpoolGauges, startAdmin } from './admin/start-admin.js';
import type { Config } from './config.js';
import type { InstanceIndex } from './index/instance-index.js';
import { connectIndex } from './index/open.js';
import { Ingest, type IngestOptions } from './ingest/ingest.js';
import { Spool } from './ingest/spool.js';
import { Uploader } from './ingest/uploader.js';
import { startNotify } from './notify/start-notify.js';
import type { NotifyWorker } from './notify/worker.js';
import { ScpServer } from './scp/server.js';
import { startCommitment } from './stcommit/start-commitment.js';
import type { CommitmentService } from './stcommit/commitment-service.js';
import { maskUrl } from './secrets.js';
import { FsStore } from './store/fs-store.js';
import type { ObjectStore } from './store/object-store.js';
import { S3Store } from './store/s3-store.js';

/** A running gateway: what `serve` starts and tests start in-process. */
export interface Gateway {
  port: number;
  /** The bound DICOM TLS port, when `dicom.tls` is configured. */
  tlsPort?: number;
  store: ObjectStore;
  index: InstanceIndex;
  ingest: Ingest;
  scp: ScpServer;
  /** The spool and its uploader (S3 stores only). */
  spool?: IngestOptions['spool'];
  /** Connection string of the index database (the embedded one included). */
  databaseUrl: string;
  /** Prometheus metrics; also the observer of the C-STORE path (src/admin/observer.ts). */
  metrics: Metrics;
  /** The bound admin HTTP port, when `admin.enabled`. */
  adminPort?: number;
  /** The outbox worker, when `notify.destinations` is not empty. */
  notify?: NotifyWorker;
  /** The Storage Commitment service, when `storageCommitment.enabled`. */
  commitment?: CommitmentService;
  close(): Promise<void>;
}

/** How long a shutdown waits for notify deliveries in flight (they are given back after it). */
const NOTIFY_CLOSE_MS = 5_000;

export function openStore(
  cfg: Config,
  log: Logger,
): { store: ObjectStore; name: string; prefix: string } {
  const s = cfg.store;
  if (s.type === 'fs') {
    const root = resolve(s.root);
    mkdirSync(root, { recursive: true });
    return { store: new FsStore({ root }), name: 'fs', prefix: s.prefix };
  }
  const store = new S3Store({
    endpoint: s.endpoint,
    region: s.region,
    bucket: s.bucket,
    prefix: s.prefix,
    accessKeyId: s.accessKeyId,
    secretAccessKey: s.secretAccessKey,
    // Path-style addressing for every non-AWS endpoint (RGW, MinIO, Yandex accept it).
    forcePathStyle: s.forcePathStyle ?? s.endpoint !== undefined,
    partSize: s.partSizeMiB * 1024 * 1024,
    requestTimeoutMs: s.requestTimeoutSeconds * 1000,
    logger: log.child({ component: 's3' }),
  });
  return { store, name: `s3:${s.bucket}`, prefix: s.prefix };
}

export async function startGateway(cfg: Config, log: Logger): Promise<Gateway> {
  const cleanups: Array<() => Promise<void>> = [];
  const cleanup = async (): Promise<void> => {
    for (const fn of cleanups.reverse())
      await fn().catch((err: unknown) => log.error({ err: String(err) }, 'cleanup failed'));
  };
  try {
    const { store, name, prefix } = openStore(cfg, log);
    cleanups.push(() => store.close());
    const { index, url, close: closeIndex, supervisor } = await connectIndex(cfg, log);
    cleanups.push(closeIndex);
    await store.ping();
    if (store instanceof FsStore) await store.clearStaging(log);
    await index.migrate();
    const spooling = await openSpool(cfg, store, index, log);
    if (spooling) cleanups.push(() => spooling.uploader.close(cfg.shutdown.graceSeconds * 1000));

    const metrics = new Metrics();
    if (supervisor) {
      metrics.addCounter({
        name: 'dicomgw_index_restarts_total',
        help: 'Restarts of the embedded PostgreSQL after it exited on its own',
        read: () => supervisor.health().restarts,
      });
    }
    if (spooling) {
      registerSpoolGauges(metrics, {
        stats: () => spooling.spool.stats(),
        heldFiles: () => spooling.uploader.stats.held,
      });
    }
    const ingest = new Ingest({
      observer: metrics,
      spool: spooling,
      store,
      storeName: name,
      bucket: cfg.store.type === 's3' ? cfg.store.bucket : undefined,
      prefix,
      // Without a spool (local stores) files are received beside the objects (a link stores them).
      stagingDir: store instanceof FsStore ? store.stagingDir() : undefined,
      index,
      implementationClassUid: cfg.dicom.implementationClassUid,
      implementationVersionName: cfg.dicom.implementationVersionName,
      maxInstanceBytes: cfg.dicom.maxInstanceBytes,
      duplicatePolicy: cfg.dicom.duplicatePolicy,
      sameInstanceWaitMs: cfg.dicom.sameInstanceWaitSeconds * 1000,
    });
    spooling?.uploader.yieldTo(() => ingest.receiving);
    // Closed before the index (cleanups run in reverse); deliveries in flight are given back.
    const notify = startNotify(cfg.notify, {
      store,
      deliveries: index,
      studies: index,
      openArchiveStore: (bucket) =>
        openStore(
          cfg.store.type === 's3' && bucket ? { ...cfg, store: { ...cfg.store, bucket } } : cfg,
          log,
        ).store,
      metrics,
      log: log.child({ component: 'notify' }),
      aeTitle: cfg.dicom.aeTitle,
    });
    if (notify) cleanups.push(() => notify.close(NOTIFY_CLOSE_MS));
    const commitment = startCommitment(cfg, index, metrics, log, () =>
      spooling ? spooling.uploader.stats.uploaded : 0,
    );
    if (commitment) cleanups.push(() => commitment.close());
    const scp = new ScpServer({
      host: cfg.dicom.host,
      port: cfg.dicom.port,
      policy: {
        aeTitle: cfg.dicom.aeTitle,
        aliases: cfg.dicom.aliases,
        allowedCallingAeTitles: cfg.dicom.allowedCallingAeTitles,
        acceptUnknownSopClasses: cfg.dicom.acceptUnknownSopClasses,
        storageCommitment: commitment !== undefined,
      },
      commitment,
      peers: cfg.dicom.peers,
      tls: cfg.dicom.tls,
      limits: {
        maxPduLength: cfg.dicom.maxPduLength,
        idleTimeoutMs: cfg.dicom.idleTimeoutSeconds * 1000,
        artimMs:
          Math.min(cfg.dicom.associationRequestTimeoutSeconds, cfg.dicom.idleTimeoutSeconds) * 1000,
        maxUnsentBytes: cfg.dicom.maxUnsentBytes,
        highWaterMark: 4 * cfg.dicom.maxPduLength,
      },
      maxAssociations: cfg.dicom.maxAssociations,
      maxAssociationsPerAe: cfg.dicom.maxAssociationsPerAe,
      maxPendingConnections: cfg.dicom.maxPendingConnections,
      maxPendingConnectionsPerAddress: cfg.dicom.maxPendingConnectionsPerAddress,
      implementationClassUid: cfg.dicom.implementationClassUid,
      implementationVersionName: cfg.dicom.implementationVersionName,
      handler: ingest,
      log: log.child({ component: 'scp' }),
      observer: metrics,
    });
    const port = await scp.listen();
    // The SCP goes first on close: no new instance may arrive once the store/index close.
    cleanups.push(() => scp.close(cfg.shutdown.graceSeconds * 1000));
    const admin = cfg.admin.enabled
      ? await startAdmin({
          cfg,
          log: log.child({ component: 'admin' }),
          metrics,
          store,
          index,
          indexSupervisor: supervisor,
          dicomPort: port,
          activeAssociations: () => scp.activeAssociations,
          ingestStats: () => ingest.stats,
        })
      : undefined;
    // Closed first (cleanups run in reverse): no probe or scrape meets a half-closed gateway.
    if (admin) cleanups.push(() => admin.close());
    log.info(
      {
        event: 'gateway.started',
        aeTitle: cfg.dicom.aeTitle,
        host: cfg.dicom.host,
        port,
        store: store.describe(),
        index:
          cfg.index.type === 'embedded'
            ? `embedded PostgreSQL in ${resolve(cfg.index.dataDir)}`
            : maskUrl(url),
      },
      `listening as ${cfg.dicom.aeTitle} on ${cfg.dicom.host}:${port}; objects -> ${store.describe()}`,
    );
    return {
      ...{ port, store, index, ingest, scp, spool: spooling, databaseUrl: url, close: cleanup },
      ...{ metrics, adminPort: admin?.port, tlsPort: scp.tlsPort, notify, commitment },
    };
  } catch (err) {
    await cleanup();
    throw err;
  }
}

/**
 * S3 stores get the local spool and its uploader; at start the spool is reconciled with the
 * index and multipart uploads a crash left behind are aborted.
 */
async function openSpool(
  cfg: Config,
  store: ObjectStore,
  index: InstanceIndex,
  log: Logger,
): Promise<IngestOptions['spool']> {
  const s = cfg.store;
  if (s.type !== 's3') return undefined;
  const spool = new Spool(
    resolve(s.spool.dir),
    s.spool.maxBytes,
    log.child({ component: 'spool' }),
  );
  const ready = await spool.open();
  const uploader = new Uploader({
    store,
    index,
    spool,
    concurrency: s.spool.uploadConcurrency,
    concurrencyWhileReceiving: s.spool.uploadConcurrencyWhileReceiving,
    burstBytes: s.spool.burstBytes,
    log: log.child({ component: 'uploader' }),
  });
  await uploader.recover(ready);
  if (store instanceof S3Store) {
    const olderThan = new Date(Date.now() - s.abortIncompleteUploadsAfterSeconds * 1000);
    const aborted = await store.abortIncompleteUploads(s.prefix, olderThan);
    if (aborted > 0) {
      log.warn(
        { event: 's3.incomplete_uploads_aborted', count: aborted },
        'aborted incomplete multipart uploads',
      );
    }
  }
  return { spool, uploader, ack: s.ack, uploadDeadlineMs: s.spool.uploadDeadlineSeconds * 1000 };
}
