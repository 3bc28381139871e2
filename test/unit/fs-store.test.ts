/**
 * FsStore on real temp dirs, plus the part of the store contract MemoryStore shares with it
 * (unit tests of ingest use MemoryStore and must see the same behaviour).
 */
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, statSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import t from 'tap';
import { FsStore, META_SUFFIX } from '../../src/store/fs-store.js';
import { MemoryStore } from '../../src/store/memory-store.js';
import type { ObjectStore, PutFileOptions } from '../../src/store/object-store.js';
import { until } from '../helpers/verify.js';

const gw = (code: string) => ({ name: 'GatewayError', code });

const work = await mkdtemp(join(tmpdir(), 'fs-store-test-'));
t.teardown(() => rm(work, { recursive: true, force: true }));

let n = 0;
/** Writes `data` into the store's staging dir (as ingest does) and returns path + options. */
async function stage(
  store: ObjectStore & { stagingDir(): string },
  data: Buffer,
  extra: Partial<PutFileOptions> = {},
): Promise<{ path: string; opts: PutFileOptions }> {
  const path = join(store.stagingDir(), `in-${n++}.dcm`);
  await writeFile(path, data);
  return {
    path,
    opts: {
      size: data.length,
      sha256: createHash('sha256').update(data).digest('hex'),
      md5: createHash('md5').update(data).digest('base64'),
      metadata: { 'calling-ae': 'STORESCU' },
      ifAbsent: true,
      ...extra,
    },
  };
}

async function readAll(s: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of s) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

async function keysOf(store: ObjectStore, prefix: string): Promise<string[]> {
  const keys: string[] = [];
  for await (const o of store.list(prefix)) keys.push(o.key);
  return keys.sort();
}

const K1 = 'p/studies/1.2/series/3/instances/4.dcm';
const K2 = 'p/studies/1.2.5/series/3/instances/6.dcm';
const K3 = 'p/studies/1.3/series/3/instances/7.dcm';

for (const [name, make] of [
  ['FsStore', async () => new FsStore({ root: await mkdtemp(join(work, 'root-')) })],
  ['MemoryStore', async () => new MemoryStore()],
] as const) {
  t.test(`${name}: store contract`, async (t) => {
    const store = await make();
    t.teardown(() => store.close());
    const first = randomBytes(3000);
    const second = randomBytes(2000);

    const a = await stage(store, first);
    const r1 = await store.putFile(K1, a.path, a.opts);
    t.equal(r1.created, true);
    t.equal(r1.info.size, first.length);
    t.equal(r1.info.sha256, a.opts.sha256);
    t.equal(r1.info.metadata['calling-ae'], 'STORESCU');
    t.equal(r1.info.etag, createHash('md5').update(first).digest('hex'), 'etag = md5 hex');
    t.same(await readAll(await store.get(K1)), first, 'bytes unchanged');

    const b = await stage(store, second);
    const r2 = await store.putFile(K1, b.path, b.opts);
    t.equal(r2.created, false, 'ifAbsent on an existing key');
    t.equal(r2.info.sha256, a.opts.sha256, 'the existing object is reported');
    t.same(await readAll(await store.get(K1)), first, 'first bytes kept');

    const c = await stage(store, second, { ifAbsent: false });
    const r3 = await store.putFile(K1, c.path, c.opts);
    t.equal(r3.created, true, 'without ifAbsent the key is replaced');
    t.same(await readAll(await store.get(K1)), second);
    t.equal((await store.head(K1))?.sha256, c.opts.sha256, 'metadata replaced too');

    const d = await stage(store, first, { metadata: { StudyUID: '1.2', sha256: 'forged' } });
    await store.putFile(K2, d.path, d.opts);
    const h = await store.head(K2);
    t.equal(h?.metadata.studyuid, '1.2', 'metadata keys lower-cased');
    t.equal(h?.sha256, d.opts.sha256, 'caller metadata cannot override sha256');
    t.equal(h?.metadata.sha256, d.opts.sha256);
    t.equal(await store.head('p/none.dcm'), undefined);

    const e = await stage(store, first, { size: first.length + 1 });
    await t.rejects(store.putFile(K3, e.path, e.opts), gw('GW_ERR_STORE_INTEGRITY'), 'size');
    t.equal(await store.head(K3), undefined);

    const info = await store.put(K3, Buffer.from('hello'), { metadata: { x: 'y' } });
    t.equal(info.sha256, createHash('sha256').update('hello').digest('hex'));
    await store.put('p/other.bin', Readable.from([Buffer.from('a'), Buffer.from('b')]), {});
    t.same(await readAll(await store.get('p/other.bin')), Buffer.from('ab'), 'put from a stream');

    t.same(await keysOf(store, 'p/studies/1.2'), [K1, K2].sort(), 'string prefix, not segments');
    t.same(await keysOf(store, 'p/studies/1.2/'), [K1]);
    t.same(await keysOf(store, ''), [K1, K2, K3, 'p/other.bin'].sort());
    t.same(await keysOf(store, 'q/'), []);

    await store.delete(K2);
    await store.delete(K2); // missing: not an error
    t.equal(await store.head(K2), undefined);
    await t.rejects(store.get(K2), gw('GW_ERR_STORE_INTEGRITY'));
    await store.ping();

    for (const bad of ['../x', '/abs', 'a//b', 'a/./b', '']) {
      await t.rejects(store.head(bad), gw('GW_ERR_INTERNAL'), `head ${JSON.stringify(bad)}`);
      await t.rejects(store.putFile(bad, a.path, a.opts), gw('GW_ERR_INTERNAL'), 'putFile');
    }
  });
}

t.test('FsStore: layout on disk, staging consumed, sidecar written', async (t) => {
  const root = await mkdtemp(join(work, 'layout-'));
  const store = new FsStore({ root });
  const data = randomBytes(1000);
  const s = await stage(store, data);
  await store.putFile(K1, s.path, s.opts);
  t.same(await readFile(join(root, K1)), data);
  t.notOk(existsSync(s.path), 'the staged file was moved into place');
  const meta = JSON.parse(await readFile(join(root, K1 + META_SUFFIX), 'utf8'));
  t.match(meta, { v: 1, size: 1000, sha256: s.opts.sha256, md5: s.opts.md5 });
  t.same(await readdir(join(root, '.staging')), [], 'no temp files left');

  // the duplicate keeps its staged file: the caller still owns it
  const dup = await stage(store, data);
  t.equal((await store.putFile(K1, dup.path, dup.opts)).created, false);
  t.ok(existsSync(dup.path));
});

t.test('FsStore: concurrent ifAbsent puts of one key: exactly one wins', async (t) => {
  const store = new FsStore({ root: await mkdtemp(join(work, 'race-')) });
  const staged = await Promise.all(
    Array.from({ length: 8 }, (_, i) => stage(store, Buffer.from(`content ${i}`))),
  );
  const results = await Promise.all(staged.map((s) => store.putFile(K1, s.path, s.opts)));
  t.equal(results.filter((r) => r.created).length, 1);
  const winner = results.find((r) => r.created);
  const head = await store.head(K1);
  t.equal(head?.sha256, winner?.info.sha256, 'metadata belongs to the stored bytes');
  for (const r of results) t.equal(r.info.sha256, winner?.info.sha256);
});

t.test('FsStore: an orphan sidecar (crash before the link) does not block the key', async (t) => {
  const root = await mkdtemp(join(work, 'orphan-'));
  const store = new FsStore({ root });
  await mkdir(join(root, 'p/studies/1.2/series/3/instances'), { recursive: true });
  await writeFile(join(root, K1 + META_SUFFIX), '{"v":1,"size":5,"metadata":{}}');
  t.equal(await store.head(K1), undefined);
  t.same(await keysOf(store, ''), [], 'sidecars are never listed');
  const s = await stage(store, Buffer.from('data'));
  const r = await store.putFile(K1, s.path, s.opts);
  t.equal(r.created, true);
  t.equal(r.info.sha256, s.opts.sha256);
});

t.test('FsStore: data left without its sidecar (crash before the directory fsync)', async (t) => {
  // One directory fsync covers both names, so a crash may keep the data's name and lose the
  // sidecar's. Such a file has no sha256: the ingest path (putStaged) sees that it is not the
  // instance it holds and replaces it, sidecar and all.
  const root = await mkdtemp(join(work, 'nosidecar-'));
  const store = new FsStore({ root });
  await mkdir(join(root, 'p/studies/1.2/series/3/instances'), { recursive: true });
  await writeFile(join(root, K1), 'stale');
  const s = await stage(store, Buffer.from('data'));
  const first = await store.putFile(K1, s.path, { ...s.opts, ifAbsent: true });
  t.equal(first.created, false, 'create-only finds the file');
  t.equal(first.info.sha256, undefined, 'but no digest to match the instance against');
  const second = await store.putFile(K1, s.path, { ...s.opts, ifAbsent: false });
  t.equal(second.info.sha256, s.opts.sha256);
  t.equal(await readFile(join(root, K1), 'utf8'), 'data');
  t.equal((await store.head(K1))?.sha256, s.opts.sha256, 'sidecar written');
});

t.test("FsStore: the data gets its name only after the caller's fsync resolves", async (t) => {
  const store = new FsStore({ root: await mkdtemp(join(work, 'root-')) });
  const data = randomBytes(1000);
  let release!: () => void;
  const synced = new Promise<void>((r) => (release = r));
  const { path, opts } = await stage(store, data, { synced });
  let settled = false;
  const put = store.putFile(K1, path, opts).finally(() => (settled = true));
  // The sidecar is published first, while the data's fsync runs: once it is there, the data is
  // next, and only the fsync may hold it back.
  await until(async () => existsSync(join(store.root, K1 + META_SUFFIX)), 5_000, 'the sidecar');
  t.notOk(existsSync(join(store.root, K1)), 'no object while the fsync is pending');
  t.notOk(settled, 'the put waits for the fsync');
  release();
  t.equal((await put).created, true);
  t.same(await readAll(await store.get(K1)), data);

  const eio = Promise.reject(Object.assign(new Error('EIO'), { code: 'EIO' }));
  eio.catch(() => undefined);
  const failed = await stage(store, randomBytes(10), { synced: eio });
  await t.rejects(store.putFile(K2, failed.path, failed.opts), gw('GW_ERR_STORE_UNAVAILABLE'));
  t.equal(await store.head(K2), undefined, 'a failed fsync publishes nothing');
});

t.test('FsStore: nothing escapes the root', async (t) => {
  const base = await mkdtemp(join(work, 'escape-'));
  const root = join(base, 'root');
  const outside = join(base, 'outside');
  await mkdir(outside, { recursive: true });
  await writeFile(join(outside, 'secret.dcm'), 'secret');
  const store = new FsStore({ root });
  await store.ping();
  // a symlink planted under root is neither followed by list nor served by head
  await symlink(outside, join(root, 'link'));
  await symlink(join(outside, 'secret.dcm'), join(root, 'file.dcm'));
  t.same(await keysOf(store, ''), []);
  t.equal(await store.head('file.dcm'), undefined);
  // the store's own names are not keys
  for (const k of ['.staging/x', 'a/b.dcm.meta.json']) {
    await t.rejects(store.head(k), gw('GW_ERR_INTERNAL'), k);
  }
  const s = await stage(store, Buffer.from('x'));
  t.same(await keysOf(store, '.staging/'), [], 'staged files are not objects');
  t.same(await keysOf(store, ''), []);
  t.ok(existsSync(s.path));
});

const OTHER_FS = '/dev/shm';
const haveOtherFs = existsSync(OTHER_FS) && statSync(OTHER_FS).dev !== statSync(work).dev;
t.test(
  'FsStore: a source on another file system is copied',
  { skip: !haveOtherFs && `${OTHER_FS} is not another file system` },
  async (t) => {
    const other = OTHER_FS;
    const src = await mkdtemp(join(other, 'fs-store-test-'));
    t.teardown(() => rm(src, { recursive: true, force: true }));
    const store = new FsStore({ root: await mkdtemp(join(work, 'xdev-')) });
    const data = randomBytes(5000);
    const path = join(src, 'in.dcm');
    await writeFile(path, data);
    const r = await store.putFile(K1, path, {
      size: data.length,
      sha256: createHash('sha256').update(data).digest('hex'),
      md5: createHash('md5').update(data).digest('base64'),
      metadata: {},
      ifAbsent: true,
    });
    t.equal(r.created, true);
    t.same(await readAll(await store.get(K1)), data);
    t.same(await readdir(store.stagingDir()), [], 'the copy in staging is gone');
  },
);

t.test('FsStore: ping fails with GW_ERR_STORE_UNAVAILABLE when root is unusable', async (t) => {
  const file = join(work, 'not-a-dir');
  await writeFile(file, 'x');
  const store = new FsStore({ root: file });
  await t.rejects(store.ping(), gw('GW_ERR_STORE_UNAVAILABLE'));
});

t.test('MemoryStore: wrong Content-MD5 refused like S3, injected faults', async (t) => {
  const store = new MemoryStore();
  t.teardown(() => store.close());
  const s = await stage(store, Buffer.from('abc'), { md5: 'AAAAAAAAAAAAAAAAAAAAAA==' });
  await t.rejects(store.putFile(K1, s.path, s.opts), gw('GW_ERR_STORE_INTEGRITY'));
  t.equal(store.size, 0);
  store.failNext('putFile');
  const ok = await stage(store, Buffer.from('abc'));
  await t.rejects(store.putFile(K1, ok.path, ok.opts), gw('GW_ERR_STORE_UNAVAILABLE'));
  t.equal((await store.putFile(K1, ok.path, ok.opts)).created, true, 'fault used once');
  const dir = store.stagingDir();
  await store.close();
  t.notOk(existsSync(dir), 'close removes the staging dir');
});
