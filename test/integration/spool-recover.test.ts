/**
 * Uploader.recover() against a real PostgreSQL: more 'pending-upload' rows than one page of
 * listPending, the first pages all rows whose spool files are still present (queued, not
 * settled), the orphan rows (no spool file) after them. Every orphan must be settled: marked
 * stored when the bucket holds its bytes, else forgotten.
 */
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import t from 'tap';
import type { InstanceRecord } from '../../src/index/instance-index.js';
import { PgIndex } from '../../src/index/pg-index.js';
import { Spool } from '../../src/ingest/spool.js';
import { Uploader } from '../../src/ingest/uploader.js';
import { MemoryStore } from '../../src/store/memory-store.js';
import { startTestPostgres } from '../helpers/pg.js';

const pgsrv = await startTestPostgres();
t.teardown(() => pgsrv.stop());
const work = await mkdtemp(join(tmpdir(), 'gw-spool-recover-'));
t.teardown(() => rm(work, { recursive: true, force: true }));

function pendingRow(uid: string, owner: string, bytes: Buffer): InstanceRecord {
  return {
    attributes: {
      studyInstanceUid: '1.2.826.0.1.1',
      seriesInstanceUid: '1.2.826.0.1.1.1',
      sopClassUid: '1.2.840.10008.5.1.4.1.1.2',
      sopInstanceUid: uid,
    },
    transferSyntaxUid: '1.2.840.10008.1.2.1',
    storeName: 'memory',
    objectKey: `p/${uid}.dcm`,
    size: bytes.length,
    sha256: createHash('sha256').update(bytes).digest('hex'),
    callingAeTitle: 'MOD',
    calledAeTitle: 'DICOMGW',
    sourceAddress: '127.0.0.1',
    receivedAt: new Date(),
    state: 'pending-upload',
    pendingOwner: owner,
  };
}

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
