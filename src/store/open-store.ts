/**
 * Opens the configured object stores (src/store/store-config.ts): one ObjectStore per name.
 * `serve` opens every store with its spool (src/gateway.ts); `verify` reads from each.
 */
import { mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Logger } from 'pino';
import { FsStore } from './fs-store.js';
import type { ObjectStore, StoreLookup } from './object-store.js';
import { S3Store } from './s3-store.js';
import type { StoreConfig } from './store-config.js';

export interface OpenedStore {
  /** The configured name, recorded in the index (instances.store_name). */
  name: string;
  config: StoreConfig;
  store: ObjectStore;
  /** The store's key prefix ('' for none). */
  prefix: string;
  /** The S3 bucket; undefined for a local store. */
  bucket: string | undefined;
}

export function openNamedStore(name: string, s: StoreConfig, log: Logger): OpenedStore {
  if (s.type === 'fs') {
    const root = resolve(s.root);
    mkdirSync(root, { recursive: true });
    return { name, config: s, store: new FsStore({ root }), prefix: s.prefix, bucket: undefined };
  }
  const store = new S3Store({
    endpoint: s.endpoint,
    region: s.region,
    bucket: s.bucket,
    prefix: s.prefix,
    accessKeyId: s.accessKeyId,
    secretAccessKey: s.secretAccessKey,
    // Path-style addressing for every non-AWS endpoint (RGW, MinIO, Yandex accept it).
    forcePathStyle: s.forcePathStyle ?? s.endpoint !== undefined,
    partSize: s.partSizeMiB * 1024 * 1024,
    requestTimeoutMs: s.requestTimeoutSeconds * 1000,
    logger: log.child({ component: 's3', store: name }),
  });
  return { name, config: s, store, prefix: s.prefix, bucket: s.bucket };
}

/**
 * The name rows written before stores were named carry (`fs`, `s3:<bucket>`): such a row
 * belongs to the configured store of that kind (the first fs store; the s3 store of that
 * bucket), so `verify` still finds it.
 */
export function legacyStoreName(s: StoreConfig): string {
  return s.type === 'fs' ? 'fs' : `s3:${s.bucket}`;
}

/** Store name (configured or legacy) -> its open store. */
export function storeLookup(opened: readonly OpenedStore[]): StoreLookup {
  const byName = new Map<string, ObjectStore>();
  for (const o of opened) byName.set(o.name, o.store);
  for (const o of opened) {
    const legacy = legacyStoreName(o.config);
    if (!byName.has(legacy)) byName.set(legacy, o.store);
  }
  return (name) => byName.get(name);
}
