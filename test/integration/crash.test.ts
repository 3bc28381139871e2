/**
 * Crash safety, in both acknowledgement modes: the gateway process is SIGKILLed at 10 random
 * moments while storescu sends (some instances large enough for multipart uploads), and
 * restarted each time. Afterwards every instance that was answered 0000 before a kill is in
 * the bucket and the index, intact; no index row points at a missing or different object; no
 * incomplete multipart upload remains.
 */
import { ListMultipartUploadsCommand } from '@aws-sdk/client-s3';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { S3Store } from '../../src/store/s3-store.js';
import { storescu } from '../helpers/dcmtk.js';
import { startGatewayProcess } from '../helpers/gateway-process.js';
import { generateStudy, type GeneratedFile } from '../helpers/gen-study.js';
import { startTestPostgres } from '../helpers/pg.js';
import { createBucket, startRgw } from '../helpers/rgw.js';
import { checkStored, query, until } from '../helpers/verify.js';

const KILLS = Number(process.env.GW_TEST_KILLS ?? 10);
const rgw = await startRgw();
t.teardown(() => rgw.stop());
const pgsrv = await startTestPostgres();
t.teardown(() => pgsrv.stop());
const work = await mkdtemp(join(tmpdir(), 'gw-crash-'));
t.teardown(() => rm(work, { recursive: true, force: true }));

// Small instances plus a few of ~6 MiB, above the 5 MiB part size: multipart uploads in flight.
const small = await generateStudy(join(work, 'study'), {
  series: 2,
  instances: 60,
  rows: 64,
  cols: 64,
  seed: 51,
});
const large = await generateStudy(join(work, 'study'), {
  series: 1,
  instances: 4,
  rows: 1024,
  cols: 1024,
  frames: 3,
  seed: 52,
});
const files: GeneratedFile[] = [...small.files, ...large.files];

/** Deterministic PRNG (mulberry32), so a failing run can be repeated. */
function prng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let x = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

for (const ack of ['spooled', 'stored'] as const) {
  t.test(`ack: ${ack} — SIGKILL at ${KILLS} random moments`, async (t) => {
    const bucket = `crash-${ack}`;
    await createBucket(rgw, bucket);
    await query(pgsrv.connectionString, `CREATE DATABASE crash_${ack}`);
    const url = new URL(pgsrv.connectionString);
    url.pathname = `/crash_${ack}`;
    const dir = await mkdtemp(join(work, `${ack}-`));
    const config = {
      dicom: { aeTitle: 'DICOMGW', host: '127.0.0.1', port: 0 },
      index: { type: 'postgres', url: url.toString() },
      store: {
        type: 's3',
        endpoint: rgw.endpoint,
        region: rgw.region,
        bucket,
        accessKeyId: rgw.accessKeyId,
        secretAccessKey: rgw.secretAccessKey,
        ack,
        partSizeMiB: 5,
        requestTimeoutSeconds: 10,
        // Uploads run while instances arrive (no burst deferral), so kills land mid-upload too.
        spool: { dir: join(dir, 'spool'), burstBytes: 0 },
        abortIncompleteUploadsAfterSeconds: 0,
      },
      admin: { enabled: false },
      log: { level: 'info' },
    };
    const random = prng(ack === 'spooled' ? 7 : 8);
    const acknowledged = new Set<string>();
    for (let kill = 0; kill < KILLS; kill++) {
      const gw = await startGatewayProcess(config, join(dir, 'config.json'));
      // What was not acknowledged yet, so each kill lands in new work (all again once done).
      const todo = files.filter((f) => !acknowledged.has(f.path));
      const sending = storescu({
        host: '127.0.0.1',
        port: gw.port,
        callingAet: 'STORESCU',
        calledAet: 'DICOMGW',
        files: (todo.length > 0 ? todo : files).map((f) => f.path),
        extraArgs: ['-nh'],
        timeoutMs: 120_000,
      });
      // A random moment: 50-1500 ms into the run (start-up, mid-instance, mid-upload, idle).
      const at = Date.now() + 50 + random() * 1450;
      await until(async () => Date.now() >= at, 5_000, 'the kill moment');
      gw.child.kill('SIGKILL');
      await gw.exited;
      const r = await sending;
      for (const resp of r.responses) if (resp.status === 0) acknowledged.add(resp.file);
    }
    t.ok(acknowledged.size > 0, `${acknowledged.size} instances acknowledged before the kills`);

    // A last start: it reconciles the spool, and a final send completes the study.
    const gw = await startGatewayProcess(config, join(dir, 'config.json'));
    t.teardown(async () => {
      gw.child.kill('SIGTERM');
      await gw.exited;
    });
    const last = await storescu({
      host: '127.0.0.1',
      port: gw.port,
      callingAet: 'STORESCU',
      calledAet: 'DICOMGW',
      files: files.map((f) => f.path),
      timeoutMs: 120_000,
    });
    t.ok(
      last.statuses.length === files.length && last.statuses.every((s) => s === 0),
      'final send: all 0000',
    );
    await until(
      async () => {
        const rows = await query<{ n: string }>(
          url.toString(),
          "SELECT count(*) AS n FROM instances WHERE state <> 'stored'",
        );
        return rows[0]!.n === '0';
      },
      120_000,
      'no pending uploads',
    );

    const store = new S3Store({
      endpoint: rgw.endpoint,
      region: rgw.region,
      bucket,
      accessKeyId: rgw.accessKeyId,
      secretAccessKey: rgw.secretAccessKey,
      forcePathStyle: true,
    });
    t.teardown(() => store.close());
    const rows = await query<{
      sop_instance_uid: string;
      object_key: string;
      sha256: string;
      size: string;
    }>(url.toString(), 'SELECT sop_instance_uid, object_key, sha256, size FROM instances');
    t.equal(rows.length, files.length, 'one row per instance');
    const byUid = new Map(rows.map((r) => [r.sop_instance_uid, r]));
    let intact = 0;
    for (const f of files) {
      const row = byUid.get(f.sopInstanceUid);
      if (!row) {
        t.fail(
          `no row for ${f.sopInstanceUid}${acknowledged.has(f.path) ? ' (acknowledged!)' : ''}`,
        );
        continue;
      }
      const c = await checkStored(store, row.object_key, f.path);
      if (c.datasetEqual && c.shaMetadataOk && c.object.length === Number(row.size)) intact++;
      else t.fail(`object ${row.object_key} differs from what was sent`);
    }
    t.equal(intact, files.length, 'every row points at an intact object equal to what was sent');
    const uploads = await store.client.send(new ListMultipartUploadsCommand({ Bucket: bucket }));
    t.equal(uploads.Uploads?.length ?? 0, 0, 'no incomplete multipart upload remains');
    const counts = await query<{ n: string }>(
      url.toString(),
      `SELECT sum(num_instances) AS n FROM studies`,
    );
    t.equal(Number(counts[0]!.n), files.length, 'study counters match the rows');
    // Files cut short by a kill (received in place in ready/, or in incoming/) are gone.
    await until(
      async () => (await readdir(join(dir, 'spool', 'ready'))).length === 0,
      30_000,
      'the spool to empty',
    );
    t.same(await readdir(join(dir, 'spool', 'incoming')), [], 'nothing left in incoming/');
  });
}
