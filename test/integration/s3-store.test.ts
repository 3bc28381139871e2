/**
 * S3Store against a real Ceph RGW (test/helpers/rgw.ts): uploads small and multipart,
 * conditional create, Content-MD5 and signed-payload refusals, listing, deletion, and behaviour while the
 * server is frozen and after it comes back.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { ListMultipartUploadsCommand } from '@aws-sdk/client-s3';
import t, { type Test } from 'tap';
import type { PutFileOptions } from '../../src/store/object-store.js';
import { S3Store } from '../../src/store/s3-store.js';
import type { S3StoreOptions } from '../../src/store/s3-store.js';
import { createBucket, startRgw } from '../helpers/rgw.js';

const MIB = 1024 * 1024;
const BUCKET = 'store-test';
const gw = (code: string) => ({ name: 'GatewayError', code });

const t0 = Date.now();
const rgw = await startRgw();
t.teardown(() => rgw.stop());
t.comment(`RGW started in ${Date.now() - t0} ms at ${rgw.endpoint}`);
await createBucket(rgw, BUCKET);
const work = await mkdtemp(join(tmpdir(), 's3-store-test-'));
t.teardown(() => rm(work, { recursive: true, force: true }));

function makeStore(over: Partial<S3StoreOptions> = {}): S3Store {
  const store = new S3Store({
    endpoint: rgw.endpoint,
    region: rgw.region,
    bucket: BUCKET,
    accessKeyId: rgw.accessKeyId,
    secretAccessKey: rgw.secretAccessKey,
    forcePathStyle: true,
    partSize: 8 * MIB,
    requestTimeoutMs: 20_000,
    ...over,
  });
  t.teardown(() => store.close());
  return store;
}

let n = 0;
async function stageFile(
  data: Buffer,
  extra: Partial<PutFileOptions> = {},
): Promise<{ path: string; opts: PutFileOptions }> {
  const path = join(work, `in-${n++}.dcm`);
  await writeFile(path, data);
  const opts: PutFileOptions = {
    size: data.length,
    sha256: createHash('sha256').update(data).digest('hex'),
    md5: createHash('md5').update(data).digest('base64'),
    metadata: { 'calling-ae': 'STORESCU' },
    ifAbsent: true,
    ...extra,
  };
  return { path, opts };
}

async function readAll(s: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of s) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

async function pendingUploads(store: S3Store, prefix: string): Promise<string[]> {
  const out = await store.client.send(
    new ListMultipartUploadsCommand({ Bucket: BUCKET, Prefix: prefix }),
  );
  return (out.Uploads ?? []).map((u) => u.Key ?? '');
}

const store = makeStore();

t.test('ping and describe', async (t) => {
  await store.ping();
  t.match(store.describe(), `s3://${BUCKET}/ at ${rgw.endpoint}`);
  await t.rejects(makeStore({ bucket: 'no-such-bucket' }).ping(), gw('GW_ERR_STORE_UNAVAILABLE'));
});

t.test('small file: one PutObject, bytes and metadata round-trip', async (t) => {
  const data = randomBytes(512 * 1024);
  const { path, opts } = await stageFile(data, { metadata: { StudyUID: '1.2.3' } });
  const r = await store.putFile('small/a.dcm', path, opts);
  t.equal(r.created, true);
  t.equal(r.info.etag, createHash('md5').update(data).digest('hex'));
  t.same(await readAll(await store.get('small/a.dcm')), data);
  const h = await store.head('small/a.dcm');
  t.equal(h?.size, data.length);
  t.equal(h?.sha256, opts.sha256);
  t.equal(h?.metadata.studyuid, '1.2.3');
  t.equal(h?.etag, r.info.etag);
  t.equal(await store.head('small/none.dcm'), undefined);
});

t.test('ifAbsent on an existing key: created false, first bytes kept', async (t) => {
  const first = randomBytes(1000);
  const a = await stageFile(first);
  t.equal((await store.putFile('small/dup.dcm', a.path, a.opts)).created, true);
  const b = await stageFile(randomBytes(1200));
  const r = await store.putFile('small/dup.dcm', b.path, b.opts);
  t.equal(r.created, false);
  t.equal(r.info.sha256, a.opts.sha256, 'the existing object is reported');
  t.same(await readAll(await store.get('small/dup.dcm')), first);
});

t.test('multipart: 20 MiB in 8 MiB parts', async (t) => {
  const data = randomBytes(20 * MIB);
  const { path, opts } = await stageFile(data);
  const r = await store.putFile('big/a.dcm', path, opts);
  t.equal(r.created, true);
  t.match(r.info.etag, /-3$/, 'a 3-part ETag (from HeadObject: RGW sends none on Complete)');
  const back = await readAll(await store.get('big/a.dcm'));
  t.equal(back.length, data.length);
  t.equal(createHash('sha256').update(back).digest('hex'), opts.sha256);
  t.ok(back.equals(data), 'bytes unchanged');
  t.equal((await store.head('big/a.dcm'))?.sha256, opts.sha256);
  const again = await stageFile(randomBytes(9 * MIB));
  const r2 = await store.putFile('big/a.dcm', again.path, again.opts);
  t.equal(r2.created, false, 'ifAbsent holds for multipart too');
  t.equal(r2.info.sha256, opts.sha256);
  t.same(await pendingUploads(store, 'big/'), []);
});

t.test('integrity: refused uploads leave nothing behind', async (t) => {
  const data = randomBytes(4096);
  const wrongMd5 = createHash('md5').update('other').digest('base64');
  const a = await stageFile(data, { md5: wrongMd5 });
  await t.rejects(store.putFile('bad/md5.dcm', a.path, a.opts), gw('GW_ERR_STORE_INTEGRITY'));
  t.equal(await store.head('bad/md5.dcm'), undefined, 'RGW answered BadDigest, stored nothing');

  const big = await stageFile(randomBytes(9 * MIB), { md5: wrongMd5 });
  await t.rejects(store.putFile('bad/big.dcm', big.path, big.opts), gw('GW_ERR_STORE_INTEGRITY'));
  t.equal(await store.head('bad/big.dcm'), undefined);

  const short = await stageFile(data, { size: data.length - 1 });
  await t.rejects(
    store.putFile('bad/size.dcm', short.path, short.opts),
    gw('GW_ERR_STORE_INTEGRITY'),
  );
  t.same(await pendingUploads(store, 'bad/'), []);
});

/** Records the headers of every request `store` signs (and, with `strip`, removes a header first). */
function recordHeaders(store: S3Store, strip?: string): Array<Record<string, string>> {
  const sent: Array<Record<string, string>> = [];
  store.client.middlewareStack.add(
    (next) => (args) => {
      const headers = (args.request as { headers: Record<string, string> }).headers;
      if (strip) delete headers[strip];
      sent.push({ ...headers });
      return next(args);
    },
    // After the store's own build middleware (the payload hash), before signing.
    { step: 'build', priority: 'low', name: 'recordHeaders' },
  );
  return sent;
}

async function keysUnder(store: S3Store, prefix: string): Promise<string[]> {
  const keys: string[] = [];
  for await (const o of store.list(prefix)) keys.push(o.key);
  return keys;
}

/** A good and a bad file (sha256 of other bytes) of `size` bytes with no MD5: stored, refused. */
async function putWithoutMd5(
  t: Test,
  s: S3Store,
  prefix: string,
  size: number,
  label: string,
): Promise<void> {
  const data = randomBytes(size);
  const ok = await stageFile(data, { md5: undefined });
  const key = `${prefix}/${size}.dcm`;
  const r = await s.putFile(key, ok.path, ok.opts);
  t.equal(r.created, true, `${label}: stored`);
  const got = await readAll(await s.get(key));
  t.ok(got.equals(data), `${label}: the bucket holds the file's bytes`);
  const other = createHash('sha256').update('other').digest('hex');
  const bad = await stageFile(data, { md5: undefined, sha256: other });
  await t.rejects(
    s.putFile(`${prefix}/bad-${size}.dcm`, bad.path, bad.opts),
    gw('GW_ERR_STORE_INTEGRITY'),
    `${label}: a file that does not match its sha256 is refused`,
  );
  t.equal(await s.head(`${prefix}/bad-${size}.dcm`), undefined, `${label}: nothing stored`);
}

t.test('no MD5 given: RGW checks the signed sha256, the file is sent unread', async (t) => {
  const s = makeStore({ prefix: 'nomd5' });
  const sent = recordHeaders(s);
  t.equal(await s.serverChecksPayload(), true, 'RGW refused the probe signed with another sha256');
  t.same(await keysUnder(s, 'nomd5/'), [], 'the refused probe stored nothing');
  await putWithoutMd5(t, s, 'nomd5', 4096, 'single PUT');
  const puts = sent.filter((h) => h['content-length'] === '4096');
  t.equal(puts.length, 2, 'the good and the bad file, one request each');
  for (const h of puts) {
    t.match(h['x-amz-content-sha256'], /^[0-9a-f]{64}$/, 'signed with the sha256 given');
    t.notOk(h['content-md5'], 'no Content-MD5: nothing read the file before the upload');
  }
  // Multipart parts carry Content-MD5 (one read computes them and checks the whole sha256).
  await putWithoutMd5(t, s, 'nomd5', 9 * MIB, 'multipart');
  t.same(await pendingUploads(s, 'nomd5/'), []);
});

t.test('a server that does not check signed payloads: Content-MD5, probe removed', async (t) => {
  const s = makeStore({ prefix: 'lax' });
  // As a server that ignores x-amz-content-sha256 would: the requests go without it.
  const sent = recordHeaders(s, 'x-amz-content-sha256');
  t.equal(await s.serverChecksPayload(), false, 'the probe was stored: not checked');
  t.same(await keysUnder(s, 'lax/'), [], 'the stored probe was deleted');
  await putWithoutMd5(t, s, 'lax', 4096, 'single PUT');
  const puts = sent.filter((h) => h['content-length'] === '4096');
  t.equal(puts.length, 1, 'the bad file was refused before any request');
  t.ok(puts[0]?.['content-md5'], 'the good one carried Content-MD5');
});

t.test('a multipart upload failing half-way is aborted', async (t) => {
  const faulty = makeStore();
  // Part 2 is refused as if its bytes had been corrupted on the way.
  faulty.client.middlewareStack.add(
    (next, context) => async (args) => {
      const input = args.input as { PartNumber?: number };
      if (context.commandName === 'UploadPartCommand' && input.PartNumber === 2) {
        throw Object.assign(new Error('injected'), {
          name: 'BadDigest',
          $metadata: { httpStatusCode: 400 },
        });
      }
      return next(args);
    },
    { step: 'initialize', name: 'injectPartFailure' },
  );
  const { path, opts } = await stageFile(randomBytes(20 * MIB));
  await t.rejects(faulty.putFile('abort/a.dcm', path, opts), gw('GW_ERR_STORE_INTEGRITY'));
  t.equal(await store.head('abort/a.dcm'), undefined);
  t.same(await pendingUploads(store, 'abort/'), [], 'no incomplete multipart upload left');
});

t.test('put, list (paginated), delete', async (t) => {
  const info = await store.put('misc/buf.bin', Buffer.from('hello'), { contentType: 'text/plain' });
  t.equal(info.sha256, createHash('sha256').update('hello').digest('hex'));
  // a stream of unknown length over the part size: lib-storage goes multipart
  const big = randomBytes(9 * MIB);
  const streamed = await store.put(
    'misc/stream.bin',
    Readable.from([big.subarray(0, 5 * MIB), big.subarray(5 * MIB)]),
    {},
  );
  t.equal(streamed.size, big.length);
  t.ok((await readAll(await store.get('misc/stream.bin'))).equals(big), 'streamed put round-trips');
  await store.delete('misc/stream.bin');
  for (let i = 0; i < 5; i++) await store.put(`misc/k${i}`, Buffer.from(`v${i}`), {});
  // two keys per page, so the listing must follow continuation tokens
  const paged = makeStore();
  paged.client.middlewareStack.add(
    (next, context) => async (args) => {
      if (context.commandName === 'ListObjectsV2Command') {
        (args.input as { MaxKeys?: number }).MaxKeys = 2;
      }
      return next(args);
    },
    { step: 'initialize', name: 'smallPages' },
  );
  const keys: string[] = [];
  for await (const o of paged.list('misc/')) keys.push(o.key);
  t.same(keys, ['misc/buf.bin', 'misc/k0', 'misc/k1', 'misc/k2', 'misc/k3', 'misc/k4']);
  await store.delete('misc/k0');
  await store.delete('misc/k0'); // missing: not an error
  t.equal(await store.head('misc/k0'), undefined);
  await t.rejects(store.get('misc/k0'), gw('GW_ERR_STORE_INTEGRITY'));
});

t.test('server frozen: fails within the timeouts; back: works again', async (t) => {
  const requestTimeoutMs = 1_500;
  const maxAttempts = 2;
  const quick = makeStore({ requestTimeoutMs, connectionTimeoutMs: 1_000, maxAttempts });
  await quick.ping(); // warm keep-alive connection: the frozen server keeps it open
  // Never pinged: it asks whether RGW checks signed payloads while RGW is frozen.
  const cold = makeStore({ requestTimeoutMs, connectionTimeoutMs: 1_000, maxAttempts });
  const coldSent = recordHeaders(cold);
  const small = await stageFile(randomBytes(512 * 1024));
  const big = await stageFile(randomBytes(12 * MIB));
  // attempts x timeout, plus backoff (< 200 ms per retry) and slack for a busy machine
  const limit = maxAttempts * requestTimeoutMs + 2_500;

  await rgw.pause();
  try {
    for (const [key, f] of [
      ['frozen/small.dcm', small],
      ['frozen/big.dcm', big],
    ] as const) {
      const start = Date.now();
      await t.rejects(quick.putFile(key, f.path, f.opts), gw('GW_ERR_STORE_UNAVAILABLE'), key);
      const took = Date.now() - start;
      t.ok(took < limit, `${key} failed after ${took} ms (limit ${limit})`);
    }
    await t.rejects(quick.ping(), gw('GW_ERR_STORE_UNAVAILABLE'));
    t.equal(await cold.serverChecksPayload(), false, 'a store that cannot ask assumes no');
  } finally {
    await rgw.resume();
  }
  // Until it can ask again, it sends Content-MD5 (from a read that checks the sha256).
  const coldPut = await stageFile(randomBytes(1000), { md5: undefined });
  t.equal((await cold.putFile('frozen/cold.dcm', coldPut.path, coldPut.opts)).created, true);
  t.ok(coldSent.at(-1)?.['content-md5'], 'the upload carried Content-MD5');

  // The frozen server may still carry out the requests it got while frozen: a retry with
  // ifAbsent then finds the object, with the same sha256.
  for (const [key, f] of [
    ['frozen/small.dcm', small],
    ['frozen/big.dcm', big],
  ] as const) {
    const r = await quick.putFile(key, f.path, f.opts);
    t.equal(r.info.sha256, f.opts.sha256, `${key} stored after resume (created: ${r.created})`);
    const back = await readAll(await quick.get(key));
    t.equal(createHash('sha256').update(back).digest('hex'), f.opts.sha256);
  }
  // A CreateMultipartUpload carried out late has nobody left to abort it.
  const aborted = await quick.abortIncompleteUploads('frozen/', new Date());
  t.comment(`late multipart uploads aborted: ${aborted}`);
  t.same(await pendingUploads(quick, 'frozen/'), []);
});
