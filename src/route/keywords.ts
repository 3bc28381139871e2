/**
 * The attributes a routing rule may test under `tags:`, by PS3.6 keyword, with tag and VR
 * (PS3.6 Table 6-1). Only top-level attributes that come before Pixel Data and are not
 * sequences: those are what DatasetReader collects while the instance is still arriving, before
 * anything durable is written. The VR comes from this table, not from the data set: an Implicit
 * VR data set carries none, and the VR decides how a value is decoded (character set, binary
 * numbers) and which operators apply to it.
 */

// prettier-ignore
export const ROUTE_KEYWORDS = {
  SpecificCharacterSet: [0x00080005, 'CS'],
  ImageType: [0x00080008, 'CS'],
  InstanceCreationDate: [0x00080012, 'DA'],
  InstanceCreationTime: [0x00080013, 'TM'],
  SOPClassUID: [0x00080016, 'UI'],
  SOPInstanceUID: [0x00080018, 'UI'],
  StudyDate: [0x00080020, 'DA'],
  SeriesDate: [0x00080021, 'DA'],
  AcquisitionDate: [0x00080022, 'DA'],
  ContentDate: [0x00080023, 'DA'],
  AcquisitionDateTime: [0x0008002a, 'DT'],
  StudyTime: [0x00080030, 'TM'],
  SeriesTime: [0x00080031, 'TM'],
  AcquisitionTime: [0x00080032, 'TM'],
  ContentTime: [0x00080033, 'TM'],
  AccessionNumber: [0x00080050, 'SH'],
  Modality: [0x00080060, 'CS'],
  ConversionType: [0x00080064, 'CS'],
  Manufacturer: [0x00080070, 'LO'],
  InstitutionName: [0x00080080, 'LO'],
  ReferringPhysicianName: [0x00080090, 'PN'],
  TimezoneOffsetFromUTC: [0x00080201, 'SH'],
  StationName: [0x00081010, 'SH'],
  StudyDescription: [0x00081030, 'LO'],
  SeriesDescription: [0x0008103e, 'LO'],
  InstitutionalDepartmentName: [0x00081040, 'LO'],
  PerformingPhysicianName: [0x00081050, 'PN'],
  OperatorsName: [0x00081070, 'PN'],
  ManufacturerModelName: [0x00081090, 'LO'],
  PatientName: [0x00100010, 'PN'],
  PatientID: [0x00100020, 'LO'],
  IssuerOfPatientID: [0x00100021, 'LO'],
  PatientBirthDate: [0x00100030, 'DA'],
  PatientSex: [0x00100040, 'CS'],
  PatientAge: [0x00101010, 'AS'],
  PatientWeight: [0x00101030, 'DS'],
  PatientComments: [0x00104000, 'LT'],
  ContrastBolusAgent: [0x00180010, 'LO'],
  BodyPartExamined: [0x00180015, 'CS'],
  ScanningSequence: [0x00180020, 'CS'],
  SliceThickness: [0x00180050, 'DS'],
  KVP: [0x00180060, 'DS'],
  MagneticFieldStrength: [0x00180087, 'DS'],
  DeviceSerialNumber: [0x00181000, 'LO'],
  SoftwareVersions: [0x00181020, 'LO'],
  ProtocolName: [0x00181030, 'LO'],
  ViewPosition: [0x00185101, 'CS'],
  StudyInstanceUID: [0x0020000d, 'UI'],
  SeriesInstanceUID: [0x0020000e, 'UI'],
  StudyID: [0x00200010, 'SH'],
  SeriesNumber: [0x00200011, 'IS'],
  AcquisitionNumber: [0x00200012, 'IS'],
  InstanceNumber: [0x00200013, 'IS'],
  Laterality: [0x00200060, 'CS'],
  ImageLaterality: [0x00200062, 'CS'],
  ImageComments: [0x00204000, 'LT'],
  SamplesPerPixel: [0x00280002, 'US'],
  PhotometricInterpretation: [0x00280004, 'CS'],
  NumberOfFrames: [0x00280008, 'IS'],
  Rows: [0x00280010, 'US'],
  Columns: [0x00280011, 'US'],
  BitsAllocated: [0x00280100, 'US'],
  BitsStored: [0x00280101, 'US'],
  BurnedInAnnotation: [0x00280301, 'CS'],
  LossyImageCompression: [0x00282110, 'CS'],
  RequestingPhysician: [0x00321032, 'PN'],
  RequestedProcedureDescription: [0x00321060, 'LO'],
  PerformedProcedureStepDescription: [0x00400254, 'LO'],
} as const satisfies Record<string, readonly [number, string]>;

export type RouteKeyword = keyof typeof ROUTE_KEYWORDS;

const KEYWORDS: ReadonlyMap<string, readonly [number, string]> = new Map(
  Object.entries(ROUTE_KEYWORDS),
);

export function isRouteKeyword(s: string): s is RouteKeyword {
  return KEYWORDS.has(s);
}

/** PS3.5 Table 6.2-1: VRs whose values are numbers, for `{min, max}` and numeric equality. */
export const NUMERIC_VRS: ReadonlySet<string> = new Set(['IS', 'DS', 'US', 'UL', 'SS', 'SL']);

/** The kind of `{from, to}` bounds a VR takes, or undefined when it is not a date or time. */
export function temporalKind(vr: string): 'DA' | 'TM' | 'DT' | undefined {
  return vr === 'DA' || vr === 'TM' || vr === 'DT' ? vr : undefined;
}
