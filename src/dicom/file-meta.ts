/**
 * The DICOM File Format wrapper (PS3.10 7.1): a 128-byte preamble, the "DICM"
 * prefix and the File Meta Information (group 0002), always Explicit VR Little
 * Endian whatever the data set's transfer syntax.
 */
import { GatewayError } from '../errors.js';
import type { GatewayErrorCode } from '../errors.js';
import { isValidAeTitle } from './ae-title.js';
import { LONG_VRS, SHORT_VRS, formatTag } from './header-reader.js';
import { isValidUid } from './uid.js';

export interface Part10HeaderOptions {
  mediaStorageSopClassUid: string;
  mediaStorageSopInstanceUid: string;
  transferSyntaxUid: string;
  implementationClassUid: string;
  /** Type 3: omitted when empty or blank. */
  implementationVersionName: string;
  /** Type 3: omitted when undefined, empty or blank. */
  sourceApplicationEntityTitle?: string;
}

export interface Part10Header {
  /** Group 0002 elements by tag; values are copies, padding included. */
  fileMeta: Map<number, Buffer>;
  transferSyntaxUid: string;
  mediaStorageSopClassUid: string;
  mediaStorageSopInstanceUid: string;
  /** Where the data set starts: right after group 0002. */
  datasetOffset: number;
}

const PREAMBLE_LENGTH = 128;
const PREFIX = 'DICM';
const META_START = PREAMBLE_LENGTH + PREFIX.length;

const GROUP_LENGTH = 0x00020000;
const MEDIA_STORAGE_SOP_CLASS_UID = 0x00020002;
const MEDIA_STORAGE_SOP_INSTANCE_UID = 0x00020003;
const TRANSFER_SYNTAX_UID = 0x00020010;

/**
 * Preamble + "DICM" + group 0002 (PS3.10 7.1, Table 7.1-1). The UIDs come from
 * the sender (C-STORE request, negotiated transfer syntax): a bad one is
 * GW_ERR_DATASET_MALFORMED. The implementation UID, version name and AE title
 * come from the gateway itself: a bad one is GW_ERR_INTERNAL.
 */
export function buildPart10Header(opts: Part10HeaderOptions): Buffer {
  const sopClass = checkUid(
    'Media Storage SOP Class UID',
    opts.mediaStorageSopClassUid,
    'GW_ERR_DATASET_MALFORMED',
  );
  const sopInstance = checkUid(
    'Media Storage SOP Instance UID',
    opts.mediaStorageSopInstanceUid,
    'GW_ERR_DATASET_MALFORMED',
  );
  const ts = checkUid('Transfer Syntax UID', opts.transferSyntaxUid, 'GW_ERR_DATASET_MALFORMED');
  const implementation = checkUid(
    'Implementation Class UID',
    opts.implementationClassUid,
    'GW_ERR_INTERNAL',
  );
  // PS3.5 6.2, SH and AE: leading and trailing spaces are not significant.
  const version = opts.implementationVersionName.trim();
  if (version !== '') checkShortString('Implementation Version Name', version);
  const ae = opts.sourceApplicationEntityTitle?.trim() || undefined;
  if (ae !== undefined && !isValidAeTitle(ae)) {
    throw new GatewayError(
      'GW_ERR_INTERNAL',
      `Source Application Entity Title ${JSON.stringify(ae)} is not a valid AE title (PS3.5 6.2)`,
    );
  }

  const body = [
    // PS3.10 7.1: File Meta Information Version, 00H 01H.
    element(0x0001, 'OB', Buffer.from([0x00, 0x01])),
    element(0x0002, 'UI', padded(sopClass, 0x00)),
    element(0x0003, 'UI', padded(sopInstance, 0x00)),
    element(0x0010, 'UI', padded(ts, 0x00)),
    element(0x0012, 'UI', padded(implementation, 0x00)),
  ];
  if (version !== '') body.push(element(0x0013, 'SH', padded(version, 0x20)));
  if (ae !== undefined) body.push(element(0x0016, 'AE', padded(ae, 0x20)));
  const length = body.reduce((n, b) => n + b.length, 0);
  const groupLength = Buffer.alloc(4);
  groupLength.writeUInt32LE(length);
  return Buffer.concat([
    Buffer.alloc(PREAMBLE_LENGTH),
    Buffer.from(PREFIX, 'latin1'),
    // PS3.10 7.1: (0002,0000) counts the bytes after it up to the end of group 0002.
    element(0x0000, 'UL', groupLength),
    ...body,
  ]);
}

/**
 * Splits a Part-10 file: File Meta and where the data set starts. Throws
 * GW_ERR_DATASET_MALFORMED without a "DICM" prefix (files without a preamble
 * and File Meta are not Part-10 files), or when group 0002 is malformed,
 * inconsistent with its group length, or lacks a required UID.
 */
export function readPart10Header(buf: Buffer): Part10Header {
  if (buf.length < META_START || buf.toString('latin1', PREAMBLE_LENGTH, META_START) !== PREFIX) {
    throw malformed(
      `no "${PREFIX}" prefix at byte offset ${PREAMBLE_LENGTH}: not a DICOM Part-10 file`,
    );
  }
  const fileMeta = new Map<number, Buffer>();
  let pos = META_START;
  let groupEnd: number | undefined;
  while (pos + 2 <= buf.length && buf.readUInt16LE(pos) === 0x0002) {
    if (pos + 8 > buf.length)
      throw malformed(`File Meta ends inside an element header at byte offset ${pos}`);
    const tag = ((0x0002 << 16) | buf.readUInt16LE(pos + 2)) >>> 0;
    const vr = buf.toString('latin1', pos + 4, pos + 6);
    let header = 8;
    let length: number;
    if (LONG_VRS.has(vr)) {
      if (pos + 12 > buf.length)
        throw malformed(`File Meta ends inside an element header at byte offset ${pos}`);
      length = buf.readUInt32LE(pos + 8);
      header = 12;
    } else if (SHORT_VRS.has(vr)) {
      length = buf.readUInt16LE(pos + 6);
    } else {
      // PS3.10 7.1: File Meta is always Explicit VR Little Endian.
      const hex = buf.subarray(pos + 4, pos + 6).toString('hex');
      throw malformed(
        `invalid VR 0x${hex} for ${formatTag(tag)} at byte offset ${pos} (File Meta must be Explicit VR LE)`,
      );
    }
    if (length === 0xffffffff)
      throw malformed(`undefined length for ${formatTag(tag)} in File Meta`);
    const end = pos + header + length;
    if (end > buf.length)
      throw malformed(
        `File Meta element ${formatTag(tag)} at byte offset ${pos} runs past the end of the file`,
      );
    if (fileMeta.has(tag)) throw malformed(`File Meta element ${formatTag(tag)} occurs twice`);
    const value = Buffer.from(buf.subarray(pos + header, end));
    fileMeta.set(tag, value);
    if (tag === GROUP_LENGTH) {
      if (value.length !== 4) throw malformed('(0002,0000) group length is not 4 bytes');
      groupEnd = end + value.readUInt32LE(0);
    }
    pos = end;
  }
  if (groupEnd !== undefined && groupEnd !== pos) {
    throw malformed(
      `(0002,0000) gives group 0002 an end at byte offset ${groupEnd}, but its elements end at ${pos}`,
    );
  }
  const uid = (tag: number, name: string): string => {
    const v = fileMeta.get(tag);
    const s = v
      ? v
          .toString('latin1')
          .replace(/[\0 ]+$/, '')
          .trim()
      : '';
    if (s === '') throw malformed(`File Meta lacks ${name} ${formatTag(tag)}`);
    return s;
  };
  return {
    fileMeta,
    transferSyntaxUid: uid(TRANSFER_SYNTAX_UID, 'Transfer Syntax UID'),
    mediaStorageSopClassUid: uid(MEDIA_STORAGE_SOP_CLASS_UID, 'Media Storage SOP Class UID'),
    mediaStorageSopInstanceUid: uid(
      MEDIA_STORAGE_SOP_INSTANCE_UID,
      'Media Storage SOP Instance UID',
    ),
    datasetOffset: pos,
  };
}

function malformed(message: string): GatewayError {
  return new GatewayError('GW_ERR_DATASET_MALFORMED', message);
}

/**
 * PS3.5 9.1, as received (./uid.ts). Trailing NUL or space padding (PS3.5 6.2, UI) is removed
 * first: it is added back on encoding.
 */
function checkUid(name: string, value: string, code: GatewayErrorCode): string {
  const uid = value.replace(/[\0 ]+$/, '');
  if (!isValidUid(uid)) {
    throw new GatewayError(code, `${name} ${JSON.stringify(value)} is not a valid UID (PS3.5 9.1)`);
  }
  return uid;
}

/** PS3.5 6.2, SH: at most 16 characters of the default repertoire, no backslash, no control characters. */
function checkShortString(name: string, value: string): void {
  if (value.length > 16 || !/^[\x20-\x5b\x5d-\x7e]+$/.test(value)) {
    throw new GatewayError(
      'GW_ERR_INTERNAL',
      `${name} ${JSON.stringify(value)} must be 1-16 printable ASCII characters without a backslash`,
    );
  }
}

/** PS3.5 7.1.1: values have an even length; UI is padded with NUL, text with a space. */
function padded(value: string, pad: number): Buffer {
  const b = Buffer.from(value, 'latin1');
  return b.length % 2 === 0 ? b : Buffer.concat([b, Buffer.from([pad])]);
}

/** One Explicit VR Little Endian element of group 0002 (PS3.5 7.1.2). */
function element(elementNumber: number, vr: string, value: Buffer): Buffer {
  const long = LONG_VRS.has(vr);
  const header = Buffer.alloc(long ? 12 : 8);
  header.writeUInt16LE(0x0002, 0);
  header.writeUInt16LE(elementNumber, 2);
  header.write(vr, 4, 'latin1');
  if (long) header.writeUInt32LE(value.length, 8);
  else header.writeUInt16LE(value.length, 6);
  return Buffer.concat([header, value]);
}
