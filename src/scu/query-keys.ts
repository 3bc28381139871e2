/**
 * The Study Root Query/Retrieve keys the gateway names (PS3.4 C.6.2.1), by keyword, with their
 * tags and VRs (PS3.6). Any other key can be given as a raw { tag, vr } element.
 */
import type { IdentifierElement } from '../dicom/identifier.js';

// prettier-ignore
export const QUERY_KEYS = {
  SpecificCharacterSet: [0x00080005, 'CS'],
  StudyDate: [0x00080020, 'DA'],
  StudyTime: [0x00080030, 'TM'],
  AccessionNumber: [0x00080050, 'SH'],
  QueryRetrieveLevel: [0x00080052, 'CS'],
  RetrieveAETitle: [0x00080054, 'AE'],
  ModalitiesInStudy: [0x00080061, 'CS'],
  Modality: [0x00080060, 'CS'],
  SOPClassUID: [0x00080016, 'UI'],
  SOPInstanceUID: [0x00080018, 'UI'],
  StudyDescription: [0x00081030, 'LO'],
  PatientName: [0x00100010, 'PN'],
  PatientID: [0x00100020, 'LO'],
  StudyInstanceUID: [0x0020000d, 'UI'],
  SeriesInstanceUID: [0x0020000e, 'UI'],
  StudyID: [0x00200010, 'SH'],
  SeriesNumber: [0x00200011, 'IS'],
  InstanceNumber: [0x00200013, 'IS'],
  NumberOfStudyRelatedSeries: [0x00201206, 'IS'],
  NumberOfStudyRelatedInstances: [0x00201208, 'IS'],
  NumberOfSeriesRelatedInstances: [0x00201209, 'IS'],
} as const satisfies Record<string, readonly [number, string]>;

export type QueryKeyword = keyof typeof QUERY_KEYS;
export type QueryLevel = 'STUDY' | 'SERIES' | 'IMAGE';

/** A query's keys: '' asks the source to return the key (universal matching). */
export type QueryKeys = Partial<Record<QueryKeyword, string>>;

/** A match as text by keyword; keys the source did not return are absent. */
export type QueryMatch = Partial<Record<QueryKeyword, string>>;

const BY_TAG = new Map<number, QueryKeyword>(
  Object.entries(QUERY_KEYS).map(([k, [tag]]) => [tag, k as QueryKeyword]),
);

export function keywordOf(tag: number): QueryKeyword | undefined {
  return BY_TAG.get(tag);
}

/** The identifier's elements: the level, the keyword keys, then any raw elements. */
export function queryElements(
  level: QueryLevel,
  keys: QueryKeys,
  extra: readonly IdentifierElement[] = [],
): IdentifierElement[] {
  const out: IdentifierElement[] = [
    { tag: QUERY_KEYS.QueryRetrieveLevel[0], vr: 'CS', value: level },
  ];
  for (const [k, v] of Object.entries(keys) as Array<[QueryKeyword, string | undefined]>) {
    if (v === undefined || k === 'QueryRetrieveLevel') continue;
    const [tag, vr] = QUERY_KEYS[k];
    out.push({ tag, vr, value: v });
  }
  return [...out, ...extra.filter((e) => !out.some((o) => o.tag === e.tag))];
}
