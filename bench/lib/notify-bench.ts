// Notify: how soon the cloud Orthanc 1.10 (PostgreSQL index, the import plugin) serves what the
// gateway acknowledged, in pull mode (orthanc-pull: Orthanc reads the bucket) and push mode
// (orthanc-push: the gateway POSTs each file), on the LAN.
// - Latency: a study sent by storescu (one association); from the end of the association (its
//   last C-STORE-RSP, then A-RELEASE) until Orthanc's /statistics counts the whole study,
//   polled every 10 ms. One gateway and one Orthanc per mode, a warm-up study, then `studies`
//   distinct studies one after the other.
// - Backlog: a study sent while the gateway's connections to Orthanc are held by a relay (the
//   events pile up, each instance uploaded first), then released at once: instances per second
//   from the release until Orthanc has them all.
import { createConnection, createServer, type AddressInfo, type Socket } from 'node:net';
import { join } from 'node:path';
import { loadOrthancConfig, startOrthanc, type OrthancServer } from '../../test/helpers/orthanc.js';
import type { Fixture, IngestContext } from './ingest.js';
import { waitDrained } from './ingest.js';
import { startGatewayReceiver } from './receivers.js';
import { sendFiles } from './send.js';
import { median, percentile, round, waitFor } from './util.js';

export type NotifyMode = 'pull' | 'push';

export interface NotifyResult {
  mode: NotifyMode;
  instancesPerStudy: number;
  /** Last C-STORE-RSP -> whole study in Orthanc, ms, one per study. */
  latencyMs: number[];
  medianMs: number;
  p95Ms: number;
  backlog: { instances: number; seconds: number; instPerSec: number };
}

export async function runNotifyBench(
  ctx: IngestContext,
  mode: NotifyMode,
  studies: Fixture[],
  backlog: Fixture,
): Promise<NotifyResult> {
  const bytes = [ctx.warmup, ...studies, backlog].reduce((n, f) => n + f.bytes, 0);
  const target = await ctx.rgw.bucket(bytes, false);
  const orthancDb = `bench_orthanc_${mode}`;
  const orthanc = await startOrthanc({
    config: { ...loadOrthancConfig('cloud.json'), AuthenticationEnabled: false },
    env: {
      S3_ENDPOINT: target.endpoint,
      S3_REGION: target.region,
      S3_ACCESS_KEY_ID: target.accessKeyId,
      S3_SECRET_ACCESS_KEY: target.secretAccessKey,
      S3_FORCE_PATH_STYLE: 'true',
      ORTHANC_GATEWAY_PASSWORD: 'unused',
      ORTHANC_ADMIN_PASSWORD: 'unused',
      ORTHANC_POSTGRESQL_URI: await ctx.pg.createDatabase(orthancDb),
    },
    storageDir: join(ctx.root, `orthanc-${mode}`),
  });
  const relay = await startRelay(orthanc.httpPort);
  const gw = await startGatewayReceiver({
    pg: ctx.pg,
    dbName: `bench_notify_${mode}`,
    dir: join(ctx.root, 'runs', `notify-${mode}`),
    store: { type: 's3', target, ack: 'spooled' },
    gatewayMain: ctx.gatewayMain,
    keepDir: ctx.keepRuns,
    gatewayConfig: {
      ...ctx.gatewayConfig,
      notify: {
        // --gateway-config='{"notify":{"concurrency":4}}' tunes the worker; the destination is ours.
        ...(ctx.gatewayConfig?.notify as Record<string, unknown> | undefined),
        destinations: [
          {
            name: 'cloud',
            type: `orthanc-${mode}`,
            url: `http://127.0.0.1:${relay.port}`,
            // A held request waits for the release instead of timing out into a backoff.
            timeoutSeconds: 900,
          },
        ],
      },
    },
  });
  try {
    const count = async (): Promise<number> =>
      ((await (await orthanc.request('/statistics')).json()) as { CountInstances: number })
        .CountInstances;
    const send = async (f: Fixture): Promise<void> => {
      const r = await sendFiles({
        port: gw.port,
        calledAet: gw.aeTitle,
        files: f.files.map((x) => x.path),
        associations: 1,
      });
      if (r.failures.length) throw new Error(`send failed: ${r.failures[0]}`);
    };
    const reach = (n: number, timeoutMs: number): Promise<void> =>
      waitFor(async () => (await count()) >= n, timeoutMs, `${n} instances in Orthanc`, 10);

    let total = 0;
    await send(ctx.warmup);
    total += ctx.warmup.files.length;
    await reach(total, 120_000);
    const latencyMs: number[] = [];
    for (const study of studies) {
      await send(study);
      const t0 = performance.now();
      total += study.files.length;
      await reach(total, 120_000);
      latencyMs.push(round(performance.now() - t0, 0));
      ctx.log(
        `  notify ${mode}: study of ${study.files.length} visible after ${latencyMs.at(-1)} ms`,
      );
    }

    relay.hold();
    await send(backlog);
    await waitDrained(gw, total + backlog.files.length, 300_000);
    const t0 = performance.now();
    relay.release();
    total += backlog.files.length;
    await reach(total, 600_000);
    const seconds = (performance.now() - t0) / 1000;
    ctx.log(
      `  notify ${mode}: backlog of ${backlog.files.length} delivered in ${round(seconds, 2)} s`,
    );
    return {
      mode,
      instancesPerStudy: studies[0]?.files.length ?? 0,
      latencyMs,
      medianMs: round(median(latencyMs), 0),
      p95Ms: round(percentile(latencyMs, 95), 0),
      backlog: {
        instances: backlog.files.length,
        seconds: round(seconds, 2),
        instPerSec: round(backlog.files.length / seconds, 1),
      },
    };
  } finally {
    await gw.stop().catch(() => undefined);
    await relay.close();
    await stopOrthanc(orthanc);
    await ctx.pg.dropDatabase(orthancDb).catch(() => undefined);
  }
}

async function stopOrthanc(o: OrthancServer): Promise<void> {
  await o.stop().catch(() => undefined);
}

/** A TCP relay to Orthanc that can hold new connections (paused) until release(). */
async function startRelay(port: number): Promise<{
  port: number;
  hold(): void;
  release(): void;
  close(): Promise<void>;
}> {
  let holding = false;
  const held: Socket[] = [];
  const sockets = new Set<Socket>();
  const forward = (client: Socket): void => {
    const upstream = createConnection({ host: '127.0.0.1', port });
    sockets.add(upstream);
    client.pipe(upstream).pipe(client);
    const end = (): void => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
  };
  const server = createServer((client) => {
    client.setNoDelay(true);
    sockets.add(client);
    if (!holding) return forward(client);
    client.pause();
    client.on('error', () => client.destroy());
    held.push(client);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  // Keep-alive connections made before hold() would bypass it: hold() closes them.
  return {
    port: (server.address() as AddressInfo).port,
    hold: () => {
      holding = true;
      for (const s of sockets) s.destroy();
    },
    release: () => {
      holding = false;
      for (const c of held.splice(0)) if (!c.destroyed) forward(c);
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
