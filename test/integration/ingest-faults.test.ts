/**
 * FsStore + PostgreSQL: character sets, and the acknowledgement rule when the index
 * database goes away mid-run (no row without object, nothing counted twice).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { storescu } from '../helpers/dcmtk.js';
import { startTestGateway } from '../helpers/gateway.js';
import { generateStudy } from '../helpers/gen-study.js';
import { startTestPostgres } from '../helpers/pg.js';
import { checkStored, query, sha256 } from '../helpers/verify.js';
import { instanceKey, versionKey } from '../../src/store/keys.js';

const fixtures = join(dirname(fileURLToPath(import.meta.url)), '..', 'fixtures');

const pgsrv = await startTestPostgres();
t.teardown(() => pgsrv.stop());
const gw = await startTestGateway({ databaseUrl: pgsrv.connectionString });
t.teardown(() => gw.close());
const work = await mkdtemp(join(tmpdir(), 'gw-faults-'));
t.teardown(() => rm(work, { recursive: true, force: true }));
const peer = { host: '127.0.0.1', port: gw.port, callingAet: 'STORESCU', calledAet: 'DICOMGW' };

t.test('Cyrillic names in ISO_IR 144 and ISO_IR 192 are indexed as UTF-8', async (t) => {
  for (const name of ['mr-cyrillic-iso-ir-144.dcm', 'mr-cyrillic-iso-ir-192.dcm']) {
    const r = await storescu({ ...peer, files: [join(fixtures, name)], timeoutMs: 30_000 });
    t.same(r.statuses, [0], `${name} stored`);
  }
  const rows = await query<{ patient_name: string; charset: string }>(
    pgsrv.connectionString,
    `SELECT DISTINCT p.patient_name FROM patients p WHERE p.patient_name LIKE '%Иван%'`,
  );
  t.same(
    rows.map((r) => r.patient_name),
    ['Иванов^Иван'],
    'both encodings decode to the same UTF-8 name',
  );
});

t.test('index down: failure status, nothing half-written; back up: resend succeeds', async (t) => {
  const study = await generateStudy(join(work, 'pgdown'), {
    series: 1,
    instances: 6,
    rows: 32,
    cols: 32,
    seed: 31,
  });
  const [first, ...rest] = study.files;
  const ok = await storescu({ ...peer, files: [first!.path], timeoutMs: 30_000 });
  t.same(ok.statuses, [0], 'first instance stored while PostgreSQL is up');

  await pgsrv.stopServer();
  // -nh: DCMTK storescu halts after the first failed store by default; we want every answer.
  const down = await storescu({
    ...peer,
    files: rest.map((f) => f.path),
    extraArgs: ['-nh'],
    timeoutMs: 120_000,
  });
  t.equal(down.statuses.length, rest.length, 'every instance answered');
  t.ok(
    down.statuses.every((s) => s === 0xa700),
    `every C-STORE answered A700 (got ${down.statuses.map((s) => s.toString(16)).join(',')})`,
  );
  for (const f of rest) {
    const head = await gw.gw.store.head(instanceKey('', f.studyUid, f.seriesUid, f.sopInstanceUid));
    t.equal(head, undefined, `no object left for a refused instance`);
  }

  await pgsrv.start();
  const again = await storescu({
    ...peer,
    files: study.files.map((f) => f.path),
    timeoutMs: 120_000,
  });
  t.same(
    again.statuses,
    study.files.map(() => 0),
    'resend after recovery: all 0000',
  );
  for (const f of study.files) {
    const c = await checkStored(
      gw.gw.store,
      instanceKey('', f.studyUid, f.seriesUid, f.sopInstanceUid),
      f.path,
    );
    t.ok(c.datasetEqual && c.shaMetadataOk, 'object exact');
  }
  const rows = await query<{ n: string; s: string }>(
    pgsrv.connectionString,
    `SELECT count(*) AS n, sum(st.num_instances) AS s FROM instances i
     JOIN series se ON se.id = i.series_fk JOIN studies st ON st.id = se.study_fk
     WHERE st.study_uid = $1 GROUP BY st.id`,
    [first!.studyUid],
  );
  t.equal(Number(rows[0]!.n), 6, 'one row per instance, none twice');
  const studyRow = await gw.gw.index.getStudy(first!.studyUid);
  t.equal(studyRow?.numberOfInstances, 6, 'study counter not double-counted');
  const events = await query<{ n: string }>(
    pgsrv.connectionString,
    `SELECT count(*) AS n FROM outbox WHERE payload->>'studyInstanceUid' = $1`,
    [first!.studyUid],
  );
  t.equal(Number(events[0]!.n), 6, 'one outbox event per instance');
  // Every row points at an object that exists.
  const keys = await query<{ object_key: string }>(
    pgsrv.connectionString,
    'SELECT object_key FROM instances',
  );
  for (const k of keys)
    t.ok(await gw.gw.store.head(k.object_key), `object for ${k.object_key.slice(-20)}`);
});

t.test('duplicate policies against PostgreSQL and the file store', async (t) => {
  // Same seed, other pixels: same UIDs, other bytes.
  const first = await generateStudy(join(work, 'dup-a'), {
    series: 1,
    instances: 1,
    rows: 32,
    cols: 32,
    seed: 61,
    pixels: 'gradient',
  });
  const second = await generateStudy(join(work, 'dup-b'), {
    series: 1,
    instances: 1,
    rows: 32,
    cols: 32,
    seed: 61,
    pixels: 'zeros',
  });
  const [a, b] = [first.files[0]!, second.files[0]!];
  t.equal(a.sopInstanceUid, b.sopInstanceUid);
  t.not(a.sha256, b.sha256);
  const expected = {
    'keep-first': 0x0000,
    overwrite: 0x0000,
    'keep-versions': 0x0000,
    reject: 0x0111,
  } as const;
  for (const policy of Object.keys(expected) as Array<keyof typeof expected>) {
    const db = `dup_${policy.replace('-', '_')}`;
    await query(pgsrv.connectionString, `CREATE DATABASE ${db}`);
    const url = new URL(pgsrv.connectionString);
    url.pathname = `/${db}`;
    const g = await startTestGateway({
      databaseUrl: url.toString(),
      dicom: { duplicatePolicy: policy },
    });
    const p = { ...peer, port: g.port };
    t.same(
      (await storescu({ ...p, files: [a.path] })).statuses,
      [0],
      `${policy}: first copy stored`,
    );
    t.same(
      (await storescu({ ...p, files: [a.path] })).statuses,
      [0],
      `${policy}: identical resend 0000`,
    );
    t.same(
      (await storescu({ ...p, files: [b.path], extraArgs: ['-nh'] })).statuses,
      [expected[policy]],
      `${policy}: other bytes answered 0x${expected[policy].toString(16).padStart(4, '0')}`,
    );
    const key = instanceKey('', a.studyUid, a.seriesUid, a.sopInstanceUid);
    const kept = await checkStored(g.gw.store, key, policy === 'overwrite' ? b.path : a.path);
    t.ok(
      kept.datasetEqual,
      `${policy}: the canonical object holds the ${policy === 'overwrite' ? 'second' : 'first'} copy`,
    );
    const row = await query<{ sha256: string; duplicates_received: number }>(
      url.toString(),
      'SELECT sha256, duplicates_received FROM instances',
    );
    t.equal(row.length, 1, `${policy}: one row`);
    t.equal(row[0]!.sha256, sha256(kept.object), `${policy}: row sha256 = canonical object`);
    const versions = await query<{ object_key: string; sha256: string }>(
      url.toString(),
      'SELECT v.object_key, v.sha256 FROM instance_versions v JOIN instances i ON i.id = v.instance_fk',
    );
    if (policy === 'keep-versions') {
      t.equal(versions.length, 1, `${policy}: the second copy is indexed as a version`);
      const v = versions[0]!;
      t.equal(v.object_key, versionKey(key, v.sha256), `${policy}: under its version key`);
      const copy = await checkStored(g.gw.store, v.object_key, b.path);
      t.ok(copy.datasetEqual, `${policy}: which holds the second copy`);
      t.equal(sha256(copy.object), v.sha256, `${policy}: version row sha256 = its object`);
    } else {
      t.same(versions, [], `${policy}: no version rows`);
    }
    let objects = 0;
    for await (const _ of g.gw.store.list('')) objects++;
    t.equal(
      objects,
      policy === 'keep-versions' ? 2 : 1,
      `${policy}: ${policy === 'keep-versions' ? 'both copies' : 'one object'} in the store`,
    );
    await g.close();
  }
});
