// The DICOM test files that Debian's python3-pydicom ships, classified for gateway tests.
//
// The table below is static on purpose: tests must not re-run the tools to learn what to expect.
// It was derived on Debian 12 with python3-pydicom 2.3.1-1 and dcmtk 3.6.7-9~deb12u4 by running,
// for every *.dcm under test_files/ and every file under test_files/dicomdirtests/:
//   dcmftest F; dcmdump -M F; pydicom.dcmread(F, force=True) for TransferSyntax/SOP UIDs;
//   storescu -v (no TS option) -> storescp +xa          ("default" column);
//   storescu -v -R <TS option> -> storescp +xa +B -od D  (+B writes the received bytes as is),
// then compared the data set bytes after the File Meta (the whole file for "raw" input) of F and
// of the received file, and explained differences by diffing `dcmdump -M +L` of both. Re-derive
// (and update `bytes`) when either package changes; pydicomTestFiles() reports rows whose file
// size no longer matches as `stale` instead of trusting them.
//
// Findings that shape the tests:
// * storescu always decodes and re-encodes the data set ("Converting transfer syntax: X -> X"
//   even when X is unchanged), so "sent unchanged" is a property of the file, not an option.
//   Byte-exact round trips are possible only for rows marked `exact`.
// * Without a TS option storescu proposes only uncompressed syntaxes: compressed files fail
//   ("unable to convert"), implicit-LE files go out as explicit LE, deflate is inflated.
//   The option per row (-xi/-xe/-xb/-xd/-xy/-xx/-xs/-xt/-xv/-xw/-xr) makes it propose the file's
//   own syntax; -R (only the SOP classes of the files given) is needed for Segmentation and RT Ion
//   Plan, which are missing from storescu's default list. The -x options exclude each other, so
//   send each group of storescuArgs in its own storescu run.
// * Deflate can never round-trip byte-exact through storescu: it re-deflates (the inflated
//   data set is identical).
import { statSync } from 'node:fs';
import { join } from 'node:path';

export const PYDICOM_TEST_FILES_DIR = '/usr/lib/python3/dist-packages/pydicom/data/test_files';

export type Kind = 'sendable' | 'refused' | 'broken';

export interface PydicomFile {
  /** Path relative to the test_files directory. */
  name: string;
  path: string;
  /** Size when classified; a different size means pydicom changed the file. */
  bytes: number;
  /** Has a preamble and File Meta (dcmftest "yes"); raw data sets have neither. */
  part10: boolean;
  /** gen-study style name ('explicit-le', 'j2k', ...); for raw files the actual encoding. */
  transferSyntax: string;
  transferSyntaxUid: string | undefined;
  sopClassUid: string | undefined;
  kind: Kind;
  /** storescu options that send the file in its own transfer syntax (empty when refused). */
  storescuArgs: string[];
  /** What plain storescu (no TS option) did: kept the syntax, converted it, or failed. */
  defaultStorescu: 'same' | 'converted' | 'fails';
  /** Data set bytes arrive unchanged when sent with storescuArgs. */
  byteExact: boolean;
  /** Why a sendable file does not arrive byte-exact (keys of CHANGES). */
  changes: string[];
  /** Why storescu refuses a refused/broken file. */
  reason: string | undefined;
}

export const CHANGES: Record<string, string> = {
  'trailing-padding': 'DataSetTrailingPadding (FFFC,FFFC) is dropped',
  'undefined-length-sq':
    'undefined-length sequences and items are re-encoded with explicit lengths',
  'group-length': 'group length elements (gggg,0000) are recalculated',
  'value-trimmed': 'trailing spaces in a CS value (ImageType) are trimmed',
  'pixel-data-vr': 'encapsulated PixelData with VR OW is re-encoded as OB',
  're-deflated': 'inflated and deflated again: other deflate bytes, identical inflated data set',
};

export const REASONS: Record<string, string> = {
  'no-sop-uids':
    "no SOPClassUID/SOPInstanceUID in the data set (a fragment or a DICOMDIR): storescu 'missing SOP class (or instance)'",
  'sop-uids-vr-un':
    'SOPClassUID/SOPInstanceUID are encoded with VR UN, which storescu does not read',
  'ts-misdetected':
    'no File Meta (it is CT_small.dcm without it): DCMTK guesses the encoding wrongly and stops parsing',
  'truncated-pixel-data': 'PixelData declares 8192 bytes, fewer remain in the file',
  'truncated-element': 'the file ends inside IsocenterPosition (300a,012c)',
  'vr-mismatch':
    'File Meta declares JPEG Baseline (explicit VR) but the data set is implicit VR: DCMTK fails at (0008,0008)',
};

const TS_UIDS: Record<string, string> = {
  'implicit-le': '1.2.840.10008.1.2',
  'explicit-le': '1.2.840.10008.1.2.1',
  'explicit-be': '1.2.840.10008.1.2.2',
  deflate: '1.2.840.10008.1.2.1.99',
  'jpeg-baseline': '1.2.840.10008.1.2.4.50',
  'jpeg-extended': '1.2.840.10008.1.2.4.51',
  'jpeg-lossless': '1.2.840.10008.1.2.4.70',
  'jpeg-ls-lossless': '1.2.840.10008.1.2.4.80',
  'j2k-lossless': '1.2.840.10008.1.2.4.90',
  j2k: '1.2.840.10008.1.2.4.91',
  rle: '1.2.840.10008.1.2.5',
};

const SOP_CLASSES: Record<string, string> = {
  CR: '1.2.840.10008.5.1.4.1.1.1',
  CT: '1.2.840.10008.5.1.4.1.1.2',
  MR: '1.2.840.10008.5.1.4.1.1.4',
  US: '1.2.840.10008.5.1.4.1.1.6.1',
  SC: '1.2.840.10008.5.1.4.1.1.7',
  ECG12Lead: '1.2.840.10008.5.1.4.1.1.9.1.1',
  Seg: '1.2.840.10008.5.1.4.1.1.66.4',
  BasicSR: '1.2.840.10008.5.1.4.1.1.88.11',
  ComprehensiveSR: '1.2.840.10008.5.1.4.1.1.88.33',
  RTDose: '1.2.840.10008.5.1.4.1.1.481.2',
  RTStruct: '1.2.840.10008.5.1.4.1.1.481.3',
  RTPlan: '1.2.840.10008.5.1.4.1.1.481.5',
  RTIonPlan: '1.2.840.10008.5.1.4.1.1.481.8',
};

// name | bytes | p10/raw | transfer syntax | SOP class | TS option | plain storescu | outcome
const TABLE = `
693_J2KI.dcm                             3590   p10 j2k              CT              -xw fails     changed:group-length,undefined-length-sq
CT_small.dcm                             39206  p10 explicit-le      CT              -xe same      changed:trailing-padding
ExplVR_BigEnd.dcm                        15412  p10 explicit-be      US              -xb same      exact
ExplVR_BigEndNoMeta.dcm                  434    raw explicit-be      RTIonPlan       -xb fails     exact
ExplVR_LitEndNoMeta.dcm                  434    raw explicit-le      RTIonPlan       -xe fails     exact
GDCMJ2K_TextGBR.dcm                      30706  p10 j2k-lossless     SC              -xv fails     exact
J2K_pixelrep_mismatch.dcm                138518 p10 j2k-lossless     CT              -xv fails     exact
JPEG-lossy.dcm                           9844   p10 jpeg-extended    SC              -xx fails     changed:undefined-length-sq
JPEG2000-embedded-sequence-delimiter.dcm 3308   p10 j2k              SC              -xw fails     changed:undefined-length-sq
JPEG2000.dcm                             3308   p10 j2k              SC              -xw fails     changed:undefined-length-sq
JPGExtended.dcm                          9844   p10 jpeg-extended    SC              -xx fails     changed:undefined-length-sq
MR_small.dcm                             9830   p10 explicit-le      MR              -xe same      changed:trailing-padding
MR_small_RLE.dcm                         7790   p10 rle              MR              -xr fails     changed:trailing-padding
MR_small_bigendian.dcm                   9708   p10 explicit-be      MR              -xb same      exact
MR_small_expb.dcm                        9846   p10 explicit-be      MR              -xb same      changed:trailing-padding
MR_small_implicit.dcm                    9702   p10 implicit-le      MR              -xi converted exact
MR_small_jp2klossless.dcm                6008   p10 j2k-lossless     MR              -xv fails     changed:trailing-padding
MR_small_jpeg_ls_lossless.dcm            6124   p10 jpeg-ls-lossless MR              -xt fails     changed:trailing-padding
MR_small_padded.dcm                      9958   p10 explicit-le      MR              -xe same      changed:trailing-padding
MR_truncated.dcm                         9630   p10 explicit-le      MR              -xe fails     broken:truncated-pixel-data
SC_jpeg_no_color_transform.dcm           4316   p10 jpeg-baseline    SC              -xy fails     exact
SC_jpeg_no_color_transform_2.dcm         4310   p10 jpeg-baseline    SC              -xy fails     exact
SC_rgb_dcmtk_+eb+cr.dcm                  3626   p10 jpeg-baseline    SC              -xy fails     exact
SC_rgb_dcmtk_+eb+cy+n1.dcm               3136   p10 jpeg-baseline    SC              -xy fails     exact
SC_rgb_dcmtk_+eb+cy+n2.dcm               3090   p10 jpeg-baseline    SC              -xy fails     exact
SC_rgb_dcmtk_+eb+cy+np.dcm               3140   p10 jpeg-baseline    SC              -xy fails     exact
SC_rgb_dcmtk_+eb+cy+s2.dcm               3094   p10 jpeg-baseline    SC              -xy fails     exact
SC_rgb_dcmtk_+eb+cy+s4.dcm               3420   p10 jpeg-baseline    SC              -xy fails     exact
SC_rgb_gdcm_KY.dcm                       2998   p10 j2k              SC              -xw fails     changed:undefined-length-sq,value-trimmed
SC_rgb_jpeg.dcm                          4464   p10 jpeg-baseline    SC              -xy fails     broken:vr-mismatch
SC_rgb_jpeg_app14_dcmd.dcm               4310   p10 jpeg-baseline    SC              -xy fails     exact
SC_rgb_jpeg_dcmd.dcm                     197506 p10 implicit-le      SC              -xi converted exact
SC_rgb_jpeg_dcmtk.dcm                    3424   p10 jpeg-baseline    SC              -xy fails     exact
SC_rgb_jpeg_gdcm.dcm                     5204   p10 jpeg-lossless    SC              -xs fails     exact
SC_rgb_jpeg_lossy_gdcm.dcm               5042   p10 jpeg-baseline    SC              -xy fails     changed:undefined-length-sq,value-trimmed
SC_rgb_rle.dcm                           2006   p10 rle              SC              -xr fails     exact
SC_rgb_rle_16bit.dcm                     2606   p10 rle              SC              -xr fails     changed:pixel-data-vr
SC_rgb_rle_16bit_2frame.dcm              3896   p10 rle              SC              -xr fails     changed:pixel-data-vr
SC_rgb_rle_2frame.dcm                    2696   p10 rle              SC              -xr fails     exact
SC_rgb_rle_32bit.dcm                     3760   p10 rle              SC              -xr fails     exact
SC_rgb_rle_32bit_2frame.dcm              6246   p10 rle              SC              -xr fails     exact
SC_rgb_small_odd.dcm                     1444   p10 explicit-le      SC              -xe same      exact
SC_rgb_small_odd_jpeg.dcm                2044   p10 jpeg-baseline    SC              -xy fails     exact
SC_ybr_full_422_uncompressed.dcm         21686  p10 explicit-le      SC              -xe same      exact
UN_sequence.dcm                          674    p10 jpeg-lossless    -               -xs fails     refused:no-sop-uids
badVR.dcm                                7618   p10 explicit-le      RTDose          -xe same      exact
dicomdirtests/77654033/CR1/6154          2300   p10 explicit-le      CR              -xe same      exact
dicomdirtests/77654033/CR2/6247          2298   p10 explicit-le      CR              -xe same      exact
dicomdirtests/77654033/CR3/6278          2298   p10 explicit-le      CR              -xe same      exact
dicomdirtests/77654033/CT2/17106         3810   p10 explicit-le      CT              -xe same      exact
dicomdirtests/77654033/CT2/17136         3812   p10 explicit-le      CT              -xe same      exact
dicomdirtests/77654033/CT2/17166         3812   p10 explicit-le      CT              -xe same      exact
dicomdirtests/77654033/CT2/17196         3812   p10 explicit-le      CT              -xe same      exact
dicomdirtests/98892001/CT2N/6293         3920   p10 explicit-le      CT              -xe same      changed:undefined-length-sq
dicomdirtests/98892001/CT2N/6924         3908   p10 explicit-le      CT              -xe same      changed:undefined-length-sq
dicomdirtests/98892001/CT5N/2062         3936   p10 explicit-le      CT              -xe same      changed:undefined-length-sq
dicomdirtests/98892001/CT5N/2392         3936   p10 explicit-le      CT              -xe same      changed:undefined-length-sq
dicomdirtests/98892001/CT5N/2693         3936   p10 explicit-le      CT              -xe same      changed:undefined-length-sq
dicomdirtests/98892001/CT5N/3023         3936   p10 explicit-le      CT              -xe same      changed:undefined-length-sq
dicomdirtests/98892001/CT5N/3353         3938   p10 explicit-le      CT              -xe same      changed:undefined-length-sq
dicomdirtests/98892003/MR1/15820         2336   p10 explicit-le      MR              -xe same      exact
dicomdirtests/98892003/MR1/4919          2336   p10 explicit-le      MR              -xe same      exact
dicomdirtests/98892003/MR1/5641          2330   p10 explicit-le      MR              -xe same      exact
dicomdirtests/98892003/MR2/15970         2336   p10 explicit-le      MR              -xe same      exact
dicomdirtests/98892003/MR2/4950          2356   p10 explicit-le      MR              -xe same      exact
dicomdirtests/98892003/MR2/4981          2354   p10 explicit-le      MR              -xe same      exact
dicomdirtests/98892003/MR2/5011          2354   p10 explicit-le      MR              -xe same      exact
dicomdirtests/98892003/MR2/6273          2348   p10 explicit-le      MR              -xe same      exact
dicomdirtests/98892003/MR2/6605          2348   p10 explicit-le      MR              -xe same      exact
dicomdirtests/98892003/MR2/6935          2350   p10 explicit-le      MR              -xe same      exact
dicomdirtests/98892003/MR700/4467        2350   p10 explicit-le      MR              -xe same      exact
dicomdirtests/98892003/MR700/4528        2348   p10 explicit-le      MR              -xe same      exact
dicomdirtests/98892003/MR700/4558        2348   p10 explicit-le      MR              -xe same      exact
dicomdirtests/98892003/MR700/4588        2350   p10 explicit-le      MR              -xe same      exact
dicomdirtests/98892003/MR700/4618        2350   p10 explicit-le      MR              -xe same      exact
dicomdirtests/98892003/MR700/4648        2350   p10 explicit-le      MR              -xe same      exact
dicomdirtests/98892003/MR700/4678        2350   p10 explicit-le      MR              -xe same      exact
dicomdirtests/DICOMDIR                   11116  p10 explicit-le      -               -xe fails     refused:no-sop-uids
dicomdirtests/DICOMDIR-bigEnd            11116  p10 explicit-be      -               -xb fails     refused:no-sop-uids
dicomdirtests/DICOMDIR-empty.dcm         396    p10 explicit-le      -               -xe fails     refused:no-sop-uids
dicomdirtests/DICOMDIR-implicit          11110  p10 implicit-le      -               -xi fails     refused:no-sop-uids
dicomdirtests/DICOMDIR-nooffset          11092  p10 explicit-le      -               -xe fails     refused:no-sop-uids
dicomdirtests/DICOMDIR-nopatient         11116  p10 explicit-le      -               -xe fails     refused:no-sop-uids
dicomdirtests/DICOMDIR-reordered         11116  p10 explicit-le      -               -xe fails     refused:no-sop-uids
dicomdirtests/TINY_ALPHA/DICOMDIR        13066  p10 explicit-le      -               -xe fails     refused:no-sop-uids
empty_charset_LEI.dcm                    276    p10 implicit-le      -               -xi fails     refused:no-sop-uids
image_dfl.dcm                            4637   p10 deflate          SC              -xd converted changed:re-deflated
liver_1frame.dcm                         37084  p10 explicit-le      Seg             -xe fails     changed:undefined-length-sq
liver_expb_1frame.dcm                    36532  p10 explicit-be      Seg             -xb fails     exact
meta_missing_tsyntax.dcm                 317    p10 -                -               -   fails     refused:no-sop-uids
nested_priv_SQ.dcm                       343    p10 implicit-le      -               -xi fails     refused:no-sop-uids
no_meta.dcm                              38871  raw explicit-le      -               -   fails     refused:ts-misdetected
no_meta_group_length.dcm                 408    p10 implicit-le      -               -xi fails     refused:no-sop-uids
priv_SQ.dcm                              546    p10 implicit-le      -               -xi fails     refused:no-sop-uids
reportsi.dcm                             2968   p10 explicit-le      BasicSR         -xe same      changed:undefined-length-sq
reportsi_with_empty_number_tags.dcm      2700   p10 explicit-le      BasicSR         -xe same      exact
rtdose.dcm                               7568   p10 implicit-le      RTDose          -xi converted exact
rtdose_1frame.dcm                        1958   p10 implicit-le      RTDose          -xi converted exact
rtdose_expb.dcm                          7618   p10 explicit-be      RTDose          -xb same      exact
rtdose_expb_1frame.dcm                   2008   p10 explicit-be      RTDose          -xb same      exact
rtdose_rle.dcm                           6816   p10 rle              RTDose          -xr fails     refused:sop-uids-vr-un
rtdose_rle_1frame.dcm                    2122   p10 rle              RTDose          -xr fails     refused:sop-uids-vr-un
rtplan.dcm                               2672   p10 implicit-le      RTPlan          -xi converted exact
rtplan_truncated.dcm                     2129   p10 implicit-le      RTPlan          -xi fails     broken:truncated-element
rtstruct.dcm                             2534   raw implicit-le      RTStruct        -xi converted changed:undefined-length-sq
test-SR.dcm                              6796   p10 explicit-le      ComprehensiveSR -xe same      exact
waveform_ecg.dcm                         291088 p10 explicit-le      ECG12Lead       -xe same      changed:undefined-length-sq
`;

// dicomdirtests/TINY_ALPHA/PT000000/ST000000/SE000000/IM000000 .. IM00001D (base 36): 50 CT
// instances of 740 bytes each, all alike in the table, so they are expanded here.
const TINY_ALPHA = Array.from(
  { length: 50 },
  (_, i) =>
    `dicomdirtests/TINY_ALPHA/PT000000/ST000000/SE000000/IM${i.toString(36).toUpperCase().padStart(6, '0')} 740 p10 explicit-le CT -xe same exact`,
);

/** Groups of files that carry the same SOP Instance UID (a receiver keeps one object per UID). */
export interface SharedUid {
  sopInstanceUid: string;
  files: string[];
}

export const SHARED_SOP_INSTANCE_UIDS: readonly SharedUid[] = [
  {
    sopInstanceUid: '1.2.333.4444.5.6.7.8',
    files: ['ExplVR_BigEndNoMeta.dcm', 'ExplVR_LitEndNoMeta.dcm'],
  },
  {
    sopInstanceUid: '1.3.6.1.4.1.5962.1.1.8.1.5.20040826185059.5457',
    files: ['JPEG-lossy.dcm', 'JPGExtended.dcm'],
  },
  {
    sopInstanceUid: '1.3.6.1.4.1.5962.1.1.8.1.3.20040826185059.5457',
    files: ['JPEG2000-embedded-sequence-delimiter.dcm', 'JPEG2000.dcm'],
  },
  {
    sopInstanceUid: '1.3.6.1.4.1.5962.1.1.4.1.1.20040826185059.5457',
    files: [
      'MR_small.dcm',
      'MR_small_RLE.dcm',
      'MR_small_bigendian.dcm',
      'MR_small_expb.dcm',
      'MR_small_implicit.dcm',
      'MR_small_jp2klossless.dcm',
      'MR_small_jpeg_ls_lossless.dcm',
      'MR_small_padded.dcm',
      'MR_truncated.dcm',
    ],
  },
  {
    sopInstanceUid: '1.2.826.0.1.3680043.8.498.98830244104132507426674272067370279168',
    files: ['SC_jpeg_no_color_transform_2.dcm', 'SC_rgb_jpeg_app14_dcmd.dcm'],
  },
  {
    sopInstanceUid: '1.2.276.0.7230010.3.1.4.8323329.5846.1512159596.457896',
    files: ['SC_rgb_dcmtk_+eb+cy+n2.dcm', 'SC_ybr_full_422_uncompressed.dcm'],
  },
  {
    sopInstanceUid: '1.2.826.0.1.3680043.8.498.13002811185086637637347356263722492924',
    files: ['SC_rgb_jpeg.dcm', 'SC_rgb_jpeg_dcmd.dcm'],
  },
  {
    sopInstanceUid: '1.2.826.0.1.3680043.8.498.49043964482360854182530167603505525116',
    files: [
      'SC_rgb_jpeg_gdcm.dcm',
      'SC_rgb_rle.dcm',
      'SC_rgb_rle_16bit.dcm',
      'SC_rgb_rle_16bit_2frame.dcm',
      'SC_rgb_rle_2frame.dcm',
      'SC_rgb_rle_32bit.dcm',
      'SC_rgb_rle_32bit_2frame.dcm',
    ],
  },
  {
    sopInstanceUid: '1.9.999.999.99.9.9999.9999.20030818153516',
    files: [
      'badVR.dcm',
      'rtdose.dcm',
      'rtdose_1frame.dcm',
      'rtdose_expb.dcm',
      'rtdose_expb_1frame.dcm',
      'rtdose_rle.dcm',
      'rtdose_rle_1frame.dcm',
    ],
  },
  {
    sopInstanceUid: '1.2.276.0.7230010.3.1.4.0.42154.1458337731.665796',
    files: ['liver_1frame.dcm', 'liver_expb_1frame.dcm'],
  },
  {
    sopInstanceUid: '1.2.276.0.7230010.3.1.4.1787205428.166.1117461927.10',
    files: ['reportsi.dcm', 'reportsi_with_empty_number_tags.dcm'],
  },
  {
    sopInstanceUid: '1.2.777.777.77.7.7777.7777.20030903150023',
    files: ['rtplan.dcm', 'rtplan_truncated.dcm'],
  },
];

function parseRow(line: string, dir: string): PydicomFile {
  const [name = '', bytes = '', p10 = '', ts = '', sop = '', opt = '', dflt = '', outcome = ''] =
    line.trim().split(/\s+/);
  const [result, detail = ''] = outcome.split(':') as [string, string | undefined];
  const kind: Kind = result === 'broken' ? 'broken' : result === 'refused' ? 'refused' : 'sendable';
  return {
    name,
    path: join(dir, name),
    bytes: Number(bytes),
    part10: p10 === 'p10',
    transferSyntax: ts,
    transferSyntaxUid: p10 === 'p10' ? TS_UIDS[ts] : undefined,
    sopClassUid: SOP_CLASSES[sop],
    kind,
    storescuArgs: kind === 'sendable' ? ['-R', opt] : [],
    defaultStorescu: dflt as PydicomFile['defaultStorescu'],
    byteExact: result === 'exact',
    changes: result === 'changed' ? detail.split(',') : [],
    reason: kind === 'sendable' ? undefined : detail,
  };
}

export interface PydicomTestFiles {
  dir: string;
  all: PydicomFile[];
  /** storescu sends them (kind 'sendable'). */
  sendable: PydicomFile[];
  /** Sendable and arriving with identical data set bytes. */
  byteExact: PydicomFile[];
  refused: PydicomFile[];
  broken: PydicomFile[];
  sharedSopInstanceUids: readonly SharedUid[];
  /** Rows whose file is missing or has another size: left out of every list above. */
  stale: string[];
}

/** The classified pydicom test files, or undefined when python3-pydicom is not installed. */
export function pydicomTestFiles(dir = PYDICOM_TEST_FILES_DIR): PydicomTestFiles | undefined {
  try {
    if (!statSync(dir).isDirectory()) return undefined;
  } catch {
    return undefined;
  }
  const all: PydicomFile[] = [];
  const stale: string[] = [];
  const lines = [...TABLE.split('\n'), ...TINY_ALPHA].filter((l) => l.trim() !== '');
  for (const f of lines.map((l) => parseRow(l, dir))) {
    const size = statSync(f.path, { throwIfNoEntry: false })?.size;
    if (size === f.bytes) all.push(f);
    else stale.push(f.name);
  }
  const sendable = all.filter((f) => f.kind === 'sendable');
  return {
    dir,
    all,
    sendable,
    byteExact: sendable.filter((f) => f.byteExact),
    refused: all.filter((f) => f.kind === 'refused'),
    broken: all.filter((f) => f.kind === 'broken'),
    sharedSopInstanceUids: SHARED_SOP_INSTANCE_UIDS,
    stale,
  };
}

/** Files grouped by their storescu options, since one storescu run can propose only one -x set. */
export function groupByStorescuArgs(files: PydicomFile[]): Map<string, PydicomFile[]> {
  const groups = new Map<string, PydicomFile[]>();
  for (const f of files) {
    const key = f.storescuArgs.join(' ');
    groups.set(key, [...(groups.get(key) ?? []), f]);
  }
  return groups;
}
