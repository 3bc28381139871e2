/**
 * The core of `verify`: re-read objects from the store, recompute sha256 and size, compare with
 * the index rows. No SQL here (rows come in as an async iterable) and no output (results go to
 * a callback), so it runs against MemoryStore in the unit tests.
 */
import { createHash } from 'node:crypto';
import { isGatewayError, GatewayError } from '../errors.js';
import type { ObjectStore, StoreLookup } from '../store/object-store.js';
import { withTimeout } from '../timeout.js';

export interface IndexedObject {
  sopInstanceUid: string;
  storeName: string;
  objectKey: string;
  size: number;
  sha256: string;
}

export type VerifyOutcome =
  | { kind: 'ok'; bytes: number }
  /** Read in full, but its size or sha256 differs from the index row. */
  | { kind: 'mismatch'; bytes: number; actualSize: number; actualSha256: string }
  /** The store has no object under the key. */
  | { kind: 'missing' }
  /** Recorded in a store that is not configured (any more): not checked. */
  | { kind: 'skipped'; reason: string }
  /** Could not be checked (store unreachable, timeout): says nothing about the object. */
  | { kind: 'error'; message: string };

export interface VerifyCounts {
  checked: number;
  ok: number;
  mismatched: number;
  missing: number;
  errors: number;
  skipped: number;
  /** Bytes read from the store. */
  bytes: number;
}

export function emptyCounts(): VerifyCounts {
  return { checked: 0, ok: 0, mismatched: 0, missing: 0, errors: 0, skipped: 0, bytes: 0 };
}

export function count(c: VerifyCounts, o: VerifyOutcome): void {
  if (o.kind === 'skipped') {
    c.skipped++;
    return;
  }
  c.checked++;
  if (o.kind === 'ok') c.ok++;
  else if (o.kind === 'mismatch') c.mismatched++;
  else if (o.kind === 'missing') c.missing++;
  else c.errors++;
  if (o.kind === 'ok' || o.kind === 'mismatch') c.bytes += o.bytes;
}

/** Re-reads one object. `idleTimeoutMs` bounds the wait for each chunk, not the whole read. */
export async function verifyObject(
  storeFor: StoreLookup,
  row: IndexedObject,
  idleTimeoutMs: number,
): Promise<VerifyOutcome> {
  const store = storeFor(row.storeName);
  if (store === undefined) {
    return { kind: 'skipped', reason: `in store ${row.storeName}, which is not configured` };
  }
  try {
    const { size, sha256 } = await digest(store, row.objectKey, idleTimeoutMs);
    if (size === row.size && sha256 === row.sha256) return { kind: 'ok', bytes: size };
    return { kind: 'mismatch', bytes: size, actualSize: size, actualSha256: sha256 };
  } catch (err) {
    // Both stores' get() raise GW_ERR_STORE_INTEGRITY for a key with no object (and only then).
    if (isGatewayError(err, 'GW_ERR_STORE_INTEGRITY')) return { kind: 'missing' };
    return { kind: 'error', message: err instanceof Error ? err.message : String(err) };
  }
}

async function digest(
  store: ObjectStore,
  key: string,
  idleTimeoutMs: number,
): Promise<{ size: number; sha256: string }> {
  const stalled = (): GatewayError =>
    new GatewayError('GW_ERR_TIMEOUT', `${key}: no data from the store for ${idleTimeoutMs} ms`);
  const opening = store.get(key);
  const opened = await withTimeout(
    () => opening,
    idleTimeoutMs,
    () => {
      // A stream that opens after all is closed at once.
      opening.then((s) => s.destroy()).catch(() => undefined);
      throw stalled();
    },
  );
  const hash = createHash('sha256');
  let size = 0;
  const idle = setTimeout(() => opened.destroy(stalled()), idleTimeoutMs);
  try {
    for await (const chunk of opened) {
      idle.refresh();
      const b = chunk as Buffer;
      hash.update(b);
      size += b.length;
    }
  } finally {
    clearTimeout(idle);
    opened.destroy();
  }
  return { size, sha256: hash.digest('hex') };
}

/**
 * Checks every row with `concurrency` reads in flight. The workers share one iterator: an async
 * generator queues concurrent next() calls, so each row is taken exactly once.
 */
export async function verifyAll(o: {
  rows: AsyncIterable<IndexedObject>;
  /** The store an index row names (instances.store_name); undefined: not configured. */
  storeFor: StoreLookup;
  concurrency: number;
  idleTimeoutMs: number;
  onResult: (row: IndexedObject, outcome: VerifyOutcome) => void;
}): Promise<void> {
  const it = o.rows[Symbol.asyncIterator]();
  const worker = async (): Promise<void> => {
    for (;;) {
      const next = await it.next();
      if (next.done) return;
      o.onResult(next.value, await verifyObject(o.storeFor, next.value, o.idleTimeoutMs));
    }
  };
  await Promise.all(Array.from({ length: o.concurrency }, worker));
}
