import { createHash, type Hash } from 'node:crypto';
import { createWriteStream, type WriteStream } from 'node:fs';
import { unlink } from 'node:fs/promises';
import type { Logger } from 'pino';
import { extractAttributes } from '../dicom/attributes.js';
import { buildPart10Header } from '../dicom/file-meta.js';
import { DatasetReader } from '../dicom/header-reader.js';
import { DimseStatus, GatewayError, isGatewayError, toDimseStatus } from '../errors.js';
import type { InstanceAttributes, InstanceRecord } from '../index/instance-index.js';
import type { AssociationInfo, InstanceSink, StoreRequest } from '../scp/association.js';
import { instanceKey } from '../store/keys.js';
import type { IngestOptions, IngestStats } from './ingest.js';

export interface InstanceWriterOptions extends IngestOptions {
  assoc: AssociationInfo;
  req: StoreRequest;
  log: Logger;
  stagingPath: string;
  stats: IngestStats;
}

/**
 * Receives one C-STORE data set. While bytes arrive it writes preamble + File Meta
 * + the data set bytes unchanged to a staging file, hashes them (sha256 always,
 * MD5 for S3's Content-MD5) and feeds the header reader; nothing but stream
 * buffers is held in memory, whatever the instance's size. On finish() the file
 * goes to the store and the row to the index, and only then is success answered.
 */
export class InstanceWriter implements InstanceSink {
  private readonly file: WriteStream;
  private readonly sha256: Hash = createHash('sha256');
  private readonly md5: Hash | undefined;
  private readonly reader: DatasetReader;
  private size = 0;
  private datasetBytes = 0;
  /** First error seen while receiving; later bytes are read and dropped. */
  private failure: GatewayError | undefined;
  private fileError: Error | undefined;
  private readonly started = process.hrtime.bigint();

  constructor(private readonly o: InstanceWriterOptions) {
    // Content-MD5 is for stores that verify uploads (S3, and MemoryStore which mimics it);
    // FsStore links the staged file itself, so hashing it twice would be wasted CPU.
    this.md5 = o.store.kind === 'fs' ? undefined : createHash('md5');
    this.reader = new DatasetReader({ transferSyntaxUid: o.req.transferSyntaxUid });
    this.file = createWriteStream(o.stagingPath, { flags: 'wx', highWaterMark: 1024 * 1024 });
    this.file.on('error', (err) => {
      this.fileError = err;
    });
    let header: Buffer;
    try {
      // PS3.10 7.1: File Meta from the C-STORE request and the negotiated transfer syntax.
      header = buildPart10Header({
        mediaStorageSopClassUid: o.req.sopClassUid,
        mediaStorageSopInstanceUid: o.req.sopInstanceUid,
        transferSyntaxUid: o.req.transferSyntaxUid,
        implementationClassUid: o.implementationClassUid,
        implementationVersionName: o.implementationVersionName,
        sourceApplicationEntityTitle: o.assoc.callingAeTitle || undefined,
      });
    } catch (err) {
      this.failure = asGatewayError(err, 'GW_ERR_DATASET_MALFORMED');
      return;
    }
    this.append(header);
  }

  write(chunk: Buffer): Promise<void> | undefined {
    if (this.failure) return undefined;
    this.datasetBytes += chunk.length;
    if (this.datasetBytes > this.o.maxInstanceBytes) {
      this.failure = new GatewayError(
        'GW_ERR_DATASET_TOO_LARGE',
        `data set exceeds the limit of ${this.o.maxInstanceBytes} bytes`,
      );
      return undefined;
    }
    try {
      this.reader.push(chunk);
    } catch (err) {
      this.failure = asGatewayError(err, 'GW_ERR_DATASET_MALFORMED');
      return undefined;
    }
    return this.append(chunk);
  }

  private append(chunk: Buffer): Promise<void> | undefined {
    this.sha256.update(chunk);
    this.md5?.update(chunk);
    this.size += chunk.length;
    if (this.file.write(chunk)) return undefined;
    return new Promise((resolve) => {
      const done = (): void => {
        this.file.off('drain', done);
        this.file.off('error', done);
        resolve();
      };
      this.file.on('drain', done);
      this.file.on('error', done);
    });
  }

  async finish(): Promise<{ status: number; errorComment?: string }> {
    const { req, log } = this.o;
    try {
      await this.closeFile();
      if (this.failure) throw this.failure;
      if (this.fileError) {
        throw new GatewayError(
          'GW_ERR_STORE_UNAVAILABLE',
          `staging file: ${this.fileError.message}`,
          {
            cause: this.fileError,
          },
        );
      }
      this.reader.end();
      const attrs = extractAttributes(this.reader);
      checkMatchesRequest(attrs, req);
      const status = await this.commit(attrs);
      return { status };
    } catch (err) {
      const e = asGatewayError(err, 'GW_ERR_INTERNAL');
      this.o.stats.failed++;
      const status = toDimseStatus(e);
      log.warn(
        {
          event: 'instance.failed',
          sopInstanceUid: req.sopInstanceUid,
          sopClassUid: req.sopClassUid,
          code: e.code,
          status: '0x' + status.toString(16).padStart(4, '0'),
          bytes: this.datasetBytes,
          err: e.message,
          cause: e.cause instanceof Error ? e.cause.message : undefined,
        },
        `instance not stored: ${e.message}`,
      );
      return { status, errorComment: e.message };
    } finally {
      await unlink(this.o.stagingPath).catch(() => {});
    }
  }

  async abort(_reason: string): Promise<void> {
    this.file.destroy();
    await unlink(this.o.stagingPath).catch(() => {});
  }

  private closeFile(): Promise<void> {
    return new Promise((resolve) => {
      if (this.file.closed) return resolve();
      this.file.end(() => resolve());
      this.file.once('error', () => resolve());
    });
  }

  /** Store, then index; answers success only once both are done. */
  private async commit(attrs: InstanceAttributes): Promise<number> {
    const { store, index, assoc, req, log, stats } = this.o;
    const sha256 = this.sha256.digest('hex');
    const md5 = this.md5?.digest('base64') ?? '';
    const rec: InstanceRecord = {
      attributes: attrs,
      transferSyntaxUid: req.transferSyntaxUid,
      storeName: this.o.storeName,
      objectKey: instanceKey(
        this.o.prefix,
        attrs.studyInstanceUid,
        attrs.seriesInstanceUid,
        attrs.sopInstanceUid,
      ),
      size: this.size,
      sha256,
      callingAeTitle: assoc.callingAeTitle,
      calledAeTitle: assoc.calledAeTitle,
      sourceAddress: assoc.remoteAddress,
      receivedAt: new Date(),
      state: 'stored',
    };
    const logFields = {
      sopInstanceUid: attrs.sopInstanceUid,
      seriesInstanceUid: attrs.seriesInstanceUid,
      studyInstanceUid: attrs.studyInstanceUid,
      sopClassUid: attrs.sopClassUid,
      transferSyntaxUid: req.transferSyntaxUid,
      bytes: this.size,
    };

    const t0 = this.elapsedMs();
    // A known SOP Instance UID is never uploaded again: the index decides.
    const existing = await index.findInstance(attrs.sopInstanceUid);
    if (existing) return this.duplicate(rec, logFields);

    const put = await store.putFile(rec.objectKey, this.o.stagingPath, {
      size: this.size,
      sha256,
      md5,
      metadata: {
        'transfer-syntax': req.transferSyntaxUid,
        'sop-class': attrs.sopClassUid,
        'calling-ae': asciiOnly(assoc.callingAeTitle),
        'received-at': rec.receivedAt.toISOString(),
      },
      ifAbsent: true,
    });
    if (!put.created && put.info.sha256 !== sha256) {
      // An object without an index row was never acknowledged (the answer follows the
      // index commit), so it is a leftover of a failed attempt: replace it.
      log.warn(
        {
          event: 'instance.unindexed_object_replaced',
          key: rec.objectKey,
          oldSha256: put.info.sha256,
        },
        'replacing an unindexed object left by an earlier failed attempt',
      );
      await store.putFile(rec.objectKey, this.o.stagingPath, {
        size: this.size,
        sha256,
        md5,
        metadata: put.info.metadata,
        ifAbsent: false,
      });
    }

    const t1 = this.elapsedMs();
    let outcome;
    try {
      outcome = await index.recordInstance(rec);
    } catch (err) {
      if (put.created) {
        // Leave no object the index does not know of; the sender will retry.
        await store
          .delete(rec.objectKey)
          .catch((e: unknown) =>
            log.error(
              { event: 'instance.cleanup_failed', key: rec.objectKey, err: String(e) },
              'could not remove object',
            ),
          );
      }
      throw err;
    }
    if (outcome.kind !== 'inserted') return this.duplicate(rec, logFields, outcome.kind);

    stats.stored++;
    stats.bytes += this.size;
    log.info(
      {
        event: 'instance.stored',
        ...logFields,
        key: rec.objectKey,
        ms: round(this.elapsedMs()),
        receiveMs: round(t0),
        storeMs: round(t1 - t0),
        indexMs: round(this.elapsedMs() - t1),
      },
      'instance stored',
    );
    return DimseStatus.Success;
  }

  private async duplicate(
    rec: InstanceRecord,
    logFields: Record<string, unknown>,
    known?: 'identical' | 'conflict',
  ): Promise<number> {
    const outcome = known ?? (await this.o.index.recordInstance(rec)).kind;
    this.o.stats.duplicates++;
    if (outcome === 'identical' || outcome === 'inserted') {
      this.o.log.info(
        { event: 'instance.duplicate', ...logFields, identical: true },
        'instance already stored',
      );
    } else {
      // Policy keep-first (default): the stored instance stays, the sender hears success.
      this.o.log.warn(
        {
          event: 'instance.duplicate',
          ...logFields,
          identical: false,
          sha256: rec.sha256,
          policy: 'keep-first',
        },
        'same SOP Instance UID with different content received; the first one is kept',
      );
    }
    return DimseStatus.Success;
  }

  private elapsedMs(): number {
    return Number(process.hrtime.bigint() - this.started) / 1e6;
  }
}

function checkMatchesRequest(attrs: InstanceAttributes, req: StoreRequest): void {
  // PS3.4 B.2.3: A900 "Data Set does not match SOP Class"; a SOP Instance UID that differs
  // from the request's would make the File Meta contradict the data set.
  if (attrs.sopClassUid !== req.sopClassUid) {
    throw new GatewayError(
      'GW_ERR_DATASET_MISMATCH',
      `data set SOP Class UID ${attrs.sopClassUid} differs from the request's ${req.sopClassUid}`,
    );
  }
  if (attrs.sopInstanceUid !== req.sopInstanceUid) {
    throw new GatewayError(
      'GW_ERR_DATASET_MISMATCH',
      `data set SOP Instance UID ${attrs.sopInstanceUid} differs from the request's ${req.sopInstanceUid}`,
    );
  }
}

function asGatewayError(err: unknown, fallback: GatewayError['code']): GatewayError {
  if (isGatewayError(err)) return err;
  return new GatewayError(fallback, err instanceof Error ? err.message : String(err), {
    cause: err,
  });
}

function round(ms: number): number {
  return Math.round(ms * 100) / 100;
}

function asciiOnly(s: string): string {
  return s.replace(/[^\x20-\x7e]/g, '?');
}
