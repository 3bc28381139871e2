/**
 * Storage Commitment Push Model against a real requester: Debian Orthanc 1.10 asks through its
 * REST API (POST /modalities/{id}/storage-commitment) and receives the N-EVENT-REPORT on its own
 * DICOM port; the instances go in with DCMTK storescu to a gateway with an S3 store (Ceph RGW) in
 * `ack: spooled` mode, so C-STORE success comes before the upload and only the report says the
 * instance is in the bucket.
 *
 * The gateway calls Orthanc through a TCP relay the test owns, so "requester unreachable" is a
 * real refused connection (relay closed) and "reachable again" a real one (relay reopened).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { storescu } from '../helpers/dcmtk.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { generateStudy, type GeneratedFile } from '../helpers/gen-study.js';
import { freePort } from '../helpers/net.js';
import { startOrthanc } from '../helpers/orthanc.js';
import { startTestPostgres } from '../helpers/pg.js';
import { createBucket, startRgw } from '../helpers/rgw.js';
import { query } from '../helpers/verify.js';

const rgw = await startRgw();
t.teardown(() => rgw.stop());
const pgsrv = await startTestPostgres();
t.teardown(() => pgsrv.stop());
await createBucket(rgw, 'dicom');
const orthanc = await startOrthanc({
  config: {
    Name: 'commitment-requester',
    DicomAet: 'ORTHANC',
    AuthenticationEnabled: false,
    RemoteAccessAllowed: true,
    DicomModalities: {},
  },
});
t.teardown(() => orthanc.stop());
const orthancDicomPort = Number(
  ((await (await orthanc.request('/system')).json()) as { DicomPort: number }).DicomPort,
);
const work = await mkdtemp(join(tmpdir(), 'gw-stcommit-'));
t.teardown(() => rm(work, { recursive: true, force: true }));

/** A TCP relay to Orthanc's DICOM port on a fixed port: closed = requester unreachable. */
const relayPort = await freePort();
let relay: net.Server | undefined;
const relaySockets = new Set<net.Socket>();
async function openRelay(): Promise<void> {
  const srv = net.createServer((inbound) => {
    const outbound = net.connect(orthancDicomPort, '127.0.0.1');
    for (const s of [inbound, outbound]) {
      relaySockets.add(s);
      s.setNoDelay(true);
      s.on('close', () => relaySockets.delete(s));
      s.on('error', () => {});
    }
    inbound.pipe(outbound).pipe(inbound);
    inbound.on('close', () => outbound.destroy());
    outbound.on('close', () => inbound.destroy());
  });
  await new Promise<void>((resolve) => srv.listen(relayPort, '127.0.0.1', resolve));
  relay = srv;
}
async function closeRelay(): Promise<void> {
  const srv = relay;
  relay = undefined;
  for (const s of relaySockets) s.destroy();
  if (srv) await new Promise<void>((resolve) => srv.close(() => resolve()));
}
await openRelay();
t.teardown(closeRelay);

const gatewayDir = await mkdtemp(join(tmpdir(), 'gw-stcommit-gw-'));
t.teardown(() => rm(gatewayDir, { recursive: true, force: true }));

async function startGw(): Promise<TestGateway> {
  const gw = await startTestGateway({
    databaseUrl: pgsrv.connectionString,
    s3: { ...rgw, bucket: 'dicom' },
    s3Options: { ack: 'spooled', requestTimeoutSeconds: 5 },
    dir: gatewayDir,
    dicom: {
      peers: [{ aeTitle: 'STORESCU' }, { aeTitle: 'ORTHANC', host: '127.0.0.1', port: relayPort }],
    },
    extra: {
      storageCommitment: {
        enabled: true,
        unknownGraceSeconds: 1,
        recheckSeconds: 0.5,
        timeoutSeconds: 10,
        retry: { initialSeconds: 1, maxSeconds: 2 },
      },
      shutdown: { graceSeconds: 1 },
    },
  });
  // Orthanc's modality entry for the gateway (its N-ACTION goes there; its report comes from it).
  const put = await orthanc.request('/modalities/gw', {
    method: 'PUT',
    body: JSON.stringify({ AET: 'DICOMGW', Host: '127.0.0.1', Port: gw.port }),
  });
  if (!put.ok) throw new Error(`PUT /modalities/gw: ${put.status}`);
  return gw;
}

let gw = await startGw();
t.teardown(() => gw.close());

let seed = 100;
async function send(n: number): Promise<GeneratedFile[]> {
  const dir = join(work, `s${seed}`);
  const study = await generateStudy(dir, {
    series: 1,
    instances: n,
    rows: 16,
    cols: 16,
    seed: seed++,
  });
  const r = await storescu({
    host: '127.0.0.1',
    port: gw.port,
    callingAet: 'STORESCU',
    calledAet: 'DICOMGW',
    files: [dir],
  });
  if (r.code !== 0 || r.statuses.some((s) => s !== 0)) {
    throw new Error(`storescu failed: ${r.code} ${JSON.stringify(r.statuses)}`);
  }
  return study.files;
}

interface Ref {
  SOPClassUID: string;
  SOPInstanceUID: string;
}
interface CommitmentStatus {
  Status: 'Pending' | 'Success' | 'Failure';
  Success?: Ref[];
  Failures?: Array<Ref & { FailureReason: number }>;
}

const refsOf = (files: GeneratedFile[]): Ref[] =>
  files.map((f) => ({ SOPClassUID: f.sopClassUid, SOPInstanceUID: f.sopInstanceUid }));

/** Asks Orthanc to request commitment; returns the path of its report. */
async function requestCommitment(refs: Ref[]): Promise<string> {
  const rsp = await orthanc.request('/modalities/gw/storage-commitment', {
    method: 'POST',
    body: JSON.stringify({ DicomInstances: refs }),
  });
  const text = await rsp.text();
  if (!rsp.ok) throw new Error(`storage-commitment request: ${rsp.status} ${text}`);
  return (JSON.parse(text) as { Path: string }).Path;
}

async function commitmentStatus(path: string): Promise<CommitmentStatus> {
  return (await (await orthanc.request(path)).json()) as CommitmentStatus;
}

async function waitFor<T>(what: string, fn: () => Promise<T | undefined>, ms = 30_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const settled = (path: string): Promise<CommitmentStatus> =>
  waitFor(`report at ${path}`, async () => {
    const s = await commitmentStatus(path);
    return s.Status === 'Pending' ? undefined : s;
  });

const uids = (refs: Ref[] | undefined): string[] =>
  (refs ?? []).map((r) => r.SOPInstanceUID).sort();

/** The transaction's row, by the Orthanc request (the gateway's only requester). */
async function transactionRows(): Promise<
  Array<{ transaction_uid: string; state: string; attempts: number; event_type: number | null }>
> {
  return query(
    pgsrv.connectionString,
    'SELECT transaction_uid, state, attempts, event_type FROM commitment_transactions ORDER BY id',
  );
}

t.test('spooled instances, once uploaded: Success listing every instance', async (t) => {
  const files = await send(5);
  const asked = Date.now();
  const path = await requestCommitment(refsOf(files));
  const s = await settled(path);
  t.comment(`5 spooled instances: request -> Success at Orthanc in ${Date.now() - asked} ms`);
  t.equal(s.Status, 'Success');
  t.same(uids(s.Success), uids(refsOf(files)), 'every instance committed');
  t.same(s.Failures ?? [], []);
  const rows = await query<{ state: string }>(
    pgsrv.connectionString,
    'SELECT state FROM instances WHERE sop_instance_uid = ANY($1)',
    [files.map((f) => f.sopInstanceUid)],
  );
  t.ok(rows.length === 5 && rows.every((r) => r.state === 'stored'), 'all rows stored');
});

t.test(
  'one unknown SOP Instance UID: Failure with reason 0112 (274), the others Success',
  async (t) => {
    const files = await send(3);
    const unknown = {
      SOPClassUID: files[0]!.sopClassUid,
      SOPInstanceUID: '1.2.826.0.1.3680043.2.1143.999999.1',
    };
    const path = await requestCommitment([...refsOf(files), unknown]);
    const s = await settled(path);
    t.equal(s.Status, 'Failure');
    t.same(uids(s.Success), uids(refsOf(files)));
    t.equal(s.Failures?.length, 1);
    t.equal(s.Failures?.[0]?.SOPInstanceUID, unknown.SOPInstanceUID);
    t.equal(s.Failures?.[0]?.FailureReason, 274);
  },
);

t.test(
  'RGW frozen: Pending with no report while only spooled; Success after SIGCONT',
  async (t) => {
    await rgw.pause();
    let resumed = false;
    t.teardown(() => (resumed ? undefined : rgw.resume()));
    const files = await send(3);
    const path = await requestCommitment(refsOf(files));
    // Recorded, then evaluated several times (recheckSeconds 0.5) while the uploads hang.
    await waitFor('the transaction row', async () =>
      (await transactionRows()).length >= 3 ? true : undefined,
    );
    const reportedBefore = gw.logs.filter((l) => l.event === 'commitment.reported').length;
    const until = Date.now() + 4000;
    while (Date.now() < until) {
      t.equal((await commitmentStatus(path)).Status, 'Pending');
      await new Promise((r) => setTimeout(r, 250));
    }
    t.equal(
      gw.logs.filter((l) => l.event === 'commitment.reported').length,
      reportedBefore,
      'no report sent while the instances are only in the spool',
    );
    const pending = await query<{ state: string }>(
      pgsrv.connectionString,
      'SELECT state FROM instances WHERE sop_instance_uid = ANY($1)',
      [files.map((f) => f.sopInstanceUid)],
    );
    t.ok(
      pending.every((r) => r.state === 'pending-upload'),
      'still pending-upload',
    );
    await rgw.resume();
    resumed = true;
    const thawed = Date.now();
    const s = await settled(path);
    t.comment(`RGW thawed -> Success at Orthanc in ${Date.now() - thawed} ms`);
    t.equal(s.Status, 'Success');
    t.same(uids(s.Success), uids(refsOf(files)));
  },
);

t.test('gateway restarted while a transaction is pending: the report arrives, once', async (t) => {
  await rgw.pause();
  let resumed = false;
  t.teardown(() => (resumed ? undefined : rgw.resume()));
  const files = await send(2);
  const before = (await transactionRows()).length;
  const path = await requestCommitment(refsOf(files));
  await waitFor('the transaction row', async () =>
    (await transactionRows()).length > before ? true : undefined,
  );
  const txUid = (await transactionRows()).at(-1)!.transaction_uid;
  const first = gw;
  await first.close();
  t.equal(
    (await commitmentStatus(path)).Status,
    'Pending',
    'not reported by the gateway that stopped',
  );
  await rgw.resume();
  resumed = true;
  gw = await startGw();
  const s = await settled(path);
  t.equal(s.Status, 'Success');
  t.same(uids(s.Success), uids(refsOf(files)));
  // Orthanc has the report before the gateway has logged its answer: wait for the log line.
  const reportedLines = (): Array<Record<string, unknown>> =>
    [...first.logs, ...gw.logs].filter(
      (l) => l.event === 'commitment.reported' && l.transactionUid === txUid,
    );
  const reported = await waitFor('the reported log line', async () =>
    reportedLines().length > 0 ? reportedLines() : undefined,
  );
  t.equal(reported.length, 1, 'reported once');
  const row = (await transactionRows()).find((r) => r.transaction_uid === txUid)!;
  t.same(
    { state: row.state, attempts: row.attempts, eventType: row.event_type },
    {
      state: 'reported',
      attempts: 1,
      eventType: 1,
    },
  );
});

t.test('requester unreachable at report time: delivered after a retry', async (t) => {
  const files = await send(2);
  await closeRelay();
  let reopened = false;
  t.teardown(() => (reopened ? undefined : openRelay()));
  const failuresBefore = gw.logs.filter((l) => l.event === 'commitment.report_failed').length;
  const path = await requestCommitment(refsOf(files));
  await waitFor('a failed report attempt', async () =>
    gw.logs.filter((l) => l.event === 'commitment.report_failed').length > failuresBefore
      ? true
      : undefined,
  );
  t.equal((await commitmentStatus(path)).Status, 'Pending');
  await openRelay();
  reopened = true;
  const s = await settled(path);
  t.equal(s.Status, 'Success');
  t.same(uids(s.Success), uids(refsOf(files)));
});

t.test('the index and /metrics count transactions by outcome', async (t) => {
  // Orthanc has the last report before the gateway has recorded it as reported (see above).
  const counts = await waitFor('the last report recorded', async () => {
    const c = await gw.gw.index.commitments.commitmentCounts();
    return c.pending === 0 ? c : undefined;
  });
  t.same(counts, { pending: 0, committed: 4, failed: 1, abandoned: 0 });
  const text = await gw.gw.metrics.text();
  for (const [name, value] of [
    ['dicomgw_commitment_pending', 0],
    ['dicomgw_commitment_committed', 4],
    ['dicomgw_commitment_failed', 1],
    ['dicomgw_commitment_abandoned', 0],
  ] as const) {
    t.match(text, new RegExp(`^${name} ${value}$`, 'm'), `${name} ${value}`);
  }
  t.match(text, /^dicomgw_commitment_report_failures_total [1-9]/m, 'the failed attempt counted');
});
