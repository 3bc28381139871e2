/**
 * Stable studies against real servers: gateways (in-process) on a real Ceph RGW and a real
 * PostgreSQL, storescu as the sender, a webhook taking `study.stable`, and `notify.archive`
 * writing each stable study's zip to a second bucket. Quiet time 1 s; every wait is on the
 * webhook's receipts, the bucket or the index, with a deadline.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer as createHttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buffer } from 'node:stream/consumers';
import { setTimeout as delay } from 'node:timers/promises';
import pg from 'pg';
import t, { type Test } from 'tap';
import { S3Store } from '../../src/store/s3-store.js';
import { storescu } from '../helpers/dcmtk.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { generateStudy, type GeneratedFile } from '../helpers/gen-study.js';
import { startTestPostgres } from '../helpers/pg.js';
import { createBucket, startRgw } from '../helpers/rgw.js';
import { readZip, unzipTest } from '../helpers/zip-read.js';

const BUCKET = 'dicom';
const ARCHIVE_BUCKET = 'studies';
const QUIET_S = 1;

const [rgwStart, pgStart] = await Promise.allSettled([startRgw(), startTestPostgres()]);
for (const s of [rgwStart, pgStart]) if (s.status === 'fulfilled') t.teardown(() => s.value.stop());
if (rgwStart.status === 'rejected') throw rgwStart.reason;
if (pgStart.status === 'rejected') throw pgStart.reason;
const rgw = rgwStart.value;
const pgsrv = pgStart.value;
const work = await mkdtemp(join(tmpdir(), 'notify-stable-'));
t.teardown(() => rm(work, { recursive: true, force: true }));
await createBucket(rgw, BUCKET);
await createBucket(rgw, ARCHIVE_BUCKET);
const db = new pg.Client({ connectionString: pgsrv.connectionString });
await db.connect();
t.teardown(() => db.end());
const archive = new S3Store({ ...rgw, bucket: ARCHIVE_BUCKET, forcePathStyle: true });
t.teardown(() => archive.close());

interface HookEvent {
  id: number;
  type: string;
  studyInstanceUid: string;
  sopInstanceUid?: string;
  numberOfInstances?: number;
  numberOfSeries?: number;
  lastInstanceAt?: string;
  stableAt?: string;
  stableCount?: number;
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

const s3 = { ...rgw, bucket: BUCKET };
const notify = {
  destinations: [
    {
      name: 'hook',
      type: 'webhook',
      url: `http://127.0.0.1:${(hook.address() as AddressInfo).port}/events`,
      events: ['instance.stored', 'study.stable'],
    },
  ],
  stableAfterSeconds: QUIET_S,
  pollSeconds: 1,
  backoff: { initialSeconds: 0.2, maxSeconds: 1 },
  archive: { bucket: ARCHIVE_BUCKET, prefix: 'zips' },
};

async function until<T>(what: string, ms: number, probe: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await probe().catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await delay(100);
  }
}
const stableOf = (uid: string): HookEvent[] =>
  hookEvents.filter((e) => e.type === 'study.stable' && e.studyInstanceUid === uid);
const storedOf = (uid: string): HookEvent[] =>
  hookEvents.filter((e) => e.type === 'instance.stored' && e.studyInstanceUid === uid);
/** Waits for the study's n-th study.stable at the webhook. */
const nthStable = (uid: string, n: number): Promise<HookEvent> =>
  until(`study.stable #${n} of ${uid}`, 60_000, async () => stableOf(uid)[n - 1]);

async function send(gw: TestGateway, files: string[], expected: number): Promise<void> {
  const peer = { host: '127.0.0.1', port: gw.port, callingAet: 'MODALITY', calledAet: gw.aeTitle };
  const r = await storescu({ ...peer, files });
  if (r.statuses.length !== expected || r.statuses.some((s) => s !== 0)) {
    throw new Error(`storescu: statuses ${JSON.stringify(r.statuses)}`);
  }
}

/** The study's objects in the bucket: key below studies/<uid>/ -> bytes. */
async function studyObjects(gw: TestGateway, uid: string): Promise<Map<string, Buffer>> {
  const out = new Map<string, Buffer>();
  const marker = `studies/${uid}/`;
  for await (const info of gw.gw.store.list('')) {
    const at = info.key.indexOf(marker);
    if (at < 0) continue;
    out.set(info.key.slice(at + marker.length), await buffer(await gw.gw.store.get(info.key)));
  }
  return out;
}

/** The archive zip holds exactly the study's objects, byte for byte; returns its entry count. */
async function assertArchive(t: Test, gw: TestGateway, uid: string, n: number): Promise<void> {
  const key = `zips/${uid}.zip`;
  const path = join(work, `${uid}-${n}.zip`);
  // The zip with n entries (an earlier one may still be there while the new one is written).
  const entries = await until(`${key} with ${n} entries`, 60_000, async () => {
    if (!(await archive.head(key))) return undefined;
    await writeFile(path, await buffer(await archive.get(key)));
    const z = await readZip(path);
    return z.entries.length === n ? z : undefined;
  });
  t.equal(entries.bad, null, 'every CRC in the zip matches');
  t.match(await unzipTest(path), /No errors detected/, 'unzip -t reads it');
  const objects = await studyObjects(gw, uid);
  t.equal(objects.size, n, `${n} objects of the study in the bucket`);
  const { createHash } = await import('node:crypto');
  t.same(
    entries.entries.map((e) => [e.name, e.sha256]).sort(),
    [...objects].map(([k, b]) => [k, createHash('sha256').update(b).digest('hex')]).sort(),
    'the zip holds exactly the study’s objects, byte for byte',
  );
}

const gen = async (name: string, seed: number, instances: number): Promise<GeneratedFile[]> =>
  (await generateStudy(join(work, name), { series: 2, instances, rows: 8, cols: 8, seed })).files;

// Study R is stored by a gateway without study-level destinations, which is then closed: its
// quiet period is in the index only, and the next gateway announces it.
const filesR = await gen('r', 30, 3);
const before = await startTestGateway({ databaseUrl: pgsrv.connectionString, s3 });
await send(before, [join(work, 'r')], 6);
await until('study R uploaded', 30_000, async () =>
  (await db.query(`SELECT 1 FROM study_activity WHERE study_uid = $1`, [filesR[0]!.studyUid]))
    .rowCount === 1
    ? true
    : undefined,
);
await before.close();

const gw = await startTestGateway({ databaseUrl: pgsrv.connectionString, s3, notify });
t.teardown(() => gw.close());

t.test('a study stored before a restart is announced once, after the quiet time', async (t) => {
  const uid = filesR[0]!.studyUid;
  const ev = await nthStable(uid, 1);
  t.match(ev, { studyInstanceUid: uid, numberOfInstances: 6, numberOfSeries: 2, stableCount: 1 });
  t.ok(
    Date.parse(ev.stableAt!) - Date.parse(ev.lastInstanceAt!) >= QUIET_S * 1000,
    'no earlier than the quiet time after its last instance',
  );
  await assertArchive(t, gw, uid, 6);
});

const filesA = await gen('a', 31, 5);
const uidA = filesA[0]!.studyUid;

t.test('study.stable fires once per study, after the quiet time, with its archive', async (t) => {
  await send(gw, [join(work, 'a')], 10);
  const ev = await nthStable(uidA, 1);
  t.match(ev, { numberOfInstances: 10, numberOfSeries: 2, stableCount: 1 });
  t.equal(storedOf(uidA).length, 10, 'every instance announced before the study');
  const lastStored = Math.max(...storedOf(uidA).map((e) => e.id));
  t.ok(ev.id > lastStored, 'the study event comes after its instances’ events');
  t.ok(Date.parse(ev.stableAt!) - Date.parse(ev.lastInstanceAt!) >= QUIET_S * 1000);
  await assertArchive(t, gw, uidA, 10);
  // Once: another study goes quiet later (so the sweep ran again since), A is not repeated.
  const filesB = await gen('b', 32, 2);
  await send(gw, [join(work, 'b')], 4);
  await nthStable(filesB[0]!.studyUid, 1);
  t.equal(stableOf(uidA).length, 1, 'A announced once');
  const { rows } = await db.query(
    `SELECT count(*)::int AS n FROM outbox WHERE event_type = 'study.stable' AND aggregate_uid = $1`,
    [uidA],
  );
  t.equal(rows[0].n, 1, 'one study.stable event for A in the outbox');
});

t.test('a late instance re-opens the study: announced and archived again', async (t) => {
  // The same seed with one more instance per series: the first five are the same instances.
  const more = await gen('a-late', 31, 6);
  const late = more.filter((f) => !filesA.some((a) => a.sopInstanceUid === f.sopInstanceUid));
  t.equal(late.length, 2);
  await send(
    gw,
    late.map((f) => f.path),
    2,
  );
  const ev = await nthStable(uidA, 2);
  t.match(ev, { numberOfInstances: 12, stableCount: 2 });
  await assertArchive(t, gw, uidA, 12);
  t.equal(stableOf(uidA).length, 2);
});
