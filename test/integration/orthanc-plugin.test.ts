/**
 * The cloud Orthanc's POST /gateway/import (orthanc/plugin/gateway_import.py) and the
 * read-only viewer (orthanc/viewer.json + viewer-filter.lua), with the shipped configuration
 * files, Debian's Orthanc 1.10 + orthanc-python + orthanc-postgresql, a real Ceph RGW and a
 * real PostgreSQL that both Orthancs share as their index.
 */
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import pg from 'pg';
import t from 'tap';
import { generateStudy, type GeneratedFile } from '../helpers/gen-study.js';
import { closedPort } from '../helpers/net.js';
import {
  loadOrthancConfig,
  startOrthanc,
  type Credentials,
  type OrthancServer,
} from '../helpers/orthanc.js';
import { startTestPostgres } from '../helpers/pg.js';
import { createBucket, startRgw } from '../helpers/rgw.js';

const BUCKET = 'dicom';
const MAX_OBJECT_BYTES = 64 * 1024;
const GATEWAY: Credentials = { user: 'gateway', password: 'gateway-test-pw' };
const VIEWER: Credentials = { user: 'viewer', password: 'viewer-test-pw' };

// Started side by side (a few seconds each); whichever started is stopped even if the other failed.
const [rgwStart, pgStart] = await Promise.allSettled([startRgw(), startTestPostgres()]);
for (const s of [rgwStart, pgStart]) if (s.status === 'fulfilled') t.teardown(() => s.value.stop());
if (rgwStart.status === 'rejected') throw rgwStart.reason;
if (pgStart.status === 'rejected') throw pgStart.reason;
const rgw = rgwStart.value;
const pgsrv = pgStart.value;
const work = await mkdtemp(join(tmpdir(), 'orthanc-plugin-test-'));
t.teardown(() => rm(work, { recursive: true, force: true }));

// Orthanc gets a database of its own, as in production.
const admin = new pg.Client({
  connectionString: pgsrv.connectionString,
  connectionTimeoutMillis: 10_000,
  query_timeout: 30_000,
});
await admin.connect();
try {
  await admin.query('CREATE DATABASE orthanc');
} finally {
  await admin.end();
}
const orthancDb = new URL(pgsrv.connectionString);
orthancDb.pathname = '/orthanc';

await createBucket(rgw, BUCKET);
const s3 = new S3Client({
  endpoint: rgw.endpoint,
  region: rgw.region,
  forcePathStyle: true,
  credentials: { accessKeyId: rgw.accessKeyId, secretAccessKey: rgw.secretAccessKey },
  requestChecksumCalculation: 'WHEN_REQUIRED',
  requestHandler: { requestTimeout: 15_000, connectionTimeout: 5_000, throwOnRequestTimeout: true },
});
t.teardown(() => s3.destroy());

const study = await generateStudy(join(work, 'study'), {
  series: 1,
  instances: 6,
  rows: 32,
  cols: 32,
  seed: 1501,
});
const big = await generateStudy(join(work, 'big'), {
  instances: 1,
  rows: 256,
  cols: 256,
  seed: 1502,
});
const files = [...study.files, ...big.files];
const keyOf = (f: GeneratedFile): string => `studies/${f.studyUid}/${f.sopInstanceUid}.dcm`;
for (const f of files) {
  await s3.send(
    new PutObjectCommand({ Bucket: BUCKET, Key: keyOf(f), Body: await readFile(f.path) }),
  );
}
type Six = [
  GeneratedFile,
  GeneratedFile,
  GeneratedFile,
  GeneratedFile,
  GeneratedFile,
  GeneratedFile,
];
const [f0, f1, f2, f3, f4, f5] = study.files as Six;
const bigFile = big.files[0]!;
if (bigFile.bytes <= MAX_OBJECT_BYTES || f0.bytes >= MAX_OBJECT_BYTES) {
  throw new Error('the generated files must lie on either side of MAX_OBJECT_BYTES');
}

const s3Env = {
  S3_ENDPOINT: rgw.endpoint,
  S3_REGION: rgw.region,
  S3_ACCESS_KEY_ID: rgw.accessKeyId,
  S3_SECRET_ACCESS_KEY: rgw.secretAccessKey,
  S3_FORCE_PATH_STYLE: 'true',
  GATEWAY_IMPORT_MAX_OBJECT_BYTES: String(MAX_OBJECT_BYTES),
};
const cloudEnv = {
  ORTHANC_GATEWAY_PASSWORD: GATEWAY.password,
  ORTHANC_ADMIN_PASSWORD: 'admin-test-pw',
  ORTHANC_POSTGRESQL_URI: orthancDb.toString(),
};
const storageDir = join(work, 'orthanc-storage');
const cloud = await startOrthanc({
  config: loadOrthancConfig('cloud.json'),
  env: { ...s3Env, ...cloudEnv },
  auth: GATEWAY,
  storageDir,
});
t.teardown(() => cloud.stop());

interface ItemResult {
  bucket: string;
  key: string;
  httpStatus: number;
  status: 'Success' | 'AlreadyStored' | 'Failed';
  instanceId?: string;
  studyId?: string;
  error?: string;
  message?: string;
}
interface BatchResult {
  items: ItemResult[];
  imported: number;
  failed: number;
}

const item = (f: GeneratedFile, over: Partial<Record<'key' | 'sha256', string>> = {}) => ({
  bucket: BUCKET,
  key: keyOf(f),
  sha256: f.sha256,
  ...over,
});

async function post(
  body: unknown,
  server: OrthancServer = cloud,
): Promise<{ status: number; type: string | null; json: unknown }> {
  const res = await server.request('/gateway/import', {
    method: 'POST',
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, type: res.headers.get('content-type'), json: JSON.parse(text) };
}

async function countInstances(server: OrthancServer = cloud): Promise<number> {
  const res = await server.request('/statistics');
  return ((await res.json()) as { CountInstances: number }).CountInstances;
}

/** The Orthanc ids of instances with this SOP Instance UID ([] when not imported). */
async function lookup(f: GeneratedFile, server: OrthancServer = cloud): Promise<string[]> {
  const res = await server.request('/tools/lookup', { method: 'POST', body: f.sopInstanceUid });
  const found = (await res.json()) as Array<{ ID: string; Type: string }>;
  return found.filter((r) => r.Type === 'Instance').map((r) => r.ID);
}

t.test('one item: Success, then AlreadyStored, the same bytes as in the bucket', async (t) => {
  const first = await post(item(f0));
  t.equal(first.status, 200);
  t.match(first.type, /^application\/json/);
  const r = first.json as ItemResult;
  t.match(r, { bucket: BUCKET, key: keyOf(f0), httpStatus: 200, status: 'Success' });
  t.same(await lookup(f0), [r.instanceId], 'the id answered is the imported instance');

  const again = await post(item(f0));
  t.equal(again.status, 200);
  t.match(again.json, { status: 'AlreadyStored', instanceId: r.instanceId, studyId: r.studyId });

  const file = await cloud.request(`/instances/${r.instanceId}/file`);
  t.equal(file.status, 200);
  const bytes = Buffer.from(await file.arrayBuffer());
  t.equal(createHash('sha256').update(bytes).digest('hex'), f0.sha256, 'byte-identical');
});

t.test('a batch: one result per item, in order', async (t) => {
  const res = await post({ items: [item(f1), item(f2), item(f0)] });
  t.equal(res.status, 200);
  const b = res.json as BatchResult;
  t.match(b, { imported: 3, failed: 0 });
  t.same(
    b.items.map((r) => [r.key, r.status]),
    [
      [keyOf(f1), 'Success'],
      [keyOf(f2), 'Success'],
      [keyOf(f0), 'AlreadyStored'],
    ],
  );
  for (const [i, f] of [f1, f2].entries()) t.same(await lookup(f), [b.items[i]!.instanceId]);
});

t.test('a missing object: 404, nothing imported', async (t) => {
  const before = await countInstances();
  const res = await post(item(f3, { key: 'studies/none/none.dcm' }));
  t.equal(res.status, 404);
  t.match(res.type, /^application\/json/);
  t.match(res.json, { status: 'Failed', error: 'ObjectNotFound', message: /none\.dcm/ });
  t.equal(await countInstances(), before);
});

t.test('a wrong sha256: 422, nothing imported', async (t) => {
  const before = await countInstances();
  const wrong = createHash('sha256').update('not the file').digest('hex');
  const res = await post(item(f3, { sha256: wrong }));
  t.equal(res.status, 422);
  t.match(res.json, { status: 'Failed', error: 'Sha256Mismatch', message: new RegExp(f3.sha256) });
  t.equal(await countInstances(), before);
  t.same(await lookup(f3), [], 'the instance is not in Orthanc');
});

t.test('an object above GATEWAY_IMPORT_MAX_OBJECT_BYTES: 413, nothing imported', async (t) => {
  const before = await countInstances();
  const res = await post(item(bigFile));
  t.equal(res.status, 413);
  t.match(res.json, { status: 'Failed', error: 'ObjectTooLarge' });
  t.equal(await countInstances(), before);
});

t.test('a batch with failures: results per item, the worst status overall', async (t) => {
  const missing = item(f5, { key: 'studies/none/gone.dcm' });
  const res = await post({ items: [item(f3), missing, item(bigFile)] });
  t.equal(res.status, 413, 'the highest failing status');
  const b = res.json as BatchResult;
  t.match(b, { imported: 1, failed: 2 });
  t.match(b.items, [
    { status: 'Success', httpStatus: 200 },
    { status: 'Failed', httpStatus: 404, error: 'ObjectNotFound', key: missing.key },
    { status: 'Failed', httpStatus: 413, error: 'ObjectTooLarge' },
  ]);
  t.equal((await lookup(f3)).length, 1, 'the good item is imported');
});

t.test('bad bodies: 400 naming the problem, nothing read or imported', async (t) => {
  const before = await countInstances();
  const good = item(f4);
  const cases: Array<[string, unknown, RegExp]> = [
    ['not JSON', '{"bucket":', /not JSON/],
    ['an array', [good], /JSON object/],
    ['no sha256', { bucket: BUCKET, key: good.key }, /body\.sha256/],
    ['a short sha256', { ...good, sha256: 'abc' }, /body\.sha256: must be 64 hex/],
    ['a non-hex sha256', { ...good, sha256: 'g'.repeat(64) }, /body\.sha256/],
    ['a short bucket name', { ...good, bucket: 'ab' }, /body\.bucket/],
    ['an empty key', { ...good, key: '' }, /body\.key/],
    ['a number for key', { ...good, key: 7 }, /body\.key/],
    ['an unknown field', { ...good, size: 1 }, /body\.size: unknown/],
    ['no items', { items: [] }, /body\.items/],
    ['too many items', { items: Array.from({ length: 1001 }, () => good) }, /1 to 1000/],
    ['items beside a field', { items: [good], bucket: BUCKET }, /body\.bucket/],
    ['one bad item', { items: [good, { ...good, sha256: 'x' }] }, /items\[1\]\.sha256/],
  ];
  for (const [what, body, message] of cases) {
    const res = await post(body);
    t.equal(res.status, 400, `${what}: 400`);
    t.match(res.json, { status: 'Failed', error: 'BadRequest', message }, what);
  }
  t.equal(await countInstances(), before);
  t.same(await lookup(f4), [], 'not even the good item of a bad batch');

  const get = await cloud.request('/gateway/import');
  t.equal(get.status, 405, 'GET: 405');
  await get.body?.cancel();
  const anonymous = await cloud.request('/gateway/import', {
    method: 'POST',
    body: JSON.stringify(good),
    headers: { authorization: 'Basic ' },
  });
  t.equal(anonymous.status, 401, 'authentication is on');
  await anonymous.body?.cancel();
});

t.test('S3 unreachable: 502, nothing imported', async (t) => {
  const closed = await closedPort();
  const cut = await startOrthanc({
    config: loadOrthancConfig('cloud.json'),
    env: { ...s3Env, ...cloudEnv, S3_ENDPOINT: `http://127.0.0.1:${closed}` },
    auth: GATEWAY,
    storageDir,
  });
  t.teardown(() => cut.stop());
  const before = await countInstances();
  const t0 = Date.now();
  const res = await post(item(f4), cut);
  t.equal(res.status, 502);
  t.match(res.json, { status: 'Failed', error: 'S3Error', key: keyOf(f4) });
  const batch = await post({ items: [item(f4), item(f0)] }, cut);
  t.equal(batch.status, 502);
  t.match(batch.json, {
    imported: 0,
    failed: 2,
    items: [
      { httpStatus: 502, error: 'S3Error' },
      { httpStatus: 502, error: 'S3Error', message: /^not tried after an S3 connection failure/ },
    ],
  });
  t.equal(await countInstances(), before);
  t.comment(`two requests against a closed port took ${Date.now() - t0} ms`);
});

t.test('a bad plugin setting stops Orthanc at start, naming the variable', async (t) => {
  await t.rejects(
    startOrthanc({
      config: loadOrthancConfig('cloud.json'),
      env: { ...s3Env, ...cloudEnv, S3_FORCE_PATH_STYLE: 'maybe' },
      auth: GATEWAY,
    }),
    /exited with code[\s\S]*S3_FORCE_PATH_STYLE=maybe/,
  );
});

t.test('the viewer serves what the cloud Orthanc imported and refuses every write', async (t) => {
  const viewer = await startOrthanc({
    config: loadOrthancConfig('viewer.json'),
    env: {
      ORTHANC_VIEWER_PASSWORD: VIEWER.password,
      ORTHANC_POSTGRESQL_URI: cloudEnv.ORTHANC_POSTGRESQL_URI,
    },
    auth: VIEWER,
    storageDir,
  });
  t.teardown(() => viewer.stop());

  const [id] = await lookup(f0, viewer);
  t.ok(id, 'POST /tools/lookup (read-only) is allowed and finds the instance');
  const file = await viewer.request(`/instances/${id}/file`);
  t.equal(file.status, 200);
  const bytes = Buffer.from(await file.arrayBuffer());
  t.equal(createHash('sha256').update(bytes).digest('hex'), f0.sha256, 'the same bytes');
  const studies = await viewer.request('/studies');
  t.equal(studies.status, 200);
  t.ok(((await studies.json()) as string[]).length >= 1, 'GET /studies lists the study');

  const before = await countInstances(viewer);
  const upload = await viewer.request('/instances', {
    method: 'POST',
    body: await readFile(f4.path),
  });
  t.equal(upload.status, 403, 'POST /instances: 403');
  await upload.body?.cancel();
  const del = await viewer.request(`/instances/${id}`, { method: 'DELETE' });
  t.equal(del.status, 403, 'DELETE: 403');
  await del.body?.cancel();
  const put = await viewer.request(`/instances/${id}/metadata/1024`, { method: 'PUT', body: 'x' });
  t.equal(put.status, 403, 'PUT metadata: 403');
  await put.body?.cancel();
  const modify = await viewer.request(`/studies/${await lookupStudy(viewer, id!)}/modify`, {
    method: 'POST',
    body: JSON.stringify({ Replace: { StudyDescription: 'x' } }),
  });
  t.equal(modify.status, 403, 'POST modify: 403');
  await modify.body?.cancel();

  t.equal(await countInstances(viewer), before, 'nothing changed');
  t.same(await lookup(f4, viewer), [], 'the upload did not land');
  t.same(await lookup(f0), [id], 'the instance is still there');
  const unauth = await viewer.request('/studies', { headers: { authorization: 'Basic ' } });
  t.equal(unauth.status, 401, 'authentication is on');
  await unauth.body?.cancel();
});

async function lookupStudy(server: OrthancServer, instanceId: string): Promise<string> {
  const res = await server.request(`/instances/${instanceId}/study`);
  return ((await res.json()) as { ID: string }).ID;
}
