/**
 * `dicom-gateway backfill` with DCMTK dcmqrscp as the source: no NumberOfStudyRelatedInstances
 * (every study is compared on its instance UIDs), space-padded values, and a source that serves
 * one association at a time while the peer allows three: backfill backs off and goes on.
 */
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { startDcmqrscp } from '../helpers/dcmqrscp.js';
import { storescu } from '../helpers/dcmtk.js';
import { runCli } from '../helpers/gateway-process.js';
import { startTestGateway } from '../helpers/gateway.js';
import { generateStudy, type GeneratedFile } from '../helpers/gen-study.js';
import { startTestPostgres } from '../helpers/pg.js';

const work = await mkdtemp(join(tmpdir(), 'backfill-qr-'));
t.teardown(() => rm(work, { recursive: true, force: true }));
const pg = await startTestPostgres();
t.teardown(() => pg.stop());
const gw = await startTestGateway({ databaseUrl: pg.connectionString });
t.teardown(() => gw.close());
const qr = await startDcmqrscp({
  aeTitle: 'QRSCP',
  hosts: { gateway: ['DICOMGW', '127.0.0.1', gw.port] },
  maxAssociations: 1,
});
t.teardown(() => qr.stop());

const studies: GeneratedFile[][] = [];
for (let k = 1; k <= 4; k++) {
  const g = await generateStudy(join(work, `s${k}`), {
    series: 2,
    instances: 3,
    rows: 16,
    cols: 16,
    seed: 300 + k,
  });
  studies.push(g.files);
}
const toSource = await storescu({
  host: '127.0.0.1',
  port: qr.port,
  callingAet: 'MODALITY',
  calledAet: 'QRSCP',
  files: studies.flat().map((f) => f.path),
});
if (toSource.code !== 0) throw new Error(`storescu to dcmqrscp: ${toSource.stderr}`);
const [s1, s2, s3] = studies as [GeneratedFile[], GeneratedFile[], GeneratedFile[]];
const already = [...s1, ...s2.filter((f) => f.seriesNumber === 1), ...s3.slice(1)];
const toGateway = await storescu({
  host: '127.0.0.1',
  port: gw.port,
  callingAet: 'MODALITY',
  calledAet: 'DICOMGW',
  files: already.map((f) => f.path),
});
if (toGateway.code !== 0) throw new Error(`storescu to the gateway: ${toGateway.stderr}`);
const MISSING = 24 - already.length; // 3 + 1 + 6

const peer = { aeTitle: 'QRSCP', host: '127.0.0.1', port: qr.port, maxAssociations: 3 };
async function configFile(name: string, peers: unknown[]): Promise<string> {
  const path = join(work, `${name}.json`);
  await writeFile(
    path,
    JSON.stringify({
      dicom: { aeTitle: 'DICOMGW', host: '127.0.0.1', port: gw.port, peers },
      index: { type: 'postgres', url: pg.connectionString },
      store: { type: 'fs', root: join(work, 'unused') },
      admin: { enabled: false },
      log: { level: 'info' },
    }),
  );
  return path;
}
const cfgPath = await configFile('qr', [peer]);
const args = ['--config', cfgPath, 'backfill', '--source', 'QRSCP', '--from', '2024-01-01'];
const range = [...args, '--to', '2024-12-31', '--json'];

t.test('no instance counts, padded values, one association at a time: complete', async (t) => {
  const before = gw.gw.ingest.stats.received;
  const r = await runCli(range);
  t.equal(r.code, 0, r.stderr.slice(-3000));
  const rep = JSON.parse(r.stdout) as { totals: Record<string, number> };
  t.match(rep.totals, {
    checked: 4,
    complete: 1,
    backfilled: 3,
    failed: 0,
    instancesMoved: MISSING,
  });
  t.equal(gw.gw.ingest.stats.received - before, MISSING, 'only what was missing');
  t.match(
    r.stderr,
    /"event":"backfill.backoff"/,
    'backed off when the source refused a second association',
  );
  for (const s of studies) {
    const rows = await gw.gw.index.listInstances(s[0]!.studyUid);
    t.same(rows.map((x) => x.sopInstanceUid).sort(), s.map((f) => f.sopInstanceUid).sort());
    for (const f of s) {
      const row = rows.find((x) => x.sopInstanceUid === f.sopInstanceUid)!;
      const stored = await readFile(join(gw.dir, 'objects', row.objectKey));
      t.equal(sha(dataSet(stored)), sha(dataSet(await readFile(f.path))), 'data set identical');
    }
  }
});

t.test('a second run moves nothing', async (t) => {
  const before = gw.gw.ingest.stats.received;
  const r = await runCli(range);
  t.equal(r.code, 0);
  t.match((JSON.parse(r.stdout) as { totals: unknown }).totals, {
    checked: 4,
    complete: 4,
    instancesMoved: 0,
  });
  t.equal(gw.gw.ingest.stats.received, before);
});

t.test('a source that refuses the association: a clear error, exit 1', async (t) => {
  const path = await configFile('refused', [{ ...peer, aeTitle: 'NOTQRSCP' }]);
  const r = await runCli(['--config', path, 'backfill', '--source', 'NOTQRSCP', '--days', '30']);
  t.equal(r.code, 1);
  t.match(r.stderr, /source NOTQRSCP at 127\.0\.0\.1:\d+ refused the association/);
});

function sha(b: Buffer): string {
  return createHash('sha256').update(b).digest('hex');
}

function dataSet(file: Buffer): Buffer {
  return file.subarray(132 + 12 + file.readUInt32LE(132 + 8));
}
