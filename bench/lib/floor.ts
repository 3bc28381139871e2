// The latency floor of one association in `ack: stored` mode: each C-STORE waits for an S3 PUT
// and an index commit, so one association cannot beat 1 / (PUT + commit). Measured here, in the
// same run and against the same RGW and PostgreSQL, one request at a time.
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { pino } from 'pino';
import { pgIndex } from '../../src/index/open.js';
import type { InstanceRecord } from '../../src/index/instance-index.js';
import { Spool } from '../../src/ingest/spool.js';
import { StagingFile } from '../../src/ingest/staging-file.js';
import { S3Store } from '../../src/store/s3-store.js';
import type { GeneratedFile } from '../../test/helpers/gen-study.js';
import type { BenchPostgres } from './postgres.js';
import type { S3Target } from './rgw-pool.js';
import { median, round } from './util.js';

export interface FloorResult {
  samples: number;
  /** Medians, ms. */
  putMs: number;
  recordMs: number;
  /** The rest of the real `ack: stored` path, for reference: lookup, pending insert, markStored. */
  findMs: number;
  recordPendingMs: number;
  markStoredMs: number;
  /** 1000 / (putMs + recordMs): the floor for one association, inst/s. */
  floorInstPerSec: number;
  /** 1000 / (find + record pending + put + markStored): what the stored path actually chains. */
  pathFloorInstPerSec: number;
  /**
   * The local durability floor of `ack: spooled`: create a file in the spool's ready/, write
   * 0.5 MB, fsync it and the directory (what the ingest path does for an instance received
   * in place), median ms, on the file system of the spool.
   */
  durableWriteMs: number;
  durableFloorInstPerSec: number;
  /**
   * What `ack: spooled` promises before answering: the same durable write with the instance's
   * index row committed side by side (started when the last byte is written, as the gateway
   * starts it). Both flush the same disk, so this is more than either alone.
   */
  durableIndexedMs: number;
  /**
   * The same with four instances at a time (four associations), inst/s of all four: what the
   * disk allows ack spooled with four associations, with nothing received or parsed.
   */
  durableIndexed4InstPerSec: number;
}

/**
 * Create + write + fsync of `bytes` + fsync of the directory, timed through the ingest path's
 * own code: Spool.beginReceiving claims ready/<uid>.dcm, StagingFile creates, writes and fsyncs
 * it, the directory fsync starts once it exists (as the Receiver does), Spool.admit waits for
 * both; `alongside` (the index row) starts once the bytes are written, as in the gateway. Here
 * the whole data set is written at once, so nothing hides the directory fsync behind the
 * receipt as the gateway does: an upper bound. `workers` run at once on the one spool (as
 * associations do); after 5 warm-up rounds each, the median time of one instance and the
 * instances per second of all workers together.
 */
async function durableRun(
  dir: string,
  bytes: Buffer,
  o: { samples: number; workers: number; alongside?: () => Promise<unknown> },
): Promise<{ ms: number; instPerSec: number }> {
  const spool = new Spool(dir, Number.MAX_SAFE_INTEGER, pino({ level: 'silent' }));
  await spool.open();
  const times: number[] = [];
  let n = 0;
  const one = async (): Promise<number> => {
    const uid = `1.2.${n++}`;
    const path = spool.beginReceiving(uid)!;
    let file: StagingFile | undefined;
    const t = await timed(async () => {
      const f = (file = new StagingFile(path)); // creates the file: timed
      const dirSynced = f.opened().then(() => spool.syncReadyDir());
      await f.write(bytes);
      await Promise.all([
        f.sync().then(() => spool.admit(path, uid, bytes.length, true, dirSynced)),
        o.alongside?.(),
      ]);
    });
    await file!.close();
    spool.endReceiving(uid, true);
    return t;
  };
  const worker = async (rounds: number, keep: boolean): Promise<void> => {
    for (let i = 0; i < rounds; i++) {
      const t = await one();
      if (keep) times.push(t);
    }
  };
  const all = (rounds: number, keep: boolean): Promise<void[]> =>
    Promise.all(Array.from({ length: o.workers }, () => worker(rounds, keep)));
  await all(5, false);
  const wall = await timed(() => all(o.samples, true));
  return { ms: median(times), instPerSec: (o.workers * o.samples * 1000) / wall };
}

async function timed<T>(fn: () => Promise<T>): Promise<number> {
  const t0 = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - t0) / 1e6;
}

export async function measureFloor(o: {
  target: S3Target;
  pg: BenchPostgres;
  dbName: string;
  file: GeneratedFile;
  samples: number;
  root: string;
}): Promise<FloorResult> {
  const staging = await mkdtemp(join(o.root, 'floor-'));
  const store = new S3Store({
    endpoint: o.target.endpoint,
    region: o.target.region,
    bucket: o.target.bucket,
    accessKeyId: o.target.accessKeyId,
    secretAccessKey: o.target.secretAccessKey,
    forcePathStyle: true,
  });
  const url = await o.pg.createDatabase(o.dbName);
  const index = pgIndex({ connectionString: url });
  try {
    await index.migrate();
    const bytes = await readFile(o.file.path);
    const sha256 = createHash('sha256').update(bytes).digest('hex');
    const md5 = createHash('md5').update(bytes).digest('base64');
    const f = o.file;
    const rec = (i: number, state: InstanceRecord['state']): InstanceRecord => {
      const uid = `${f.sopInstanceUid}.${state === 'stored' ? 1 : 2}${i}`;
      return {
        attributes: {
          studyInstanceUid: f.studyUid,
          seriesInstanceUid: f.seriesUid,
          sopInstanceUid: uid,
          sopClassUid: f.sopClassUid,
          patientId: f.patientId,
          patientName: f.patientName,
          accessionNumber: f.accessionNumber,
          studyDate: f.studyDate,
          modality: f.modality,
          seriesNumber: f.seriesNumber,
          instanceNumber: i + 1,
          rows: 512,
          columns: 512,
        },
        transferSyntaxUid: f.transferSyntaxUid,
        storeName: `s3:${o.target.bucket}`,
        objectKey: `studies/${f.studyUid}/series/${f.seriesUid}/instances/${uid}.dcm`,
        size: bytes.length,
        sha256,
        callingAeTitle: 'BENCHSCU',
        calledAeTitle: 'DICOMGW',
        sourceAddress: '127.0.0.1',
        receivedAt: new Date(),
        state,
        pendingOwner: state === 'pending-upload' ? 'bench:floor' : undefined,
      };
    };
    const warm = 5;
    const put: number[] = [];
    const record: number[] = [];
    const find: number[] = [];
    const recordPending: number[] = [];
    const mark: number[] = [];
    for (let i = 0; i < warm + o.samples; i++) {
      const keep = i >= warm;
      const p = await timed(() =>
        store.putFile(`floor/${i}.dcm`, f.path, {
          size: bytes.length,
          sha256,
          md5,
          metadata: { 'transfer-syntax': f.transferSyntaxUid },
          ifAbsent: true,
        }),
      );
      const r = await timed(() => index.recordInstance(rec(i, 'stored')));
      const pendingRec = rec(i, 'pending-upload');
      const fi = await timed(() => index.findInstance(pendingRec.attributes.sopInstanceUid));
      const rp = await timed(() => index.recordInstance(pendingRec));
      const m = await timed(() => index.markStored(pendingRec.attributes.sopInstanceUid));
      if (keep) {
        put.push(p);
        record.push(r);
        find.push(fi);
        recordPending.push(rp);
        mark.push(m);
      }
    }
    const [putMs, recordMs, findMs, recordPendingMs, markStoredMs] = [
      put,
      record,
      find,
      recordPending,
      mark,
    ].map((xs) => round(median(xs), 2)) as [number, number, number, number, number];
    const alone = await durableRun(staging, bytes, { samples: o.samples, workers: 1 });
    let pendingRows = 1000;
    const indexed = (workers: number): Promise<{ ms: number; instPerSec: number }> =>
      durableRun(join(staging, `indexed-${workers}`), bytes, {
        samples: o.samples,
        workers,
        alongside: () =>
          index.recordInstance(rec(pendingRows++, 'pending-upload'), { flush: false }),
      });
    const indexed1 = await indexed(1);
    const indexed4 = await indexed(4);
    const durableWriteMs = round(alone.ms, 2);
    return {
      samples: o.samples,
      putMs,
      recordMs,
      findMs,
      recordPendingMs,
      markStoredMs,
      floorInstPerSec: round(1000 / (putMs + recordMs), 1),
      pathFloorInstPerSec: round(1000 / (findMs + recordPendingMs + putMs + markStoredMs), 1),
      durableWriteMs,
      durableFloorInstPerSec: round(1000 / durableWriteMs, 1),
      durableIndexedMs: round(indexed1.ms, 2),
      durableIndexed4InstPerSec: round(indexed4.instPerSec, 1),
    };
  } finally {
    await index.close().catch(() => undefined);
    await store.close().catch(() => undefined);
    await o.pg.dropDatabase(o.dbName).catch(() => undefined);
    await rm(staging, { recursive: true, force: true });
  }
}
