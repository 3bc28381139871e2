import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import pg from 'pg';
import { readPart10Header } from '../../src/dicom/file-meta.js';
import type { ObjectStore } from '../../src/store/object-store.js';

/** Outcome checks shared by the integration tests: what is in the bucket and the index. */

export async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/** The data set bytes of a Part-10 file (everything after File Meta). */
export function datasetOf(part10: Buffer): Buffer {
  return part10.subarray(readPart10Header(part10).datasetOffset);
}

export function sha256(b: Buffer): string {
  return createHash('sha256').update(b).digest('hex');
}

export interface StoredCheck {
  key: string;
  object: Buffer;
  /** The sent file's data set equals the stored object's data set. */
  datasetEqual: boolean;
  /** The object's sha256 metadata equals the sha256 of its bytes. */
  shaMetadataOk: boolean;
}

/** Fetches the object under `key` and compares it with the file that was sent. */
export async function checkStored(
  store: ObjectStore,
  key: string,
  sentFile: string,
): Promise<StoredCheck> {
  const [object, sent, info] = await Promise.all([
    store.get(key).then(readAll),
    readFile(sentFile),
    store.head(key),
  ]);
  return {
    key,
    object,
    datasetEqual: datasetOf(object).equals(datasetOf(sent)),
    shaMetadataOk: info?.sha256 === sha256(object),
  };
}

/**
 * How many of `files` are in `store` under the key their index row names, the data set equal
 * to what was sent and the sha256 metadata right (a file without a row counts as missing).
 */
export async function countStoredExactly(
  store: ObjectStore,
  index: { findInstance(uid: string): Promise<{ objectKey: string } | undefined> },
  files: ReadonlyArray<{ sopInstanceUid: string; path: string }>,
): Promise<number> {
  let exact = 0;
  for (const f of files) {
    const key = (await index.findInstance(f.sopInstanceUid))?.objectKey;
    if (!key) continue;
    const c = await checkStored(store, key, f.path);
    if (c.datasetEqual && c.shaMetadataOk) exact++;
  }
  return exact;
}

export async function query<T extends pg.QueryResultRow>(
  url: string,
  sql: string,
  params: unknown[] = [],
): Promise<T[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query<T>(sql, params)).rows;
  } finally {
    await client.end();
  }
}

/** Polls `fn` until it returns a truthy value or the deadline passes (no fixed sleeps). */
export async function until<T>(
  fn: () => Promise<T | undefined | false>,
  timeoutMs: number,
  what: string,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
