// Deterministic synthetic DICOM study generator for tests and benchmarks.
//
// Writes Part-10 files (preamble, File Meta with a correct group length, Media Storage SOP =
// dataset SOP) as OUT/<StudyUID>/<SeriesUID>/<SOPInstanceUID>.dcm. The bytes are written
// directly rather than through dcmjs so that every byte is a pure function of the options:
// the same options always give byte-identical files (deflate: as long as Node's bundled zlib
// does not change). UIDs depend only on the seed and the study/series/instance index.
// Pixel data is produced and written in slices, so a 1 GiB multi-frame instance needs only a
// few MiB of memory.
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import {
  elementHeader,
  encodeElements,
  encodeFileMeta,
  encodeText,
  hashInt,
  makeUid,
  normalizeCharset,
  pixelChunks,
  writeInstance,
} from './gen-study-writer.js';
import type { Element, PixelPattern, PixelPlan } from './gen-study-writer.js';

export { makeUid, normalizeCharset, encodeText } from './gen-study-writer.js';
export type { PixelPattern } from './gen-study-writer.js';

export type Modality = 'CT' | 'MR' | 'CR' | 'MG' | 'SC';
export type TransferSyntaxName = 'explicit-le' | 'implicit-le' | 'explicit-be' | 'deflate';

export interface GenerateStudyOptions {
  studies?: number;
  series?: number;
  instances?: number;
  rows?: number;
  cols?: number;
  /** > 1 switches to Multi-frame Grayscale Word SC Image Storage (CT/MR/CR IODs are single-frame). */
  frames?: number;
  modality?: Modality;
  transferSyntax?: TransferSyntaxName;
  /** SpecificCharacterSet, e.g. 'ISO_IR 192' (UTF-8), 'ISO_IR 144' (Cyrillic), 'ISO_IR 100'. */
  charset?: string;
  patientName?: string;
  patientId?: string;
  /** Distinct patients, studies assigned round-robin (default: one per study). */
  patients?: number;
  studyDescription?: string;
  seed?: number;
  pixels?: PixelPattern;
  /** 9..16, default 12. */
  bitsStored?: number;
  /** zlib level for 'deflate', default 6 (noise deflates slowly: use 1 for big sets). */
  deflateLevel?: number;
}

export interface GeneratedFile {
  path: string;
  studyUid: string;
  seriesUid: string;
  sopInstanceUid: string;
  sopClassUid: string;
  transferSyntaxUid: string;
  modality: string;
  patientId: string;
  patientName: string;
  accessionNumber: string;
  studyDate: string;
  seriesNumber: number;
  instanceNumber: number;
  bytes: number;
  sha256: string;
}

export interface GeneratedStudy {
  files: GeneratedFile[];
  bytes: number;
}

export const TRANSFER_SYNTAX_UIDS: Record<TransferSyntaxName, string> = {
  'explicit-le': '1.2.840.10008.1.2.1',
  'implicit-le': '1.2.840.10008.1.2',
  'explicit-be': '1.2.840.10008.1.2.2',
  deflate: '1.2.840.10008.1.2.1.99',
};

export const SOP_CLASS_UIDS = {
  CT: '1.2.840.10008.5.1.4.1.1.2',
  MR: '1.2.840.10008.5.1.4.1.1.4',
  CR: '1.2.840.10008.5.1.4.1.1.1',
  /** Digital Mammography X-Ray Image Storage - For Presentation. */
  MG: '1.2.840.10008.5.1.4.1.1.1.2',
  SC: '1.2.840.10008.5.1.4.1.1.7',
  MULTIFRAME_GRAYSCALE_WORD_SC: '1.2.840.10008.5.1.4.1.1.7.3',
} as const;

const MAX_VALUE_LENGTH = 0xfffffffe;
const LAST_NAMES = [
  'SMITH',
  'GARCIA',
  'MUELLER',
  'ROSSI',
  'NGUYEN',
  'TANAKA',
  'KOWALSKI',
  'DUBOIS',
];
const FIRST_NAMES = ['ALEX', 'MARIA', 'JOHN', 'YUKI', 'OLIVIA', 'AHMED', 'SOFIA', 'LUCAS'];

// ---------------------------------------------------------------------------- datasets

function ds(x: number): string {
  const s = String(Number(x.toPrecision(6)));
  return s === '-0' ? '0' : s;
}

function tm(seconds: number): string {
  const s = seconds % 86400;
  const p = (n: number): string => String(n).padStart(2, '0');
  return p(Math.floor(s / 3600)) + p(Math.floor(s / 60) % 60) + p(s % 60);
}

function da(base: Date, days: number): string {
  return new Date(base.getTime() + days * 86400_000).toISOString().slice(0, 10).replaceAll('-', '');
}

interface Resolved extends Required<
  Omit<
    GenerateStudyOptions,
    'charset' | 'patientName' | 'patientId' | 'studyDescription' | 'deflateLevel'
  >
> {
  charset: string | undefined;
  o: GenerateStudyOptions;
}

function seriesElements(a: Resolved, sopClass: string, s: number, r: number): Element[] {
  const { seed, modality: mod, frames } = a;
  const mf = frames > 1;
  const p = s % a.patients;
  const studyDate = da(new Date(Date.UTC(2024, 0, 1)), hashInt(seed, 'study', s, 'date') % 366);
  const studySec = 7 * 3600 + (hashInt(seed, 'study', s, 'time') % (12 * 3600));
  const name =
    a.o.patientName ??
    `${LAST_NAMES[hashInt(seed, 'patient', p, 'last') % LAST_NAMES.length]}^` +
      FIRST_NAMES[hashInt(seed, 'patient', p, 'first') % FIRST_NAMES.length];
  const els: Element[] = [
    [
      0x00080008,
      'CS',
      mod === 'CT'
        ? ['ORIGINAL', 'PRIMARY', 'AXIAL']
        : mf || mod === 'SC'
          ? ['DERIVED', 'SECONDARY']
          : mod === 'MR'
            ? ['ORIGINAL', 'PRIMARY', 'OTHER']
            : ['ORIGINAL', 'PRIMARY'],
    ],
    [0x00080012, 'DA', studyDate],
    [0x00080016, 'UI', sopClass],
    [0x00080020, 'DA', studyDate],
    [0x00080021, 'DA', studyDate],
    [0x00080022, 'DA', studyDate],
    [0x00080023, 'DA', studyDate],
    [0x00080030, 'TM', tm(studySec)],
    [0x00080031, 'TM', tm(studySec + 60 * r)],
    [0x00080050, 'SH', `A${String(hashInt(seed, 'study', s, 'accession')).padStart(10, '0')}`],
    [0x00080060, 'CS', mod === 'SC' ? 'OT' : mod],
    [0x00080070, 'LO', 'gen-study'],
    [0x00080080, 'LO', 'Synthetic Test Hospital'],
    [0x00080090, 'PN', ''],
    [0x00081010, 'SH', 'GENSTUDY'],
    [0x00081030, 'LO', a.o.studyDescription ?? `Synthetic ${mod} study`],
    [0x0008103e, 'LO', `Synthetic series ${r + 1}`],
    [0x00081090, 'LO', 'gen-study.ts'],
    [0x00100010, 'PN', name],
    [0x00100020, 'LO', a.o.patientId ?? `GS-${seed}-${String(p + 1).padStart(4, '0')}`],
    [
      0x00100030,
      'DA',
      da(new Date(Date.UTC(1940, 0, 1)), hashInt(seed, 'patient', p, 'birth') % 25000),
    ],
    [0x00100040, 'CS', 'MFO'[hashInt(seed, 'patient', p, 'sex') % 3]!],
    // a body part without laterality, so General Series Laterality (type 2C) is not needed
    [0x00180015, 'CS', mod === 'MR' ? 'HEAD' : mod === 'MG' ? 'BREAST' : 'CHEST'],
    [0x00181020, 'LO', 'gen-study.ts 1'],
    [0x0020000d, 'UI', makeUid(seed, 'study', s)],
    [0x0020000e, 'UI', makeUid(seed, 'study', s, 'series', r)],
    [0x00200010, 'SH', String(s + 1)],
    [0x00200011, 'IS', String(r + 1)],
    [0x00200012, 'IS', '1'],
    [0x00280002, 'US', 1],
    [0x00280004, 'CS', 'MONOCHROME2'],
    [0x00280010, 'US', a.rows],
    [0x00280011, 'US', a.cols],
    [0x00280100, 'US', 16],
    [0x00280101, 'US', a.bitsStored],
    [0x00280102, 'US', a.bitsStored - 1],
    [0x00280103, 'US', 0],
  ];
  if (a.charset) els.push([0x00080005, 'CS', a.charset]);
  if (mf || mod === 'SC') els.push([0x00080064, 'CS', 'WSD'], [0x00280301, 'CS', 'NO']);
  if (mf || mod === 'CR' || mod === 'SC')
    els.push([0x00200020, 'CS', mod === 'CR' ? ['L', 'F'] : '']);
  if (!mf && mod === 'CR') els.push([0x00185101, 'CS', 'PA']);
  if (!mf && (mod === 'CT' || mod === 'CR')) els.push([0x00180060, 'DS', '120']);
  if (!mf && mod === 'MR') {
    els.push(
      [0x00180020, 'CS', 'SE'],
      [0x00180021, 'CS', 'NONE'],
      [0x00180022, 'CS', ''],
      [0x00180023, 'CS', '2D'],
      [0x00180080, 'DS', '500'],
      [0x00180081, 'DS', '20'],
      [0x00180087, 'DS', '1.5'],
      [0x00180091, 'IS', '1'],
    );
  }
  if (!mf && (mod === 'CT' || mod === 'MR')) {
    const spacing = ds(350 / Math.max(a.rows, a.cols));
    els.push(
      [0x00180050, 'DS', '1'],
      [0x00185100, 'CS', 'HFS'],
      [0x00200037, 'DS', ['1', '0', '0', '0', '1', '0']],
      [0x00200052, 'UI', makeUid(seed, 'study', s, 'series', r, 'frame-of-reference')],
      [0x00201040, 'LO', ''],
      [0x00280030, 'DS', [spacing, spacing]],
    );
  }
  if (!mf && mod === 'CT') {
    els.push(
      [0x00281050, 'DS', '40'],
      [0x00281051, 'DS', '400'],
      [0x00281052, 'DS', '-1024'],
      [0x00281053, 'DS', '1'],
      [0x00281054, 'LO', 'HU'],
    );
  }
  if (mf) {
    els.push(
      [0x00181063, 'DS', '100'],
      [0x00280008, 'IS', String(frames)],
      [0x00280009, 'AT', 0x00181063],
      [0x00281052, 'DS', '0'],
      [0x00281053, 'DS', '1'],
      [0x00281054, 'LO', 'US'],
      [0x20500020, 'CS', 'IDENTITY'],
    );
  }
  return els;
}

function text(els: Element[], tag: number): string {
  const v = els.find((e) => e[0] === tag)?.[2];
  return typeof v === 'string' ? v : '';
}

export async function generateStudy(
  outDir: string,
  opts: GenerateStudyOptions = {},
): Promise<GeneratedStudy> {
  const a: Resolved = {
    studies: opts.studies ?? 1,
    series: opts.series ?? 1,
    instances: opts.instances ?? 10,
    rows: opts.rows ?? 512,
    cols: opts.cols ?? 512,
    frames: opts.frames ?? 1,
    modality: opts.modality ?? 'CT',
    transferSyntax: opts.transferSyntax ?? 'explicit-le',
    patients: opts.patients ?? opts.studies ?? 1,
    seed: opts.seed ?? 0,
    pixels: opts.pixels ?? 'noise',
    bitsStored: opts.bitsStored ?? 12,
    charset: undefined,
    o: opts,
  };
  for (const k of [
    'studies',
    'series',
    'instances',
    'rows',
    'cols',
    'frames',
    'patients',
  ] as const) {
    if (!Number.isInteger(a[k]) || a[k] < 1)
      throw new RangeError(`gen-study: ${k} must be an integer >= 1`);
  }
  if (a.rows > 0xffff || a.cols > 0xffff)
    throw new RangeError('gen-study: rows/cols must be <= 65535');
  if (!Number.isInteger(a.seed) || a.seed < 0)
    throw new RangeError('gen-study: seed must be an integer >= 0');
  if (a.bitsStored < 9 || a.bitsStored > 16)
    throw new RangeError('gen-study: bitsStored must be 9..16');
  const pixelBytes = a.rows * a.cols * 2 * a.frames;
  if (pixelBytes > MAX_VALUE_LENGTH)
    throw new RangeError('gen-study: pixel data exceeds the 32-bit value length');
  const nonAscii = [...((opts.patientName ?? '') + (opts.studyDescription ?? ''))].some(
    (c) => c.codePointAt(0)! > 0x7f,
  );
  a.charset = opts.charset ? normalizeCharset(opts.charset) : nonAscii ? 'ISO_IR 192' : undefined;
  // fail before creating anything when the charset is unsupported or cannot encode the text
  encodeText((opts.patientName ?? '') + (opts.studyDescription ?? ''), a.charset);

  const tsUid = TRANSFER_SYNTAX_UIDS[a.transferSyntax];
  const sx = {
    implicit: a.transferSyntax === 'implicit-le',
    little: a.transferSyntax !== 'explicit-be',
  };
  const sopClass =
    a.frames > 1 ? SOP_CLASS_UIDS.MULTIFRAME_GRAYSCALE_WORD_SC : SOP_CLASS_UIDS[a.modality];
  const deflateLevel = a.transferSyntax === 'deflate' ? (opts.deflateLevel ?? 6) : undefined;
  const plan: PixelPlan = { ...a, pattern: a.pixels, little: sx.little };
  const pixelHeader = elementHeader(0x7fe00010, 'OW', pixelBytes, sx);
  const spacing = 350 / Math.max(a.rows, a.cols);
  const files: GeneratedFile[] = [];
  let total = 0;

  for (let s = 0; s < a.studies; s++) {
    for (let r = 0; r < a.series; r++) {
      const base = seriesElements(a, sopClass, s, r);
      const studyUid = text(base, 0x0020000d);
      const seriesUid = text(base, 0x0020000e);
      const dir = join(outDir, studyUid, seriesUid);
      await mkdir(dir, { recursive: true });
      const studySec = 7 * 3600 + (hashInt(a.seed, 'study', s, 'time') % (12 * 3600));
      for (let i = 0; i < a.instances; i++) {
        const sopUid = makeUid(a.seed, 'study', s, 'series', r, 'instance', i);
        const t = tm(studySec + 60 * r + Math.floor(i / 10));
        const els: Element[] = [
          ...base,
          [0x00080018, 'UI', sopUid],
          [0x00080013, 'TM', t],
          [0x00080032, 'TM', t],
          [0x00080033, 'TM', t],
          [0x00200013, 'IS', String(i + 1)],
        ];
        if (a.frames === 1 && (a.modality === 'CT' || a.modality === 'MR')) {
          const half = (spacing * (Math.max(a.rows, a.cols) - 1)) / 2;
          els.push([0x00200032, 'DS', [ds(-half), ds(-half), ds(-i)]], [0x00201041, 'DS', ds(-i)]);
        }
        const head = Buffer.alloc(128);
        const meta = encodeFileMeta(sopClass, sopUid, tsUid);
        const body = encodeElements(els, sx, a.charset);
        const path = join(dir, `${sopUid}.dcm`);
        const prefix = Buffer.concat([head, Buffer.from('DICM', 'latin1'), meta]);
        const key = [s, r, i];
        const dataset = (function* () {
          yield Buffer.concat([body, pixelHeader]);
          yield* pixelChunks(plan, a.seed, key);
        })();
        const { bytes, sha256 } = await writeInstance(path, prefix, dataset, deflateLevel);
        total += bytes;
        files.push({
          path,
          studyUid,
          seriesUid,
          sopInstanceUid: sopUid,
          sopClassUid: sopClass,
          transferSyntaxUid: tsUid,
          modality: text(base, 0x00080060),
          patientId: text(base, 0x00100020),
          patientName: text(base, 0x00100010),
          accessionNumber: text(base, 0x00080050),
          studyDate: text(base, 0x00080020),
          seriesNumber: r + 1,
          instanceNumber: i + 1,
          bytes,
          sha256,
        });
      }
    }
  }
  return { files, bytes: total };
}
