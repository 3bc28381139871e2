/**
 * The foundation path against real peers: DCMTK storescu -> gateway -> Ceph RGW (S3)
 * + PostgreSQL. Asserts on outcomes: bytes in the bucket, File Meta dcmdump reads,
 * sha256 metadata, index rows and aggregates.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { dcmdump, echoscu, storescu } from '../helpers/dcmtk.js';
import { startTestGateway } from '../helpers/gateway.js';
import { generateStudy } from '../helpers/gen-study.js';
import { startTestPostgres } from '../helpers/pg.js';
import { createBucket, startRgw } from '../helpers/rgw.js';
import { checkStored, query } from '../helpers/verify.js';
import { instanceKey } from '../../src/store/keys.js';
import type { S3Store } from '../../src/store/s3-store.js';

const rgw = await startRgw();
t.teardown(() => rgw.stop());
const pgsrv = await startTestPostgres();
t.teardown(() => pgsrv.stop());
await createBucket(rgw, 'dicom');
const gw = await startTestGateway({
  databaseUrl: pgsrv.connectionString,
  s3: { ...rgw, bucket: 'dicom' },
  // Answer after the upload, so every check below can read the bucket at once; the spooled
  // mode has its own tests (spool.test.ts).
  s3Options: { ack: 'stored' },
});
t.teardown(() => gw.close());
const work = await mkdtemp(join(tmpdir(), 'gw-s3-'));
t.teardown(() => rm(work, { recursive: true, force: true }));

const peer = { host: '127.0.0.1', port: gw.port, callingAet: 'STORESCU', calledAet: 'DICOMGW' };

t.test('C-ECHO', async (t) => {
  const r = await echoscu(peer);
  t.equal(r.code, 0, 'storescu exit code 0');
});

t.test('a 200-instance, 2-series study lands byte-exact in the bucket and the index', async (t) => {
  const study = await generateStudy(join(work, 'study'), {
    studies: 1,
    series: 2,
    instances: 100,
    rows: 64,
    cols: 64,
    modality: 'CT',
    seed: 11,
  });
  t.equal(study.files.length, 200);
  // The PUT requests as signed: RGW checks the payload's sha256, so neither the receipt (MD5
  // while receiving) nor the upload (a read for Content-MD5) hashes anything but the sha256.
  const puts: Array<Record<string, string>> = [];
  (gw.gw.store as S3Store).client.middlewareStack.add(
    (next) => (args) => {
      const req = args.request as { method?: string; headers: Record<string, string> };
      if (req.method === 'PUT') puts.push({ ...req.headers });
      return next(args);
    },
    { step: 'build', priority: 'low', name: 'recordPuts' },
  );
  const r = await storescu({ ...peer, files: [join(work, 'study')], timeoutMs: 120_000 });
  t.equal(r.code, 0, 'storescu exit code 0');
  t.equal(r.statuses.length, 200, 'one response per file');
  t.ok(
    r.statuses.every((s) => s === 0),
    'every C-STORE answered 0000',
  );

  let exact = 0;
  let shaOk = 0;
  for (const f of study.files) {
    const key = instanceKey('', f.studyUid, f.seriesUid, f.sopInstanceUid);
    const c = await checkStored(gw.gw.store, key, f.path);
    if (c.datasetEqual) exact++;
    if (c.shaMetadataOk) shaOk++;
  }
  t.equal(exact, 200, 'every object holds the sent data set unchanged');
  t.equal(shaOk, 200, 'every object has sha256 metadata matching its bytes');
  t.equal(puts.length, 200, 'one PUT per instance');
  t.equal(
    puts.filter((h) => /^[0-9a-f]{64}$/.test(h['x-amz-content-sha256'] ?? '')).length,
    200,
    'each signed with its sha256',
  );
  t.equal(puts.filter((h) => h['content-md5']).length, 0, 'no Content-MD5 computed');

  // dcmdump reads the File Meta we wrote (a sample; each call spawns a process).
  const first = study.files[0]!;
  const obj = await checkStored(
    gw.gw.store,
    instanceKey('', first.studyUid, first.seriesUid, first.sopInstanceUid),
    first.path,
  );
  const file = join(work, 'fetched.dcm');
  const { writeFile } = await import('node:fs/promises');
  await writeFile(file, obj.object);
  const dump = await dcmdump(file);
  t.match(dump, /\(0002,0010\) UI =LittleEndianExplicit/);
  t.match(dump, /\(0002,0016\) AE \[STORESCU\]/);
  t.match(
    dump,
    new RegExp(`\\(0002,0003\\) UI \\[${first.sopInstanceUid.replace(/\./g, '\\.')}\\]`),
  );

  const rows = await query<{ n: string }>(
    pgsrv.connectionString,
    'SELECT count(*) AS n FROM instances',
  );
  t.equal(Number(rows[0]!.n), 200, 'one index row per instance');
  const study0 = await gw.gw.index.getStudy(first.studyUid);
  t.ok(study0);
  t.equal(study0!.numberOfInstances, 200);
  t.equal(study0!.numberOfSeries, 2);
  t.same(study0!.modalitiesInStudy, ['CT']);
  t.equal(
    study0!.totalBytes,
    Number(
      (
        await query<{ s: string }>(pgsrv.connectionString, 'SELECT sum(size) AS s FROM instances')
      )[0]!.s,
    ),
  );
  const events = await query<{ n: string }>(
    pgsrv.connectionString,
    "SELECT count(*) AS n FROM outbox WHERE event_type = 'instance.stored'",
  );
  t.equal(Number(events[0]!.n), 200, 'one outbox event per instance');

  // Sending the same study again is idempotent: success, no new rows or events.
  const again = await storescu({ ...peer, files: [join(work, 'study')], timeoutMs: 120_000 });
  t.ok(
    again.statuses.length === 200 && again.statuses.every((s) => s === 0),
    'resend answered 0000',
  );
  const after = await query<{ n: string }>(
    pgsrv.connectionString,
    'SELECT count(*) AS n FROM instances',
  );
  t.equal(Number(after[0]!.n), 200, 'no duplicate rows');
  const events2 = await query<{ n: string }>(
    pgsrv.connectionString,
    'SELECT count(*) AS n FROM outbox',
  );
  t.equal(Number(events2[0]!.n), 200, 'no duplicate events');
});

t.test('three concurrent associations: all stored, no cross-talk', async (t) => {
  const dirs = await Promise.all(
    [21, 22, 23].map(async (seed) => {
      const dir = join(work, `c${seed}`);
      return {
        dir,
        study: await generateStudy(dir, {
          series: 1,
          instances: 30,
          rows: 64,
          cols: 64,
          seed,
          modality: 'MR',
        }),
      };
    }),
  );
  const results = await Promise.all(
    dirs.map((d, i) =>
      storescu({ ...peer, callingAet: `SENDER${i}`, files: [d.dir], timeoutMs: 120_000 }),
    ),
  );
  for (const r of results) {
    t.equal(r.code, 0, 'storescu exit code 0');
    t.ok(r.statuses.length === 30 && r.statuses.every((s) => s === 0), 'all 0000');
  }
  for (const [i, d] of dirs.entries()) {
    let exact = 0;
    for (const f of d.study.files) {
      const c = await checkStored(
        gw.gw.store,
        instanceKey('', f.studyUid, f.seriesUid, f.sopInstanceUid),
        f.path,
      );
      if (c.datasetEqual) exact++;
    }
    t.equal(exact, 30, `sender ${i}: every object exact`);
    const rows = await query<{ calling_ae: string; n: string }>(
      pgsrv.connectionString,
      `SELECT i.calling_ae, count(*) AS n FROM instances i JOIN series s ON s.id = i.series_fk
       JOIN studies st ON st.id = s.study_fk WHERE st.study_uid = $1 GROUP BY i.calling_ae`,
      [d.study.files[0]!.studyUid],
    );
    t.same(rows, [{ calling_ae: `SENDER${i}`, n: '30' }], `sender ${i}: its rows name its AE`);
  }
});

t.test('no patient name or ID from the fixtures appears in the logs', async (t) => {
  const text = gw.logText();
  t.ok(text.includes('instance.stored'), 'logs were captured');
  const rows = await query<{ patient_id: string; patient_name: string }>(
    pgsrv.connectionString,
    'SELECT patient_id, patient_name FROM patients',
  );
  t.ok(rows.length > 0);
  for (const r of rows) {
    if (r.patient_id)
      t.notOk(text.includes(r.patient_id), `PatientID ${r.patient_id.slice(0, 2)}… not logged`);
    if (r.patient_name) t.notOk(text.includes(r.patient_name), 'PatientName not logged');
  }
});
