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
import { cFind, QR_CONTEXTS } from '../../src/scu/find.js';
import { cMove } from '../../src/scu/move.js';
import { startDcmqrscp } from '../helpers/dcmqrscp.js';
import { pino } from 'pino';
import type { Test } from 'tap';
import type { RequestorAssociation } from '../../src/scu/association.js';
import { SourcePool } from '../../src/scu/source-pool.js';
import { storescu } from '../helpers/dcmtk.js';
import { spawn } from 'node:child_process';
import pg from 'pg';
import { cliArgs, runCli } from '../helpers/gateway-process.js';
import { startTestGateway } from '../helpers/gateway.js';
import { generateStudy, type GeneratedFile } from '../helpers/gen-study.js';
import { startTestPostgres } from '../helpers/pg.js';

const work = await mkdtemp(join(tmpdir(), 'backfill-qr-'));
t.teardown(() => rm(work, { recursive: true, force: true }));
const db = await startTestPostgres();
t.teardown(() => db.stop());
const gw = await startTestGateway({ databaseUrl: db.connectionString });
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
      index: { type: 'postgres', url: db.connectionString },
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

t.test('C-FIND on dcmqrscp: values unpadded, no instance count', async (t) => {
  // dcmqrscp serves one association at a time and counts the loading one until it reaps it:
  // the source pool (src/scu/source-pool.ts) retries a transient refusal of the first one.
  const pool = new SourcePool(
    {
      host: '127.0.0.1',
      port: qr.port,
      callingAeTitle: 'DICOMGW',
      calledAeTitle: 'QRSCP',
      contexts: QR_CONTEXTS,
    },
    1,
    pino({ level: 'silent' }),
  );
  t.teardown(() => pool.close());
  await pool.use((assoc) => findChecks(t, assoc));
});

async function findChecks(t: Test, assoc: RequestorAssociation): Promise<void> {
  const r = await cFind(assoc, {
    level: 'STUDY',
    keys: {
      StudyInstanceUID: '',
      StudyDate: '',
      NumberOfStudyRelatedInstances: '',
      ModalitiesInStudy: '',
    },
  });
  t.equal(r.status, 0);
  t.same(
    r.matches.map((m) => [m.StudyInstanceUID, m.StudyDate]).sort(),
    studies.map((s) => [s[0]!.studyUid, s[0]!.studyDate]).sort(),
  );
  t.ok(
    r.matches.every((m) => m.NumberOfStudyRelatedInstances === undefined),
    'no counts',
  );
  const images = await cFind(assoc, {
    level: 'IMAGE',
    keys: {
      StudyInstanceUID: s1[0]!.studyUid,
      SeriesInstanceUID: s1[0]!.seriesUid,
      SOPInstanceUID: '',
    },
  });
  t.same(
    images.matches.map((m) => m.SOPInstanceUID).sort(),
    s1
      .filter((f) => f.seriesUid === s1[0]!.seriesUid)
      .map((f) => f.sopInstanceUid)
      .sort(),
  );
}

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

t.test('a second backfill of the same range while one runs: refused (exit 2)', async (t) => {
  // The running one is this process holding the scope's lock; a SIGKILLed one loses it with its
  // connection (backfill.test.ts resumes right after a SIGKILL).
  const held = await gw.gw.index.lockBackfillScope({
    sourceAe: 'QRSCP',
    from: '2024-01-01',
    to: '2024-12-31',
  });
  t.ok(held, 'the lock is free');
  const r = await runCli(range);
  await held!.release();
  t.equal(r.code, 2);
  t.match(r.stderr, /another backfill from QRSCP of the same range is running/);
  const other = await runCli([...args, '--to', '2024-12-30', '--dry-run']);
  t.not(other.code, 2, 'another range is not held by it');
});

t.test('a source that refuses the association: a clear error, exit 1', async (t) => {
  const path = await configFile('refused', [{ ...peer, aeTitle: 'NOTQRSCP' }]);
  const r = await runCli(['--config', path, 'backfill', '--source', 'NOTQRSCP', '--days', '30']);
  t.equal(r.code, 1);
  t.match(r.stderr, /source NOTQRSCP at 127\.0\.0\.1:\d+ refused the association/);
});

t.test('C-MOVE aborted after its first sub-operation: C-CANCEL, FE00, counts', async (t) => {
  const g = await generateStudy(join(work, 'cancel'), {
    series: 1,
    instances: 30,
    rows: 64,
    cols: 64,
    seed: 450,
  });
  await loadQr(g.files.map((f) => f.path));
  const pool = new SourcePool(
    {
      host: '127.0.0.1',
      port: qr.port,
      callingAeTitle: 'DICOMGW',
      calledAeTitle: 'QRSCP',
      contexts: QR_CONTEXTS,
    },
    1,
    pino({ level: 'silent' }),
  );
  t.teardown(() => pool.close());
  const ac = new AbortController();
  const r = await pool.use((a) =>
    cMove(a, {
      level: 'STUDY',
      keys: { StudyInstanceUID: g.files[0]!.studyUid },
      destination: 'DICOMGW',
      signal: ac.signal,
      onProgress: (p) => {
        if (p.completed >= 1) ac.abort();
      },
    }),
  );
  t.equal(r.cancelled, true);
  t.equal(r.status, 0xfe00, `final status 0x${r.status.toString(16)}`);
  t.ok(r.completed >= 1 && r.completed < 30, `${r.completed} completed before the cancel`);
  const rows = await gw.gw.index.listInstances(g.files[0]!.studyUid);
  t.equal(rows.length, r.completed, 'the index holds what the source says it sent');
});

t.test(
  'the source dies in the middle of a move: exit non-zero, the run left to resume',
  async (t) => {
    const files: GeneratedFile[] = [];
    for (let k = 1; k <= 3; k++) {
      const g = await generateStudy(join(work, `big${k}`), {
        series: 1,
        instances: 20,
        rows: 64,
        cols: 64,
        seed: 400 + k,
      });
      files.push(...g.files);
    }
    await loadQr(files.map((f) => f.path));
    const before = gw.gw.ingest.stats.received;
    const { command, argv, env } = cliArgs(range);
    const child = spawn(command, argv, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.stdout.resume();
    const exited = new Promise<number | null>((resolve) => child.once('close', resolve));
    t.teardown(() => child.kill('SIGKILL'));
    // The first sub-operation of a move has arrived: kill the source with its associations.
    const deadline = Date.now() + 60_000;
    while (gw.gw.ingest.stats.received === before) {
      if (Date.now() > deadline) throw new Error(`no move started:\n${stderr.slice(-2000)}`);
      await new Promise((r) => setTimeout(r, 5));
    }
    qr.kill();
    const code = await exited;
    t.not(code, 0, `exit ${code}: ${stderr.slice(-3000)}`);
    t.match(stderr, /not reachable|still missing|aborted|connection closed/);
    const c = new pg.Client({ connectionString: db.connectionString });
    await c.connect();
    try {
      const run = await c.query<{ state: string; cursor_date: string | null }>(
        `SELECT state, cursor_date::text FROM backfill_runs ORDER BY id DESC LIMIT 1`,
      );
      t.equal(run.rows[0]?.state, 'failed', 'the run is left to resume');
      t.equal(run.rows[0]?.cursor_date, null, 'the cursor did not pass the window in progress');
      const studies = await c.query<{ outcome: string }>(
        `SELECT outcome FROM backfill_studies s JOIN backfill_runs r ON r.id = s.run_id
        WHERE r.state = 'failed' AND s.outcome <> 'complete'`,
      );
      t.ok(
        studies.rows.every((r) => r.outcome === 'failed'),
        'no study of the killed source recorded as backfilled',
      );
    } finally {
      await c.end();
    }
  },
);

/**
 * storescu into dcmqrscp, again while it answers "Local Limit Exceeded": it serves one
 * association at a time and counts an ended one until it has reaped it (bounded: 20 tries).
 */
async function loadQr(files: string[]): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    const r = await storescu({
      host: '127.0.0.1',
      port: qr.port,
      callingAet: 'MODALITY',
      calledAet: 'QRSCP',
      files,
    });
    if (r.code === 0) return;
    if (!/Local Limit Exceeded/.test(r.stderr + r.stdout) || attempt >= 20) {
      throw new Error(`storescu to dcmqrscp: ${r.stderr.slice(-1000)}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100 * attempt));
  }
}

function sha(b: Buffer): string {
  return createHash('sha256').update(b).digest('hex');
}

function dataSet(file: Buffer): Buffer {
  return file.subarray(132 + 12 + file.readUInt32LE(132 + 8));
}
