/** StagingFile (one descriptor from create to fsync) and DirectorySyncs (shared dir fsyncs). */
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { StagingFile } from '../../src/ingest/staging-file.js';
import { DirectorySyncs } from '../../src/store/fs-durable.js';

const work = await mkdtemp(join(tmpdir(), 'staging-file-test-'));
t.teardown(() => rm(work, { recursive: true, force: true }));
let n = 0;
const fresh = (): string => join(work, `f${n++}`);

t.test('bytes land in order, whatever the chunking, and sync resolves once written', async (t) => {
  const data = randomBytes(3 * 1024 * 1024 + 17);
  for (const size of [1, 7, 4096, 16 * 1024, 300_000]) {
    const f = new StagingFile(fresh(), 64 * 1024);
    const chunks: Buffer[] = [];
    for (let o = 0; o < (size === 1 ? 5000 : data.length); o += size) {
      chunks.push(data.subarray(o, Math.min(o + size, data.length)));
    }
    let waits = 0;
    for (const c of chunks) {
      const w = f.write(c);
      if (w) {
        waits++;
        await w;
      }
    }
    const expected = Buffer.concat(chunks);
    t.equal(f.size, expected.length, `size counts every byte (chunks of ${size})`);
    await f.sync();
    await f.close();
    t.same(await readFile(f.path), expected, `content identical (chunks of ${size})`);
    if (size >= 16 * 1024) t.ok(waits > 0, `backpressure asked the writer to wait (${size})`);
  }
});

t.test('more chunks than one writev takes (IOV_MAX) still arrive whole', async (t) => {
  const f = new StagingFile(fresh(), 1024 * 1024);
  const chunks = Array.from({ length: 5000 }, (_, i) => Buffer.from([i & 0xff, (i >> 8) & 0xff]));
  for (const c of chunks) f.write(c);
  await f.sync();
  await f.close();
  t.same(await readFile(f.path), Buffer.concat(chunks));
});

t.test('an existing path is never overwritten: the error surfaces at flush', async (t) => {
  const p = fresh();
  await writeFile(p, 'keep me');
  const f = new StagingFile(p);
  t.equal(f.write(Buffer.from('other')), undefined, 'write does not throw');
  await t.rejects(f.flushed(), { code: 'EEXIST' });
  await t.rejects(f.sync(), { code: 'EEXIST' });
  await f.close();
  t.equal(await readFile(p, 'utf8'), 'keep me');
});

t.test('an empty file can be synced and closed; close twice is harmless', async (t) => {
  const f = new StagingFile(fresh());
  await f.sync();
  await f.close();
  await f.close();
  t.equal((await readFile(f.path)).length, 0);
});

t.test('close waits for queued writes and releases a waiting writer', async (t) => {
  const f = new StagingFile(fresh(), 10);
  const w = f.write(Buffer.alloc(100, 1));
  t.ok(w, 'over the high-water mark');
  await f.close();
  await w;
  t.equal((await readFile(f.path)).length, 100);
});

t.test(
  'DirectorySyncs: concurrent callers share fsyncs, each waits for one begun after it',
  async (t) => {
    const log: string[] = [];
    let release: Array<() => void> = [];
    const counted = new DirectorySyncs(async (dir) => {
      log.push(`start ${dir}`);
      await new Promise<void>((r) => release.push(r));
      log.push(`end ${dir}`);
    });
    const order: string[] = [];
    const first = counted.sync('a').then(() => order.push('first'));
    await Promise.resolve();
    // These asked while the first fsync ran: they need one more, which they share.
    const later = Array.from({ length: 5 }, (_, i) =>
      counted.sync('a').then(() => order.push(`l${i}`)),
    );
    const other = counted.sync('b').then(() => order.push('other'));
    t.same(log, ['start a', 'start b'], 'one fsync per directory at a time');
    const flush = async (): Promise<void> => {
      for (let i = 0; i < 10; i++) await Promise.resolve();
    };
    const step = async (): Promise<void> => {
      const r = release;
      release = [];
      r.forEach((f) => f());
      await flush();
    };
    await step();
    t.same(order, ['first', 'other'], 'the later callers did not take the first fsync');
    t.same(log, ['start a', 'start b', 'end a', 'end b', 'start a'], 'exactly one more for them');
    await step();
    await Promise.all([first, other, ...later]);
    t.same(order.slice(2), ['l0', 'l1', 'l2', 'l3', 'l4']);

    const syncs = new DirectorySyncs();
    await Promise.all(Array.from({ length: 20 }, () => syncs.sync(work)));
    await t.rejects(
      syncs.sync(join(work, 'missing')),
      { code: 'ENOENT' },
      'errors reach the caller',
    );
    // After an error the next caller gets a fresh fsync.
    await syncs.sync(work);
  },
);
