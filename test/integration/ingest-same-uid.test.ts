/**
 * One SOP Instance UID on two associations at once, S3 with `ack: spooled`, seen from the wire:
 * A claims the UID and trickles its data set; B sends the same instance whole. B must get an
 * answer (A700, transient) within dicom.sameInstanceWaitSeconds, not wait for A; and a B whose
 * peer goes away while it waits is released at once, not counted active until A ends.
 */
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import type { ProposedContextRq } from '../../src/dimse/acse.js';
import { encodePDataTf } from '../../src/dimse/pdu.js';
import { DimseStatus } from '../../src/errors.js';
import { startTestGateway } from '../helpers/gateway.js';
import { generateStudy } from '../helpers/gen-study.js';
import { startTestPostgres } from '../helpers/pg.js';
import { RawScu, storeCommand } from '../helpers/raw-scu.js';
import { createBucket, startRgw } from '../helpers/rgw.js';
import { datasetOf, until } from '../helpers/verify.js';

const CT = '1.2.840.10008.5.1.4.1.1.2';
const ELE = '1.2.840.10008.1.2.1';
const contexts: ProposedContextRq[] = [{ id: 1, abstractSyntaxUid: CT, transferSyntaxUids: [ELE] }];
const WAIT_SECONDS = 2;

const rgw = await startRgw();
t.teardown(() => rgw.stop());
const pgsrv = await startTestPostgres();
t.teardown(() => pgsrv.stop());
await createBucket(rgw, 'sameuid');
const work = await mkdtemp(join(tmpdir(), 'gw-same-uid-'));
t.teardown(() => rm(work, { recursive: true, force: true }));
const gw = await startTestGateway({
  databaseUrl: pgsrv.connectionString,
  s3: { ...rgw, bucket: 'sameuid' },
  s3Options: { ack: 'spooled' },
  dicom: { sameInstanceWaitSeconds: WAIT_SECONDS },
});
t.teardown(() => gw.close());

async function connect(tt: Test, name: string): Promise<RawScu> {
  const scu = await RawScu.connect('127.0.0.1', gw.port);
  tt.teardown(() => scu.destroy());
  const r = await scu.associate(name, 'DICOMGW', contexts);
  tt.equal(r.kind, 'accepted', `${name} associated`);
  return scu;
}

/**
 * A begins UID X in place and stalls after 1000 bytes; B then sends X whole. Resolves once B's
 * data set is sent, with a function that sends the rest of A's.
 */
async function sameUidOnTwo(
  t: Test,
  seed: number,
): Promise<{ uid: string; a: RawScu; b: RawScu; sentAt: number; finishA: () => void }> {
  const study = await generateStudy(join(work, String(seed)), {
    instances: 1,
    rows: 64,
    cols: 64,
    seed,
  });
  const f = study.files[0]!;
  const ds = datasetOf(await readFile(f.path));
  const a = await connect(t, 'SENDER_A');
  a.write(encodePDataTf(1, true, true, storeCommand(1, CT, f.sopInstanceUid)));
  a.write(encodePDataTf(1, false, false, ds.subarray(0, 1000)));
  // A holds the UID once its file is being received in place.
  await until(
    async () => existsSync(gw.gw.spool!.spool.pathFor(f.sopInstanceUid)),
    5_000,
    'A to begin',
  );
  const b = await connect(t, 'SENDER_B');
  const sentAt = Date.now();
  b.write(encodePDataTf(1, true, true, storeCommand(1, CT, f.sopInstanceUid)));
  b.write(encodePDataTf(1, false, true, ds));
  const finishA = (): void => a.write(encodePDataTf(1, false, true, ds.subarray(1000)));
  return { uid: f.sopInstanceUid, a, b, sentAt, finishA };
}

t.test('B waits a bounded time for A, then hears A700; A is stored', async (t) => {
  const { uid, a, b, sentAt, finishA } = await sameUidOnTwo(t, 41);
  const rsp = await b.readResponse();
  const ms = Date.now() - sentAt;
  t.equal(rsp.status, DimseStatus.OutOfResources, 'B: A700 (transient, retry later)');
  t.ok(ms >= WAIT_SECONDS * 1000 - 100, `B waited the configured time (${ms} ms)`);
  t.ok(ms < WAIT_SECONDS * 1000 + 3000, `and not longer (${ms} ms)`);
  finishA();
  t.equal((await a.readResponse()).status, DimseStatus.Success, 'A: stored');
  t.ok(await gw.gw.index.findInstance(uid), 'indexed');
});

t.test('B whose peer goes away while it waits is released at once', async (t) => {
  await until(
    async () => gw.gw.scp.activeAssociations === 0,
    5_000,
    'earlier associations to close',
  );
  const waits = (): number =>
    gw.logs.filter((l) => l.event === 'instance.waiting_for_same_uid').length;
  const before = waits();
  const { a, b, finishA } = await sameUidOnTwo(t, 42);
  await until(async () => waits() > before, 5_000, 'B to wait for A');
  const gone = Date.now();
  b.destroy();
  await until(async () => gw.gw.scp.activeAssociations === 1, 5_000, 'B to be released');
  t.ok(Date.now() - gone < WAIT_SECONDS * 1000, 'B released before its wait would have ended');
  finishA();
  t.equal((await a.readResponse()).status, DimseStatus.Success, 'A: stored');
});
