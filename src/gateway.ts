import { resolve } from 'node:path';
import type { Logger } from 'pino';
import { Metrics } from './admin/metrics.js';
import { registerSpoolGauges, startAdmin } from './admin/start-admin.js';
import type { Config } from './config.js';
import type { InstanceIndex } from './index/instance-index.js';
import { startRetention, type RetentionJob } from './index/retention-job.js';
import { connectIndex } from './index/open.js';
import { defaultDestination, Ingest, type IngestOptions } from './ingest/ingest.js';
import type { SpoolOptions } from './ingest/ingest-options.js';
import { ROUTE_LAST_TAG, RoutingResolver } from './ingest/routing-resolver.js';
import { routingReload, type ReloadResult } from './ingest/routing-reload.js';
import { Spool, type SpoolStats } from './ingest/spool.js';
import { Uploader } from './ingest/uploader.js';
import { stableGateOf } from './notify/stable-gate.js';
import { startNotify } from './notify/start-notify.js';
import type { NotifyWorker } from './notify/worker.js';
import { ScpServer } from './scp/server.js';
import { startReconcile } from './scu/reconcile.js';
import { sharedSources } from './scu/source-access.js';
import { startCommitment } from './stcommit/start-commitment.js';
import type { CommitmentService } from './stcommit/commitment-service.js';
import { maskUrl } from './secrets.js';
import { FsStore } from './store/fs-store.js';
import type { ObjectStore } from './store/object-store.js';
import { openNamedStore, storeLookup, type OpenedStore } from './store/open-store.js';
import { S3Store } from './store/s3-store.js';
import { namedStores, spoolDirOf } from './store/store-config.js';
import { compileRules } from './route/compile.js';

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
  /** The routing rules in force (replaced on SIGHUP, src/cli/serve.ts). */
  routing: RoutingResolver;
  /** Re-reads the configuration file's routing rules (SIGHUP); a bad file keeps the old ones. */
  reloadRouting(): ReloadResult;
  /** The index's retention job (config `retention`); undefined when everything is kept. */
  retention: RetentionJob | undefined;
  /** Every configured store by name (`store` above is the primary one). */
  stores: ReadonlyMap<string, ObjectStore>;
  /** The spool of each S3 store, by store name. */
  spools: ReadonlyMap<string, SpoolOptions>;
  close(): Promise<void>;
}

/** How long a shutdown waits for notify deliveries in flight (they are given back after it). */
const NOTIFY_CLOSE_MS = 5_000;

export async function startGateway(
  cfg: Config,
  log: Logger,
  /** The configuration file `cfg` came from, re-read by reloadRouting() (SIGHUP). */
  source: { file?: string | undefined; env?: NodeJS.ProcessEnv } = {},
): Promise<Gateway> {
  const cleanups: Array<() => Promise<void>> = [];
  const cleanup = async (): Promise<void> => {
    for (const fn of cleanups.reverse())
      await fn().catch((err: unknown) => log.error({ err: String(err) }, 'cleanup failed'));
  };
  try {
    // Every configured store, the primary one (`default`, or the first) first.
    const opened = [...namedStores(cfg)].map(([n, s]) => openNamedStore(n, s, log));
    for (const o of opened) cleanups.push(() => o.store.close());
    const primary = opened[0]!;
    const store = primary.store;
    const { index, url, close: closeIndex, supervisor } = await connectIndex(cfg, log);
    cleanups.push(closeIndex);
    await Promise.all(opened.map((o) => o.store.ping()));
    for (const o of opened) if (o.store instanceof FsStore) await o.store.clearStaging(log);
    await index.migrate();
    // Each S3 store has its own spool and uploader.
    const spools = new Map<string, SpoolOptions>();
    for (const o of opened) {
      const spooling = await openSpool(o, index, log);
      if (!spooling) continue;
      spools.set(o.name, spooling);
      cleanups.push(async () => {
        await spooling.uploader.close(cfg.shutdown.graceSeconds * 1000);
        await spooling.spool.close();
      });
    }
    const spooling = spools.get(primary.name);

    const metrics = new Metrics();
    if (supervisor) {
      metrics.addCounter({
        name: 'dicomgw_index_restarts_total',
        help: 'Restarts of the embedded PostgreSQL after it exited on its own',
        read: () => supervisor.health().restarts,
      });
    }
    if (spools.size > 0) registerSpoolGauges(metrics, spoolTotals([...spools.values()]));
    const destinations = new Map(
      opened.map((o) => [
        o.name,
        defaultDestination({ ...o, storeName: o.name, spool: spools.get(o.name) }),
      ]),
    );
    const routing = new RoutingResolver(
      cfg.routing ? compileRules(cfg.routing) : undefined,
      destinations,
      primary.name,
    );
    const ingest = new Ingest({
      observer: metrics,
      spool: spooling,
      store,
      storeName: primary.name,
      bucket: primary.bucket,
      prefix: primary.prefix,
      // Without a spool (local stores) files are received beside the objects (a link stores them).
      stagingDir: store instanceof FsStore ? store.stagingDir() : undefined,
      index,
      implementationClassUid: cfg.dicom.implementationClassUid,
      implementationVersionName: cfg.dicom.implementationVersionName,
      maxInstanceBytes: cfg.dicom.maxInstanceBytes,
      duplicatePolicy: cfg.dicom.duplicatePolicy,
      sameInstanceWaitMs: cfg.dicom.sameInstanceWaitSeconds * 1000,
      resolveDestination: routing.resolve,
      otherDestinations: opened.length > 1,
      headerLastTag: ROUTE_LAST_TAG,
    });
    for (const s of spools.values()) s.uploader.yieldTo(() => ingest.receiving);
    const reload = routingReload({
      file: source.file,
      env: source.env ?? process.env,
      resolver: routing,
      metrics,
      log: log.child({ component: 'config' }),
    });
    // The Q/R sources (dicom.peers) the reconcile job and the stable gate call: one pool per source.
    const sources = sharedSources(cfg, log.child({ component: 'scu' }));
    // Closed before the index (cleanups run in reverse); deliveries in flight are given back.
    const notify = startNotify(cfg.notify, {
      storeFor: storeLookup(opened),
      deliveries: index,
      studies: index,
      // On the endpoint of the first S3 store (config validation makes sure there is one).
      openArchiveStore: (bucket) => {
        const s3 = opened.find((o) => o.config.type === 's3') ?? primary;
        const conf = s3.config.type === 's3' && bucket ? { ...s3.config, bucket } : s3.config;
        return openNamedStore('archive', conf, log).store;
      },
      metrics,
      log: log.child({ component: 'notify' }),
      aeTitle: cfg.dicom.aeTitle,
      gate: stableGateOf(cfg, index, sources, log.child({ component: 'notify' })),
    });
    if (notify) cleanups.push(() => notify.close(NOTIFY_CLOSE_MS));
    // The index's history (outbox, backfill runs, commitments) is written with or without
    // notify, reconcile or commitment configured here: its retention runs in any case.
    const retention = startRetention(
      cfg.retention,
      index,
      metrics,
      log.child({ component: 'index' }),
    );
    if (retention) cleanups.push(() => retention.close());
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
        admitAssociation: (a, key) => routing.admitAssociation(a, key),
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
    // After the SCP (it receives the moves), closed before it: moves in flight are cancelled.
    const reconcile = startReconcile(cfg, { index, metrics, sources, log });
    if (reconcile) cleanups.push(() => reconcile.close(cfg.shutdown.graceSeconds * 1000));
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
    const described = opened
      .map((o) => (opened.length > 1 ? `${o.name}: ${o.store.describe()}` : o.store.describe()))
      .join('; ');
    log.info(
      {
        event: 'gateway.started',
        aeTitle: cfg.dicom.aeTitle,
        host: cfg.dicom.host,
        port,
        store: described,
        ...(cfg.routing ? { routingRules: cfg.routing.rules.length } : {}),
        index:
          cfg.index.type === 'embedded'
            ? `embedded PostgreSQL in ${resolve(cfg.index.dataDir)}`
            : maskUrl(url),
      },
      `listening as ${cfg.dicom.aeTitle} on ${cfg.dicom.host}:${port}; objects -> ${described}`,
    );
    return {
      ...{ port, store, index, ingest, scp, spool: spooling, databaseUrl: url, close: cleanup },
      ...{
        metrics,
        adminPort: admin?.port,
        tlsPort: scp.tlsPort,
        notify,
        commitment,
        routing,
        retention,
      },
      reloadRouting: () => reload.reload(),
      ...{ stores: new Map(opened.map((o) => [o.name, o.store])), spools },
    };
  } catch (err) {
    await cleanup();
    throw err;
  }
}

/**
 * Stores with a spool (S3, and fs in `ack: spooled`) get it and its uploader; at start the spool is reconciled with the
 * index and multipart uploads a crash left behind are aborted.
 */
async function openSpool(
  o: OpenedStore,
  index: InstanceIndex,
  log: Logger,
): Promise<SpoolOptions | undefined> {
  const s = o.config;
  const store = o.store;
  const dir = spoolDirOf(s);
  if (dir === undefined) return undefined;
  const spool = new Spool(dir, s.spool.maxBytes, log.child({ component: 'spool', store: o.name }));
  const ready = await spool.open();
  const uploader = new Uploader({
    store,
    index,
    spool,
    concurrency: s.spool.uploadConcurrency,
    concurrencyWhileReceiving: s.spool.uploadConcurrencyWhileReceiving,
    burstBytes: s.spool.burstBytes,
    log: log.child({ component: 'uploader', store: o.name }),
  });
  await uploader.recover(ready);
  if (store instanceof S3Store && s.type === 's3') {
    const olderThan = new Date(Date.now() - s.abortIncompleteUploadsAfterSeconds * 1000);
    const aborted = await store.abortIncompleteUploads(s.prefix, olderThan);
    if (aborted > 0) {
      log.warn(
        { event: 's3.incomplete_uploads_aborted', store: o.name, count: aborted },
        'aborted incomplete multipart uploads',
      );
    }
  }
  // An fs store with a spool answers 'spooled'; its 'stored' mode has no spool (DirectCommit).
  const deadline = s.type === 's3' ? s.spool.uploadDeadlineSeconds : 0;
  return { spool, uploader, ack: s.ack, uploadDeadlineMs: deadline * 1000 };
}

/** The spool gauges over every spool: files and bytes summed, the oldest file's age. */
function spoolTotals(spools: SpoolOptions[]): { stats: () => SpoolStats; heldFiles: () => number } {
  return {
    stats: () => {
      const all = spools.map((s) => s.spool.stats());
      return {
        files: all.reduce((n, x) => n + x.files, 0),
        bytes: all.reduce((n, x) => n + x.bytes, 0),
        oldestAgeSeconds: Math.max(0, ...all.map((x) => x.oldestAgeSeconds)),
      };
    },
    heldFiles: () => spools.reduce((n, s) => n + s.uploader.stats.held, 0),
  };
}
