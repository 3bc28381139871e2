import { createHash, type Hash } from 'node:crypto';
import { unlink } from 'node:fs/promises';
import { extractAttributes, LAST_INDEXED_TAG } from '../dicom/attributes.js';
import { buildPart10Header } from '../dicom/file-meta.js';
import { DatasetReader } from '../dicom/header-reader.js';
import type { HeaderSource } from '../route/facts.js';
import { GatewayError } from '../errors.js';
import type { InstanceAttributes } from '../index/instance-index.js';
import type { AssociationInfo, StoreRequest } from '../scp/association.js';
import type { StagedFile } from './commit.js';
import { asGatewayError } from './outcome-reporter.js';
import type { Spool } from './spool.js';
import { StagingFile } from './staging-file.js';

export interface ReceiverOptions {
  assoc: AssociationInfo;
  req: StoreRequest;
  /** The file to create (a fresh name, or the spool's ready/ path claimed for this UID). */
  path: string;
  /** `path` is claimed in this spool's ready/ (Spool.beginReceiving). */
  inPlace?: Spool;
  /** Hash MD5 too (ReceiptHints.md5). */
  md5: boolean;
  maxInstanceBytes: number;
  implementationClassUid: string;
  implementationVersionName: string;
  /** The last top-level tag to collect (routing rules may test tags after the indexed ones). */
  lastTag?: number;
}

/**
 * Receives one C-STORE data set: while bytes arrive it writes preamble + File Meta + the data
 * set bytes unchanged to a staging file, hashes them (sha256 always, MD5 when the store sends
 * the file itself with Content-MD5) and feeds the header reader; nothing but stream buffers is
 * held in memory, whatever the instance's size. The first error is kept, later bytes dropped.
 */
export class Receiver implements StagedFile {
  private readonly file: StagingFile;
  private readonly sha256Hash: Hash = createHash('sha256');
  private readonly md5Hash: Hash | undefined;
  private readonly reader: DatasetReader;
  private bytes = 0;
  /** Data set bytes received (the File Meta not counted), for the limit and the logs. */
  datasetBytes = 0;
  private failure: GatewayError | undefined;
  /** The staged file's fsync, once started (startSync, or the first synced()). */
  private syncing: Promise<void> | undefined;
  readonly dirSynced: Promise<void> | undefined;
  private digests: { sha256: string; md5: string | undefined } | undefined;
  private kept = false;

  constructor(private readonly o: ReceiverOptions) {
    this.md5Hash = o.md5 ? createHash('md5') : undefined;
    // lastTag: a deflated data set is inflated only up to the header's end (see Inflater).
    this.reader = new DatasetReader({
      transferSyntaxUid: o.req.transferSyntaxUid,
      lastTag: Math.max(LAST_INDEXED_TAG, o.lastTag ?? 0),
    });
    this.file = new StagingFile(o.path);
    if (o.inPlace) {
      const spool = o.inPlace;
      this.dirSynced = this.file.opened().then(() => spool.syncReadyDir());
      this.dirSynced.catch(() => undefined); // awaited (and reported) by the spool's admit
    }
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

  get path(): string {
    return this.o.path;
  }

  get inPlace(): boolean {
    return this.o.inPlace !== undefined;
  }

  /** Bytes of the Part-10 file (preamble and File Meta included). */
  get size(): number {
    return this.bytes;
  }

  get md5(): string | undefined {
    return this.digests?.md5;
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
    this.sha256Hash.update(chunk);
    this.md5Hash?.update(chunk);
    this.bytes += chunk.length;
    return this.file.write(chunk);
  }

  /**
   * Appends `bytes` after the Part-10 bytes (the spool record's trailer): not hashed, not in
   * `size`; written(), synced() cover it. Only before the fsync starts.
   */
  appendTrailer(bytes: Buffer): void {
    if (this.syncing) throw new Error('appendTrailer after the fsync began');
    if (this.failure) return;
    void this.file.write(bytes);
  }

  /** The header as read, for routing (valid until release()). */
  get header(): HeaderSource {
    return this.reader;
  }

  /**
   * The data set has ended: its header attributes, checked against the request. Throws what
   * refused the data set while it arrived (malformed, too large) or now (truncated, mismatch).
   * The last writes may still run.
   */
  async end(): Promise<InstanceAttributes> {
    if (this.failure) throw this.failure;
    await this.reader.end();
    const attrs = extractAttributes(this.reader);
    checkMatchesRequest(attrs, this.o.req);
    return attrs;
  }

  /** sha256 (hex) and MD5 (base64, when hashed) of every byte; once the data set has ended. */
  digest(): { sha256: string; md5: string | undefined } {
    return (this.digests ??= {
      sha256: this.sha256Hash.digest('hex'),
      md5: this.md5Hash?.digest('base64'),
    });
  }

  /**
   * Starts the fsync (it follows the last write inside StagingFile) when the file itself is
   * kept (a local store, the spool), so it runs beside the index lookup.
   */
  startSync(): void {
    this.syncing ??= this.file.sync();
    this.syncing.catch(() => undefined); // awaited (and reported) by the commit
  }

  async written(): Promise<void> {
    try {
      await this.file.flushed();
    } catch (err) {
      throw new GatewayError('GW_ERR_STORE_UNAVAILABLE', `staging file: ${String(err)}`, {
        cause: err,
      });
    }
  }

  async synced(): Promise<void> {
    try {
      await (this.syncing ??= this.file.sync());
    } catch (err) {
      throw new GatewayError(
        'GW_ERR_STORE_UNAVAILABLE',
        `writing the received file: ${String(err)}`,
        {
          cause: err,
        },
      );
    }
  }

  syncedIfStarted(): Promise<void> | undefined {
    return this.syncing && this.synced();
  }

  handedOver(): void {
    this.kept = true;
  }

  /**
   * After the answer is decided. Admitted to the spool or linked into the store: the file is
   * durable in its place, and closing the descriptor (never throws) need not delay the answer.
   * Else the file is removed.
   */
  async release(): Promise<void> {
    this.reader.close();
    const closed = (this.syncing?.catch(() => undefined) ?? Promise.resolve()).then(() =>
      this.file.close(),
    );
    if (this.kept) return;
    await closed;
    await unlink(this.o.path).catch(() => {});
  }

  /** The association ended before the data set did. */
  async abort(): Promise<void> {
    this.reader.close();
    await this.file.close();
    await unlink(this.o.path).catch(() => {});
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
