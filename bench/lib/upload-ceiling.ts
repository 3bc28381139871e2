// The upload ceiling: a bare PutObject loop of the study's files against the same RGW, at a
// given concurrency, with nothing of the gateway around it (no hashing, no index, no spool).
// The gateway's drain rate is compared with it: what the uploader could reach at best.
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { createReadStream } from 'node:fs';
import http from 'node:http';
import type { GeneratedFile } from '../../test/helpers/gen-study.js';
import type { S3Target } from './rgw-pool.js';
import { median, round } from './util.js';

export interface CeilingResult {
  concurrency: number;
  instances: number;
  instPerSec: number;
  /** Median time of one PutObject at that concurrency. */
  putMs: number;
}

export async function measureUploadCeiling(o: {
  target: S3Target;
  files: GeneratedFile[];
  concurrency: number;
}): Promise<CeilingResult> {
  const s3 = new S3Client({
    endpoint: o.target.endpoint,
    region: o.target.region,
    credentials: { accessKeyId: o.target.accessKeyId, secretAccessKey: o.target.secretAccessKey },
    forcePathStyle: true,
    // As the gateway's S3Store: RGW refuses the SDK's default CRC trailers on streamed bodies.
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    // Keep-alive sockets for every worker, as the gateway's store has.
    requestHandler: { httpAgent: new http.Agent({ keepAlive: true, maxSockets: 32 }) },
  });
  const times: number[] = [];
  let next = 0;
  const worker = async (): Promise<void> => {
    for (let i = next++; i < o.files.length; i = next++) {
      const f = o.files[i]!;
      const t = process.hrtime.bigint();
      await s3.send(
        new PutObjectCommand({
          Bucket: o.target.bucket,
          Key: `ceiling/${o.concurrency}/${i}.dcm`,
          Body: createReadStream(f.path),
          ContentLength: f.bytes,
          ContentType: 'application/dicom',
        }),
      );
      times.push(Number(process.hrtime.bigint() - t) / 1e6);
    }
  };
  try {
    const t0 = process.hrtime.bigint();
    await Promise.all(Array.from({ length: o.concurrency }, worker));
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    return {
      concurrency: o.concurrency,
      instances: o.files.length,
      instPerSec: round(o.files.length / (ms / 1000), 1),
      putMs: round(median(times), 2),
    };
  } finally {
    s3.destroy();
  }
}
