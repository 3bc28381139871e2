import { createHash } from 'node:crypto';
import { open } from 'node:fs/promises';
import type { InstanceRecord } from '../index/instance-index.js';

/**
 * What a spool file carries after its Part-10 bytes until the uploader takes it (the spool
 * record, a trailer): the instance's index row as written at receipt, with the Part-10 size and
 * sha256 that prove the file complete, and its object metadata. Written before the file's one
 * fsync, it is durable with the file, and restores a row that the index lost after the answer
 * (see Spool). The uploader cuts it off before the file goes to the store.
 */
export interface SpoolRecord {
  rec: InstanceRecord;
  metadata?: Record<string, string>;
}

const VERSION = 1;

export function serializeSpoolRecord(r: SpoolRecord): string {
  return JSON.stringify({ version: VERSION, rec: r.rec, metadata: r.metadata });
}

/**
 * Parses a record; undefined for anything that is not a whole record of `sopInstanceUid` (a
 * record cut short by a crash was never part of an answer).
 */
export function parseSpoolRecord(text: string, sopInstanceUid: string): SpoolRecord | undefined {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (!isObject(v) || v.version !== VERSION || !isObject(v.rec)) return undefined;
  const rec = v.rec;
  const attrs = rec.attributes;
  const ok =
    isObject(attrs) &&
    attrs.sopInstanceUid === sopInstanceUid &&
    typeof attrs.studyInstanceUid === 'string' &&
    typeof attrs.seriesInstanceUid === 'string' &&
    typeof attrs.sopClassUid === 'string' &&
    typeof rec.transferSyntaxUid === 'string' &&
    typeof rec.storeName === 'string' &&
    typeof rec.objectKey === 'string' &&
    Number.isSafeInteger(rec.size) &&
    typeof rec.sha256 === 'string' &&
    /^[0-9a-f]{64}$/.test(rec.sha256) &&
    typeof rec.receivedAt === 'string' &&
    !Number.isNaN(Date.parse(rec.receivedAt)) &&
    (rec.state === 'pending-upload' || rec.state === 'stored');
  if (!ok) return undefined;
  const metadata = isObject(v.metadata) ? (v.metadata as Record<string, string>) : undefined;
  return {
    rec: { ...(rec as unknown as InstanceRecord), receivedAt: new Date(rec.receivedAt as string) },
    metadata,
  };
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * The trailer's last bytes: the record's length (uint32 BE), its sha256, and MAGIC. A file
 * whose end is not a whole, self-consistent trailer (a receipt cut short, or a spool file
 * without one) has no record.
 */
const MAGIC = Buffer.from('DGWREC01', 'latin1');
const FOOTER = 4 + 32 + MAGIC.length;

/** The bytes to append after the Part-10 bytes (record JSON + footer). */
export function encodeTrailer(r: SpoolRecord): Buffer {
  const json = Buffer.from(serializeSpoolRecord(r), 'utf8');
  const footer = Buffer.alloc(FOOTER);
  footer.writeUInt32BE(json.length, 0);
  createHash('sha256').update(json).digest().copy(footer, 4);
  MAGIC.copy(footer, 36);
  return Buffer.concat([json, footer]);
}

/**
 * The record in the trailer of the spool file at `path`, undefined when it has none: no
 * footer, a record that does not hash to its footer's sha256 or is not of `sopInstanceUid`,
 * or a file whose length is not the record's Part-10 size plus the trailer.
 */
export async function readTrailer(
  path: string,
  sopInstanceUid: string,
): Promise<SpoolRecord | undefined> {
  let fh;
  try {
    fh = await open(path, 'r');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  try {
    const { size } = await fh.stat();
    if (size < FOOTER) return undefined;
    const footer = Buffer.alloc(FOOTER);
    await fh.read(footer, 0, FOOTER, size - FOOTER);
    if (!footer.subarray(36).equals(MAGIC)) return undefined;
    const jsonLength = footer.readUInt32BE(0);
    if (jsonLength > size - FOOTER || jsonLength > 1024 * 1024) return undefined;
    const json = Buffer.alloc(jsonLength);
    await fh.read(json, 0, jsonLength, size - FOOTER - jsonLength);
    if (!createHash('sha256').update(json).digest().equals(footer.subarray(4, 36))) {
      return undefined;
    }
    const record = parseSpoolRecord(json.toString('utf8'), sopInstanceUid);
    return record && record.rec.size + jsonLength + FOOTER === size ? record : undefined;
  } finally {
    await fh.close();
  }
}
