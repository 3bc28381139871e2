/**
 * S3Store: objects in a bucket of any S3-compatible server (AWS S3, Ceph RGW, ...).
 *
 * Every upload of a staged file is checked by the server against what ingest hashed, and
 * carries the sha256 as user metadata. A single PUT is signed with the file's sha256 as its
 * payload hash (x-amz-content-sha256), so a server that checks signed payloads (AWS, Ceph RGW,
 * MinIO; asked once, see serverChecksPayload) refuses bytes that differ, and the gateway
 * streams the file without reading it first. Otherwise, and for every part of a multipart
 * upload, the request carries Content-MD5, computed in one read that also checks the sha256.
 * Request bodies are file streams, which the SDK does not retry: putFile retries itself,
 * re-opening the file for each attempt.
 *
 * A request that timed out may still be applied by the server later (seen with RGW: a PUT
 * sent to a frozen server is stored once it resumes). Callers treat a failed putFile as
 * "unknown", not "absent"; with ifAbsent a retry then sees 412 and the existing object.
 */
import { createHash, randomUUID } from 'node:crypto';
import { stat } from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import type { Readable } from 'node:stream';
import {
  AbortMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import type { Logger } from 'pino';
import { GatewayError } from '../errors.js';
import { maskUrl } from '../secrets.js';
import {
  assertValidKey,
  assertValidListPrefix,
  normalizeMetadata,
  normalizePrefix,
} from './keys.js';
import { fileDigests } from './file-digests.js';
import type { ObjectInfo, ObjectStore, PutFileOptions, PutResult } from './object-store.js';
import { classifyS3Error, isRetryable, s3Error, sleepBackoff, stripEtag } from './s3-errors.js';
import { PART_CONCURRENCY, putMultipart, sendFileRange } from './s3-upload.js';
import type { UploadContext } from './s3-upload.js';

const MIB = 1024 * 1024;
/** A payload check probe that failed (server unreachable) is not sent again before this. */
const PROBE_RETRY_MS = 30_000;
/** S3's minimum size of every part but the last. */
const MIN_PART_SIZE = 5 * MIB;

export interface S3StoreOptions {
  endpoint?: string;
  region: string;
  bucket: string;
  /** Only for describe(): keys handed to the store are full keys. */
  prefix?: string;
  accessKeyId?: string;
  secretAccessKey?: string;
  forcePathStyle: boolean;
  /** Files larger than this go up as multipart uploads of parts this size. Default 8 MiB. */
  partSize?: number;
  /** Per request, from sending until the response headers; also the socket idle limit. Default 30 s. */
  requestTimeoutMs?: number;
  /** TCP connect limit. Default 5 s. */
  connectionTimeoutMs?: number;
  /** Attempts per request, first included (SDK retries, and putFile's own). Default 3. */
  maxAttempts?: number;
  /** Sockets to the endpoint (keep-alive pool). Default 32. */
  maxSockets?: number;
  logger?: Logger;
}

export class S3Store implements ObjectStore {
  readonly kind = 's3';
  /** The SDK client; exposed for tools and for tests that add middleware to inject faults. */
  readonly client: S3Client;
  readonly bucket: string;
  private readonly opts: S3StoreOptions;
  private readonly partSize: number;
  private readonly maxAttempts: number;
  private readonly log: Logger | undefined;
  private readonly uploadContext: UploadContext;
  /** Whether the server refuses a body that differs from its signed sha256, once known. */
  private payloadChecked: boolean | undefined;
  private payloadProbe: Promise<boolean> | undefined;

  constructor(opts: S3StoreOptions) {
    if (!opts.bucket) throw new GatewayError('GW_ERR_CONFIG', 'S3 bucket is not set');
    if (!opts.region) throw new GatewayError('GW_ERR_CONFIG', 'S3 region is not set');
    if (Boolean(opts.accessKeyId) !== Boolean(opts.secretAccessKey)) {
      throw new GatewayError('GW_ERR_CONFIG', 'set both S3 access key id and secret, or neither');
    }
    this.partSize = opts.partSize ?? 8 * MIB;
    if (!Number.isInteger(this.partSize) || this.partSize < MIN_PART_SIZE) {
      throw new GatewayError(
        'GW_ERR_CONFIG',
        `S3 part size must be an integer >= ${MIN_PART_SIZE}`,
      );
    }
    this.maxAttempts = Math.max(1, opts.maxAttempts ?? 3);
    this.opts = opts;
    this.bucket = opts.bucket;
    this.log = opts.logger?.child({ component: 's3-store' });
    const requestTimeout = opts.requestTimeoutMs ?? 30_000;
    const agentOptions = { keepAlive: true, maxSockets: opts.maxSockets ?? 32 };
    this.client = new S3Client({
      endpoint: opts.endpoint,
      region: opts.region,
      forcePathStyle: opts.forcePathStyle,
      credentials: opts.accessKeyId
        ? { accessKeyId: opts.accessKeyId, secretAccessKey: opts.secretAccessKey ?? '' }
        : undefined, // the SDK's default chain (env, profile, instance role)
      // The SDK's default (WHEN_SUPPORTED) adds CRC trailers that RGW 16 refuses for streamed
      // bodies (411); integrity comes from Content-MD5 and our own sha256 instead.
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      maxAttempts: this.maxAttempts,
      // Options, not an instance: the client builds its NodeHttpHandler from them, so we need
      // not import @smithy/node-http-handler (not a dependency of ours). Agents are instances
      // so that 100-continue requests also use the keep-alive pool.
      requestHandler: {
        requestTimeout,
        throwOnRequestTimeout: true,
        socketTimeout: requestTimeout,
        connectionTimeout: opts.connectionTimeoutMs ?? 5_000,
        httpAgent: new http.Agent(agentOptions),
        httpsAgent: new https.Agent(agentOptions),
      },
      logger: sdkLogger(this.log),
    });
    this.uploadContext = {
      client: this.client,
      bucket: this.bucket,
      partSize: this.partSize,
      maxAttempts: this.maxAttempts,
      log: this.log,
      head: (key) => this.head(key),
    };
  }

  describe(): string {
    const prefix = normalizePrefix(this.opts.prefix ?? '');
    const where = this.opts.endpoint ? maskUrl(this.opts.endpoint) : `AWS ${this.opts.region}`;
    return `s3://${this.bucket}/${prefix}${prefix ? '/' : ''} at ${where}`;
  }

  async putFile(key: string, path: string, opts: PutFileOptions): Promise<PutResult> {
    assertValidKey(key);
    // sha256 last: caller metadata cannot override the digest
    const metadata = { ...normalizeMetadata(opts.metadata), sha256: opts.sha256 };
    let size: number;
    try {
      size = (await stat(path)).size;
    } catch (err) {
      throw new GatewayError('GW_ERR_INTERNAL', `cannot use ${path} as upload source`, {
        cause: err,
      });
    }
    if (size !== opts.size) {
      throw new GatewayError(
        'GW_ERR_STORE_INTEGRITY',
        `${path} has ${size} bytes, expected ${opts.size}`,
      );
    }
    if (size > this.partSize) {
      return putMultipart(this.uploadContext, key, path, opts, metadata, contentTypeOf(key));
    }
    // The server checks the bytes against the signed sha256: no read before the upload. Else,
    // or while that is not known yet (asked by ping(), at start), Content-MD5 from a read that
    // also checks the sha256 here. Never waits for the question: a frozen server would make
    // the upload wait twice.
    if (this.payloadChecked === undefined) void this.serverChecksPayload();
    const checked = this.payloadChecked === true;
    const md5 = opts.md5 ?? (checked ? undefined : await checkedMd5(path, opts));
    let ambiguous = false; // an attempt failed in a way that may still have stored the object
    for (let attempt = 1; ; attempt++) {
      try {
        const out = await sendFileRange(path, 0, size, (Body, abortSignal) => {
          const put = new PutObjectCommand({
            Bucket: this.bucket,
            Key: key,
            Body,
            ContentLength: size,
            ContentMD5: md5,
            ContentType: contentTypeOf(key),
            Metadata: metadata,
            IfNoneMatch: opts.ifAbsent ? '*' : undefined,
          });
          if (checked) signPayloadAs(put, opts.sha256);
          return this.client.send(put, { abortSignal });
        });
        // Built from what we sent, not a HeadObject: saves a round trip per instance.
        const info: ObjectInfo = {
          key,
          size,
          sha256: opts.sha256,
          etag: stripEtag(out.ETag),
          versionId: out.VersionId,
          metadata,
        };
        return { created: true, info };
      } catch (err) {
        const kind = classifyS3Error(err);
        if (kind === 'precondition' && opts.ifAbsent) {
          const existing = await this.mustHead(key);
          // Our own earlier attempt may have landed after its timeout: same bytes, so ours.
          const ours = ambiguous && existing.sha256 === opts.sha256 && existing.size === size;
          return { created: ours, info: existing };
        }
        if (attempt >= this.maxAttempts || !isRetryable(err)) throw s3Error(`put ${key}`, err);
        ambiguous = true;
        this.log?.warn({ key, attempt, err: String(err) }, 'S3 put failed; retrying');
        await sleepBackoff(attempt);
      }
    }
  }

  async put(
    key: string,
    body: Readable | Buffer,
    opts: { metadata?: Record<string, string>; contentType?: string },
  ): Promise<ObjectInfo> {
    assertValidKey(key);
    const metadata = normalizeMetadata(opts.metadata ?? {});
    // A buffer's digest is known before sending; a stream's only after, too late for metadata.
    if (Buffer.isBuffer(body)) metadata.sha256 = createHash('sha256').update(body).digest('hex');
    await this.call(`put ${key}`, () =>
      new Upload({
        client: this.client,
        params: {
          Bucket: this.bucket,
          Key: key,
          Body: body,
          Metadata: metadata,
          ContentType: opts.contentType ?? contentTypeOf(key),
        },
        partSize: this.partSize,
        queueSize: PART_CONCURRENCY,
        leavePartsOnError: false,
      }).done(),
    );
    return this.mustHead(key);
  }

  async get(key: string): Promise<Readable> {
    assertValidKey(key);
    try {
      const out = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: key }));
      return out.Body as Readable;
    } catch (err) {
      if (classifyS3Error(err) === 'not-found') {
        throw new GatewayError('GW_ERR_STORE_INTEGRITY', `no object under ${key}`, { cause: err });
      }
      throw s3Error(`get ${key}`, err);
    }
  }

  async head(key: string): Promise<ObjectInfo | undefined> {
    assertValidKey(key);
    try {
      const h = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: key }));
      return {
        key,
        size: h.ContentLength ?? 0,
        sha256: h.Metadata?.sha256,
        etag: stripEtag(h.ETag),
        versionId: h.VersionId,
        lastModified: h.LastModified,
        metadata: { ...h.Metadata },
      };
    } catch (err) {
      if (classifyS3Error(err) === 'not-found') return undefined;
      throw s3Error(`head ${key}`, err);
    }
  }

  /** Keys in S3 order; entries carry key, size, etag, lastModified (metadata: use head). */
  async *list(prefix: string): AsyncIterable<ObjectInfo> {
    assertValidListPrefix(prefix);
    let token: string | undefined;
    do {
      const page = await this.call(`list ${prefix}`, () =>
        this.client.send(
          new ListObjectsV2Command({
            Bucket: this.bucket,
            Prefix: prefix,
            ContinuationToken: token,
          }),
        ),
      );
      for (const o of page.Contents ?? []) {
        if (!o.Key) continue;
        yield {
          key: o.Key,
          size: o.Size ?? 0,
          etag: stripEtag(o.ETag),
          lastModified: o.LastModified,
          metadata: {},
        };
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
  }

  async delete(key: string): Promise<void> {
    assertValidKey(key);
    try {
      await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: key }));
    } catch (err) {
      if (classifyS3Error(err) !== 'not-found') throw s3Error(`delete ${key}`, err);
    }
  }

  wantsMd5(): boolean {
    return this.payloadChecked !== true;
  }

  /** HeadBucket; the first success also asks whether the server checks signed payloads. */
  async ping(): Promise<void> {
    try {
      await this.client.send(new HeadBucketCommand({ Bucket: this.bucket }));
      await this.serverChecksPayload();
    } catch (err) {
      const e = s3Error(`ping bucket ${this.bucket}`, err);
      // a missing bucket or bad keys is not the integrity of an object: the store is unusable
      throw e.code === 'GW_ERR_STORE_UNAVAILABLE'
        ? e
        : new GatewayError('GW_ERR_STORE_UNAVAILABLE', e.message, { cause: err });
    }
  }

  /**
   * Aborts multipart uploads under `prefix` started before `olderThan`: those a crash or an
   * unreachable server kept putFile from aborting. Returns how many were aborted.
   */
  async abortIncompleteUploads(prefix: string, olderThan: Date): Promise<number> {
    let aborted = 0;
    let keyMarker: string | undefined;
    let uploadIdMarker: string | undefined;
    do {
      const page = await this.call('list multipart uploads', () =>
        this.client.send(
          new ListMultipartUploadsCommand({
            Bucket: this.bucket,
            Prefix: prefix,
            KeyMarker: keyMarker,
            UploadIdMarker: uploadIdMarker,
          }),
        ),
      );
      for (const u of page.Uploads ?? []) {
        if (u.Key && u.UploadId && u.Initiated && u.Initiated < olderThan) {
          await this.call(`abort ${u.Key}`, () =>
            this.client.send(
              new AbortMultipartUploadCommand({
                Bucket: this.bucket,
                Key: u.Key,
                UploadId: u.UploadId,
              }),
            ),
          ).catch((err: unknown) => {
            if (classifyS3Error((err as GatewayError).cause) !== 'not-found') throw err;
          });
          aborted++;
        }
      }
      keyMarker = page.IsTruncated ? page.NextKeyMarker : undefined;
      uploadIdMarker = page.IsTruncated ? page.NextUploadIdMarker : undefined;
    } while (keyMarker);
    return aborted;
  }

  async close(): Promise<void> {
    // destroys the keep-alive agents too
    this.client.destroy();
  }

  /**
   * Whether the server refuses a PUT whose body differs from the sha256 it was signed with
   * (x-amz-content-sha256), as SigV4 requires and AWS S3, Ceph RGW (16 tested) and MinIO do.
   * Asked once, by a PUT of a few bytes signed with the sha256 of other bytes: refused with
   * XAmzContentSHA256Mismatch (nothing stored) means yes. A server that stores it does not
   * check: the object is deleted and every upload carries Content-MD5 instead. When the
   * server cannot be asked (down), the answer is no for now and it is asked again at the next
   * ping or upload after PROBE_RETRY_MS.
   */
  async serverChecksPayload(): Promise<boolean> {
    if (this.payloadChecked !== undefined) return this.payloadChecked;
    this.payloadProbe ??= this.probePayloadCheck().then(
      (answer) => (this.payloadChecked = answer),
      (err: unknown) => {
        // Asked again after a while, not by every upload meanwhile.
        setTimeout(() => (this.payloadProbe = undefined), PROBE_RETRY_MS).unref();
        this.log?.debug({ err: String(err) }, 'payload check probe failed; asked again later');
        return false;
      },
    );
    return this.payloadProbe;
  }

  private async probePayloadCheck(): Promise<boolean> {
    const prefix = normalizePrefix(this.opts.prefix ?? '');
    const key = `${prefix}${prefix ? '/' : ''}.dicom-gateway-probe/${randomUUID()}`;
    const body = Buffer.from('dicom-gateway: does this server check signed payloads?\n');
    const put = new PutObjectCommand({
      Bucket: this.bucket,
      Key: key,
      Body: body,
      ContentLength: body.length,
      IfNoneMatch: '*',
    });
    signPayloadAs(put, createHash('sha256').update('not the body').digest('hex'));
    try {
      await this.client.send(put);
    } catch (err) {
      const kind = classifyS3Error(err);
      if (kind === 'integrity') {
        this.log?.info(
          { event: 's3.payload_checked' },
          'the S3 server checks signed payloads: uploads are sent without reading them first',
        );
        return true;
      }
      if (kind === 'transient') throw err;
      this.log?.warn(
        { event: 's3.payload_unknown', err: String(err) },
        'could not tell whether the S3 server checks signed payloads: uploads carry Content-MD5',
      );
      return false;
    }
    this.log?.warn(
      { event: 's3.payload_unchecked', key },
      'the S3 server stored a body that differed from its signed sha256: uploads carry Content-MD5 (one more read of each file)',
    );
    await this.delete(key).catch((err: unknown) =>
      this.log?.warn({ key, err: String(err) }, 'could not delete the payload check probe'),
    );
    return false;
  }

  private async mustHead(key: string): Promise<ObjectInfo> {
    const info = await this.head(key);
    if (!info) throw new GatewayError('GW_ERR_STORE_CONFLICT', `${key} vanished after put`);
    return info;
  }

  private async call<T>(what: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      throw s3Error(what, err);
    }
  }
}

function contentTypeOf(key: string): string | undefined {
  return key.endsWith('.dcm') ? 'application/dicom' : undefined;
}

/**
 * Only warnings reach pino, and the SDK's notice on every failed streaming request is
 * demoted (putFile retries those itself). Without info/error methods the SDK skips its
 * per-command log records, which would carry request inputs.
 */
function sdkLogger(log: Logger | undefined): S3Client['config']['logger'] {
  const warn = (...args: unknown[]): void => {
    const msg = args.map(String).join(' ');
    if (msg.includes('non-retryable streaming request')) log?.debug(msg);
    else log?.warn(msg);
  };
  const noop = (): void => undefined;
  return { debug: noop, warn } as unknown as S3Client['config']['logger'];
}

/**
 * Signs the request with `sha256` (hex) as its payload hash instead of UNSIGNED-PAYLOAD: the
 * SDK's signer takes an x-amz-content-sha256 header as given.
 */
function signPayloadAs(put: PutObjectCommand, sha256: string): void {
  put.middlewareStack.add(
    (next) => (args) => {
      const request = args.request as { headers?: Record<string, string> };
      if (request.headers) request.headers['x-amz-content-sha256'] = sha256;
      return next(args);
    },
    { step: 'build', name: 'gatewayPayloadSha256' },
  );
}

/** The file's MD5 (base64), read once; the same read checks it against opts.sha256 and size. */
async function checkedMd5(path: string, opts: PutFileOptions): Promise<string> {
  const found = await fileDigests(path);
  if (found.sha256 !== opts.sha256 || found.size !== opts.size) {
    throw new GatewayError('GW_ERR_STORE_INTEGRITY', `${path} does not match its sha256`);
  }
  return found.md5;
}
