/**
 * The CLI as an administrator runs it (a child process, src/main.ts through tap's TypeScript
 * loader): migrate, config check, status, verify, and their exit codes.
 */
import { mkdtemp, readFile, rm, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import t from 'tap';
import { instanceKey } from '../../src/store/keys.js';
import { storescu } from '../helpers/dcmtk.js';
import { startTestGateway } from '../helpers/gateway.js';
import { runCli } from '../helpers/gateway-process.js';
import { generateStudy } from '../helpers/gen-study.js';
import { startTestPostgres } from '../helpers/pg.js';
import { query } from '../helpers/verify.js';

const cli = runCli;

const pgsrv = await startTestPostgres();
t.teardown(() => pgsrv.stop());
const work = await mkdtemp(join(tmpdir(), 'gw-cli-'));
t.teardown(() => rm(work, { recursive: true, force: true }));

async function writeConfig(name: string, cfg: Record<string, unknown>): Promise<string> {
  const file = join(work, name);
  await writeFile(file, JSON.stringify(cfg, null, 2));
  return file;
}

t.test('migrate: a fresh database gets the schema', async (t) => {
  const admin = new pg.Client({ connectionString: pgsrv.connectionString });
  await admin.connect();
  await admin.query('CREATE DATABASE cli_migrate');
  await admin.end();
  const url = new URL(pgsrv.connectionString);
  url.pathname = '/cli_migrate';
  const file = await writeConfig('migrate.json', {
    index: { type: 'postgres', url: url.toString() },
    log: { level: 'warn' },
  });
  const r = await cli(['--config', file, 'migrate']);
  t.equal(r.code, 0, `exit 0 (${r.stderr})`);
  const rows = await query<{ n: string }>(
    url.toString(),
    `SELECT count(*)::text AS n FROM schema_migrations`,
  );
  t.ok(Number(rows[0]!.n) >= 2, 'migrations recorded');
  const again = await cli(['--config', file, 'migrate']);
  t.equal(again.code, 0, 'a second run is a no-op');
});

t.test('config check: a bad value exits 2 and names the key', async (t) => {
  const bad = join(work, 'bad.yaml');
  await writeFile(bad, 'dicom:\n  port: 70000\n');
  const good = await writeConfig('good.json', { admin: { token: 'a-secret-token-1234567' } });
  // Independent runs at once: each pays the TypeScript loader's start-up (~4 s).
  const [r, ok, usage] = await Promise.all([
    cli(['--config', bad, 'config', 'check']),
    cli(['--config', good, 'config', 'check']),
    cli(['verify', '--concurrency', '0']),
  ]);
  t.equal(r.code, 2);
  t.match(r.stderr, /dicom\.port/);
  t.equal(r.stdout, '');
  t.equal(ok.code, 0);
  t.notMatch(ok.stdout, /a-secret-token/, 'admin token masked');
  t.equal(usage.code, 2, 'bad option value: exit 2');
  t.match(usage.stderr, /--concurrency/);
});

t.test('status and verify against a gateway-written store', async (t) => {
  const tg = await startTestGateway({
    databaseUrl: pgsrv.connectionString,
    dicom: { duplicatePolicy: 'keep-versions' },
  });
  t.teardown(() => tg.close());
  const root = join(tg.dir, 'objects');
  const study = await generateStudy(join(work, 'study'), {
    series: 2,
    instances: 2,
    rows: 16,
    cols: 16,
    modality: 'CT',
    seed: 91,
  });
  const sent = await storescu({
    host: '127.0.0.1',
    port: tg.port,
    callingAet: 'CLI_SCU',
    calledAet: tg.aeTitle,
    files: study.files.map((f) => f.path),
  });
  t.same(sent.statuses, [0, 0, 0, 0], 'study stored');
  // Same seed, other pixels: the first instance again with other bytes, kept as a version.
  const other = await generateStudy(join(work, 'study-v2'), {
    series: 1,
    instances: 1,
    rows: 16,
    cols: 16,
    modality: 'CT',
    seed: 91,
    pixels: 'zeros',
  });
  const again = await storescu({
    host: '127.0.0.1',
    port: tg.port,
    callingAet: 'CLI_SCU',
    calledAet: tg.aeTitle,
    files: [other.files[0]!.path],
  });
  t.same(again.statuses, [0], 'other content of the first instance kept as a version');
  const studyUid = study.files[0]!.studyUid;
  const file = await writeConfig('gw.json', {
    dicom: { aeTitle: 'DICOMGW', port: 11112 },
    index: { type: 'postgres', url: pgsrv.connectionString },
    store: { type: 'fs', root },
    log: { level: 'warn' },
  });

  // Read-only runs at once: each pays the TypeScript loader's start-up.
  const [json, text, clean] = await Promise.all([
    cli(['--config', file, 'status', '--json']),
    cli(['--config', file, 'status']),
    cli(['--config', file, 'verify']),
  ]);
  t.equal(json.code, 0, `status --json exit 0 (${json.stderr})`);
  const s = JSON.parse(json.stdout) as {
    dicom: { aeTitle: string };
    store: string;
    index: {
      studies: number;
      series: number;
      instances: number;
      lastStudyByCallingAe: Array<{ callingAeTitle: string; studyInstanceUid: string }>;
    };
  };
  t.equal(s.dicom.aeTitle, 'DICOMGW');
  t.equal(s.store, root);
  t.match(s.index, { studies: 1, series: 2, instances: 4 });
  t.match(s.index.lastStudyByCallingAe, [
    { callingAeTitle: 'CLI_SCU', studyInstanceUid: studyUid },
  ]);
  t.equal(text.code, 0);
  t.match(text.stdout, /CLI_SCU\s+\S*\s*/);
  t.match(text.stdout, studyUid, 'the table names the study');

  t.equal(clean.code, 0, `verify exit 0 (${clean.stderr})`);
  t.match(clean.stdout, /^checked 5, ok 5, mismatched 0, missing 0, errors 0/m, 'with the version');

  // One byte flipped, same size: only the sha256 can tell.
  const [victim, gone] = study.files;
  const victimPath = join(
    root,
    instanceKey('', victim!.studyUid, victim!.seriesUid, victim!.sopInstanceUid),
  );
  const bytes = await readFile(victimPath);
  bytes[bytes.length - 1]! ^= 0xff;
  await writeFile(victimPath, bytes);
  const flipped = await cli(['--config', file, 'verify']);
  t.equal(flipped.code, 3, 'exit 3 on a mismatch');
  t.match(
    flipped.stdout,
    new RegExp(`^MISMATCH ${victim!.sopInstanceUid.replace(/\./g, '\\.')} .*sha256`, 'm'),
  );
  t.match(flipped.stdout, /^checked 5, ok 4, mismatched 1, missing 0, errors 0/m);

  await unlink(join(root, instanceKey('', gone!.studyUid, gone!.seriesUid, gone!.sopInstanceUid)));
  const both = await cli([
    '--config',
    file,
    'verify',
    '--study',
    studyUid,
    '--concurrency',
    '2',
    '--json',
  ]);
  t.equal(both.code, 3);
  const summary = JSON.parse(both.stdout) as Record<string, unknown>;
  t.match(summary, { checked: 5, ok: 3, mismatched: 1, missing: 1, errors: 0, exitCode: 3 });
  t.match(summary.problems, [
    { kind: String, sopInstanceUid: String },
    { kind: String, sopInstanceUid: String },
  ]);

  const studyDate = study.files[0]!.studyDate;
  const [outside, inside] = await Promise.all([
    cli(['--config', file, 'verify', '--from', '20990101', '--json']),
    cli(['--config', file, 'verify', '--from', studyDate, '--to', studyDate, '--json']),
  ]);
  t.match(JSON.parse(outside.stdout), { checked: 0 }, 'date range without the study');
  t.equal(outside.code, 0);
  t.match(JSON.parse(inside.stdout), { checked: 5, mismatched: 1, missing: 1 }, 'range with it');
});

t.test('--help documents the exit codes', async (t) => {
  const r = await cli(['verify', '--help']);
  t.equal(r.code, 0);
  t.match(r.stdout, /--concurrency/);
  t.match(r.stdout, /Exit codes:[\s\S]*\b3\b/);
});
