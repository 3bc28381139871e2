/**
 * Hand-encoded Explicit VR LE data sets: the smallest one the gateway stores, and deflated
 * ones (PS3.5 A.5) with one large private OB element, the shape that made the header reader
 * re-inflate megabytes per PDV.
 */
import { randomBytes } from 'node:crypto';
import zlib from 'node:zlib';

export const DEFLATED_TS = '1.2.840.10008.1.2.1.99';
export const SECONDARY_CAPTURE = '1.2.840.10008.5.1.4.1.1.7';

/** One Explicit VR LE element (PS3.5 7.1.2); odd-length text is padded. */
export function explicitLe(tag: number, vr: string, value: Buffer | string): Buffer {
  let v = typeof value === 'string' ? Buffer.from(value, 'latin1') : value;
  if (v.length % 2 === 1) v = Buffer.concat([v, Buffer.from(vr === 'UI' ? '\0' : ' ')]);
  const long = ['OB', 'OW', 'UN', 'SQ', 'UT'].includes(vr);
  const h = Buffer.alloc(long ? 12 : 8);
  h.writeUInt16LE(tag >>> 16, 0);
  h.writeUInt16LE(tag & 0xffff, 2);
  h.write(vr, 4, 'latin1');
  if (long) h.writeUInt32LE(v.length, 8);
  else h.writeUInt16LE(v.length, 6);
  return Buffer.concat([h, v]);
}

/** SOP Class, SOP Instance, Study and Series Instance UID: all the gateway requires. */
export function minimalDataset(sopInstanceUid: string): Buffer {
  return Buffer.concat([
    explicitLe(0x00080016, 'UI', SECONDARY_CAPTURE),
    explicitLe(0x00080018, 'UI', sopInstanceUid),
    explicitLe(0x0020000d, 'UI', `${sopInstanceUid}.1`),
    explicitLe(0x0020000e, 'UI', `${sopInstanceUid}.2`),
  ]);
}

export interface BlobDataset {
  /** The data set as sent (deflated). */
  deflated: Buffer;
  /** The same, inflated. */
  plain: Buffer;
}

/**
 * A Secondary Capture data set without Pixel Data whose private element (0009,1001) OB of
 * `blobBytes` sits before Patient, Study and Series: a reader must inflate all of it to
 * reach the UIDs it needs. `fill`: random bytes (incompressible) or zeros (a deflate bomb).
 */
export function blobDataset(o: {
  sopInstanceUid: string;
  blobBytes: number;
  fill: 'random' | 'zeros';
}): BlobDataset {
  const blob = o.fill === 'random' ? randomBytes(o.blobBytes) : Buffer.alloc(o.blobBytes);
  const plain = Buffer.concat([
    explicitLe(0x00080016, 'UI', SECONDARY_CAPTURE),
    explicitLe(0x00080018, 'UI', o.sopInstanceUid),
    explicitLe(0x00080060, 'CS', 'OT'),
    explicitLe(0x00090010, 'LO', 'GW TEST'),
    explicitLe(0x00091001, 'OB', blob),
    explicitLe(0x00100020, 'LO', 'BLOB-1'),
    explicitLe(0x0020000d, 'UI', `${o.sopInstanceUid}.1`),
    explicitLe(0x0020000e, 'UI', `${o.sopInstanceUid}.2`),
    explicitLe(0x00280010, 'US', Buffer.from([0, 2])),
    explicitLe(0x00280011, 'US', Buffer.from([0, 2])),
    explicitLe(0x00291010, 'OB', Buffer.alloc(64)),
  ]);
  return { deflated: zlib.deflateRawSync(plain), plain };
}
