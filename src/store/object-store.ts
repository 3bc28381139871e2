import type { Readable } from 'node:stream';

/** What the gateway knows of an object in a store. */
export interface ObjectInfo {
  key: string;
  size: number;
  /** sha256 of the whole object (hex), from the object's metadata when the store has it. */
  sha256?: string;
  etag?: string;
  versionId?: string;
  lastModified?: Date;
  metadata: Record<string, string>;
}

export interface PutFileOptions {
  /** Size of the file in bytes (checked against the file and sent as Content-Length). */
  size: number;
  /** sha256 of the file (hex): stored as object metadata `sha256`. */
  sha256: string;
  /**
   * MD5 of the file (base64): sent as Content-MD5 so the server rejects a corrupted upload.
   * Absent: S3Store signs a single PUT with `sha256` as its payload hash when the server
   * checks that (it then refuses other bytes), else it computes Content-MD5 in one read of the
   * file that also checks it against `sha256` and `size`, as MemoryStore does; either way
   * nothing is written when they differ (GW_ERR_STORE_INTEGRITY). FsStore neither needs nor
   * checks it: it links the file.
   */
  md5?: string;
  /** User metadata (ASCII keys and values; the store adds `sha256`). */
  metadata: Record<string, string>;
  /**
   * Create only: when the key exists already, nothing is written and the
   * result says `created: false` with the existing object's info.
   */
  ifAbsent: boolean;
  /**
   * Resolves once the caller has fsynced the file (ingest's StagingFile starts that as soon
   * as the last byte is written); a local store that publishes the file itself waits for it
   * instead of fsyncing again, and does its own work meanwhile. Ignored by remote stores.
   */
  synced?: Promise<void>;
}

export interface PutResult {
  /** false when `ifAbsent` was set and the key existed. */
  created: boolean;
  /** The object now under the key (the new one, or the existing one when not created). */
  info: ObjectInfo;
}

/**
 * An object store holding Part-10 files under keys. Implementations:
 * FsStore (embedded default), S3Store (any S3-compatible server), MemoryStore (unit tests).
 *
 * Ingest never streams a C-STORE straight into `put`: it stages the Part-10 file
 * (bounded memory, size and digests known) and calls `putFile`, so every upload
 * carries Content-MD5 and sha256 metadata and can be retried without the sender.
 */
export interface ObjectStore {
  /** 'fs' | 's3' | 'memory', for logs and metrics. */
  readonly kind: string;
  /** A human-readable location (`s3://bucket/prefix at https://endpoint`, `/data/objects`). */
  describe(): string;
  /** Uploads (or moves) a local file to `key`. The caller still owns `path` afterwards unless the store moved it. */
  putFile(key: string, path: string, opts: PutFileOptions): Promise<PutResult>;
  /** Writes a whole object from a stream or buffer (tools, archives); not the ingest path. */
  put(
    key: string,
    body: Readable | Buffer,
    opts: { metadata?: Record<string, string>; contentType?: string },
  ): Promise<ObjectInfo>;
  get(key: string): Promise<Readable>;
  /** undefined when the key does not exist. */
  head(key: string): Promise<ObjectInfo | undefined>;
  list(prefix: string): AsyncIterable<ObjectInfo>;
  /** Deleting a missing key is not an error. */
  delete(key: string): Promise<void>;
  /**
   * Whether an `md5` handed to putFile spares the store a read of the file (S3Store while the
   * server is not known to check signed payloads; MemoryStore). Absent: it does not.
   */
  wantsMd5?(): boolean;
  /** Checks the store is reachable (readiness, start-up). Throws GW_ERR_STORE_UNAVAILABLE. */
  ping(): Promise<void>;
  close(): Promise<void>;
}

/** The open store an index row's store name (instances.store_name) stands for. */
export type StoreLookup = (storeName: string) => ObjectStore | undefined;

/**
 * Opens `key` in the store an index row or event names. Rejects, naming it, when that store
 * is not configured (any more): its objects cannot be read from here.
 */
export function getFromStore(
  storeFor: StoreLookup,
  storeName: string,
  key: string,
): Promise<Readable> {
  const store = storeFor(storeName);
  if (!store) return Promise.reject(new Error(`store ${storeName} is not configured`));
  return store.get(key);
}
