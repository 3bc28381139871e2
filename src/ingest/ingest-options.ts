import type { IngestObserver } from '../admin/observer.js';
import type { IngestIndex } from '../index/instance-index.js';
import type { ObjectStore } from '../store/object-store.js';
import type { DestinationResolver } from './destination.js';
import type { Spool } from './spool.js';
import type { Uploader } from './uploader.js';

/** The spool of an S3 store and how C-STOREs are acknowledged with it. */
export interface SpoolOptions {
  spool: Spool;
  uploader: Uploader;
  ack: 'stored' | 'spooled';
  uploadDeadlineMs: number;
}

export interface IngestOptions {
  /** The configured store: the default destination of every instance (defaultDestination). */
  store: ObjectStore;
  /** Name recorded in the index for this store (its configured name, `default` for `store`). */
  storeName: string;
  /** The S3 bucket of the configured store, recorded in the index; undefined for a local store. */
  bucket?: string;
  /** Key prefix inside the store ('' for none). */
  prefix: string;
  /**
   * Where instances are received when there is no spool: FsStore.stagingDir(), on the same
   * file system as the objects, so that storing a file is a link, not a copy.
   */
  stagingDir?: string;
  index: IngestIndex;
  implementationClassUid: string;
  implementationVersionName: string;
  /** Largest data set accepted, in bytes; larger ones are refused with A700. */
  maxInstanceBytes: number;
  /** Told of every outcome (metrics); synchronous, never throws. */
  observer?: IngestObserver;
  /**
   * How long a C-STORE waits, in all, for other associations delivering the same SOP Instance
   * UID before it is answered A700 (dicom.sameInstanceWaitSeconds).
   */
  sameInstanceWaitMs: number;
  /** Same SOP Instance UID with other bytes (identical bytes are always idempotent success). */
  duplicatePolicy: 'keep-first' | 'overwrite' | 'keep-versions' | 'reject';
  /**
   * With a spool (S3 stores): every instance is indexed 'pending-upload' first. 'spooled'
   * answers once the file is fsynced in the spool; 'stored' once it is in the bucket, falling
   * back to the spool when the upload fails or takes longer than `uploadDeadlineMs`.
   */
  spool?: SpoolOptions;
  /**
   * Chooses each instance's destination once its header is read (routing plugs in here).
   * Default: the configured store with the commit its ack mode asks for.
   */
  resolveDestination?: DestinationResolver;
  /**
   * resolveDestination may choose another store than the configured one: files are never
   * received in place in the configured store's spool (a file for another store would sit
   * under that spool's ready/ name), but in its incoming/ directory or the staging directory.
   */
  otherDestinations?: boolean;
  /** The last top-level tag the header reader collects (see Receiver); routing sets it. */
  headerLastTag?: number;
}
