/**
 * The schema of one object store in the configuration (`store`, or each entry of `stores`),
 * and the map of named stores the gateway opens. The single `store` of older files is the
 * store named `default`; `stores` names several (routing chooses one per instance,
 * docs/routing.md).
 */
import { join, resolve } from 'node:path';
import { z } from 'zod';

const GIB = 1024 * 1024 * 1024;

/** Spool keys shared by fs and S3 stores (the uploader drains the spool into the store). */
const spoolFields = {
  /** Bytes the spool may hold; beyond it C-STOREs are answered A700 (the sender retries). */
  maxBytes: z
    .number()
    .int()
    .positive()
    .default(20 * GIB),
  uploadConcurrency: z.number().int().min(1).max(64).default(8),
  /**
   * Upload workers while C-STOREs are arriving and the spool holds more than burstBytes
   * (at most uploadConcurrency): uploads yield the CPU, disk and index to the senders,
   * and take up uploadConcurrency again once nothing has arrived for a second.
   */
  uploadConcurrencyWhileReceiving: z.number().int().min(1).max(64).default(2),
  /**
   * Backlog the spool may build while C-STOREs arrive before uploads start (a study is
   * taken at full speed, then uploaded); 0 uploads at once. At most a quarter of
   * maxBytes; from half of maxBytes every upload worker runs, senders or not.
   */
  burstBytes: z.number().int().min(0).default(GIB),
};
const SPOOL_DEFAULTS = {
  maxBytes: 20 * GIB,
  uploadConcurrency: 8,
  uploadConcurrencyWhileReceiving: 2,
  burstBytes: GIB,
};

export const fsStoreSchema = z
  .object({
    type: z.literal('fs'),
    root: z.string().min(1).default('./data/objects'),
    prefix: z.string().default(''),
    /**
     * When a C-STORE is answered: 'spooled' once the file is fsynced in the store's spool and
     * indexed as pending, side by side (the uploader then links it under its key, with its
     * sidecar); 'stored' once it is under its key, then indexed, one after the other.
     */
    ack: z.enum(['spooled', 'stored']).default('spooled'),
    spool: z
      .object({
        /** Default `<root>/.spool`: on the root's file system, so publishing is a link. */
        dir: z.string().min(1).optional(),
        ...spoolFields,
      })
      .strict()
      .default(SPOOL_DEFAULTS),
  })
  .strict();

export const s3StoreSchema = z
  .object({
    type: z.literal('s3'),
    endpoint: z.string().url().optional(),
    region: z.string().min(1).default('us-east-1'),
    bucket: z.string().min(3).max(63),
    prefix: z.string().default(''),
    accessKeyId: z.string().min(1).optional(),
    secretAccessKey: z.string().min(1).optional(),
    forcePathStyle: z.boolean().optional(),
    /** Ignored: S3 stores receive into spool.dir. Accepted so that older files still load. */
    stagingDir: z.string().optional(),
    /**
     * When a C-STORE is answered: 'spooled' once the file is fsynced in the local spool and
     * indexed as pending (an uploader drains the spool); 'stored' once it is in the bucket.
     */
    ack: z.enum(['spooled', 'stored']).default('spooled'),
    spool: z
      .object({
        dir: z.string().min(1).default('./data/spool'),
        ...spoolFields,
        /** In 'stored' mode: an upload slower than this goes to the spool instead. */
        uploadDeadlineSeconds: z.number().positive().default(30),
      })
      .strict()
      .default({ dir: './data/spool', ...SPOOL_DEFAULTS, uploadDeadlineSeconds: 30 }),
    partSizeMiB: z.number().int().min(5).max(512).default(8),
    requestTimeoutSeconds: z.number().positive().default(60),
    /**
     * At start, incomplete multipart uploads older than this are aborted (a crash mid-upload
     * leaves them; uploads of other gateways on the same bucket are younger).
     */
    abortIncompleteUploadsAfterSeconds: z.number().min(0).default(3600),
  })
  .strict();

export const storeSchema = z.discriminatedUnion('type', [fsStoreSchema, s3StoreSchema]);

export type StoreConfig = z.infer<typeof storeSchema>;
export type S3StoreConfig = z.infer<typeof s3StoreSchema>;

/** The store of a configuration without `store` or `stores`: the embedded default. */
export const DEFAULT_STORE: StoreConfig = fsStoreSchema.parse({ type: 'fs' });

/**
 * The directory of a store's spool, resolved; undefined for an fs store in `ack: stored`,
 * which has none (it publishes each file itself before the answer).
 */
export function spoolDirOf(s: StoreConfig): string | undefined {
  if (s.type === 's3') return resolve(s.spool.dir);
  if (s.ack === 'stored') return undefined;
  return resolve(s.spool.dir ?? join(s.root, FS_SPOOL));
}

/** The default spool of an fs store, under its root (FsStore keeps the name out of keys). */
export const FS_SPOOL = '.spool';

/** A store's name: what rules (`store:`) and the index (`instances.store_name`) call it. */
export const storeName = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/, 'a store name: letters, digits, _ . -, at most 64');

export const storesSchema = z.record(storeName, storeSchema);

/** The store used when no routing rule names another: `default`, else the first listed. */
export const PRIMARY_STORE = 'default';

/**
 * The configured stores by name, the primary one first: `stores` when given, else the single
 * `store` as `default`.
 */
export function namedStores(cfg: {
  store: StoreConfig;
  stores?: Readonly<Record<string, StoreConfig>> | undefined;
}): ReadonlyMap<string, StoreConfig> {
  if (!cfg.stores) return new Map([[PRIMARY_STORE, cfg.store]]);
  const entries = Object.entries(cfg.stores);
  const primary = entries.findIndex(([n]) => n === PRIMARY_STORE);
  if (primary > 0) entries.unshift(...entries.splice(primary, 1));
  return new Map(entries);
}

/** The name of the primary store: the first of namedStores(). */
export function primaryStoreName(stores: ReadonlyMap<string, StoreConfig>): string {
  return stores.keys().next().value ?? PRIMARY_STORE;
}
