/**
 * Two gateway processes on one PostgreSQL database and one RGW bucket, each with its own spool,
 * both notifying the cloud Orthanc 1.10 (orthanc-pull, with the import plugin) and a webhook
 * that takes instance and study events. One study goes to each gateway, a third is split
 * between them. Every event is delivered once: one NewInstance per instance in Orthanc, each
 * webhook event once, every delivery done on its first attempt, one study.stable per study.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer as createHttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buffer } from 'node:stream/consumers';
import { setTimeout as delay } from 'node:timers/promises';
import pg from 'pg';
import t from 'tap';
import { storescu } from '../helpers/dcmtk.js';
import { startGatewayProcess, type GatewayProcess } from '../helpers/gateway-process.js';
import { generateStudy } from '../helpers/gen-study.js';
import { loadOrthancConfig, startOrthanc, type OrthancServer } from '../helpers/orthanc.js';
import { startTestPostgres } from '../helpers/pg.js';
import { createBucket, startRgw } from '../helpers/rgw.js';

const BUCKET = 'dicom';
const GATEWAY = { user: 'gateway', password: 'gateway-two-pw' };
const PASSWORD_ENV = 'NOTIFY_TWO_ORTHANC_PASSWORD';
process.env[PASSWORD_ENV] = GATEWAY.password;

const [rgwStart, pgStart] = await Promise.allSettled([startRgw(), startTestPostgres()]);
for (const s of [rgwStart, pgStart]) if (s.status === 'fulfilled') t.teardown(() => s.value.stop());
if (rgwStart.status === 'rejected') throw rgwStart.reason;
if (pgStart.status === 'rejected') throw pgStart.reason;
const rgw = rgwStart.value;
const pgsrv = pgStart.value;
const work = await mkdtemp(join(tmpdir(), 'notify-two-'));
t.teardown(() => rm(work, { recursive: true, force: true }));
await createBucket(rgw, BUCKET);
const db = new pg.Client({ connectionString: pgsrv.connectionString });
await db.connect();
t.teardown(() => db.end());
await db.query('CREATE DATABASE cloud');
const cloudDb = new URL(pgsrv.connectionString);
cloudDb.pathname = '/cloud';

const cloud: OrthancServer = await startOrthanc({
  config: loadOrthancConfig('cloud.json'),
  env: {
    S3_ENDPOINT: rgw.endpoint,
    S3_REGION: rgw.region,
    S3_ACCESS_KEY_ID: rgw.accessKeyId,
    S3_SECRET_ACCESS_KEY: rgw.secretAccessKey,
    S3_FORCE_PATH_STYLE: 'true',
    ORTHANC_GATEWAY_PASSWORD: GATEWAY.password,
    ORTHANC_ADMIN_PASSWORD: 'admin-two-pw',
    ORTHANC_POSTGRESQL_URI: cloudDb.toString(),
  },
  auth: GATEWAY,
  storageDir: join(work, 'cloud-storage'),
});
t.teardown(() => cloud.stop());

interface HookEvent {
  id: number;
  type: string;
  studyInstanceUid: string;
}
const hookEvents: HookEvent[] = [];
const hook = createHttpServer((req, res) => {
  void buffer(req).then((body) => {
    hookEvents.push(...(JSON.parse(body.toString('utf8')) as { events: HookEvent[] }).events);
    res.writeHead(204).end();
  });
});
await new Promise<void>((resolve) => hook.listen(0, '127.0.0.1', resolve));
t.teardown(() => new Promise<void>((resolve) => hook.close(() => resolve())));

const config = (name: string): Record<string, unknown> => ({
  dicom: { aeTitle: 'DICOMGW', host: '127.0.0.1', port: 0 },
  index: { type: 'postgres', url: pgsrv.connectionString, poolSize: 4 },
  store: {
    type: 's3',
    endpoint: rgw.endpoint,
    region: rgw.region,
    bucket: BUCKET,
    accessKeyId: rgw.accessKeyId,
    secretAccessKey: rgw.secretAccessKey,
    spool: { dir: join(work, name, 'spool') },
  },
  admin: { enabled: false },
  log: { level: 'debug' },
  notify: {
    destinations: [
      { name: 'cloud', url: cloud.url, username: GATEWAY.user, passwordEnv: PASSWORD_ENV },
      {
        name: 'hook',
        type: 'webhook',
        url: `http://127.0.0.1:${(hook.address() as AddressInfo).port}/events`,
        events: ['instance.stored', 'study.stable'],
      },
    ],
    batchSize: 10,
    stableAfterSeconds: 1,
    pollSeconds: 1,
  },
});
const gateways: GatewayProcess[] = [];
for (const name of ['gw1', 'gw2']) {
  const p = await startGatewayProcess(config(name), join(work, `${name}.json`));
  t.teardown(async () => {
    p.child.kill('SIGTERM');
    await p.exited;
  });
  gateways.push(p);
}

async function until<T>(what: string, ms: number, probe: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await probe().catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await delay(200);
  }
}

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

t.test('every event delivered once by two gateways sharing one database', async (t) => {
  const x = await generateStudy(join(work, 'x'), {
    series: 1,
    instances: 40,
    rows: 8,
    cols: 8,
    seed: 41,
  });
  const y = await generateStudy(join(work, 'y'), {
    series: 1,
    instances: 40,
    rows: 8,
    cols: 8,
    seed: 42,
  });
  const z = await generateStudy(join(work, 'z'), {
    series: 2,
    instances: 20,
    rows: 8,
    cols: 8,
    seed: 43,
  });
  const zSeries = [...new Set(z.files.map((f) => f.seriesUid))];
  const zPart = (i: number): string[] =>
    z.files.filter((f) => f.seriesUid === zSeries[i]).map((f) => f.path);
  const send = async (g: GatewayProcess, files: string[]): Promise<number[]> =>
    (
      await storescu({
        host: '127.0.0.1',
        port: g.port,
        callingAet: 'MODALITY',
        calledAet: 'DICOMGW',
        files,
      })
    ).statuses;
  const statuses = (
    await Promise.all([
      send(gateways[0]!, [join(work, 'x'), ...zPart(0)]),
      send(gateways[1]!, [join(work, 'y'), ...zPart(1)]),
    ])
  ).flat();
  t.equal(statuses.length, 120);
  t.ok(
    statuses.every((s) => s === 0),
    '120 answered 0000',
  );
  const studies = [x, y, z].map((s) => s.files[0]!.studyUid);

  await until('120 instances in the cloud Orthanc', 120_000, async () => {
    const s = (await (await cloud.request('/statistics')).json()) as { CountInstances: number };
    return s.CountInstances >= 120 ? true : undefined;
  });
  await until('a study.stable for each study', 60_000, async () =>
    studies.every((u) =>
      hookEvents.some((e) => e.type === 'study.stable' && e.studyInstanceUid === u),
    )
      ? true
      : undefined,
  );
  // Everything claimed is done: no delivery pending, none in flight.
  await until('every delivery done', 60_000, async () => {
    const { rows } = await db.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM outbox_deliveries WHERE state <> 'done'`,
    );
    return rows[0]!.n === 0 ? true : undefined;
  });

  const changes = await newInstanceChanges(cloud);
  t.equal(changes.length, 120, 'one NewInstance per instance');
  t.equal(new Set(changes).size, 120, 'none imported twice');
  const stored = hookEvents.filter((e) => e.type === 'instance.stored');
  t.equal(stored.length, 120, '120 instance events at the webhook');
  t.equal(new Set(hookEvents.map((e) => e.id)).size, hookEvents.length, 'each event once');
  for (const u of studies) {
    t.equal(
      hookEvents.filter((e) => e.type === 'study.stable' && e.studyInstanceUid === u).length,
      1,
      `study ${u.slice(-8)}: one study.stable`,
    );
  }
  const { rows } = await db.query<{ destination: string; n: number; first: number }>(
    `SELECT destination, count(*)::int AS n, count(*) FILTER (WHERE attempts = 1)::int AS first
       FROM outbox_deliveries GROUP BY destination ORDER BY destination`,
  );
  t.same(
    rows,
    [
      { destination: 'cloud', n: 120, first: 120 },
      { destination: 'hook', n: 123, first: 123 },
    ],
    'every delivery done on its first attempt: claimed by one gateway only',
  );
  const { rows: outbox } = await db.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM outbox WHERE event_type = 'study.stable'`,
  );
  t.equal(outbox[0]!.n, 3, 'one study.stable per study in the outbox, whichever gateway swept');
  for (const [i, g] of gateways.entries()) {
    const delivered = g
      .events()
      .filter((e) => e.event === 'notify.batch')
      .reduce((n, e) => n + Number(e.delivered), 0);
    t.comment(`gateway ${i + 1} delivered ${delivered} events`);
  }
});
