/**
 * A crash of the database after the answer, against a real PostgreSQL, Ceph RGW and DCMTK
 * storescu.
 * With `ack: spooled` the instance row is committed at the answer without waiting for its WAL
 * flush; the spool record (the spool file's trailer, fsynced with it before the answer) is what
 * makes it durable. The crash: PostgreSQL's WAL writer is stopped (SIGSTOP) so that nothing
 * writes the asynchronous commits out, then killed (SIGKILL), which makes the postmaster
 * reinitialise: every backend quits without writing, shared memory (with the unwritten WAL) is
 * dropped, crash recovery replays what was written. That is what a database crash within
 * wal_writer_delay of the commits does.
 */
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { storescu } from '../helpers/dcmtk.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { generateStudy } from '../helpers/gen-study.js';
import { startTestPostgres } from '../helpers/pg.js';
import { createBucket, startRgw } from '../helpers/rgw.js';
import { countStoredExactly, query, until } from '../helpers/verify.js';

const pgsrv = await startTestPostgres();
t.teardown(() => pgsrv.stop());
const rgw = await startRgw();
t.teardown(() => rgw.stop());
const work = await mkdtemp(join(tmpdir(), 'gw-index-crash-'));
t.teardown(() => rm(work, { recursive: true, force: true }));

/** The WAL writer's pid (a new one after each crash). */
async function walWriter(): Promise<number> {
  const rows = await query<{ pid: number }>(
    pgsrv.connectionString,
    "SELECT pid FROM pg_stat_activity WHERE backend_type = 'walwriter'",
  );
  if (!rows[0]) throw new Error('no WAL writer yet');
  return rows[0].pid;
}

/** Kills the stopped WAL writer and waits until PostgreSQL has recovered and answers again. */
async function crash(walWriterPid: number): Promise<void> {
  process.kill(walWriterPid, 'SIGKILL');
  await until(
    async () => ((await walWriter().catch(() => walWriterPid)) !== walWriterPid ? true : false),
    60_000,
    'PostgreSQL back after its crash',
  );
}

async function rowsOf(uids: string[]): Promise<Array<{ state: string }>> {
  return query<{ state: string }>(
    pgsrv.connectionString,
    'SELECT state FROM instances WHERE sop_instance_uid = ANY($1)',
    [uids],
  );
}

/**
 * A gateway (fs store, or S3 with `s3`; ack spooled, uploads held) on this PostgreSQL with its
 * WAL writer stopped, and a study of 12 instances sent to it and acknowledged. `start` starts a
 * gateway on the same directory again.
 */
async function sendWithWalWriterStopped(t: Test, name: string, seed: number, s3 = false) {
  const study = await generateStudy(join(work, `study-${name}`), {
    series: 1,
    instances: 12,
    rows: 64,
    cols: 64,
    seed,
  });
  const dir = join(work, `gw-${name}`);
  if (s3) await createBucket(rgw, `crash-${name}`);
  const start = (): Promise<TestGateway> =>
    startTestGateway({
      databaseUrl: pgsrv.connectionString,
      dir,
      ...(s3
        ? { s3: { ...rgw, bucket: `crash-${name}` }, s3Options: { ack: 'spooled' } }
        : { fsOptions: { ack: 'spooled' } }),
    });
  const first = await start();
  first.gw.spool!.uploader.yieldTo(() => true);
  const uids = study.files.map((f) => f.sopInstanceUid);
  const walwriter = await walWriter();
  process.kill(walwriter, 'SIGSTOP');
  const r = await storescu({
    host: '127.0.0.1',
    port: first.port,
    callingAet: 'STORESCU',
    calledAet: 'DICOMGW',
    files: study.files.map((f) => f.path),
  });
  t.same(
    r.statuses,
    uids.map(() => 0),
    'every instance answered 0000',
  );
  return { study, uids, dir, start, first, walwriter };
}

t.test('rows lost in a database crash after the answer are restored', async (t) => {
  const { study, uids, dir, start, first, walwriter } = await sendWithWalWriterStopped(t, 'a', 401);
  t.equal((await rowsOf(uids)).length, uids.length, 'every row visible at the answer');
  await crash(walwriter); // nothing was published before it
  const lost = uids.length - (await rowsOf(uids)).length;
  t.ok(lost > 0, `the crash took back ${lost} of ${uids.length} acknowledged rows`);
  await first.close();

  const second = await start();
  t.teardown(() => second.close());
  t.ok(await second.gw.spool!.uploader.idle(60_000), 'the spool drained after the restart');
  const restored = second.logs.filter((l) => l.event === 'spool.row_restored');
  t.equal(restored.length, lost, 'each lost row restored from its record, with a log line');
  const exact = await countStoredExactly(second.gw.store, second.gw.index, study.files);
  t.equal(exact, uids.length, `all ${uids.length} indexed and published byte-identical`);
  t.same(
    (await rowsOf(uids)).map((x) => x.state),
    uids.map(() => 'stored'),
    'every row stored',
  );
  t.same(await readdir(join(dir, 'objects', '.spool', 'ready')), [], 'the spool is empty');
});

// The uploader cuts the record off a spool file before the file goes to the store (a local
// directory publishes it, S3 gets it uploaded), and waits for the rows' WAL flush first
// (Uploader.cutTrailer): a crash after the uploads, the spool files removed, must find every row.
for (const [store, seed] of [
  ['fs', 402],
  ['s3', 403],
] as const) {
  t.test(`a database crash after the uploads loses no instance (${store})`, async (t) => {
    const { study, uids, dir, start, first, walwriter } = await sendWithWalWriterStopped(
      t,
      `after-${store}`,
      seed,
      store === 's3',
    );
    const uploader = first.gw.spool!.uploader;
    uploader.yieldTo(() => false);
    t.ok(await uploader.idle(60_000), 'everything in the store and its spool file removed');
    const ready = join(dir, ...(store === 's3' ? ['spool'] : ['objects', '.spool']), 'ready');
    t.same(await readdir(ready), [], 'no spool file left before the crash');
    await crash(walwriter);
    await first.close();

    const second = await start();
    t.teardown(() => second.close());
    t.ok(await second.gw.spool!.uploader.idle(60_000), 'recovered');
    const exact = await countStoredExactly(second.gw.store, second.gw.index, study.files);
    t.equal(exact, uids.length, `all ${uids.length} still indexed, byte-identical in the store`);
    t.same(
      (await rowsOf(uids)).map((x) => x.state),
      uids.map(() => 'stored'),
      'every row stored (a lost stored mark settled at start)',
    );
  });
}
