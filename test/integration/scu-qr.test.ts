/**
 * C-FIND and C-MOVE SCU (src/scu/find.ts, move.ts) against a real Orthanc as the source, with
 * the gateway (in process) as the move destination: the sub-operations arrive through the
 * gateway's normal C-STORE path, linked to the move by MoveOriginatorMessageID.
 */
import { readFile } from 'node:fs/promises';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { cFind, QR_CONTEXTS } from '../../src/scu/find.js';
import { cMove } from '../../src/scu/move.js';
import { generateStudy } from '../helpers/gen-study.js';
import { startTestGateway } from '../helpers/gateway.js';
import { startOrthanc } from '../helpers/orthanc.js';
import { startTestPostgres } from '../helpers/pg.js';
import { openScu } from '../helpers/scu.js';

const work = await mkdtemp(join(tmpdir(), 'scu-qr-'));
t.teardown(() => rm(work, { recursive: true, force: true }));
const pg = await startTestPostgres();
t.teardown(() => pg.stop());
const gw = await startTestGateway({ databaseUrl: pg.connectionString });
t.teardown(() => gw.close());
const orthanc = await startOrthanc({
  config: {
    Name: 'SOURCE',
    DicomAet: 'SOURCEPACS',
    DicomCheckCalledAet: false,
    DicomModalities: { gateway: ['DICOMGW', '127.0.0.1', gw.port] },
    AuthenticationEnabled: false,
    RemoteAccessAllowed: false,
  },
});
t.teardown(() => orthanc.stop());

const a = await generateStudy(join(work, 'a'), {
  series: 2,
  instances: 3,
  rows: 16,
  cols: 16,
  seed: 1,
});
const b = await generateStudy(join(work, 'b'), {
  series: 1,
  instances: 2,
  rows: 16,
  cols: 16,
  seed: 2,
});
for (const f of [...a.files, ...b.files]) {
  const res = await orthanc.request('/instances', { method: 'POST', body: await readFile(f.path) });
  if (res.status !== 200) throw new Error(`Orthanc refused ${f.path}: ${res.status}`);
  await res.body?.cancel();
}
const studyA = a.files[0]!.studyUid;

const open = () =>
  openScu(t, {
    port: orthanc.dicomPort,
    callingAeTitle: 'DICOMGW',
    calledAeTitle: 'SOURCEPACS',
    contexts: QR_CONTEXTS,
  });

t.test('C-FIND at STUDY, SERIES and IMAGE level', async (t) => {
  const assoc = await open();
  const studies = await cFind(assoc, {
    level: 'STUDY',
    keys: { StudyInstanceUID: '', StudyDate: '', NumberOfStudyRelatedInstances: '' },
  });
  t.equal(studies.status, 0);
  t.same(
    studies.matches.map((m) => [m.StudyInstanceUID, m.NumberOfStudyRelatedInstances]).sort(),
    [
      [studyA, '6'],
      [b.files[0]!.studyUid, '2'],
    ].sort(),
  );
  const series = await cFind(assoc, {
    level: 'SERIES',
    keys: { StudyInstanceUID: studyA, SeriesInstanceUID: '', Modality: '' },
  });
  t.equal(series.matches.length, 2);
  const images = await cFind(assoc, {
    level: 'IMAGE',
    keys: { StudyInstanceUID: studyA, SeriesInstanceUID: '', SOPInstanceUID: '' },
  });
  t.same(
    images.matches.map((m) => m.SOPInstanceUID).sort(),
    a.files.map((f) => f.sopInstanceUid).sort(),
  );
  await assoc.release();
});

t.test('C-FIND with a result cap: C-CANCEL, FE00 or success, capped', async (t) => {
  const assoc = await open();
  const r = await cFind(assoc, {
    level: 'IMAGE',
    keys: { StudyInstanceUID: studyA, SeriesInstanceUID: '', SOPInstanceUID: '' },
    maxResults: 2,
  });
  t.equal(r.matches.length, 2);
  t.equal(r.capped, true);
  t.ok(r.status === 0xfe00 || r.status === 0, `final status 0x${r.status.toString(16)}`);
  // The association is still usable after a cancelled find.
  const again = await cFind(assoc, { level: 'STUDY', keys: { StudyInstanceUID: studyA } });
  t.equal(again.matches.length, 1);
  await assoc.release();
});

t.test('C-MOVE of one series to the gateway: counts and the index', async (t) => {
  const assoc = await open();
  const seriesUid = a.files[0]!.seriesUid;
  const progress: number[] = [];
  const r = await cMove(assoc, {
    level: 'SERIES',
    keys: { StudyInstanceUID: studyA, SeriesInstanceUID: seriesUid },
    destination: 'DICOMGW',
    onProgress: (p) => progress.push(p.completed),
  });
  t.equal(r.status, 0);
  t.equal(r.completed, 3);
  t.equal(r.failed, 0);
  await assoc.release();
  const rows = await gw.gw.index.listInstances(studyA);
  t.same(
    rows.map((x) => x.sopInstanceUid).sort(),
    a.files
      .filter((f) => f.seriesUid === seriesUid)
      .map((f) => f.sopInstanceUid)
      .sort(),
  );
  const linked = gw.logs.filter(
    (l) => l.event === 'instance.stored' && l.moveOriginatorAeTitle === 'DICOMGW',
  );
  t.equal(linked.length, 3, 'each sub-operation logged with its move originator');
});

t.test('C-MOVE to an unknown destination: a failure status (A801)', async (t) => {
  const assoc = await open();
  const r = await cMove(assoc, {
    level: 'STUDY',
    keys: { StudyInstanceUID: studyA },
    destination: 'NOSUCHAE',
  });
  t.not(r.status, 0);
  t.equal(r.completed, 0);
  assoc.abort();
});
