/**
 * Uploading a staged file to S3: file-range request bodies and multipart uploads with a
 * Content-MD5 per part. Used by S3Store.putFile; kept apart to keep s3-store.ts readable.
 */
import { createHash } from 'node:crypto';
import { open } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import type { S3Client } from '@aws-sdk/client-s3';
import type { Logger } from 'pino';
import { GatewayError } from '../errors.js';
import type { ObjectInfo, PutFileOptions, PutResult } from './object-store.js';
import { classifyS3Error, isRetryable, s3Error, sleepBackoff } from './s3-errors.js';

const MIB = 1024 * 1024;
/** S3 allows at most this many parts per upload. */
const MAX_PARTS = 10_000;
/** Parts of one multipart upload in flight at once. */
export const PART_CONCURRENCY = 4;

/** What the upload helpers need from S3Store. */
export interface UploadContext {
  client: S3Client;
  bucket: string;
  partSize: number;
  maxAttempts: number;
  log: Logger | undefined;
  head(key: string): Promise<ObjectInfo | undefined>;
}

export interface SendOutput {
  ETag?: string;
  VersionId?: string;
}

/**
 * Sends one request whose body is `length` bytes of the file from `start`: one attempt.
 * The SDK cannot retry a stream body; callers retry by calling again (the file is re-read).
 */
export async function sendFileRange(
  path: string,
  start: number,
  length: number,
  send: (body: Readable | Buffer, abortSignal: AbortSignal) => Promise<SendOutput>,
): Promise<SendOutput> {
  const fh = await open(path, 'r');
  const body =
    length === 0
      ? undefined
      : fh.createReadStream({
          start,
          end: start + length - 1,
          autoClose: false,
          // One read and one socket write per MiB instead of per 64 KiB (each read is a trip
          // through libuv's pool; a 0.5 MB instance was 8 of each).
          highWaterMark: Math.min(length, MIB),
        });
  // A read error would otherwise leave the request waiting for bytes until its timeout.
  const abort = new AbortController();
  let readError: unknown;
  body?.once('error', (err) => {
    readError = err;
    abort.abort();
  });
  try {
    return await send(body ?? Buffer.alloc(0), abort.signal);
  } catch (err) {
    if (readError) {
      throw new GatewayError('GW_ERR_INTERNAL', `cannot read ${path}`, { cause: readError });
    }
    throw err;
  } finally {
    body?.destroy();
    await fh.close();
  }
}

/**
 * Multipart upload of a staged file. One read of the file computes every part's MD5 and
 * checks the whole file against opts.md5/sha256 (the server cannot: it only sees parts).
 *
 * ifAbsent: RGW 16 ignores If-None-Match on CompleteMultipartUpload (tested: it overwrote an
 * object created meanwhile), so the key is checked before starting and again just before
 * completing. A put of the same key by someone else between that last check and the
 * completion is overwritten: an accepted race (same SOP Instance UID from two senders within
 * milliseconds). Servers that honour If-None-Match (AWS) close it: we send it anyway.
 */
export async function putMultipart(
  ctx: UploadContext,
  key: string,
  path: string,
  opts: PutFileOptions,
  metadata: Record<string, string>,
  contentType: string | undefined,
): Promise<PutResult> {
  const partSize = Math.max(ctx.partSize, Math.ceil(opts.size / MAX_PARTS));
  const partMd5s = await digestParts(path, opts, partSize);
  if (opts.ifAbsent) {
    const existing = await ctx.head(key);
    if (existing) return { created: false, info: existing };
  }
  let uploadId: string | undefined;
  let completed = false;
  try {
    const created = await ctx.client
      .send(
        new CreateMultipartUploadCommand({
          Bucket: ctx.bucket,
          Key: key,
          ContentType: contentType,
          Metadata: metadata,
        }),
      )
      .catch((err: unknown) => {
        throw s3Error(`create multipart upload ${key}`, err);
      });
    uploadId = created.UploadId;
    if (!uploadId) throw new GatewayError('GW_ERR_STORE_UNAVAILABLE', `no UploadId for ${key}`);
    const etags = await uploadParts(ctx, key, path, opts.size, partSize, partMd5s, uploadId);
    if (opts.ifAbsent) {
      const existing = await ctx.head(key);
      if (existing) return { created: false, info: existing };
    }
    try {
      await ctx.client.send(
        new CompleteMultipartUploadCommand({
          Bucket: ctx.bucket,
          Key: key,
          UploadId: uploadId,
          MultipartUpload: { Parts: etags.map((ETag, i) => ({ ETag, PartNumber: i + 1 })) },
          IfNoneMatch: opts.ifAbsent ? '*' : undefined,
        }),
      );
      completed = true;
    } catch (err) {
      if (classifyS3Error(err) === 'precondition' && opts.ifAbsent) {
        return { created: false, info: await mustHead(ctx, key) };
      }
      // The SDK retries Complete; when an earlier try did land, the retry gets NoSuchUpload.
      const now = await ctx.head(key).catch(() => undefined);
      if (!(now && now.sha256 === opts.sha256 && now.size === opts.size)) {
        throw s3Error(`complete multipart upload ${key}`, err);
      }
      completed = true;
    }
    // RGW 16 answers Complete with an empty ETag: HeadObject has the real one.
    return { created: true, info: await mustHead(ctx, key) };
  } finally {
    if (uploadId && !completed) await abortUpload(ctx, key, uploadId);
  }
}

async function uploadParts(
  ctx: UploadContext,
  key: string,
  path: string,
  size: number,
  partSize: number,
  md5s: string[],
  uploadId: string,
): Promise<string[]> {
  const etags: string[] = new Array<string>(md5s.length);
  let next = 0;
  let failed = false;
  const uploadPart = async (i: number): Promise<void> => {
    const start = i * partSize;
    const length = Math.min(partSize, size - start);
    for (let attempt = 1; ; attempt++) {
      try {
        const out = await sendFileRange(path, start, length, (Body, abortSignal) =>
          ctx.client.send(
            new UploadPartCommand({
              Bucket: ctx.bucket,
              Key: key,
              UploadId: uploadId,
              PartNumber: i + 1,
              Body,
              ContentLength: length,
              ContentMD5: md5s[i],
            }),
            { abortSignal },
          ),
        );
        if (!out.ETag) throw new GatewayError('GW_ERR_STORE_UNAVAILABLE', 'part without ETag');
        etags[i] = out.ETag;
        return;
      } catch (err) {
        if (failed || attempt >= ctx.maxAttempts || !isRetryable(err)) {
          throw s3Error(`upload part ${i + 1} of ${key}`, err);
        }
        ctx.log?.warn({ key, part: i + 1, attempt, err: String(err) }, 'S3 part failed; retrying');
        await sleepBackoff(attempt);
      }
    }
  };
  const worker = async (): Promise<void> => {
    while (!failed && next < md5s.length) {
      try {
        await uploadPart(next++);
      } catch (err) {
        failed = true; // the other workers take no new part
        throw err;
      }
    }
  };
  // allSettled: no part may still be in flight when the caller aborts the upload
  const results = await Promise.allSettled(
    Array.from({ length: Math.min(PART_CONCURRENCY, md5s.length) }, worker),
  );
  const rejected = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (rejected) throw rejected.reason;
  return etags;
}

async function abortUpload(ctx: UploadContext, key: string, uploadId: string): Promise<void> {
  try {
    await ctx.client.send(
      new AbortMultipartUploadCommand({ Bucket: ctx.bucket, Key: key, UploadId: uploadId }),
    );
  } catch (err) {
    if (classifyS3Error(err) === 'not-found') return; // already gone
    // Left for S3Store.abortIncompleteUploads() or a bucket lifecycle rule.
    ctx.log?.warn({ key, uploadId, err: String(err) }, 'could not abort multipart upload');
  }
}

async function mustHead(ctx: UploadContext, key: string): Promise<ObjectInfo> {
  const info = await ctx.head(key);
  if (!info) throw new GatewayError('GW_ERR_STORE_CONFLICT', `${key} vanished after put`);
  return info;
}

/** One sequential read: each part's MD5 (base64); the whole file checked against opts. */
async function digestParts(
  path: string,
  opts: PutFileOptions,
  partSize: number,
): Promise<string[]> {
  // A whole-file MD5 only to check a given one; without it (see PutFileOptions) the sha256
  // alone proves the bytes, and the parts' MD5s are all Content-MD5 needs.
  const whole = opts.md5 === undefined ? undefined : createHash('md5');
  const sha = createHash('sha256');
  const parts: string[] = [];
  const fh = await open(path, 'r');
  try {
    const buf = Buffer.allocUnsafe(Math.min(partSize, MIB));
    for (let start = 0; start < opts.size; start += partSize) {
      const part = createHash('md5');
      const end = Math.min(start + partSize, opts.size);
      for (let pos = start; pos < end;) {
        const { bytesRead } = await fh.read(buf, 0, Math.min(buf.length, end - pos), pos);
        if (bytesRead === 0) throw new GatewayError('GW_ERR_STORE_INTEGRITY', `${path} shrank`);
        const chunk = buf.subarray(0, bytesRead);
        part.update(chunk);
        whole?.update(chunk);
        sha.update(chunk);
        pos += bytesRead;
      }
      parts.push(part.digest('base64'));
    }
  } finally {
    await fh.close();
  }
  const md5Ok = !whole || whole.digest('base64') === opts.md5;
  if (!md5Ok || sha.digest('hex') !== opts.sha256) {
    throw new GatewayError('GW_ERR_STORE_INTEGRITY', `${path} does not match its md5/sha256`);
  }
  return parts;
}
