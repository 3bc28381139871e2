/**
 * Acknowledgement modes against a real RGW: with the object store frozen in the middle of a
 * run, the sender sees only 0000 (or A700 once a small spool is full); once it is back every
 * acknowledged instance is in the bucket and the index, byte-identical, exactly once. Also the
 * restart path: a gateway stopped with a full spool uploads it after it starts again.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { storescu } from '../helpers/dcmtk.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { generateStudy, type GeneratedFile } from '../helpers/gen-study.js';
import { startTestPostgres } from '../helpers/pg.js';
import { createBucket, startRgw } from '../helpers/rgw.js';
import { countStoredExactly, query, until } from '../helpers/verify.js';
import { readSpoolStats } from '../../src/ingest/spool.js';

const rgw = await startRgw();
t.teardown(() => rgw.stop());
const pgsrv = await startTestPostgres();
t.teardown(() => pgsrv.stop());
const work = await mkdtemp(join(tmpdir(), 'gw-spool-'));
t.teardown(() => rm(work, { recursive: true, force: true }));
const OUTAGE_MS = Number(process.env.GW_TEST_OUTAGE_MS ?? 30_000);

let dbCount = 0;
async function freshDatabase(): Promise<string> {
  const db = `spool${++dbCount}`;
  await query(pgsrv.connectionString, `CREATE DATABASE ${db}`);
  const url = new URL(pgsrv.connectionString);
  url.pathname = `/${db}`;
  return url.toString();
}

/** Every acknowledged file is in the bucket exactly as sent, with one stored row and one event. */
async function checkAllStored(
  t: Test,
  gw: TestGateway,
  url: string,
  files: GeneratedFile[],
): Promise<void> {
  t.ok(await gw.gw.spool!.uploader.idle(120_000), 'the uploader drained the spool');
  const exact = await countStoredExactly(gw.gw.store, gw.gw.index, files);
  t.equal(exact, files.length, `all ${files.length} objects in the bucket, byte-identical`);
  const rows = await query<{ state: string; n: string }>(
    url,
    'SELECT state, count(*) AS n FROM instances GROUP BY state',
  );
  t.same(rows, [{ state: 'stored', n: String(files.length) }], 'one row per instance, all stored');
  const events = await query<{ n: string; d: string }>(
    url,
    `SELECT count(*) AS n, count(DISTINCT payload->>'sopInstanceUid') AS d FROM outbox`,
  );
  t.same(
    events,
    [{ n: String(files.length), d: String(files.length) }],
    'exactly one outbox event each',
  );
  t.same(gw.gw.spool!.spool.stats().files, 0, 'spool empty');
}

for (const ack of ['spooled', 'stored'] as const) {
  t.test(`ack: ${ack} — RGW frozen mid-run: only 0000, then everything lands`, async (t) => {
    await createBucket(rgw, `outage-${ack}`);
    const url = await freshDatabase();
    const gw = await startTestGateway({
      databaseUrl: url,
      s3: { ...rgw, bucket: `outage-${ack}` },
      s3Options: {
        ack,
        requestTimeoutSeconds: 2,
        spool: { dir: join(work, `spool-${ack}`), uploadDeadlineSeconds: 3, burstBytes: 0 },
      },
    });
    t.teardown(() => gw.close());
    const study = await generateStudy(join(work, `study-${ack}`), {
      series: 3,
      instances: 100,
      rows: 64,
      cols: 64,
      seed: ack === 'spooled' ? 41 : 42,
    });
    const sending = storescu({
      host: '127.0.0.1',
      port: gw.port,
      callingAet: 'STORESCU',
      calledAet: 'DICOMGW',
      files: [join(work, `study-${ack}`)],
      extraArgs: ['-nh'],
      timeoutMs: 300_000,
    });
    // Freeze the object store once a third of the study is in.
    await until(
      async () =>
        gw.logs.filter((l) => l.event === 'instance.stored' || l.event === 'instance.spooled')
          .length >= 100,
      60_000,
      '100 instances',
    );
    await rgw.pause();
    const frozenAt = Date.now();
    await until(async () => Date.now() - frozenAt >= OUTAGE_MS, OUTAGE_MS + 5_000, 'the outage');
    await rgw.resume();
    const r = await sending;
    t.equal(r.statuses.length, 300, 'every C-STORE answered');
    t.ok(
      r.statuses.every((s) => s === 0),
      'the sender saw only 0000',
    );
    if (ack === 'stored') {
      t.ok(
        gw.logs.some((l) => l.event === 'instance.spool_fallback'),
        'uploads that hit the outage fell back to the spool',
      );
    }
    await checkAllStored(t, gw, url, study.files);
  });
}

t.test('a full spool answers A700, and the sender can resend later', async (t) => {
  await createBucket(rgw, 'small-spool');
  const url = await freshDatabase();
  const study = await generateStudy(join(work, 'study-small'), {
    series: 1,
    instances: 20,
    rows: 64,
    cols: 64,
    seed: 43,
  });
  const perFile = study.files[0]!.bytes;
  const gw = await startTestGateway({
    databaseUrl: url,
    s3: { ...rgw, bucket: 'small-spool' },
    s3Options: {
      ack: 'spooled',
      requestTimeoutSeconds: 2,
      spool: { dir: join(work, 'spool-small'), maxBytes: perFile * 5 },
    },
  });
  t.teardown(() => gw.close());
  await rgw.pause();
  let resumed = false;
  t.teardown(async () => {
    if (!resumed) await rgw.resume();
  });
  const sendStudy = () =>
    storescu({
      host: '127.0.0.1',
      port: gw.port,
      callingAet: 'STORESCU',
      calledAet: 'DICOMGW',
      files: study.files.map((f) => f.path),
      extraArgs: ['-nh'],
      timeoutMs: 120_000,
    });
  const r = await sendStudy();
  const ok = r.statuses.filter((s) => s === 0).length;
  t.equal(r.statuses.length, 20, 'every C-STORE answered');
  t.ok(ok >= 4 && ok <= 5, `the spool took what fits (${ok})`);
  t.ok(
    r.statuses.slice(ok).every((s) => s === 0xa700),
    'the rest were refused with A700',
  );
  await rgw.resume();
  resumed = true;
  t.ok(await gw.gw.spool!.uploader.idle(60_000), 'spool drained after the store came back');
  // The sender resends the study as a PACS would: the 15 new instances are three spools full,
  // so some may get A700 again while the uploads catch up; each resend takes more, and only
  // 0000 or A700 is ever answered.
  const answered = new Set<number>();
  let rounds = 0;
  for (; rounds < 10; rounds++) {
    const again = await sendStudy();
    for (const s of again.statuses) answered.add(s);
    if (again.statuses.length === 20 && again.statuses.every((s) => s === 0)) break;
    await gw.gw.spool!.uploader.idle(60_000);
  }
  t.ok(rounds < 10, `resent until all 0000 (${rounds + 1} resends)`);
  t.same(
    [...answered].filter((s) => s !== 0 && s !== 0xa700),
    [],
    'only 0000 or A700',
  );
  await checkAllStored(t, gw, url, study.files);
});

t.test('a gateway stopped with a full spool uploads it after a restart', async (t) => {
  await createBucket(rgw, 'restart');
  const url = await freshDatabase();
  const dir = await mkdtemp(join(work, 'restart-'));
  const study = await generateStudy(join(work, 'study-restart'), {
    series: 1,
    instances: 15,
    rows: 64,
    cols: 64,
    seed: 44,
  });
  const opts = {
    databaseUrl: url,
    s3: { ...rgw, bucket: 'restart' },
    s3Options: { ack: 'spooled', requestTimeoutSeconds: 2 },
    dir,
  };
  const first = await startTestGateway(opts);
  await rgw.pause();
  const r = await storescu({
    host: '127.0.0.1',
    port: first.port,
    callingAet: 'STORESCU',
    calledAet: 'DICOMGW',
    files: study.files.map((f) => f.path),
    timeoutMs: 60_000,
  });
  t.ok(
    r.statuses.length === 15 && r.statuses.every((s) => s === 0),
    'all acknowledged from the spool',
  );
  await first.close();
  await rgw.resume();
  const pending = await query<{ n: string }>(
    url,
    "SELECT count(*) AS n FROM instances WHERE state = 'pending-upload'",
  );
  t.equal(pending[0]!.n, '15', 'indexed as pending while the store was away');
  // What `dicom-gateway status` and /status show, read from the directory alone.
  const backlog = await readSpoolStats(join(dir, 'spool'));
  t.equal(backlog.files, 15, 'the spool holds the 15 files');
  t.ok(backlog.bytes > 15 * 8192 && backlog.oldestAgeSeconds >= 0, 'with their bytes and age');
  const second = await startTestGateway(opts);
  t.teardown(() => second.close());
  t.ok(
    second.logs.some((l) => l.event === 'spool.recovered' && l.queued === 15),
    'the restarted gateway queued the 15 spooled files',
  );
  await checkAllStored(t, second, url, study.files);
});

// Every upload is checked against the sha256 acknowledged: RGW refuses a body that differs
// from the sha256 it is signed with, and the uploader then reads the file to tell a damaged
// file from damage in transit. A spool file damaged after the answer must not reach the
// bucket, and must stay for an operator.
t.test('a spool file damaged after the answer is kept, not uploaded', async (t) => {
  const url = await freshDatabase();
  await createBucket(rgw, 'damaged');
  const gw = await startTestGateway({
    databaseUrl: url,
    s3: { ...rgw, bucket: 'damaged' },
    s3Options: { ack: 'spooled', spool: { dir: join(work, 'spool-damaged') } },
  });
  t.teardown(() => gw.close());
  const uploader = gw.gw.spool!.uploader;
  uploader.yieldTo(() => true); // held until the file is damaged
  const study = await generateStudy(join(work, 'study-damaged'), {
    series: 1,
    instances: 4,
    rows: 64,
    cols: 64,
    seed: 303,
  });
  const r = await storescu({
    host: '127.0.0.1',
    port: gw.port,
    callingAet: 'STORESCU',
    calledAet: 'DICOMGW',
    files: study.files.map((f) => f.path),
  });
  t.same(r.statuses, [0, 0, 0, 0], 'every instance answered 0000');
  const spool = gw.gw.spool!.spool;
  const damaged = study.files[0]!.sopInstanceUid;
  const record = await spool.readRecord(damaged);
  const bytes = await readFile(spool.pathFor(damaged));
  const at = record!.rec.size - 10; // a pixel byte, before the record
  bytes[at] = bytes[at]! ^ 0xff;
  await writeFile(spool.pathFor(damaged), bytes);
  uploader.yieldTo(() => false);
  await until(
    async () => uploader.stats.uploaded === 3 && uploader.stats.held === 1,
    60_000,
    'three uploads and one file held',
  );
  const exact = await countStoredExactly(gw.gw.store, gw.gw.index, study.files.slice(1));
  t.equal(exact, 3, 'the three intact instances are in the bucket, byte-identical');
  t.equal(
    await gw.gw.store.head(record!.rec.objectKey),
    undefined,
    'nothing under the damaged key',
  );
  t.ok(
    gw.logs.some((l) => l.event === 's3.payload_checked'),
    "the uploads were signed with their sha256, the refusal was RGW's",
  );
  t.ok(
    gw.logs.some((l) => l.event === 'spool.file_mismatch' && l.sopInstanceUid === damaged),
    'logged as spool.file_mismatch',
  );
  t.ok(spool.has(damaged), 'the damaged file stays in the spool for an operator');
});
