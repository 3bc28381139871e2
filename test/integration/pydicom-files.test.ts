/**
 * Real-world files: python3-pydicom's test files in every transfer syntax (BE, deflate,
 * JPEG, JPEG-LS, J2K, RLE), sent with DCMTK storescu in their own syntax. What the gateway
 * stores must equal what DCMTK's own receiver writes in bit-preserving mode (storescp +B),
 * and, for the files storescu sends unchanged, the original file's data set. The broken
 * files (which storescu refuses to send) are sent raw and must leave nothing behind.
 */
import { readdir, readFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import type { ObjectStore } from '../../src/store/object-store.js';
import { readPart10Header } from '../../src/dicom/file-meta.js';
import { startStorescp, storescu } from '../helpers/dcmtk.js';
import { startTestGateway } from '../helpers/gateway.js';
import { startTestPostgres } from '../helpers/pg.js';
import {
  groupByStorescuArgs,
  pydicomTestFiles,
  type PydicomFile,
} from '../helpers/pydicom-files.js';
import { openScu, store } from '../helpers/scu.js';
import { datasetOf, query, readAll } from '../helpers/verify.js';

const files = pydicomTestFiles();
if (!files) {
  t.fail('python3-pydicom test files are missing: run scripts/ensure-system-deps.sh');
  process.exit(1);
}

const pgsrv = await startTestPostgres();
t.teardown(() => pgsrv.stop());
const gw = await startTestGateway({ databaseUrl: pgsrv.connectionString });
t.teardown(() => gw.close());
const work = await mkdtemp(join(tmpdir(), 'gw-pydicom-'));
t.teardown(() => rm(work, { recursive: true, force: true }));

async function objectsByInstanceUid(store: ObjectStore): Promise<Map<string, Buffer>> {
  const out = new Map<string, Buffer>();
  for await (const o of store.list('')) {
    const bytes = await readAll(await store.get(o.key));
    out.set(readPart10Header(bytes).mediaStorageSopInstanceUid, bytes);
  }
  return out;
}

t.test('broken files sent raw: failure status, no object, no row', async (t) => {
  t.ok(files.broken.length >= 3, 'MR_truncated, rtplan_truncated, SC_rgb_jpeg');
  for (const f of files.broken) {
    const bytes = await readFile(f.path);
    const meta = readPart10Header(bytes);
    // The real requestor: it sends data set bytes as given, broken or not.
    const assoc = await openScu(t, {
      port: gw.port,
      callingAeTitle: 'RAWSCU',
      calledAeTitle: 'DICOMGW',
      contexts: [
        {
          abstractSyntaxUid: meta.mediaStorageSopClassUid,
          transferSyntaxUids: [meta.transferSyntaxUid],
        },
      ],
    });
    const status = await store(
      assoc,
      meta.mediaStorageSopClassUid,
      meta.mediaStorageSopInstanceUid,
      datasetOf(bytes),
    );
    t.ok(
      status !== undefined && status >= 0xa000,
      `${f.name}: failure status 0x${status?.toString(16)}`,
    );
    await assoc.release();
  }
  t.equal((await objectsByInstanceUid(gw.gw.store)).size, 0, 'no object in the store');
  const rows = await query<{ n: string }>(
    pgsrv.connectionString,
    'SELECT count(*) AS n FROM instances',
  );
  t.equal(rows[0]!.n, '0', 'no row in the index');
  t.notOk(
    gw.logs.some((l) => l.event === 'instance.stored'),
    'nothing logged as stored',
  );
});

/** Sends `list` to a fresh gateway (own database, own store) and to storescp +B; compares. */
async function roundTrip(t: Test, list: PydicomFile[], round: number): Promise<Set<string>> {
  const db = `round${round}`;
  await query(pgsrv.connectionString, `CREATE DATABASE ${db}`);
  const url = new URL(pgsrv.connectionString);
  url.pathname = `/${db}`;
  const gw = await startTestGateway({ databaseUrl: url.toString() });
  t.teardown(() => gw.close());
  const refDir = await mkdtemp(join(work, `ref${round}-`));
  const reference = await startStorescp({ aet: 'REF', outDir: refDir, extraArgs: ['+xa', '+B'] });
  t.teardown(() => reference.stop());

  for (const [args, group] of groupByStorescuArgs(list)) {
    const argv = ['-R', '-nh', ...args.split(' ').filter((a) => a && a !== '-R')];
    const paths = group.map((f) => f.path);
    const peer = { host: '127.0.0.1', callingAet: 'STORESCU', files: paths, extraArgs: argv };
    const toGw = await storescu({ ...peer, port: gw.port, calledAet: 'DICOMGW' });
    const toRef = await storescu({ ...peer, port: reference.port, calledAet: 'REF' });
    t.same(
      toGw.statuses,
      toRef.statuses.map(() => 0),
      `${args}: ${group.length} files answered 0000`,
    );
  }

  const stored = await objectsByInstanceUid(gw.gw.store);
  const refFiles = new Map<string, Buffer>();
  for (const name of await readdir(refDir)) {
    const bytes = await readFile(join(refDir, name));
    refFiles.set(readPart10Header(bytes).mediaStorageSopInstanceUid, bytes);
  }
  t.equal(
    stored.size,
    refFiles.size,
    `as many objects as DCMTK's receiver wrote (${refFiles.size})`,
  );
  let sameAsReference = 0;
  for (const [uid, ref] of refFiles) {
    const obj = stored.get(uid);
    if (obj && datasetOf(obj).equals(datasetOf(ref))) sameAsReference++;
    else t.fail(`object for ${uid} differs from storescp +B's file`);
  }
  t.equal(sameAsReference, refFiles.size, 'every object equals what storescp +B received');

  const byteExact = list.filter((f) => f.byteExact);
  let exact = 0;
  for (const f of byteExact) {
    const original = await readFile(f.path);
    const sent = f.part10 ? datasetOf(original) : original;
    if ([...stored.values()].some((o) => datasetOf(o).equals(sent))) exact++;
    else t.fail(`${f.name} not stored byte-exact`);
  }
  t.equal(
    exact,
    byteExact.length,
    `${byteExact.length} files storescu sends unchanged are stored byte-exact`,
  );
  return new Set([...stored.values()].map((o) => readPart10Header(o).transferSyntaxUid));
}

t.test('every sendable file is stored exactly as it arrived', async (t) => {
  // A SOP Instance UID is stored once (keep-first), so files sharing one go to different
  // rounds, each against a fresh gateway; round 1 also takes every file with a unique UID.
  const groups = files.sharedSopInstanceUids.map((g) =>
    files.sendable.filter((f) => g.files.includes(f.name)),
  );
  const inGroup = new Set(groups.flat().map((f) => f.name));
  const syntaxes = new Set<string>();
  const covered = new Set<string>();
  let list = files.sendable.filter((f) => !inGroup.has(f.name));
  for (let round = 1; round <= 3; round++) {
    list.forEach((f) => covered.add(f.transferSyntax));
    // From each group, a member whose syntax is not covered yet (else the first, in round 1).
    for (const members of groups) {
      const pick =
        members.find((f) => !covered.has(f.transferSyntax)) ??
        (round === 1 ? members[0] : undefined);
      if (!pick) continue;
      members.splice(members.indexOf(pick), 1);
      covered.add(pick.transferSyntax);
      list.push(pick);
    }
    if (list.length === 0) break;
    for (const ts of await roundTrip(t, list, round)) syntaxes.add(ts);
    list = [];
  }
  // Every transfer syntax among pydicom's sendable files (pydicom has none in JPEG process 14).
  const expected = new Set(
    files.sendable.map((f) => f.transferSyntaxUid).filter((u): u is string => !!u),
  );
  t.ok(expected.size >= 11, `${expected.size} transfer syntaxes in the set`);
  for (const ts of expected) {
    t.ok(syntaxes.has(ts), `stored an instance in ${ts}`);
  }
});
