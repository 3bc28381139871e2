/**
 * MemoryStore: objects in a Map, for unit tests only (nothing survives the process).
 * It behaves like S3Store where tests can tell: the file's size must match, a wrong
 * Content-MD5 is refused (GW_ERR_STORE_INTEGRITY), ifAbsent keeps the first object, keys and
 * metadata follow the same rules. `failNext` lets a test make the next calls fail.
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { GatewayError } from '../errors.js';
import { assertValidKey, assertValidListPrefix, normalizeMetadata } from './keys.js';
import type { ObjectInfo, ObjectStore, PutFileOptions, PutResult } from './object-store.js';

type Operation = 'putFile' | 'put' | 'get' | 'head' | 'list' | 'delete' | 'ping';

interface Entry {
  data: Buffer;
  info: ObjectInfo;
}

export class MemoryStore implements ObjectStore {
  readonly kind = 'memory';
  private readonly objects = new Map<string, Entry>();
  private staging: string | undefined;
  private readonly faults: { op: Operation | '*'; error: Error }[] = [];

  describe(): string {
    return 'memory';
  }

  /** A temp dir under os.tmpdir(), made on first use and removed by close(). */
  stagingDir(): string {
    this.staging ??= mkdtempSync(path.join(os.tmpdir(), 'dicom-gw-memstore-'));
    return this.staging;
  }

  /**
   * Makes the next call of `op` (any op for '*') throw `error` instead of running; queued
   * faults are used once each, in order. Default error: GW_ERR_STORE_UNAVAILABLE.
   */
  failNext(op: Operation | '*', error?: Error): void {
    this.faults.push({
      op,
      error: error ?? new GatewayError('GW_ERR_STORE_UNAVAILABLE', `injected ${op} failure`),
    });
  }

  /** Number of objects held (tests). */
  get size(): number {
    return this.objects.size;
  }

  async putFile(key: string, src: string, opts: PutFileOptions): Promise<PutResult> {
    this.fault('putFile');
    assertValidKey(key);
    const metadata = { ...normalizeMetadata(opts.metadata), sha256: opts.sha256 };
    let data: Buffer;
    try {
      data = await readFile(src);
    } catch (err) {
      throw new GatewayError('GW_ERR_INTERNAL', `cannot read ${src}`, { cause: err });
    }
    if (data.length !== opts.size) {
      throw new GatewayError(
        'GW_ERR_STORE_INTEGRITY',
        `${src} has ${data.length} bytes, expected ${opts.size}`,
      );
    }
    const md5 = createHash('md5').update(data);
    if (opts.md5 === undefined) {
      // S3Store's own read without a given MD5 (see PutFileOptions)
      if (createHash('sha256').update(data).digest('hex') !== opts.sha256) {
        throw new GatewayError('GW_ERR_STORE_INTEGRITY', `${src} does not match its sha256`);
      }
    } else if (md5.copy().digest('base64') !== opts.md5) {
      // what S3 answers with 400 BadDigest
      throw new GatewayError('GW_ERR_STORE_INTEGRITY', `Content-MD5 mismatch for ${key}`);
    }
    const existing = this.objects.get(key);
    if (opts.ifAbsent && existing) return { created: false, info: cloneInfo(existing.info) };
    const info: ObjectInfo = {
      key,
      size: data.length,
      sha256: opts.sha256,
      etag: md5.digest('hex'),
      lastModified: new Date(),
      metadata,
    };
    this.objects.set(key, { data, info });
    return { created: true, info: cloneInfo(info) };
  }

  async put(
    key: string,
    body: Readable | Buffer,
    opts: { metadata?: Record<string, string>; contentType?: string },
  ): Promise<ObjectInfo> {
    this.fault('put');
    assertValidKey(key);
    const metadata = normalizeMetadata(opts.metadata ?? {});
    let data: Buffer;
    if (Buffer.isBuffer(body)) {
      data = Buffer.from(body);
    } else {
      const chunks: Buffer[] = [];
      for await (const c of body) chunks.push(Buffer.isBuffer(c) ? c : Buffer.from(c as string));
      data = Buffer.concat(chunks);
    }
    const sha256 = createHash('sha256').update(data).digest('hex');
    if (opts.contentType) metadata['content-type'] = opts.contentType;
    const info: ObjectInfo = {
      key,
      size: data.length,
      sha256,
      etag: createHash('md5').update(data).digest('hex'),
      lastModified: new Date(),
      metadata: { ...metadata, sha256 },
    };
    this.objects.set(key, { data, info });
    return cloneInfo(info);
  }

  async get(key: string): Promise<Readable> {
    this.fault('get');
    assertValidKey(key);
    const e = this.objects.get(key);
    if (!e) throw new GatewayError('GW_ERR_STORE_INTEGRITY', `no object under ${key}`);
    return Readable.from([e.data]);
  }

  async head(key: string): Promise<ObjectInfo | undefined> {
    this.fault('head');
    assertValidKey(key);
    const e = this.objects.get(key);
    return e ? cloneInfo(e.info) : undefined;
  }

  /** Sorted by key like S3; entries without metadata like an S3 listing. */
  async *list(prefix: string): AsyncIterable<ObjectInfo> {
    this.fault('list');
    assertValidListPrefix(prefix);
    const keys = [...this.objects.keys()].filter((k) => k.startsWith(prefix)).sort();
    for (const k of keys) {
      const e = this.objects.get(k);
      if (!e) continue; // deleted while iterating
      yield {
        key: k,
        size: e.info.size,
        etag: e.info.etag,
        lastModified: e.info.lastModified,
        metadata: {},
      };
    }
  }

  async delete(key: string): Promise<void> {
    this.fault('delete');
    assertValidKey(key);
    this.objects.delete(key);
  }

  /** putFile checks a given Content-MD5 as S3 does, and reads the file for it when absent. */
  wantsMd5(): boolean {
    return true;
  }

  async ping(): Promise<void> {
    this.fault('ping');
  }

  async close(): Promise<void> {
    if (this.staging) rmSync(this.staging, { recursive: true, force: true });
    this.staging = undefined;
  }

  private fault(op: Operation): void {
    const i = this.faults.findIndex((f) => f.op === op || f.op === '*');
    if (i < 0) return;
    const [f] = this.faults.splice(i, 1);
    if (f) throw f.error;
  }
}

function cloneInfo(info: ObjectInfo): ObjectInfo {
  return { ...info, metadata: { ...info.metadata } };
}
