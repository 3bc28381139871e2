/**
 * Uploader.recover() against a real PostgreSQL: more 'pending-upload' rows than one page of
 * listPending, the first pages all rows whose spool files are still present (queued, not
 * settled), the orphan rows (no spool file) after them. Every orphan must be settled: marked
 * stored when the bucket holds its bytes, else forgotten.
 */
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import t from 'tap';
import { PgIndex } from '../../src/index/pg-index.js';
import { Spool } from '../../src/ingest/spool.js';
import { encodeTrailer, type SpoolRecord } from '../../src/ingest/spool-record.js';
import { Uploader, type UploadItem } from '../../src/ingest/uploader.js';
import { MemoryStore } from '../../src/store/memory-store.js';
import { startTestPostgres } from '../helpers/pg.js';
import { pendingRow, testSpoolRecord } from '../helpers/spool-records.js';
import { query } from '../helpers/verify.js';

const pgsrv = await startTestPostgres();
t.teardown(() => pgsrv.stop());
const work = await mkdtemp(join(tmpdir(), 'gw-spool-recover-'));
t.teardown(() => rm(work, { recursive: true, force: true }));

t.test('recover settles orphan rows beyond the first page of pending rows', async (t) => {
  const log = pino({ level: 'silent' });
  const index = new PgIndex({ connectionString: pgsrv.connectionString, logger: log });
  t.teardown(() => index.close());
  await index.migrate();
  const dir = join(work, 'spool');
  await mkdir(join(dir, 'ready'), { recursive: true });
  const spool = new Spool(dir, 1 << 30, log);
  const store = new MemoryStore();
  t.teardown(() => store.close());
  const PAGE = 10;
  // Rows with their spool file present, recorded first and sorting first: two pages and more.
  const present = Array.from({ length: 2 * PAGE + 5 }, (_, i) => `1.2.826.0.1.1.1.${1000 + i}`);
  // Orphans after them: half uploaded before a crash (the bucket has them), half never were.
  const orphans = Array.from({ length: 6 }, (_, i) => `1.2.826.0.1.1.1.${2000 + i}`);
  for (const uid of present) await writeFile(join(dir, 'ready', `${uid}.dcm`), `file ${uid}`);
  await spool.open();
  for (const uid of [...present, ...orphans]) {
    const bytes = Buffer.from(`file ${uid}`);
    const rec = pendingRow(uid, spool.owner, bytes);
    t.equal((await index.recordInstance(rec)).kind, 'inserted');
    if (orphans.indexOf(uid) % 2 === 1) {
      const src = join(work, `${uid}.src`);
      await writeFile(src, bytes);
      await store.putFile(rec.objectKey, src, {
        size: rec.size,
        sha256: rec.sha256,
        metadata: {},
        ifAbsent: false,
      });
    }
  }
  // Nothing is uploaded during the test: the queued rows stay pending while recover pages.
  const uploader = new Uploader({
    store,
    index,
    spool,
    concurrency: 1,
    burstBytes: 1 << 30,
    recoverPageSize: PAGE,
    log,
  });
  uploader.yieldTo(() => true);
  t.teardown(() => uploader.close(100));
  const readyUids = present.slice();
  const r = await uploader.recover(readyUids);
  t.equal(r.queued, present.length, 'every present file queued');
  t.equal(r.settled, orphans.length / 2, 'orphans whose object is in the bucket: marked stored');
  t.equal(r.dropped, orphans.length / 2, 'orphans without object: forgotten');
  for (const [i, uid] of orphans.entries()) {
    const row = await index.findInstance(uid);
    if (i % 2 === 1) t.equal(row?.state, 'stored', `${uid} stored`);
    else t.equal(row, undefined, `${uid} forgotten`);
  }
  const pending = await index.listPending(spool.owner, 1000);
  t.same(
    pending.map((p) => p.sopInstanceUid).sort(),
    present.slice().sort(),
    'only rows with a spool file stay pending',
  );
});

/**
 * ack: spooled commits the row without waiting for the database's flush; the spool record,
 * the trailer of the spool file fsynced before the answer, restores a row a database crash
 * took back. Here the rows are deleted by hand, which is what such a crash leaves (the
 * instance rows gone, the spool files with their records as they were). The crash itself:
 * test/integration/index-crash.test.ts.
 */
t.test('rows lost after the answer are restored from the spool records', async (t) => {
  const log = pino({ level: 'silent' });
  const index = new PgIndex({ connectionString: pgsrv.connectionString, logger: log });
  t.teardown(() => index.close());
  await index.migrate();
  const dir = join(work, 'spool-restore');
  const spool = new Spool(dir, 1 << 30, log);
  await spool.open();
  const uids = Array.from({ length: 4 }, (_, i) => `1.2.826.0.1.3.${i}`);
  const bytesOf = (uid: string): Buffer => Buffer.from(`instance ${uid}`.padEnd(300, '.'));
  for (const uid of uids) {
    const record = testSpoolRecord(uid, bytesOf(uid), spool.owner);
    await writeFile(spool.pathFor(uid), Buffer.concat([bytesOf(uid), encodeTrailer(record)]));
    t.equal((await index.recordInstance(record.rec, { flush: false })).kind, 'inserted');
  }
  // The last one was cut short by the crash before its answer: its Part-10 bytes do not hash
  // to what its record says (a power loss before its fsync). It must not be indexed.
  const cut = uids.at(-1)!;
  const damaged = Buffer.from(bytesOf(cut)).fill(0, 100);
  await writeFile(
    spool.pathFor(cut),
    Buffer.concat([damaged, encodeTrailer(testSpoolRecord(cut, bytesOf(cut), spool.owner))]),
  );
  // A file without any record (an older gateway's, or one whose record was cut short) and
  // without a row: never acknowledged.
  const bare = '1.2.826.0.1.3.99';
  await writeFile(spool.pathFor(bare), bytesOf(bare));
  await query(
    pgsrv.connectionString,
    "DELETE FROM instances WHERE sop_instance_uid LIKE '1.2.826.0.1.3.%'",
  );

  const restart = new Spool(dir, 1 << 30, log);
  const ready = await restart.open();
  const store = new MemoryStore();
  t.teardown(() => store.close());
  const uploader = new Uploader({ store, index, spool: restart, concurrency: 2, log });
  t.teardown(() => uploader.close(100));
  const r = await uploader.recover(ready);
  t.equal(r.restored, uids.length - 1, 'every acknowledged instance has its row again');
  t.equal(r.dropped, 2, 'the damaged file and the file without a record are dropped');
  t.ok(await uploader.idle(10_000), 'the restored instances are uploaded');
  for (const uid of uids.slice(0, -1)) {
    const row = await index.findInstance(uid);
    t.equal(row?.state, 'stored', `${uid} indexed and stored`);
    t.ok(
      (await readAll(store, row!.objectKey)).equals(bytesOf(uid)),
      `${uid}: exactly its Part-10 bytes in the store (the record cut off)`,
    );
  }
  t.equal(await index.findInstance(cut), undefined, 'the damaged instance is not indexed');
  t.equal(await index.findInstance(bare), undefined, 'the file without a record is not indexed');
  t.same(await readdir(join(dir, 'ready')), [], 'nothing left in the spool');
});

t.test('the record is cut off only after the rows are flushed', async (t) => {
  const log = pino({ level: 'silent' });
  const index = new PgIndex({ connectionString: pgsrv.connectionString, logger: log });
  t.teardown(() => index.close());
  await index.migrate();
  let flushes = 0;
  let trailerAtFlush: boolean | undefined;
  const dir = join(work, 'spool-cut');
  const spool = new Spool(dir, 1 << 30, log);
  await spool.open();
  const uid = '1.2.826.0.1.4.1';
  const bytes = Buffer.from('a live instance'.padEnd(400, '.'));
  const record = testSpoolRecord(uid, bytes, spool.owner);
  await writeFile(spool.pathFor(uid), Buffer.concat([bytes, encodeTrailer(record)]));
  const counting = Object.assign(Object.create(index) as PgIndex, {
    flushCommits: async (): Promise<void> => {
      flushes++;
      trailerAtFlush = (await spool.readRecord(uid)) !== undefined;
      await index.flushCommits();
    },
  });
  const store = new MemoryStore();
  t.teardown(() => store.close());
  const uploader = new Uploader({ store, index: counting, spool, concurrency: 1, log });
  t.teardown(() => uploader.close(100));
  t.equal((await index.recordInstance(record.rec, { flush: false })).kind, 'inserted');
  uploader.enqueue({ ...uploadItemOf(record), fresh: true, trailer: true });
  t.ok(await uploader.idle(10_000), 'uploaded');
  t.equal(flushes, 1, 'one flush of the index commits before the cut');
  t.equal(trailerAtFlush, true, 'the record was still in the file while the rows were flushed');
  t.equal((await index.findInstance(uid))?.state, 'stored', 'the row is stored');
  t.ok((await readAll(store, record.rec.objectKey)).equals(bytes), 'exactly the Part-10 bytes');
});

function uploadItemOf(r: SpoolRecord): UploadItem {
  return {
    sopInstanceUid: r.rec.attributes.sopInstanceUid,
    key: r.rec.objectKey,
    size: r.rec.size,
    sha256: r.rec.sha256,
    metadata: r.metadata,
  };
}

async function readAll(store: MemoryStore, key: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of await store.get(key)) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}
