/**
 * The notify worker against real servers: a gateway (in-process) on a real Ceph RGW and a real
 * PostgreSQL, storescu as the sender, the cloud Orthanc 1.10 with the import plugin
 * (orthanc-pull), a second Orthanc (orthanc-push) and a webhook that refuses until re-queued.
 * The cloud Orthanc sits behind a TCP relay so that it can be stopped and started again (on
 * new ports) while the gateway keeps one url.
 */
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { createServer as createHttpServer } from 'node:http';
import { createConnection, createServer, type AddressInfo, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buffer } from 'node:stream/consumers';
import { setTimeout as delay } from 'node:timers/promises';
import { Writable } from 'node:stream';
import pg from 'pg';
import t, { type Test } from 'tap';
import { notifyRetryCommand } from '../../src/cli/notify-retry.js';
import { parseConfig } from '../../src/config.js';
import { readPart10Header } from '../../src/dicom/file-meta.js';
import { createLogger } from '../../src/log.js';
import { startStorescp, storescu } from '../helpers/dcmtk.js';
import { startTestGateway } from '../helpers/gateway.js';
import { startGatewayProcess } from '../helpers/gateway-process.js';
import { generateStudy } from '../helpers/gen-study.js';
import {
  loadOrthancConfig,
  startOrthanc,
  type Credentials,
  type OrthancServer,
} from '../helpers/orthanc.js';
import { startTestPostgres } from '../helpers/pg.js';
import { createBucket, startRgw } from '../helpers/rgw.js';

const BUCKET = 'dicom';
const GATEWAY: Credentials = { user: 'gateway', password: 'gateway-notify-pw' };
const PASSWORD_ENV = 'NOTIFY_TEST_ORTHANC_PASSWORD';
process.env[PASSWORD_ENV] = GATEWAY.password;

const [rgwStart, pgStart] = await Promise.allSettled([startRgw(), startTestPostgres()]);
for (const s of [rgwStart, pgStart]) if (s.status === 'fulfilled') t.teardown(() => s.value.stop());
if (rgwStart.status === 'rejected') throw rgwStart.reason;
if (pgStart.status === 'rejected') throw pgStart.reason;
const rgw = rgwStart.value;
const pgsrv = pgStart.value;
const work = await mkdtemp(join(tmpdir(), 'notify-test-'));
t.teardown(() => rm(work, { recursive: true, force: true }));
await createBucket(rgw, BUCKET);

// Each Orthanc has a database of its own; the gateway has the default one.
const admin = new pg.Client({ connectionString: pgsrv.connectionString, query_timeout: 30_000 });
await admin.connect();
try {
  for (const db of ['cloud', 'push']) await admin.query(`CREATE DATABASE ${db}`);
} finally {
  await admin.end();
}
const dbUrl = (db: string): string => {
  const u = new URL(pgsrv.connectionString);
  u.pathname = `/${db}`;
  return u.toString();
};
const s3Env = {
  S3_ENDPOINT: rgw.endpoint,
  S3_REGION: rgw.region,
  S3_ACCESS_KEY_ID: rgw.accessKeyId,
  S3_SECRET_ACCESS_KEY: rgw.secretAccessKey,
  S3_FORCE_PATH_STYLE: 'true',
};
const startCloudLike = (db: string): Promise<OrthancServer> =>
  startOrthanc({
    config: loadOrthancConfig('cloud.json'),
    env: {
      ...s3Env,
      ORTHANC_GATEWAY_PASSWORD: GATEWAY.password,
      ORTHANC_ADMIN_PASSWORD: 'admin-notify-pw',
      ORTHANC_POSTGRESQL_URI: dbUrl(db),
    },
    auth: GATEWAY,
    storageDir: join(work, `${db}-storage`),
  });

// The relay: the gateway's url for the cloud Orthanc, whatever port it runs on now. While
// `holding`, connections wait (paused) until releaseHeld().
let cloudPort = 0;
let holding = false;
const held: Socket[] = [];
function forward(client: Socket): void {
  const upstream = createConnection({ host: '127.0.0.1', port: cloudPort });
  client.pipe(upstream).pipe(client);
  const end = (): void => {
    client.destroy();
    upstream.destroy();
  };
  client.on('error', end);
  upstream.on('error', end);
}
function releaseHeld(): void {
  holding = false;
  for (const c of held.splice(0)) if (!c.destroyed) forward(c);
}
const relay = createServer((client: Socket) => {
  if (!holding) return forward(client);
  client.pause();
  client.on('error', () => client.destroy());
  held.push(client);
});
await new Promise<void>((resolve) => relay.listen(0, '127.0.0.1', resolve));
t.teardown(() => new Promise<void>((resolve) => relay.close(() => resolve())));
const relayUrl = `http://127.0.0.1:${(relay.address() as AddressInfo).port}`;

let cloud = await startCloudLike('cloud');
cloudPort = cloud.httpPort;
t.teardown(() => cloud.stop());
const pushOrthanc = await startCloudLike('push');
t.teardown(() => pushOrthanc.stop());

// The webhook refuses (422: dead at once) until `accepting`; it records what it accepted.
let accepting = false;
const hookEvents: Array<{ id: number; type: string; sopInstanceUid: string }> = [];
const hook = createHttpServer((req, res) => {
  void buffer(req).then((body) => {
    if (!accepting) {
      res.writeHead(422).end('not yet');
      return;
    }
    const doc = JSON.parse(body.toString('utf8')) as { events: typeof hookEvents };
    hookEvents.push(...doc.events);
    res.writeHead(204).end();
  });
});
await new Promise<void>((resolve) => hook.listen(0, '127.0.0.1', resolve));
t.teardown(() => new Promise<void>((resolve) => hook.close(() => resolve())));

// A DICOM peer (DCMTK storescp) for the `dicom` destination.
const scpDir = join(work, 'storescp');
await mkdir(scpDir);
const scp = await startStorescp({ aet: 'PEERSCP', outDir: scpDir });
t.teardown(() => scp.stop());

const notify = {
  destinations: [
    {
      name: 'cloud',
      type: 'orthanc-pull',
      url: relayUrl,
      username: GATEWAY.user,
      passwordEnv: PASSWORD_ENV,
      timeoutSeconds: 10,
    },
    {
      name: 'push',
      type: 'orthanc-push',
      url: pushOrthanc.url,
      username: GATEWAY.user,
      passwordEnv: PASSWORD_ENV,
    },
    {
      name: 'hook',
      type: 'webhook',
      url: `http://127.0.0.1:${(hook.address() as AddressInfo).port}/events`,
    },
    { name: 'peer', type: 'dicom', aeTitle: 'PEERSCP', host: '127.0.0.1', port: scp.port },
  ],
  maxAttempts: 1000,
  pollSeconds: 1,
  backoff: { initialSeconds: 0.2, maxSeconds: 1 },
};
const s3 = { ...rgw, bucket: BUCKET };
const gw = await startTestGateway({ databaseUrl: pgsrv.connectionString, s3, notify });
let gwClosed = false;
t.teardown(() => (gwClosed ? undefined : gw.close()));
const peer = { host: '127.0.0.1', port: gw.port, callingAet: 'MODALITY', calledAet: gw.aeTitle };

async function until<T>(what: string, ms: number, probe: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await probe().catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await delay(200);
  }
}
const instanceCount = async (o: OrthancServer): Promise<number> => {
  const s = (await (await o.request('/statistics')).json()) as { CountInstances: number };
  return s.CountInstances;
};
const countReaches = (o: OrthancServer, n: number) =>
  until(`${n} instances in ${o.url}`, 120_000, async () =>
    (await instanceCount(o)) >= n ? true : undefined,
  );

/** Every NewInstance change Orthanc has logged, as SOP-level resource ids. */
async function newInstanceChanges(o: OrthancServer): Promise<string[]> {
  const ids: string[] = [];
  for (let since = 0; ;) {
    const page = (await (await o.request(`/changes?since=${since}&limit=500`)).json()) as {
      Changes: Array<{ ChangeType: string; ID: string }>;
      Done: boolean;
      Last: number;
    };
    ids.push(...page.Changes.filter((c) => c.ChangeType === 'NewInstance').map((c) => c.ID));
    if (page.Done) return ids;
    since = page.Last;
  }
}

/** Every object in the bucket is in the Orthanc, byte for byte. */
async function assertByteEqual(t: Test, o: OrthancServer): Promise<void> {
  let n = 0;
  for await (const info of gw.gw.store.list('')) {
    const sop = /instances\/([0-9.]+)\.dcm$/.exec(info.key)?.[1];
    if (!sop) continue;
    const found = (await (
      await o.request('/tools/lookup', { method: 'POST', body: sop })
    ).json()) as Array<{ ID: string; Type: string }>;
    const id = found.find((f) => f.Type === 'Instance')?.ID;
    if (!id) {
      t.fail(`${sop} is not in ${o.url}`);
      continue;
    }
    const inOrthanc = Buffer.from(await (await o.request(`/instances/${id}/file`)).arrayBuffer());
    const inBucket = await buffer(await gw.gw.store.get(info.key));
    if (!inOrthanc.equals(inBucket)) t.fail(`${sop}: Orthanc's file differs from the bucket's`);
    n++;
  }
  t.ok(n > 0, `${n} objects compared byte for byte`);
}

t.test('100 instances: pulled by the cloud Orthanc, pushed to the other', async (t) => {
  await generateStudy(join(work, 'a'), { series: 2, instances: 50, rows: 16, cols: 16, seed: 1 });
  const r = await storescu({ ...peer, files: [join(work, 'a')] });
  t.equal(r.statuses.length, 100);
  t.ok(
    r.statuses.every((s) => s === 0),
    'every C-STORE answered 0000',
  );
  await countReaches(cloud, 100);
  await countReaches(pushOrthanc, 100);
  t.equal(await instanceCount(cloud), 100, 'pull: 100 instances');
  t.equal(await instanceCount(pushOrthanc), 100, 'push: 100 instances');
  await assertByteEqual(t, cloud);
  await assertByteEqual(t, pushOrthanc);
});

/** The data set of a Part-10 file (what goes on the wire), hashed. */
const datasetHash = (file: Buffer): string =>
  createHash('sha256')
    .update(file.subarray(readPart10Header(file).datasetOffset))
    .digest('hex');

t.test('dicom: the peer received every data set as stored (no transcoding)', async (t) => {
  const files = await until('100 files at the storescp', 60_000, async () => {
    const names = await readdir(scpDir);
    return names.length >= 100 ? names : undefined;
  });
  t.equal(files.length, 100);
  const received = new Set<string>();
  for (const f of files) received.add(datasetHash(await readFile(join(scpDir, f))));
  const stored = new Set<string>();
  for await (const info of gw.gw.store.list('')) {
    stored.add(datasetHash(await buffer(await gw.gw.store.get(info.key))));
  }
  t.same([...received].sort(), [...stored].sort(), 'the same 100 data sets, byte for byte');
});

t.test(
  'the cloud Orthanc stopped while 50 arrive: all delivered after its restart, none twice',
  async (t) => {
    await cloud.stop();
    await generateStudy(join(work, 'b'), { series: 1, instances: 50, rows: 16, cols: 16, seed: 2 });
    const r = await storescu({ ...peer, files: [join(work, 'b')] });
    t.ok(r.statuses.length === 50 && r.statuses.every((s) => s === 0), '50 answered 0000');
    // The other destinations go on while this one is down.
    await countReaches(pushOrthanc, 150);
    const failedBefore = await until('failed attempts to the stopped Orthanc', 60_000, async () => {
      const m = await gw.gw.metrics.text();
      const v = Number(/dicomgw_notify_failed_total\{destination="cloud"\} (\d+)/.exec(m)?.[1]);
      return v > 0 ? v : undefined;
    });
    t.ok(failedBefore > 0, `${failedBefore} failed attempts while Orthanc was down`);
    cloud = await startCloudLike('cloud');
    cloudPort = cloud.httpPort;
    await countReaches(cloud, 150);
    const changes = await newInstanceChanges(cloud);
    t.equal(changes.length, 150, 'one NewInstance per instance');
    t.equal(new Set(changes).size, 150, 'no instance imported twice');
  },
);

t.test('dead deliveries are in status and metrics, and notify retry re-queues them', async (t) => {
  const counts = await until('dead webhook deliveries', 60_000, async () => {
    const c = (await gw.gw.index.deliveryCounts()).find((d) => d.destination === 'hook');
    return c && c.dead === 150 ? c : undefined;
  });
  t.equal(counts.dead, 150, 'every event to the refusing webhook is dead');
  const metrics = await gw.gw.metrics.text();
  t.match(metrics, /dicomgw_notify_dead\{destination="hook"\} 150/);
  t.match(metrics, /dicomgw_notify_dead_total\{destination="hook"\} 150/);
  accepting = true;
  const out: string[] = [];
  const sink = new Writable({
    write(c: Buffer, _e, cb) {
      out.push(c.toString());
      cb();
    },
  });
  const cfg = parseConfig({
    index: { type: 'postgres', url: pgsrv.connectionString },
    log: { level: 'silent' },
  });
  const code = await notifyRetryCommand(cfg, { destination: 'hook' }, createLogger(cfg.log), sink);
  t.equal(code, 0);
  t.match(out.join(''), /150 dead deliveries for hook re-queued/);
  await until('150 webhook events', 60_000, async () =>
    hookEvents.length >= 150 ? true : undefined,
  );
  t.equal(new Set(hookEvents.map((e) => e.sopInstanceUid)).size, 150, 'each instance announced');
  t.ok(hookEvents.every((e) => e.type === 'instance.stored'));
  const after = (await gw.gw.index.deliveryCounts()).find((d) => d.destination === 'hook');
  t.equal(after?.dead, 0, 'nothing dead any more');
  t.notMatch(gw.logText(), new RegExp(GATEWAY.password), 'no log line shows the password');
});

t.test(
  'the gateway killed (SIGKILL) mid-delivery: every instance delivered exactly once',
  async (t) => {
    // This gateway alone claims for `cloud` from now on.
    gwClosed = true;
    await gw.close();
    const dir = join(work, 'process');
    const config = {
      dicom: { aeTitle: 'DICOMGW', host: '127.0.0.1', port: 0 },
      index: { type: 'postgres', url: pgsrv.connectionString, poolSize: 4 },
      store: {
        type: 's3',
        endpoint: rgw.endpoint,
        region: rgw.region,
        bucket: BUCKET,
        accessKeyId: rgw.accessKeyId,
        secretAccessKey: rgw.secretAccessKey,
        spool: { dir: join(dir, 'spool') },
      },
      admin: { enabled: false },
      log: { level: 'info' },
      notify: { ...notify, destinations: [notify.destinations[0]], leaseSeconds: 2 },
    };
    const first = await startGatewayProcess(config, join(dir, '..', 'process.json'));
    t.teardown(() => first.child.kill('SIGKILL'));
    holding = true;
    await generateStudy(join(work, 'c'), { series: 1, instances: 50, rows: 16, cols: 16, seed: 3 });
    const r = await storescu({ ...peer, port: first.port, files: [join(work, 'c')] });
    t.ok(r.statuses.length === 50 && r.statuses.every((s) => s === 0), '50 answered 0000');
    await until('a held import request', 30_000, async () => (held.length > 0 ? true : undefined));
    releaseHeld();
    // Killed as soon as Orthanc has imported something of the batches in flight.
    await until('a first import', 30_000, async () =>
      (await instanceCount(cloud)) > 150 ? true : undefined,
    );
    first.child.kill('SIGKILL');
    await first.exited;
    t.comment(`killed with ${(await instanceCount(cloud)) - 150} of 50 imported`);
    const second = await startGatewayProcess(config, join(dir, '..', 'process.json'));
    t.teardown(() => second.child.kill('SIGKILL'));
    await countReaches(cloud, 200);
    const changes = await newInstanceChanges(cloud);
    t.equal(changes.length, 200, 'one NewInstance per instance');
    t.equal(new Set(changes).size, 200, 'none imported twice');
    second.child.kill('SIGTERM');
    await second.exited;
  },
);
