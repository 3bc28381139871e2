/**
 * Routing rules end to end (issue 17): the real `serve` process with two fs stores, an S3
 * store (Ceph RGW, ack spooled) and PostgreSQL, DCMTK storescu as several senders (-aet).
 * Nine rules test the calling AE, a CIDR, the modality, the SOP class, a tag by regex and a date range. The test checks where
 * each instance went (store, key prefix, labels, destinations in the index and the outbox),
 * that rejected instances get the rule's status and leave no object, no staged file and no
 * row, that an AE no rule accepts is refused at association time, that `route test` on the
 * same files says what the server did, and that SIGHUP with a broken file keeps the old rules
 * while a good file applies new ones to the next association. Two notify destinations, an
 * Orthanc (orthanc-push) and DCMTK storescp (dicom), get the instances of every store, each
 * read from the store its row names; so does the study archive (a zip per study in the bucket).
 *
 * Longer than 400 lines on purpose: the parts share one gateway process, its RGW and
 * PostgreSQL, and the studies already sent (route test and verify check what the first part
 * stored); split, each file would start them all again.
 */
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buffer } from 'node:stream/consumers';
import t from 'tap';
import { readPart10Header } from '../../src/dicom/file-meta.js';
import { startStorescp, storescu } from '../helpers/dcmtk.js';
import { runCli, startGatewayProcess } from '../helpers/gateway-process.js';
import { generateStudy, type GeneratedFile } from '../helpers/gen-study.js';
import { startOrthanc } from '../helpers/orthanc.js';
import { startTestPostgres } from '../helpers/pg.js';
import { createBucket, startRgw } from '../helpers/rgw.js';
import { query, until } from '../helpers/verify.js';
import { readZip } from '../helpers/zip-read.js';
import { S3Store } from '../../src/store/s3-store.js';

const pgsrv = await startTestPostgres();
t.teardown(() => pgsrv.stop());
const work = await mkdtemp(join(tmpdir(), 'gw-routing-'));
t.teardown(() => rm(work, { recursive: true, force: true }));

const small = { series: 1, rows: 16, cols: 16 };
const ct = await generateStudy(join(work, 'ct'), { ...small, instances: 3, seed: 171 });
const mr = await generateStudy(join(work, 'mr'), {
  ...small,
  instances: 2,
  seed: 172,
  modality: 'MR',
});
const mg = await generateStudy(join(work, 'mg'), {
  ...small,
  instances: 2,
  seed: 173,
  modality: 'MG',
});
const sc = await generateStudy(join(work, 'sc'), {
  ...small,
  instances: 2,
  seed: 174,
  modality: 'SC',
});
const research = await generateStudy(join(work, 'research'), {
  ...small,
  instances: 2,
  seed: 175,
  studyDescription: 'RESEARCH protocol 7',
});
const labMr = await generateStudy(join(work, 'lab'), {
  ...small,
  instances: 2,
  seed: 176,
  modality: 'MR',
});
const cr = await generateStudy(join(work, 'cr'), {
  ...small,
  instances: 2,
  seed: 177,
  modality: 'CR',
});
const other = await generateStudy(join(work, 'other'), { ...small, instances: 1, seed: 178 });
const crDate = cr.files[0]!.studyDate;

const rgw = await startRgw();
t.teardown(() => rgw.stop());
await createBucket(rgw, 'routed');
const s3 = { ...rgw, bucket: 'routed' };
const bucket = new S3Store({ ...s3, forcePathStyle: true });
t.teardown(() => bucket.close());
const cloudSpool = join(work, 'spool-cloud');

// The notify destinations: an Orthanc that takes pushed files, and a DICOM peer.
const orthanc = await startOrthanc({
  config: { AuthenticationEnabled: false, RemoteAccessAllowed: false },
});
t.teardown(() => orthanc.stop());
const viewerDir = join(work, 'mammo-viewer');
await mkdir(viewerDir);
const viewer = await startStorescp({ aet: 'MAMMOVIEW', outDir: viewerDir });
t.teardown(() => viewer.stop());

const roots = { default: join(work, 'objects'), research: join(work, 'research-store') };
const rules = [
  {
    name: 'no-sc-from-ws',
    match: { callingAe: 'VIEWER_WS', sopClass: 'SecondaryCaptureImageStorage' },
    action: 'reject',
    status: '0122',
    reason: 'secondary captures from the viewing workstation are not archived',
  },
  // Only association facts: ROGUE is refused when it associates.
  { name: 'rogue', match: { callingAe: 'ROGUE' }, action: 'reject', status: 'A7FF' },
  // A CIDR the loopback never matches, then one it does.
  { name: 'far-net', match: { address: '10.0.0.0/8' }, action: 'reject', status: 'C001' },
  {
    name: 'lab',
    match: { callingAe: 'LABPACS', address: ['127.0.0.0/8', '::1'] },
    action: 'accept',
    store: 'research',
    prefix: 'lab',
    labels: ['lab'],
  },
  {
    name: 'mammo',
    match: { modality: 'MG' },
    action: 'accept',
    store: 'research',
    prefix: 'mammo/',
    labels: ['mammo', 'screening'],
    destinations: ['mammo-viewer'],
  },
  {
    name: 'research-studies',
    match: { tags: { StudyDescription: { regex: '^research', ignoreCase: true } } },
    action: 'accept',
    store: 'research',
    prefix: 'research',
    labels: ['research'],
    destinations: ['cloud'],
  },
  {
    name: 'dated-cr',
    match: { modality: 'CR', tags: { StudyDate: { from: crDate, to: crDate } } },
    action: 'accept',
    store: 'cloud',
    prefix: 'dated',
    labels: ['dated'],
  },
  {
    name: 'main-ct-mr',
    match: { callingAe: 'MAINPACS', modality: ['CT', 'MR'] },
    action: 'accept',
    store: 'default',
    prefix: 'main',
    destinations: ['cloud'],
  },
  { name: 'everything-else', match: {}, action: 'accept' },
];
const config = (routingRules: unknown[]): Record<string, unknown> => ({
  dicom: { aeTitle: 'DICOMGW', host: '127.0.0.1', port: 0 },
  index: { type: 'postgres', url: pgsrv.connectionString },
  stores: {
    default: { type: 'fs', root: roots.default },
    research: { type: 'fs', root: roots.research, prefix: 'r', ack: 'stored' },
    cloud: {
      type: 's3',
      endpoint: s3.endpoint,
      region: s3.region,
      bucket: s3.bucket,
      accessKeyId: s3.accessKeyId,
      secretAccessKey: s3.secretAccessKey,
      ack: 'spooled',
      spool: { dir: cloudSpool },
    },
  },
  notify: {
    destinations: [
      { type: 'orthanc-push', name: 'cloud', url: orthanc.url },
      {
        type: 'dicom',
        name: 'mammo-viewer',
        aeTitle: 'MAMMOVIEW',
        host: '127.0.0.1',
        port: viewer.port,
      },
    ],
    pollSeconds: 1,
    backoff: { initialSeconds: 0.2, maxSeconds: 1 },
    // A zip of each study, 2 s after its last instance, into the S3 store's bucket.
    stableAfterSeconds: 2,
    archive: { prefix: 'zips/' },
  },
  // Loopback, no token: /metrics is served to this test.
  admin: { enabled: true, host: '127.0.0.1', port: 0 },
  log: { level: 'info' },
  routing: { rules: routingRules },
});
const configPath = join(work, 'gateway.json');
const gw = await startGatewayProcess(config(rules), configPath);
t.teardown(() => {
  gw.child.kill('SIGKILL');
});

const send = (ae: string, files: GeneratedFile[]) =>
  storescu({
    host: '127.0.0.1',
    port: gw.port,
    callingAet: ae,
    calledAet: 'DICOMGW',
    files: files.map((f) => f.path),
    // -nh: go on after a refused instance (storescu halts at the first failure by default).
    extraArgs: ['-nh'],
  });

interface Row {
  sop_instance_uid: string;
  store_name: string;
  object_key: string;
  labels: string[] | null;
  destinations: string[] | null;
  sha256: string;
}
async function rowsOf(files: GeneratedFile[]): Promise<Map<string, Row>> {
  const rows = await query<Row>(
    pgsrv.connectionString,
    `SELECT sop_instance_uid, store_name, object_key, labels, destinations, sha256 FROM instances
     WHERE sop_instance_uid = ANY($1)`,
    [files.map((f) => f.sopInstanceUid)],
  );
  return new Map(rows.map((r) => [r.sop_instance_uid, r]));
}

/** Every file under dir (recursively), as paths relative to it. */
async function filesUnder(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true }).catch(() => []);
  return entries
    .filter((e) => e.isFile())
    .map((e) => join(e.parentPath, e.name).slice(dir.length + 1));
}

/** What each sender sends, and where each rule puts it. */
const plan: Array<{
  ae: string;
  files: GeneratedFile[];
  rule: string;
  store?: 'default' | 'research' | 'cloud';
  prefix?: string;
  labels?: string[];
  destinations?: string[];
  status?: number;
}> = [
  {
    ae: 'MAINPACS',
    files: ct.files,
    rule: 'main-ct-mr',
    store: 'default',
    prefix: 'main',
    destinations: ['cloud'],
  },
  {
    ae: 'MAINPACS',
    files: mr.files,
    rule: 'main-ct-mr',
    store: 'default',
    prefix: 'main',
    destinations: ['cloud'],
  },
  {
    ae: 'MODALITY1',
    files: mg.files,
    rule: 'mammo',
    store: 'research',
    prefix: 'r/mammo',
    labels: ['mammo', 'screening'],
    destinations: ['mammo-viewer'],
  },
  { ae: 'VIEWER_WS', files: sc.files, rule: 'no-sc-from-ws', status: 0x0122 },
  {
    ae: 'MODALITY1',
    files: research.files,
    rule: 'research-studies',
    store: 'research',
    prefix: 'r/research',
    labels: ['research'],
    destinations: ['cloud'],
  },
  {
    ae: 'LABPACS',
    files: labMr.files,
    rule: 'lab',
    store: 'research',
    prefix: 'r/lab',
    labels: ['lab'],
  },
  {
    ae: 'MODALITY1',
    files: cr.files,
    rule: 'dated-cr',
    store: 'cloud',
    prefix: 'dated',
    labels: ['dated'],
  },
  { ae: 'VIEWER_WS', files: other.files, rule: 'everything-else', store: 'default', prefix: '' },
];

t.test('each instance goes where its rule says; rejected ones leave nothing', async (t) => {
  for (const p of plan) {
    const r = await send(p.ae, p.files);
    t.same(
      r.statuses,
      p.files.map(() => p.status ?? 0),
      `${p.ae} -> ${p.rule}: statuses`,
    );
  }
  for (const p of plan) {
    const rows = await rowsOf(p.files);
    if (p.status !== undefined) {
      t.equal(rows.size, 0, `${p.rule}: no row`);
      continue;
    }
    for (const f of p.files) {
      const row = rows.get(f.sopInstanceUid);
      const key = `${p.prefix ? `${p.prefix}/` : ''}studies/${f.studyUid}/series/${f.seriesUid}/instances/${f.sopInstanceUid}.dcm`;
      t.match(row, { store_name: p.store, object_key: key }, `${p.rule}: store and key`);
      t.same(row?.labels ?? null, p.labels ?? null, `${p.rule}: labels`);
      t.same(row?.destinations ?? null, p.destinations ?? null, `${p.rule}: destinations`);
      // The object is in the chosen store (the bucket once the spool is drained), under the key.
      if (p.store === 'cloud') {
        const info = await until(() => bucket.head(key), 30_000, `${key} in the bucket`);
        t.equal(info.sha256, row?.sha256, `${p.rule}: object in the bucket`);
      } else {
        // `default` answers 'spooled' (the fs default): its file is published a moment later.
        const root = roots[p.store!];
        const found = await until(
          async () => (await filesUnder(root)).includes(key),
          30_000,
          `${key} in ${p.store}`,
        ).catch(() => false);
        t.ok(found, `${p.rule}: object in ${p.store}`);
      }
    }
  }
  // The outbox event carries the rule's destinations (notify will honour them).
  const events = await query<{ payload: { sopInstanceUid: string; destinations?: string[] } }>(
    pgsrv.connectionString,
    `SELECT payload FROM outbox WHERE payload->>'sopInstanceUid' = ANY($1)`,
    [[mg.files[0]!.sopInstanceUid, ct.files[0]!.sopInstanceUid, other.files[0]!.sopInstanceUid]],
  );
  const byUid = new Map(events.map((e) => [e.payload.sopInstanceUid, e.payload.destinations]));
  t.same(byUid.get(mg.files[0]!.sopInstanceUid), ['mammo-viewer']);
  t.same(byUid.get(ct.files[0]!.sopInstanceUid), ['cloud']);
  t.equal(byUid.get(other.files[0]!.sopInstanceUid), undefined, 'no rule destinations: none');
  // Rejected instances: no object, no staged file left anywhere.
  const everything = [
    ...(await filesUnder(roots.default)),
    ...(await filesUnder(roots.research)),
    ...(await filesUnder(cloudSpool)),
  ].join('\n');
  for (const f of sc.files)
    t.notOk(everything.includes(f.sopInstanceUid), 'no file of a rejected instance');
  t.notOk(/\.part$/m.test(everything), 'no staged file left');
  const refused = gw.events().filter((e) => e.event === 'instance.failed' && e.status === '0x0122');
  t.equal(refused.length, sc.files.length, 'each refusal logged');
});

t.test('an AE that no rule accepts is refused when it associates', async (t) => {
  const r = await send('ROGUE', ct.files.slice(0, 1));
  t.not(r.code, 0, 'storescu fails');
  t.same(r.statuses, [], 'no C-STORE was sent');
  const rj = await until(
    async () =>
      gw.events().find((e) => e.event === 'association.rejected' && /ROGUE/.test(String(e.why))),
    10_000,
    'association.rejected',
  );
  t.match(rj, { result: 1, source: 1, reason: 3, why: /routing rule "rogue"/ });
});

t.test('route test on the same files says what the server did', async (t) => {
  for (const p of plan) {
    const r = await runCli([
      '--config',
      configPath,
      'route',
      'test',
      '--json',
      '--calling-ae',
      p.ae,
      '--address',
      '127.0.0.1',
      ...p.files.map((f) => f.path),
    ]);
    t.equal(r.code, 0, `${p.rule}: exit code`);
    const out = r.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    const rows = await rowsOf(p.files);
    for (const [i, f] of p.files.entries()) {
      const o = out[i]!;
      t.equal(o.rule, p.rule, `${p.rule}: same rule`);
      const row = rows.get(f.sopInstanceUid);
      if (p.status !== undefined) {
        t.match(o, { action: 'reject', status: '0122' });
        t.equal(row, undefined);
      } else {
        t.match(o, { action: 'accept', store: row?.store_name, key: row?.object_key });
        t.same(o.labels, row?.labels ?? []);
        t.same(o.destinations, row?.destinations ?? []);
      }
    }
  }
});

t.test('verify reads each instance from its own store; status lists the stores', async (t) => {
  await until(
    async () =>
      (
        await query<{ n: number }>(
          pgsrv.connectionString,
          `SELECT count(*)::int AS n FROM instances WHERE state = 'pending-upload'`,
        )
      )[0]!.n === 0,
    30_000,
    'the cloud spool to drain',
  );
  const stored = plan.filter((p) => p.status === undefined).flatMap((p) => p.files).length;
  const v = await runCli(['--config', configPath, 'verify', '--json']);
  t.equal(v.code, 0, v.stderr);
  t.match(JSON.parse(v.stdout), { checked: stored, ok: stored, skipped: 0, missing: 0 });
  const s = await runCli(['--config', configPath, 'status', '--json']);
  t.equal(s.code, 0, s.stderr);
  t.match(JSON.parse(s.stdout), { store: /default: .*; research: .*; cloud: s3:\/\/routed/ });
});

/** The bytes of an instance's object, read from the store its row names. */
async function objectOf(row: Row): Promise<Buffer> {
  if (row.store_name === 'cloud') return buffer(await bucket.get(row.object_key));
  return readFile(join(roots[row.store_name as keyof typeof roots], row.object_key));
}
const datasetHash = (file: Buffer): string =>
  createHash('sha256')
    .update(file.subarray(readPart10Header(file).datasetOffset))
    .digest('hex');

t.test('notify reads each instance from the store its row names', async (t) => {
  const accepted = plan.filter((p) => p.status === undefined);
  // A rule without destinations leaves every destination to the instance.
  const filesFor = (dest: string): GeneratedFile[] =>
    accepted
      .filter((p) => p.destinations === undefined || p.destinations.includes(dest))
      .flatMap((p) => p.files);
  const rows = await rowsOf(accepted.flatMap((p) => p.files));

  // orthanc-push: each file is in Orthanc, byte for byte as stored.
  const pushed = filesFor('cloud');
  t.same(
    new Set(pushed.map((f) => rows.get(f.sopInstanceUid)?.store_name)),
    new Set(['default', 'research', 'cloud']),
    'the pushed instances lie in all three stores',
  );
  for (const f of pushed) {
    const id = await until(
      async () => {
        const res = await orthanc.request('/tools/lookup', {
          method: 'POST',
          body: f.sopInstanceUid,
        });
        const found = (await res.json()) as Array<{ ID: string; Type: string }>;
        return found.find((x) => x.Type === 'Instance')?.ID;
      },
      60_000,
      `${f.sopInstanceUid} in Orthanc`,
    );
    const inOrthanc = Buffer.from(
      await (await orthanc.request(`/instances/${id}/file`)).arrayBuffer(),
    );
    const row = rows.get(f.sopInstanceUid)!;
    t.ok(inOrthanc.equals(await objectOf(row)), `orthanc-push from ${row.store_name}: same bytes`);
  }

  // dicom: the peer received exactly the data sets of its instances, as stored.
  const sent = filesFor('mammo-viewer');
  const names = await until(
    async () => {
      const n = await readdir(viewerDir);
      return n.length >= sent.length ? n : undefined;
    },
    60_000,
    `${sent.length} files at the DICOM peer`,
  );
  const received = await Promise.all(
    names.map(async (n) => datasetHash(await readFile(join(viewerDir, n)))),
  );
  const expected = await Promise.all(
    sent.map(async (f) => datasetHash(await objectOf(rows.get(f.sopInstanceUid)!))),
  );
  t.same(received.sort(), expected.sort(), 'the data sets of its instances, from every store');

  // The archive: a study of each store zipped, its entries the objects as stored.
  for (const study of [ct, research, cr]) {
    const uid = study.files[0]!.studyUid;
    const zip = await until(() => bucket.head(`zips/${uid}.zip`), 60_000, `zips/${uid}.zip`);
    const path = join(work, `${uid}.zip`);
    await writeFile(path, await buffer(await bucket.get(zip.key)));
    const { bad, entries } = await readZip(path);
    t.equal(bad, null, 'every CRC in the zip matches');
    const objects = await Promise.all(
      study.files.map(async (f) => {
        const row = rows.get(f.sopInstanceUid)!;
        const sha = createHash('sha256')
          .update(await objectOf(row))
          .digest('hex');
        return [`series/${f.seriesUid}/instances/${f.sopInstanceUid}.dcm`, sha, row.store_name];
      }),
    );
    t.same(
      entries.map((e) => [e.name, e.sha256]).sort(),
      objects.map(([name, sha]) => [name, sha]).sort(),
      `the zip of a study in ${objects[0]![2]} holds its objects as stored`,
    );
  }
});

t.test(
  'SIGHUP: a broken file keeps the old rules, a good one applies to the next association',
  async (t) => {
    // Broken: the last rule no longer matches everything, and a rule names an unknown store.
    const broken = rules
      .slice(0, -1)
      .map((r) => (r.name === 'lab' ? { ...r, store: 'nowhere' } : r));
    await writeFile(configPath, JSON.stringify(config(broken)));
    gw.child.kill('SIGHUP');
    const failed = await until(
      async () => gw.events().find((e) => e.event === 'config.reload_failed'),
      10_000,
      'config.reload_failed',
    );
    t.match(
      String(failed.err),
      /routing\.rules\.3\(lab\)\.store: rule "lab": no store named "nowhere"/,
    );
    t.match(
      String(failed.err),
      /routing\.rules\.7\(main-ct-mr\)\.match: rule "main-ct-mr" is the last rule/,
    );
    const adminPort = Number(gw.events().find((e) => e.event === 'admin.started')?.port);
    const metrics = await (await fetch(`http://127.0.0.1:${adminPort}/metrics`)).text();
    t.match(metrics, /dicomgw_config_reload_total\{result="failed"\} 1/, 'counted in /metrics');
    const stillRejected = await send('VIEWER_WS', sc.files.slice(0, 1));
    t.same(stillRejected.statuses, [0x0122], 'the old rules still apply');

    // Good: the workstation's secondary captures are now accepted, into research/ws.
    const good = [
      {
        name: 'ws-sc',
        match: { callingAe: 'VIEWER_WS', sopClass: 'SecondaryCaptureImageStorage' },
        action: 'accept',
        store: 'research',
        prefix: 'ws',
        labels: ['ws'],
      },
      ...rules.slice(1),
    ];
    await writeFile(configPath, JSON.stringify(config(good)));
    gw.child.kill('SIGHUP');
    await until(
      async () => gw.events().find((e) => e.event === 'config.reloaded'),
      10_000,
      'config.reloaded',
    );
    const accepted = await send('VIEWER_WS', sc.files);
    t.same(
      accepted.statuses,
      sc.files.map(() => 0),
      'the new rules apply',
    );
    const rows = await rowsOf(sc.files);
    for (const f of sc.files) {
      t.match(rows.get(f.sopInstanceUid), {
        store_name: 'research',
        object_key: `r/ws/studies/${f.studyUid}/series/${f.seriesUid}/instances/${f.sopInstanceUid}.dcm`,
        labels: ['ws'],
      });
    }
  },
);
