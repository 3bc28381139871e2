/**
 * Maps the top-level elements a DatasetReader collected to the attributes the
 * index records. Text is decoded per Specific Character Set; numbers are
 * decoded per the transfer syntax's byte order.
 */
import { GatewayError } from '../errors.js';
import type { InstanceAttributes } from '../index/instance-index.js';
import { decodeText } from './charset.js';
import { formatTag } from './header-reader.js';
import type { DatasetReader } from './header-reader.js';

export { formatTag };

/** PS3.6 tags of the attributes the index reads, by keyword. */
export const Tags = {
  SpecificCharacterSet: 0x00080005,
  SOPClassUID: 0x00080016,
  SOPInstanceUID: 0x00080018,
  StudyDate: 0x00080020,
  StudyTime: 0x00080030,
  AccessionNumber: 0x00080050,
  Modality: 0x00080060,
  InstitutionName: 0x00080080,
  ReferringPhysicianName: 0x00080090,
  StudyDescription: 0x00081030,
  SeriesDescription: 0x0008103e,
  PatientName: 0x00100010,
  PatientID: 0x00100020,
  IssuerOfPatientID: 0x00100021,
  PatientBirthDate: 0x00100030,
  PatientSex: 0x00100040,
  BodyPartExamined: 0x00180015,
  StudyInstanceUID: 0x0020000d,
  SeriesInstanceUID: 0x0020000e,
  StudyID: 0x00200010,
  SeriesNumber: 0x00200011,
  InstanceNumber: 0x00200013,
  NumberOfFrames: 0x00280008,
  Rows: 0x00280010,
  Columns: 0x00280011,
  PixelData: 0x7fe00010,
} as const;

export type TagKeyword = keyof typeof Tags;

/**
 * The last top-level tag the index reads (Pixel Data aside): a DatasetReader given it as
 * lastTag stops collecting there, and stops inflating a deflated data set.
 */
export const LAST_INDEXED_TAG = Math.max(
  ...Object.values(Tags).filter((tag) => tag !== Tags.PixelData),
);

export function tagOf(keyword: TagKeyword): number {
  return Tags[keyword];
}

type KeysOf<T> = {
  [K in keyof InstanceAttributes]-?: InstanceAttributes[K] extends T | undefined ? K : never;
}[keyof InstanceAttributes];

/** The text attributes: InstanceAttributes key, tag, and PS3.6 VR (which decides the repertoire). */
const TEXT_ATTRIBUTES: ReadonlyArray<[KeysOf<string>, TagKeyword, string]> = [
  ['patientId', 'PatientID', 'LO'],
  ['issuerOfPatientId', 'IssuerOfPatientID', 'LO'],
  ['patientName', 'PatientName', 'PN'],
  ['patientBirthDate', 'PatientBirthDate', 'DA'],
  ['patientSex', 'PatientSex', 'CS'],
  ['studyDate', 'StudyDate', 'DA'],
  ['studyTime', 'StudyTime', 'TM'],
  ['accessionNumber', 'AccessionNumber', 'SH'],
  ['studyId', 'StudyID', 'SH'],
  ['studyDescription', 'StudyDescription', 'LO'],
  ['referringPhysicianName', 'ReferringPhysicianName', 'PN'],
  ['institutionName', 'InstitutionName', 'LO'],
  ['modality', 'Modality', 'CS'],
  ['seriesDescription', 'SeriesDescription', 'LO'],
  ['bodyPartExamined', 'BodyPartExamined', 'CS'],
];

const REQUIRED_UIDS: ReadonlyArray<[KeysOf<string>, TagKeyword, string]> = [
  ['sopClassUid', 'SOPClassUID', 'SOP Class UID'],
  ['sopInstanceUid', 'SOPInstanceUID', 'SOP Instance UID'],
  ['studyInstanceUid', 'StudyInstanceUID', 'Study Instance UID'],
  ['seriesInstanceUid', 'SeriesInstanceUID', 'Series Instance UID'],
];

/**
 * Throws GW_ERR_DATASET_MISSING_UID when SOP Class, SOP Instance, Study or
 * Series Instance UID is absent or empty (all Type 1, PS3.3 C.12.1, C.7.2.1, C.7.3.1).
 */
export function extractAttributes(reader: DatasetReader): InstanceAttributes {
  const elements = reader.elements();
  const raw = (keyword: TagKeyword): Buffer | undefined => {
    const value = elements.get(Tags[keyword])?.value;
    return value && value.length > 0 ? value : undefined;
  };
  const charsetBytes = raw('SpecificCharacterSet');
  const charset = charsetBytes ? clean(decodeText(charsetBytes, undefined, 'CS')) : undefined;
  const text = (keyword: TagKeyword, vr: string): string | undefined => {
    const bytes = raw(keyword);
    return bytes ? clean(decodeText(bytes, charset, vr)) : undefined;
  };

  const attrs: Partial<InstanceAttributes> = {};
  const missing: string[] = [];
  for (const [key, keyword, name] of REQUIRED_UIDS) {
    const uid = text(keyword, 'UI');
    if (uid === undefined) missing.push(`${name} ${formatTag(Tags[keyword])}`);
    else attrs[key] = uid;
  }
  if (missing.length > 0) {
    throw new GatewayError('GW_ERR_DATASET_MISSING_UID', `data set lacks ${missing.join(', ')}`);
  }
  if (charset !== undefined) attrs.specificCharacterSet = charset;
  for (const [key, keyword, vr] of TEXT_ATTRIBUTES) {
    let value = text(keyword, vr);
    // PS3.5 6.2.1.1: a PN of delimiters only (`^^^^`) is an empty name.
    if (vr === 'PN' && value !== undefined && /^[\^=\s]*$/.test(value)) value = undefined;
    if (value !== undefined) attrs[key] = value;
  }
  const integers: ReadonlyArray<[KeysOf<number>, number | undefined]> = [
    ['seriesNumber', integerString(raw('SeriesNumber'))],
    ['instanceNumber', integerString(raw('InstanceNumber'))],
    ['numberOfFrames', integerString(raw('NumberOfFrames'))],
    ['rows', unsignedShort(raw('Rows'), reader.littleEndian)],
    ['columns', unsignedShort(raw('Columns'), reader.littleEndian)],
  ];
  for (const [key, value] of integers) if (value !== undefined) attrs[key] = value;
  // All four UIDs were set above.
  return attrs as InstanceAttributes;
}

/** decodeText already removed trailing padding; SH, LO, CS, DA... also ignore leading spaces (PS3.5 6.2). */
function clean(s: string): string | undefined {
  const t = s.trim();
  return t === '' ? undefined : t;
}

/** PS3.5 6.2 IS: an integer in -2^31..2^31-1 written in ASCII; the first value of a multi-valued one. */
function integerString(bytes: Buffer | undefined): number | undefined {
  if (!bytes) return undefined;
  const first = (decodeText(bytes, undefined, 'IS').split('\\')[0] ?? '').trim();
  if (!/^[+-]?\d{1,10}$/.test(first)) return undefined;
  const n = Number(first);
  return n >= -(2 ** 31) && n < 2 ** 31 ? n : undefined;
}

/** PS3.5 6.2 US: 16-bit unsigned binary, in the transfer syntax's byte order (PS3.5 7.3). */
function unsignedShort(bytes: Buffer | undefined, littleEndian: boolean): number | undefined {
  if (!bytes || bytes.length < 2) return undefined;
  return littleEndian ? bytes.readUInt16LE(0) : bytes.readUInt16BE(0);
}
