/**
 * Graceful shutdown of the real process (`serve`, SIGTERM): listening stops at once (a new
 * echoscu gets "connection refused"), an association in progress may finish within
 * shutdown.graceSeconds, one that outlasts it is aborted; a second SIGTERM exits at once.
 * In every case each instance answered 0000 is in the store and the index.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { FsStore } from '../../src/store/fs-store.js';
import { instanceKey } from '../../src/store/keys.js';
import { echoscu, storescu } from '../helpers/dcmtk.js';
import { startGatewayProcess, type GatewayProcess } from '../helpers/gateway-process.js';
import { generateStudy, type GeneratedFile } from '../helpers/gen-study.js';
import { startTestPostgres } from '../helpers/pg.js';
import { openScu, store } from '../helpers/scu.js';
import { checkStored, datasetOf, query, until } from '../helpers/verify.js';

const CT = '1.2.840.10008.5.1.4.1.1.2';
const pgsrv = await startTestPostgres();
t.teardown(() => pgsrv.stop());
const work = await mkdtemp(join(tmpdir(), 'gw-shutdown-'));
t.teardown(() => rm(work, { recursive: true, force: true }));
const study = await generateStudy(join(work, 'study'), {
  series: 2,
  instances: 150,
  rows: 64,
  cols: 64,
  seed: 61,
});
// A second study for the last test: instances the index does not know yet, so each is stored.
const second = await generateStudy(join(work, 'second'), {
  series: 2,
  instances: 100,
  rows: 64,
  cols: 64,
  seed: 62,
});
const allFiles = [...study.files, ...second.files];
const byUid = new Map(allFiles.map((f) => [f.sopInstanceUid, f]));

async function start(name: string, graceSeconds: number): Promise<GatewayProcess> {
  const gw = await startGatewayProcess(
    {
      dicom: { aeTitle: 'DICOMGW', host: '127.0.0.1', port: 0 },
      index: { type: 'postgres', url: pgsrv.connectionString },
      store: { type: 'fs', root: join(work, 'objects'), ack: 'stored' },
      admin: { enabled: false },
      shutdown: { graceSeconds },
      log: { level: 'info' },
    },
    join(work, `${name}.json`),
  );
  t.teardown(() => {
    gw.child.kill('SIGKILL');
  });
  return gw;
}

const events = (gw: GatewayProcess, name: string): Array<Record<string, unknown>> =>
  gw.events().filter((e) => e.event === name);

/** Every instance answered 0000 is in the store, byte-exact, and in the index. */
async function checkAnswered(t: Test, uids: string[]): Promise<void> {
  const store = new FsStore({ root: join(work, 'objects') });
  let exact = 0;
  for (const uid of uids) {
    const f = byUid.get(uid)!;
    const c = await checkStored(store, instanceKey('', f.studyUid, f.seriesUid, uid), f.path);
    if (c.datasetEqual && c.shaMetadataOk) exact++;
  }
  t.equal(exact, uids.length, `${uids.length} acknowledged instances in the store, exact`);
  const rows = await query<{ n: string }>(
    pgsrv.connectionString,
    'SELECT count(*) AS n FROM instances WHERE sop_instance_uid = ANY($1)',
    [uids],
  );
  t.equal(Number(rows[0]!.n), uids.length, 'and in the index');
}

/** SOP Instance UIDs of the files storescu got 0000 for. */
function acknowledged(responses: Array<{ file: string; status: number }>): string[] {
  const uids = new Map(allFiles.map((f) => [f.path, f.sopInstanceUid]));
  return responses.filter((r) => r.status === 0).map((r) => uids.get(r.file)!);
}

/**
 * A gateway (grace 60 s) receiving `study` from storescu, sent SIGTERM once 10 instances are
 * stored; returns when it logged scp.draining, with storescu still running.
 */
async function terminateWhileSending(name: string, study: string) {
  const gw = await start(name, 60);
  const peer = { host: '127.0.0.1', port: gw.port, callingAet: 'MODALITY', calledAet: 'DICOMGW' };
  const run = storescu({ ...peer, files: [join(work, study)], timeoutMs: 120_000 });
  await until(
    async () => events(gw, 'instance.stored').length >= 10,
    30_000,
    '10 instances stored',
  );
  gw.child.kill('SIGTERM');
  await until(async () => events(gw, 'scp.draining').length > 0, 10_000, 'scp.draining');
  return { gw, peer, run };
}

t.test('SIGTERM: no new associations, the running one finishes within the grace', async (t) => {
  const { gw, peer, run } = await terminateWhileSending('graceful', 'study');
  const refused = await echoscu({ ...peer, timeoutMs: 10_000 });
  t.not(refused.code, 0, 'a new echoscu is refused while the old association runs');
  t.match(refused.stdout + refused.stderr, /refused/i, 'connection refused');
  const r = await run;
  t.equal(r.code, 0, 'storescu finished normally');
  t.equal(r.statuses.length, study.files.length, 'every instance answered');
  t.ok(
    r.statuses.every((s) => s === 0),
    'all 0000',
  );
  t.equal(await gw.exited, 0, 'the process exits 0 once the association ended');
  t.same(events(gw, 'scp.grace_expired'), [], 'within the grace period');
  await checkAnswered(t, acknowledged(r.responses));
});

t.test('an association that outlasts the grace period is aborted', async (t) => {
  const gw = await start('grace-over', 1);
  const assoc = await openScu(t, {
    port: gw.port,
    callingAeTitle: 'SLOW',
    calledAeTitle: 'DICOMGW',
    contexts: [{ abstractSyntaxUid: CT, transferSyntaxUids: ['1.2.840.10008.1.2.1'] }],
  });
  const stored: string[] = [];
  const send = async (f: GeneratedFile): Promise<boolean> => {
    const ds = datasetOf(await readFile(f.path));
    const status = await store(assoc, CT, f.sopInstanceUid, ds);
    if (status === 0) stored.push(f.sopInstanceUid);
    return status !== undefined;
  };
  const files = study.files.slice(0, 3);
  for (const f of files) await send(f);
  gw.child.kill('SIGTERM');
  const signalled = Date.now();
  await until(async () => events(gw, 'scp.draining').length > 0, 10_000, 'scp.draining');
  // The association is still served during the grace period.
  t.ok(await send(study.files[3]!), 'answered after SIGTERM, within the grace');
  const end = await assoc.ended(10_000);
  const waited = Date.now() - signalled;
  t.match(end, { abort: { source: 2 } }, 'A-ABORT once the grace is over');
  t.ok(waited >= 900, `not before the grace period (${waited} ms)`);
  t.equal(await gw.exited, 0, 'then the process exits 0');
  t.equal(events(gw, 'scp.grace_expired').length, 1, 'logged as scp.grace_expired');
  await checkAnswered(t, stored);
});

t.test('a second SIGTERM exits at once', async (t) => {
  const { gw, run } = await terminateWhileSending('twice', 'second');
  const secondAt = Date.now();
  gw.child.kill('SIGTERM');
  const code = await gw.exited;
  const ms = Date.now() - secondAt;
  t.ok(ms < 2_000, `exited ${ms} ms after the second SIGTERM`);
  t.equal(code, 1, 'exit code 1 (runtime: stopped without finishing)');
  const r = await run;
  t.ok(r.statuses.length < second.files.length, 'storescu was cut off');
  await checkAnswered(t, acknowledged(r.responses));
});
