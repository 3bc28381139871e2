/**
 * The Storage Commitment data sets (PS3.4 J.3.2, J.3.3): the N-ACTION-RQ's Transaction UID
 * and Referenced SOP Sequence, and the N-EVENT-REPORT-RQ's Transaction UID, Referenced SOP
 * Sequence (committed) and Failed SOP Sequence (with a Failure Reason each). Pure: Buffers in,
 * Buffers out, in Implicit or Explicit VR Little Endian (the only transfer syntaxes the gateway
 * accepts for this SOP class, see src/scp/negotiation.ts). The decoder walks a whole data set
 * with nested sequences of defined or undefined length and keeps only the elements above;
 * anything malformed is a CommitmentDatasetError.
 */
import { IMPLICIT_VR_LE } from '../dicom/uids.js';

/** PS3.4 J.3.2.1.1.1 / J.3.3.1.1: one referenced instance. */
export interface SopReference {
  sopClassUid: string;
  sopInstanceUid: string;
}

/** PS3.4 Table J.3-2: a failed instance and why (see FailureReason). */
export interface FailedSop extends SopReference {
  failureReason: number;
}

export interface CommitmentRequest {
  transactionUid?: string;
  /** Undefined when the sequence is absent; items missing either UID keep an empty string. */
  references?: SopReference[];
}

export interface CommitmentReport {
  transactionUid: string;
  committed: readonly SopReference[];
  failed: readonly FailedSop[];
}

/** PS3.4 Table J.3-2 / PS3.7 C: Failure Reason (0008,1197) values. */
export const FailureReason = {
  ProcessingFailure: 0x0110,
  NoSuchObjectInstance: 0x0112,
  ResourceLimitation: 0x0213,
  ReferencedSopClassNotSupported: 0x0122,
  ClassInstanceConflict: 0x0119,
  DuplicateTransactionUid: 0x0131,
} as const;

export class CommitmentDatasetError extends Error {
  override readonly name = 'CommitmentDatasetError';
}

const TAG = {
  TransactionUid: 0x00081195,
  ReferencedSopSequence: 0x00081199,
  FailedSopSequence: 0x00081198,
  FailureReason: 0x00081197,
  ReferencedSopClassUid: 0x00081150,
  ReferencedSopInstanceUid: 0x00081155,
} as const;

const ITEM = 0xfffee000;
const ITEM_END = 0xfffee00d;
const SEQ_END = 0xfffee0dd;
const UNDEFINED = 0xffffffff;
/** Explicit VR with a 2-byte reserved field and a 4-byte length (PS3.5 7.1.2). */
const LONG_VRS = new Set([
  'OB',
  'OD',
  'OF',
  'OL',
  'OV',
  'OW',
  'SQ',
  'SV',
  'UC',
  'UN',
  'UR',
  'UT',
  'UV',
]);
/** Implicit VR: which tags are sequences (the only ones this codec descends into by tag). */
const SEQUENCE_TAGS = new Set<number>([TAG.ReferencedSopSequence, TAG.FailedSopSequence]);
/** Nesting limit: a commitment data set has one level; this only bounds a hostile input. */
const MAX_DEPTH = 8;

type Value = Buffer | Node[];
type Node = Map<number, Value>;

/** Decodes an N-ACTION-RQ data set (Action Type 1). */
export function decodeCommitmentRequest(buf: Buffer, transferSyntaxUid: string): CommitmentRequest {
  const root = parseDataset(buf, transferSyntaxUid !== IMPLICIT_VR_LE);
  return {
    transactionUid: uidOf(root, TAG.TransactionUid),
    references: references(root.get(TAG.ReferencedSopSequence)),
  };
}

/** Decodes an N-EVENT-REPORT-RQ data set (Event Type 1 or 2). */
export function decodeCommitmentReport(buf: Buffer, transferSyntaxUid: string): CommitmentReport {
  const root = parseDataset(buf, transferSyntaxUid !== IMPLICIT_VR_LE);
  const failedItems = root.get(TAG.FailedSopSequence);
  return {
    transactionUid: uidOf(root, TAG.TransactionUid) ?? '',
    committed: references(root.get(TAG.ReferencedSopSequence)) ?? [],
    failed: Array.isArray(failedItems)
      ? failedItems.map((n) => ({
          sopClassUid: uidOf(n, TAG.ReferencedSopClassUid) ?? '',
          sopInstanceUid: uidOf(n, TAG.ReferencedSopInstanceUid) ?? '',
          failureReason: usOf(n, TAG.FailureReason) ?? 0,
        }))
      : [],
  };
}

/** Encodes an N-ACTION-RQ data set (what a requester sends; the tests and tools use it). */
export function encodeCommitmentRequest(
  r: { transactionUid: string; references: readonly SopReference[] },
  transferSyntaxUid: string,
): Buffer {
  const explicit = transferSyntaxUid !== IMPLICIT_VR_LE;
  return Buffer.concat([
    el(TAG.TransactionUid, 'UI', uid(r.transactionUid), explicit),
    sequence(
      TAG.ReferencedSopSequence,
      r.references.map((x) => refItem(x, explicit)),
      explicit,
    ),
  ]);
}

/**
 * Encodes an N-EVENT-REPORT-RQ data set (PS3.4 Table J.3-2): the Referenced SOP Sequence only
 * when something was committed, the Failed SOP Sequence only when something failed.
 */
export function encodeCommitmentReport(r: CommitmentReport, transferSyntaxUid: string): Buffer {
  const explicit = transferSyntaxUid !== IMPLICIT_VR_LE;
  const parts = [el(TAG.TransactionUid, 'UI', uid(r.transactionUid), explicit)];
  // Tag order (PS3.5 7.1): (0008,1198) before (0008,1199).
  if (r.failed.length > 0) {
    parts.push(
      sequence(
        TAG.FailedSopSequence,
        r.failed.map((f) => {
          const reason = Buffer.alloc(2);
          reason.writeUInt16LE(f.failureReason, 0);
          return Buffer.concat([
            el(TAG.ReferencedSopClassUid, 'UI', uid(f.sopClassUid), explicit),
            el(TAG.ReferencedSopInstanceUid, 'UI', uid(f.sopInstanceUid), explicit),
            el(TAG.FailureReason, 'US', reason, explicit),
          ]);
        }),
        explicit,
      ),
    );
  }
  if (r.committed.length > 0) {
    parts.push(
      sequence(
        TAG.ReferencedSopSequence,
        r.committed.map((x) => refItem(x, explicit)),
        explicit,
      ),
    );
  }
  return Buffer.concat(parts);
}

function refItem(x: SopReference, explicit: boolean): Buffer {
  return Buffer.concat([
    el(TAG.ReferencedSopClassUid, 'UI', uid(x.sopClassUid), explicit),
    el(TAG.ReferencedSopInstanceUid, 'UI', uid(x.sopInstanceUid), explicit),
  ]);
}

function references(v: Value | undefined): SopReference[] | undefined {
  if (v === undefined) return undefined;
  if (!Array.isArray(v))
    throw new CommitmentDatasetError('Referenced SOP Sequence is not a sequence');
  return v.map((n) => ({
    sopClassUid: uidOf(n, TAG.ReferencedSopClassUid) ?? '',
    sopInstanceUid: uidOf(n, TAG.ReferencedSopInstanceUid) ?? '',
  }));
}

function uidOf(n: Node, tag: number): string | undefined {
  const v = n.get(tag);
  if (v === undefined || Array.isArray(v)) return undefined;
  const s = v.toString('latin1').replace(/[\0 ]+$/, '');
  return s.length > 0 ? s : undefined;
}

function usOf(n: Node, tag: number): number | undefined {
  const v = n.get(tag);
  if (v === undefined || Array.isArray(v) || v.length < 2) return undefined;
  return v.readUInt16LE(0);
}

/** PS3.5 6.2: UI values are padded to even length with NUL. */
function uid(s: string): Buffer {
  const b = Buffer.from(s, 'latin1');
  return b.length % 2 === 0 ? b : Buffer.concat([b, Buffer.alloc(1)]);
}

function tagHead(tag: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt16LE(tag >>> 16, 0);
  b.writeUInt16LE(tag & 0xffff, 2);
  return b;
}

function el(tag: number, vr: string, value: Buffer, explicit: boolean): Buffer {
  if (!explicit) {
    const len = Buffer.alloc(4);
    len.writeUInt32LE(value.length, 0);
    return Buffer.concat([tagHead(tag), len, value]);
  }
  if (LONG_VRS.has(vr)) {
    const h = Buffer.alloc(8);
    h.write(vr, 0, 'latin1');
    h.writeUInt32LE(value.length, 4);
    return Buffer.concat([tagHead(tag), h, value]);
  }
  const h = Buffer.alloc(4);
  h.write(vr, 0, 'latin1');
  h.writeUInt16LE(value.length, 2);
  return Buffer.concat([tagHead(tag), h, value]);
}

/** A sequence of defined length whose items have defined lengths (PS3.5 7.5). */
function sequence(tag: number, itemBodies: readonly Buffer[], explicit: boolean): Buffer {
  const items = itemBodies.map((body) => {
    const h = Buffer.alloc(8);
    h.writeUInt16LE(0xfffe, 0);
    h.writeUInt16LE(0xe000, 2);
    h.writeUInt32LE(body.length, 4);
    return Buffer.concat([h, body]);
  });
  return el(tag, 'SQ', Buffer.concat(items), explicit);
}

interface Cursor {
  buf: Buffer;
  pos: number;
}

function parseDataset(buf: Buffer, explicit: boolean): Node {
  const c: Cursor = { buf, pos: 0 };
  return parseElements(c, buf.length, explicit, 0, false);
}

/** Elements up to `end` (or an Item Delimitation when `untilDelimiter`). */
function parseElements(
  c: Cursor,
  end: number,
  explicit: boolean,
  depth: number,
  untilDelimiter: boolean,
): Node {
  if (depth > MAX_DEPTH) throw new CommitmentDatasetError('sequences nested too deeply');
  const node: Node = new Map();
  while (c.pos < end) {
    const tag = readTag(c);
    if (tag === ITEM_END) {
      if (!untilDelimiter) throw new CommitmentDatasetError('item delimiter outside an item');
      c.pos += 4; // its length, always 0
      return node;
    }
    let vr: string | undefined;
    let length: number;
    if (explicit) {
      need(c, 4);
      vr = c.buf.toString('latin1', c.pos, c.pos + 2);
      if (LONG_VRS.has(vr)) {
        need(c, 8);
        length = c.buf.readUInt32LE(c.pos + 4);
        c.pos += 8;
      } else {
        length = c.buf.readUInt16LE(c.pos + 2);
        c.pos += 4;
      }
    } else {
      need(c, 4);
      length = c.buf.readUInt32LE(c.pos);
      c.pos += 4;
    }
    const isSequence =
      vr === 'SQ' || (!explicit && (SEQUENCE_TAGS.has(tag) || length === UNDEFINED));
    if (isSequence) {
      node.set(tag, parseItems(c, length, explicit, depth + 1));
      continue;
    }
    if (length === UNDEFINED)
      throw new CommitmentDatasetError(`element ${hexTag(tag)} of undefined length`);
    need(c, length);
    node.set(tag, c.buf.subarray(c.pos, c.pos + length));
    c.pos += length;
  }
  if (untilDelimiter) throw new CommitmentDatasetError('item without its delimiter');
  if (c.pos !== end) throw new CommitmentDatasetError('element runs past its container');
  return node;
}

function parseItems(c: Cursor, length: number, explicit: boolean, depth: number): Node[] {
  const out: Node[] = [];
  const end = length === UNDEFINED ? c.buf.length : c.pos + length;
  if (end > c.buf.length) throw new CommitmentDatasetError('sequence runs past the data set');
  while (c.pos < end) {
    const tag = readTag(c);
    need(c, 4);
    const itemLength = c.buf.readUInt32LE(c.pos);
    c.pos += 4;
    if (tag === SEQ_END) {
      if (length !== UNDEFINED)
        throw new CommitmentDatasetError('sequence delimiter in a defined-length sequence');
      return out;
    }
    if (tag !== ITEM)
      throw new CommitmentDatasetError(`${hexTag(tag)} where a sequence item was expected`);
    if (itemLength === UNDEFINED) {
      out.push(parseElements(c, c.buf.length, explicit, depth, true));
    } else {
      need(c, itemLength);
      out.push(parseElements(c, c.pos + itemLength, explicit, depth, false));
    }
  }
  if (length === UNDEFINED) throw new CommitmentDatasetError('sequence without its delimiter');
  if (c.pos !== end) throw new CommitmentDatasetError('item runs past its sequence');
  return out;
}

function readTag(c: Cursor): number {
  need(c, 4);
  const tag = ((c.buf.readUInt16LE(c.pos) << 16) | c.buf.readUInt16LE(c.pos + 2)) >>> 0;
  c.pos += 4;
  return tag;
}

function need(c: Cursor, n: number): void {
  if (c.pos + n > c.buf.length)
    throw new CommitmentDatasetError(`data set truncated at offset ${c.pos}`);
}

function hexTag(tag: number): string {
  const h = tag.toString(16).padStart(8, '0').toUpperCase();
  return `(${h.slice(0, 4)},${h.slice(4)})`;
}
