/**
 * The crash-safety suite, run once per store and acknowledgement mode by
 * test/integration/crash-*.test.ts (one file each, so each has its own per-file time limit):
 * the gateway process is SIGKILLed at 10 random moments while storescu sends (some instances
 * large enough for multipart uploads to S3), and restarted each time. After every restart,
 * before anything is sent again, every instance storescu saw answered with success before a
 * kill is in the index as stored and in the store, equal to what was sent (once the restarted
 * gateway has reconciled its spool). At the end, after a last send of everything: no index row
 * points at a missing or different object; no incomplete multipart upload remains (S3); the
 * spool is empty.
 */
import { ListMultipartUploadsCommand } from '@aws-sdk/client-s3';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FsStore } from '../../src/store/fs-store.js';
import type { ObjectStore } from '../../src/store/object-store.js';
import { S3Store } from '../../src/store/s3-store.js';
import { storescu } from './dcmtk.js';
import { startGatewayProcess } from './gateway-process.js';
import { generateStudy, type GeneratedFile } from './gen-study.js';
import { startTestPostgres } from './pg.js';
import { createBucket, startRgw } from './rgw.js';
import { checkStored, query, sha256, until, type StoredCheck } from './verify.js';
import type { Test } from 'tap';

export async function crashSuite(
  t: Test,
  ack: 'spooled' | 'stored',
  storeType: 's3' | 'fs' = 's3',
  kills = 10,
): Promise<void> {
  const KILLS = Number(process.env.GW_TEST_KILLS ?? kills);
  const rgw = storeType === 's3' ? await startRgw() : undefined;
  if (rgw) t.teardown(() => rgw.stop());
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
  const fileByPath = new Map(files.map((f) => [f.path, f]));

  /** PS3.4 B.2.3: success, or a warning (B000-BFFF): either way the instance was stored. */
  const isAcknowledgement = (status: number): boolean =>
    status === 0x0000 || (status & 0xf000) === 0xb000;

  /** Deterministic PRNG (mulberry32), so a failing run can be repeated. */
  function prng(seed: number): () => number {
    return () => {
      seed = (seed + 0x6d2b79f5) | 0;
      let x = Math.imul(seed ^ (seed >>> 15), 1 | seed);
      x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
      return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
    };
  }

  t.test(`${storeType}, ack: ${ack} — SIGKILL at ${KILLS} random moments`, async (t) => {
    const name = `${storeType}_${ack}`;
    await query(pgsrv.connectionString, `CREATE DATABASE crash_${name}`);
    const url = new URL(pgsrv.connectionString);
    url.pathname = `/crash_${name}`;
    const dir = await mkdtemp(join(work, `${name}-`));
    // Uploads (or publishing, for fs) run while instances arrive (no burst deferral), so kills
    // land mid-upload too. An fs store in ack stored has no spool.
    const hasSpool = storeType === 's3' || ack === 'spooled';
    const spool = { dir: join(dir, 'spool'), burstBytes: 0 };
    let storeConfig: Record<string, unknown>;
    let store: ObjectStore;
    let s3: S3Store | undefined;
    const bucket = `crash-${ack}`;
    if (rgw) {
      await createBucket(rgw, bucket);
      storeConfig = {
        type: 's3',
        endpoint: rgw.endpoint,
        region: rgw.region,
        bucket,
        accessKeyId: rgw.accessKeyId,
        secretAccessKey: rgw.secretAccessKey,
        ack,
        partSizeMiB: 5,
        requestTimeoutSeconds: 10,
        spool,
        abortIncompleteUploadsAfterSeconds: 0,
      };
      store = s3 = new S3Store({
        endpoint: rgw.endpoint,
        region: rgw.region,
        bucket,
        accessKeyId: rgw.accessKeyId,
        secretAccessKey: rgw.secretAccessKey,
        forcePathStyle: true,
      });
    } else {
      const root = join(dir, 'objects');
      storeConfig = { type: 'fs', root, ack, ...(hasSpool ? { spool } : {}) };
      store = new FsStore({ root });
    }
    const config = {
      dicom: { aeTitle: 'DICOMGW', host: '127.0.0.1', port: 0 },
      index: { type: 'postgres', url: url.toString() },
      store: storeConfig,
      admin: { enabled: false },
      log: { level: 'info' },
    };
    t.teardown(() => store.close());
    const random = prng((ack === 'spooled' ? 7 : 8) + (storeType === 'fs' ? 10 : 0));
    /** Paths of the files storescu saw acknowledged, over all runs. */
    const acknowledged = new Set<string>();

    /**
     * The promise itself, checked before any resend could repair a loss: each acknowledged
     * instance has an index row in state 'stored' whose object is in the bucket, with the data
     * set that was sent (the gateway writes its own File Meta), the size and sha256 the row
     * says and the sha256 metadata. With ack 'spooled' an acknowledged instance may still wait
     * in the spool: the restarted gateway's reconciliation uploads it, so this waits for that.
     */
    async function checkAcknowledged(when: string): Promise<void> {
      const sent = [...acknowledged].map((p) => fileByPath.get(p)!);
      if (sent.length === 0) return;
      const uids = sent.map((f) => f.sopInstanceUid);
      type Row = {
        sop_instance_uid: string;
        object_key: string;
        sha256: string;
        size: string;
        state: string;
      };
      let rows: Row[] = [];
      await until(
        async () => {
          rows = await query<Row>(
            url.toString(),
            'SELECT sop_instance_uid, object_key, sha256, size, state FROM instances WHERE sop_instance_uid = ANY($1)',
            [uids],
          );
          return rows.length === uids.length && rows.every((r) => r.state === 'stored');
        },
        120_000,
        `${when}: the acknowledged instances to be stored`,
      ).catch(() => undefined); // what is still missing is listed below, one line each
      const byUid = new Map(rows.map((r) => [r.sop_instance_uid, r]));
      const problems: string[] = [];
      for (const f of sent) {
        const row = byUid.get(f.sopInstanceUid);
        if (!row || row.state !== 'stored') {
          problems.push(
            `${f.sopInstanceUid}: ${row ? `index state ${row.state}` : 'no index row'}`,
          );
          continue;
        }
        let c: StoredCheck;
        try {
          c = await checkStored(store, row.object_key, f.path);
        } catch (err) {
          problems.push(`${f.sopInstanceUid}: cannot read ${row.object_key}: ${String(err)}`);
          continue;
        }
        const { object, datasetEqual, shaMetadataOk } = c;
        if (
          !datasetEqual ||
          !shaMetadataOk ||
          object.length !== Number(row.size) ||
          sha256(object) !== row.sha256
        ) {
          problems.push(`${f.sopInstanceUid}: object ${row.object_key} differs from what was sent`);
        }
      }
      t.same(problems, [], `${when}: all ${sent.length} acknowledged instances stored and intact`);
    }

    for (let kill = 0; kill < KILLS; kill++) {
      const gw = await startGatewayProcess(config, join(dir, 'config.json'));
      await checkAcknowledged(`after restart ${kill}`);
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
      for (const resp of r.responses)
        if (isAcknowledgement(resp.status)) acknowledged.add(resp.file);
    }
    t.ok(acknowledged.size > 0, `${acknowledged.size} instances acknowledged before the kills`);

    // A last start: it reconciles the spool, and a final send completes the study.
    const gw = await startGatewayProcess(config, join(dir, 'config.json'));
    t.teardown(async () => {
      gw.child.kill('SIGTERM');
      await gw.exited;
    });
    await checkAcknowledged('after the last restart');
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
    if (s3) {
      const uploads = await s3.client.send(new ListMultipartUploadsCommand({ Bucket: bucket }));
      t.equal(uploads.Uploads?.length ?? 0, 0, 'no incomplete multipart upload remains');
    }
    const counts = await query<{ n: string }>(
      url.toString(),
      `SELECT sum(num_instances) AS n FROM studies`,
    );
    t.equal(Number(counts[0]!.n), files.length, 'study counters match the rows');
    if (!hasSpool) return;
    // Files cut short by a kill (received in place in ready/, or in incoming/) are gone.
    await until(
      async () => (await readdir(join(dir, 'spool', 'ready'))).length === 0,
      30_000,
      'the spool to empty',
    );
    t.same(await readdir(join(dir, 'spool', 'incoming')), [], 'nothing left in incoming/');
  });
}
