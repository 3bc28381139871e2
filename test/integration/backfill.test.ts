/**
 * `dicom-gateway backfill` end to end: a real Orthanc is the hospital PACS (C-FIND and C-MOVE
 * SCP, its DicomModalities naming the gateway), holding 6 studies over several days. The gateway
 * (in process, fs store) already has two of them complete, one without a series, one without
 * single instances, and two not at all. The CLI runs as a child process with its own
 * configuration naming the PACS as a callable peer.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { storescu } from '../helpers/dcmtk.js';
import { spawn } from 'node:child_process';
import { cliArgs, runCli, type CliResult } from '../helpers/gateway-process.js';
import { startTestGateway } from '../helpers/gateway.js';
import { generateStudy, type GeneratedFile } from '../helpers/gen-study.js';
import { closedPort } from '../helpers/net.js';
import { dataSet, loadPacs, sha256, startPacs } from '../helpers/pacs.js';
import { startTestPostgres } from '../helpers/pg.js';

const work = await mkdtemp(join(tmpdir(), 'backfill-'));
t.teardown(() => rm(work, { recursive: true, force: true }));
const pg = await startTestPostgres();
t.teardown(() => pg.stop());
const gw = await startTestGateway({ databaseUrl: pg.connectionString });
t.teardown(() => gw.close());
const orthanc = await startPacs(gw.port);
t.teardown(() => orthanc.stop());

// Six studies, two series of three instances each; gen-study spreads their dates over 2024.
const studies: GeneratedFile[][] = [];
for (let k = 1; k <= 6; k++) {
  const g = await generateStudy(join(work, `s${k}`), {
    series: 2,
    instances: 3,
    rows: 16,
    cols: 16,
    seed: 100 + k,
  });
  studies.push(g.files);
  await loadPacs(orthanc, g.files);
}
const dates = new Set(studies.map((s) => s[0]!.studyDate));
const [s1, s2, s3, s4] = studies as [
  GeneratedFile[],
  GeneratedFile[],
  GeneratedFile[],
  GeneratedFile[],
];
const series = (s: GeneratedFile[], n: number) => s.filter((f) => f.seriesNumber === n);
// Complete: s1, s2. Missing a series: s3. Missing two instances of one series: s4. Absent: s5, s6.
const already = [...s1, ...s2, ...series(s3, 1), ...series(s4, 1), series(s4, 2)[0]!];
const sent = await storescu({
  host: '127.0.0.1',
  port: gw.port,
  callingAet: 'MODALITY',
  calledAet: 'DICOMGW',
  files: already.map((f) => f.path),
});
if (sent.code !== 0) throw new Error(`storescu: ${sent.stderr}`);
const MISSING = 36 - already.length; // 3 + 2 + 6 + 6 = 17

async function configFile(name: string, dicom: Record<string, unknown>): Promise<string> {
  const path = join(work, `${name}.json`);
  const cfg = {
    dicom: { aeTitle: 'DICOMGW', host: '127.0.0.1', port: gw.port, ...dicom },
    index: { type: 'postgres', url: pg.connectionString },
    store: { type: 'fs', root: join(work, 'unused-objects') },
    admin: { enabled: false },
    log: { level: 'info' },
  };
  await writeFile(path, JSON.stringify(cfg));
  return path;
}
const pacs = {
  aeTitle: 'HOSPITALPACS',
  host: '127.0.0.1',
  port: orthanc.dicomPort,
  maxAssociations: 2,
};
const cfgPath = await configFile('backfill', { peers: [pacs] });
const range = ['--from', '2024-01-01', '--to', '2024-12-31'];

interface Report {
  complete: boolean;
  totals: Record<string, number>;
  studies: Array<{ studyUid: string; outcome: string; moved: number; missingBefore: number }>;
}

function report(r: CliResult): Report {
  try {
    return JSON.parse(r.stdout) as Report;
  } catch {
    throw new Error(`no JSON report (exit ${r.code}):\n${r.stdout}\n${r.stderr.slice(-3000)}`);
  }
}

const received = () => gw.gw.ingest.stats.received;
const movedToUs = () =>
  gw.gw.ingest.moves.list().reduce((n, m) => n + m.success + m.warning + m.failure, 0);

t.test('--dry-run reports what is missing and moves nothing', async (t) => {
  const before = received();
  const r = await runCli([
    '--config',
    cfgPath,
    'backfill',
    '--source',
    'HOSPITALPACS',
    ...range,
    '--dry-run',
    '--json',
  ]);
  t.equal(r.code, 4, 'not complete: exit 4');
  const rep = report(r);
  t.equal(rep.totals.checked, 6);
  t.equal(rep.totals.complete, 2);
  t.equal(rep.totals.instancesMissingBefore, MISSING);
  t.equal(received(), before, 'nothing moved');
  t.ok(dates.size > 1, `studies over ${dates.size} days`);
});

t.test('status --study lists the missing instances before the backfill', async (t) => {
  const r = await runCli([
    '--config',
    cfgPath,
    'status',
    '--study',
    s4[0]!.studyUid,
    '--source',
    'HOSPITALPACS',
  ]);
  t.equal(r.code, 4, r.stderr.slice(-2000));
  t.match(r.stdout, /2 of 6 instances missing against HOSPITALPACS/);
  for (const f of series(s4, 2).slice(1)) t.match(r.stdout, f.sopInstanceUid);
  t.notMatch(r.stdout, series(s4, 2)[0]!.sopInstanceUid);
});

t.test(
  'backfill moves exactly what is missing; index and store complete, bytes identical',
  async (t) => {
    const before = received();
    const r = await runCli([
      '--config',
      cfgPath,
      'backfill',
      '--source',
      'HOSPITALPACS',
      ...range,
      '--json',
    ]);
    t.equal(r.code, 0, r.stderr.slice(-2000));
    const rep = report(r);
    t.equal(rep.complete, true);
    t.match(rep.totals, {
      checked: 6,
      complete: 2,
      backfilled: 4,
      failed: 0,
      instancesMoved: MISSING,
    });
    t.equal(received() - before, MISSING, 'the gateway received only the missing instances');
    t.equal(movedToUs(), MISSING, 'each one a sub-operation of a move of ours');
    for (const s of studies) {
      const rows = await gw.gw.index.listInstances(s[0]!.studyUid);
      t.same(rows.map((x) => x.sopInstanceUid).sort(), s.map((f) => f.sopInstanceUid).sort());
      for (const f of s) {
        const row = rows.find((x) => x.sopInstanceUid === f.sopInstanceUid)!;
        const stored = await readFile(join(gw.dir, 'objects', row.objectKey));
        t.equal(
          sha256(dataSet(stored)),
          sha256(dataSet(await readFile(f.path))),
          `${f.sopInstanceUid} data set identical`,
        );
      }
    }
  },
);

t.test('a second run moves nothing', async (t) => {
  const before = received();
  const r = await runCli([
    '--config',
    cfgPath,
    'backfill',
    '--source',
    'HOSPITALPACS',
    ...range,
    '--json',
  ]);
  t.equal(r.code, 0);
  t.match(report(r).totals, { checked: 6, complete: 6, instancesMoved: 0 });
  t.equal(received(), before);
});

t.test('status --study says complete after it (the only callable peer by default)', async (t) => {
  const r = await runCli(['--config', cfgPath, 'status', '--study', s4[0]!.studyUid, '--json']);
  t.equal(r.code, 0, r.stderr.slice(-2000));
  t.match(JSON.parse(r.stdout), {
    complete: true,
    sourceInstances: 6,
    indexedInstances: 6,
    missing: [],
  });
});

t.test('a low result cap still yields every study, through window splitting', async (t) => {
  const r = await runCli([
    '--config',
    cfgPath,
    'backfill',
    '--source',
    'HOSPITALPACS',
    ...range,
    '--deep',
    '--max-results',
    '2',
    '--json',
  ]);
  t.equal(r.code, 0, r.stderr.slice(-2000));
  t.match(report(r).totals, { checked: 6, complete: 6 });
  t.match(r.stderr, /"event":"backfill.split"/);
});

t.test(
  'a source with its own low result cap (Orthanc LimitFindResults) yields every study',
  async (t) => {
    const capped = await startPacs(gw.port, {
      aeTitle: 'CAPPEDPACS',
      config: { LimitFindResults: 2, LimitFindInstances: 0 },
    });
    t.teardown(() => capped.stop());
    await loadPacs(capped, studies.flat());
    const path = await configFile('capped', {
      peers: [{ aeTitle: 'CAPPEDPACS', host: '127.0.0.1', port: capped.dicomPort }],
    });
    const r = await runCli([
      '--config',
      path,
      'backfill',
      '--source',
      'CAPPEDPACS',
      ...range,
      '--deep',
      '--json',
    ]);
    t.equal(r.code, 0, r.stderr.slice(-2000));
    t.match(report(r).totals, { checked: 6, complete: 6 });
    t.match(r.stderr, /"event":"backfill.split"/);
  },
);

t.test('the source down: a clear error at once, exit 1', async (t) => {
  const closed = await closedPort();
  const path = await configFile('down', { peers: [{ ...pacs, port: closed }] });
  const r = await runCli(['--config', path, 'backfill', '--source', 'HOSPITALPACS', ...range]);
  t.equal(r.code, 1);
  t.match(r.stderr, /source HOSPITALPACS at 127\.0\.0\.1:\d+ is not reachable/);
});

t.test('serve not running: says so before calling the source', async (t) => {
  const closed = await closedPort();
  const path = await configFile('noserve', { port: closed, peers: [pacs] });
  const r = await runCli(['--config', path, 'backfill', '--source', 'HOSPITALPACS', ...range]);
  t.equal(r.code, 1);
  t.match(r.stderr, /serve is not reachable/);
});

t.test('an unknown or uncallable source is a usage error (exit 2)', async (t) => {
  const r = await runCli(['--config', cfgPath, 'backfill', '--source', 'NOSUCH', ...range]);
  t.equal(r.code, 2);
  t.match(r.stderr, /no peer NOSUCH/);
});

/**
 * Starts the CLI and sends `signal` once its log says a study was backfilled (mid-run: with one
 * association the others are still to come). Resolves with the exit code and output.
 */
function interrupted(args: string[], signal: NodeJS.Signals): Promise<CliResult> {
  const { command, argv, env } = cliArgs(args);
  return new Promise((resolve, reject) => {
    const child = spawn(command, argv, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let sent = false;
    const timer = setTimeout(() => child.kill('SIGKILL'), 120_000);
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      stderr += d;
      if (!sent && /"event":"backfill.study"[^\n]*"outcome":"backfilled"/.test(stderr)) {
        sent = true;
        child.kill(signal);
      }
    });
    child.once('error', reject);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

async function addAbsentStudies(seed: number): Promise<GeneratedFile[][]> {
  const out: GeneratedFile[][] = [];
  for (let k = 0; k < 4; k++) {
    const g = await generateStudy(join(work, `r${seed}-${k}`), {
      series: 1,
      instances: 15,
      rows: 64,
      cols: 64,
      seed: seed + k,
    });
    out.push(g.files);
    await loadPacs(orthanc, g.files);
  }
  return out;
}

for (const signal of ['SIGINT', 'SIGKILL'] as const) {
  t.test(`interrupted by ${signal}: the next run resumes and moves no study twice`, async (t) => {
    const added = await addAbsentStudies(signal === 'SIGINT' ? 500 : 600);
    const path = await configFile(`resume-${signal}`, { peers: [{ ...pacs, maxAssociations: 1 }] });
    const args = ['--config', path, 'backfill', '--source', 'HOSPITALPACS', ...range, '--json'];
    const before = received();
    const duplicates = gw.gw.ingest.stats.duplicates;
    const first = await interrupted(args, signal);
    if (signal === 'SIGINT') {
      t.equal(first.code, 1, 'interrupted: exit 1');
      t.match(first.stderr, /interrupted; run it again/);
    } else t.equal(first.code, null, 'killed');
    const movedFirst = received() - before;
    t.ok(movedFirst > 0 && movedFirst < 60, `${movedFirst} instances moved before the ${signal}`);
    const second = await runCli(args);
    t.equal(second.code, 0, second.stderr.slice(-2000));
    const rep = report(second);
    t.equal((rep as unknown as { resumed: boolean }).resumed, true, 'the run was resumed');
    t.equal(rep.complete, true);
    const backfilledBefore = rep.studies.filter(
      (s) => s.outcome === 'backfilled' && s.moved === 15,
    );
    t.ok(backfilledBefore.length >= 1, 'the studies of the first part are in the report');
    t.equal(gw.gw.ingest.stats.duplicates, duplicates, 'no instance received twice');
    t.equal(received() - before, 60, 'every added instance once, none twice');
    for (const s of added) {
      const rows = await gw.gw.index.listInstances(s[0]!.studyUid);
      t.equal(rows.length, 15);
    }
  });
}
