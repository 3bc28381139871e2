import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import zlib from 'node:zlib';
import t from 'tap';
import { isGatewayError } from '../../src/errors.js';
import type { InstanceAttributes } from '../../src/index/instance-index.js';
import { Tags, extractAttributes, formatTag, tagOf } from '../../src/dicom/attributes.js';
import { readPart10Header } from '../../src/dicom/file-meta.js';
import { DatasetReader } from '../../src/dicom/header-reader.js';

interface Syntax {
  uid: string;
  explicit: boolean;
  le: boolean;
  deflate?: boolean;
}
const SYNTAXES: Syntax[] = [
  { uid: '1.2.840.10008.1.2', explicit: false, le: true },
  { uid: '1.2.840.10008.1.2.1', explicit: true, le: true },
  { uid: '1.2.840.10008.1.2.2', explicit: true, le: false },
  { uid: '1.2.840.10008.1.2.1.99', explicit: true, le: true, deflate: true },
  { uid: '1.2.840.10008.1.2.4.90', explicit: true, le: true },
];

type Value = string | Buffer | number;

/** PS3.5 7.1: one element with a 16-bit (explicit) or 32-bit (implicit) length. */
function el(sx: Syntax, tag: number, vr: string, value: Value): Buffer {
  let v: Buffer;
  if (typeof value === 'number') {
    v = Buffer.alloc(2);
    if (sx.le) v.writeUInt16LE(value);
    else v.writeUInt16BE(value);
  } else {
    v = typeof value === 'string' ? Buffer.from(value, 'latin1') : value;
    if (v.length % 2) v = Buffer.concat([v, Buffer.from(vr === 'UI' ? [0] : [0x20])]);
  }
  const long = sx.explicit && vr === 'OW'; // PS3.5 7.1.2: 2 reserved bytes, 32-bit length
  const h = Buffer.alloc(long ? 12 : 8);
  const w16 = (n: number, at: number): number =>
    sx.le ? h.writeUInt16LE(n, at) : h.writeUInt16BE(n, at);
  const w32 = (n: number, at: number): number =>
    sx.le ? h.writeUInt32LE(n, at) : h.writeUInt32BE(n, at);
  w16(tag >>> 16, 0);
  w16(tag & 0xffff, 2);
  if (sx.explicit) h.write(vr, 4, 'latin1');
  if (!sx.explicit) w32(v.length, 4);
  else if (long) w32(v.length, 8);
  else w16(v.length, 6);
  return Buffer.concat([h, v]);
}

function encode(sx: Syntax, elements: Array<[number, string, Value]>): Buffer {
  const plain = Buffer.concat(elements.map(([tag, vr, v]) => el(sx, tag, vr, v)));
  return sx.deflate ? zlib.deflateRawSync(plain) : plain;
}

/** ISO 8859-5 bytes of a Cyrillic string (А..я are 0xB0..0xEF). */
const cyrillic = (s: string): Buffer =>
  Buffer.from(
    [...s].map((c) =>
      c.charCodeAt(0) >= 0x410 ? c.charCodeAt(0) - 0x410 + 0xb0 : c.charCodeAt(0),
    ),
  );

const FULL: Array<[number, string, Value]> = [
  [Tags.SpecificCharacterSet, 'CS', 'ISO_IR 144'],
  [Tags.SOPClassUID, 'UI', '1.2.840.10008.5.1.4.1.1.4'],
  [Tags.SOPInstanceUID, 'UI', '1.2.3.4.5.6.7'],
  [Tags.StudyDate, 'DA', '20240131'],
  [Tags.StudyTime, 'TM', '120000.5'],
  [Tags.AccessionNumber, 'SH', ' ACC1 '],
  [Tags.Modality, 'CS', 'MR'],
  [Tags.InstitutionName, 'LO', cyrillic('Больница')],
  [Tags.ReferringPhysicianName, 'PN', '^^^^'],
  [Tags.StudyDescription, 'LO', 'Brain'],
  [Tags.SeriesDescription, 'LO', 'T1 AX'],
  [Tags.PatientName, 'PN', cyrillic('Иванов^Иван')],
  [Tags.PatientID, 'LO', 'PID-1'],
  [Tags.IssuerOfPatientID, 'LO', 'HOSP'],
  [Tags.PatientBirthDate, 'DA', '19700101'],
  [Tags.PatientSex, 'CS', 'M'],
  [Tags.BodyPartExamined, 'CS', 'HEAD'],
  [Tags.StudyInstanceUID, 'UI', '1.2.3.4.5.1'],
  [Tags.SeriesInstanceUID, 'UI', '1.2.3.4.5.2'],
  [Tags.StudyID, 'SH', ''],
  [Tags.SeriesNumber, 'IS', ' 3'],
  [Tags.InstanceNumber, 'IS', '+12\\13'],
  [Tags.NumberOfFrames, 'IS', '1.5'],
  [Tags.Rows, 'US', 512],
  [Tags.Columns, 'US', 0x1234],
  [Tags.PixelData, 'OW', Buffer.alloc(16)],
];

const EXPECTED: InstanceAttributes = {
  specificCharacterSet: 'ISO_IR 144',
  sopClassUid: '1.2.840.10008.5.1.4.1.1.4',
  sopInstanceUid: '1.2.3.4.5.6.7',
  studyDate: '20240131',
  studyTime: '120000.5',
  accessionNumber: 'ACC1',
  modality: 'MR',
  institutionName: 'Больница',
  studyDescription: 'Brain',
  seriesDescription: 'T1 AX',
  patientName: 'Иванов^Иван',
  patientId: 'PID-1',
  issuerOfPatientId: 'HOSP',
  patientBirthDate: '19700101',
  patientSex: 'M',
  bodyPartExamined: 'HEAD',
  studyInstanceUid: '1.2.3.4.5.1',
  seriesInstanceUid: '1.2.3.4.5.2',
  seriesNumber: 3,
  instanceNumber: 12,
  rows: 512,
  columns: 0x1234,
};

async function attributesOf(ts: string, chunks: Buffer[]): Promise<InstanceAttributes | string> {
  const r = new DatasetReader({ transferSyntaxUid: ts });
  try {
    for (const c of chunks) r.push(c);
    await r.end();
    return extractAttributes(r);
  } catch (err) {
    if (isGatewayError(err)) return `${err.code}: ${err.message}`;
    throw err;
  }
}

for (const sx of SYNTAXES) {
  t.test(`all attributes (${sx.uid}), for every chunking`, async (t) => {
    const buf = encode(sx, FULL);
    const whole = await attributesOf(sx.uid, [buf]);
    t.same(whole, EXPECTED);
    let differ = 0;
    for (let k = 1; k < buf.length; k++) {
      const a = await attributesOf(sx.uid, [buf.subarray(0, k), buf.subarray(k)]);
      if (JSON.stringify(a) !== JSON.stringify(whole) && differ++ < 3)
        t.same(a, EXPECTED, `split at ${k}`);
    }
    t.equal(differ, 0, 'every split');
    t.same(
      await attributesOf(
        sx.uid,
        [...buf].map((b) => Buffer.from([b])),
      ),
      EXPECTED,
      'byte by byte',
    );
  });
}

t.test('missing or empty UIDs are named', async (t) => {
  const sx = SYNTAXES[1] as Syntax;
  const without = (...drop: number[]): Buffer =>
    encode(
      sx,
      FULL.filter(([tag]) => !drop.includes(tag)),
    );
  t.equal(
    await attributesOf(sx.uid, [without(Tags.SOPInstanceUID)]),
    'GW_ERR_DATASET_MISSING_UID: data set lacks SOP Instance UID (0008,0018)',
  );
  t.equal(
    await attributesOf(sx.uid, [
      without(Tags.StudyInstanceUID, Tags.SeriesInstanceUID, Tags.SOPClassUID),
    ]),
    'GW_ERR_DATASET_MISSING_UID: data set lacks SOP Class UID (0008,0016), Study Instance UID (0020,000D), Series Instance UID (0020,000E)',
  );
  const empty = encode(
    sx,
    FULL.map(([tag, vr, v]) => (tag === Tags.SeriesInstanceUID ? [tag, vr, '\0\0'] : [tag, vr, v])),
  );
  t.match(await attributesOf(sx.uid, [empty]), /lacks Series Instance UID \(0020,000E\)/);
  t.match(await attributesOf(sx.uid, [Buffer.alloc(0)]), /^GW_ERR_DATASET_MISSING_UID/);
});

t.test('minimal data set: only the UIDs', async (t) => {
  const sx = SYNTAXES[0] as Syntax;
  const buf = encode(
    sx,
    FULL.filter(([, vr]) => vr === 'UI'),
  );
  t.same(await attributesOf(sx.uid, [buf]), {
    sopClassUid: EXPECTED.sopClassUid,
    sopInstanceUid: EXPECTED.sopInstanceUid,
    studyInstanceUid: EXPECTED.studyInstanceUid,
    seriesInstanceUid: EXPECTED.seriesInstanceUid,
  });
});

t.test('implicit VR knows the VR of every tag read', async (t) => {
  const sx = SYNTAXES[0] as Syntax;
  const r = new DatasetReader({ transferSyntaxUid: sx.uid });
  r.push(
    encode(
      sx,
      FULL.filter(([tag]) => tag !== Tags.PixelData),
    ),
  );
  await r.end();
  for (const [tag, vr] of FULL) {
    if (tag !== Tags.PixelData) t.equal(r.elements().get(tag)?.vr, vr, formatTag(tag));
  }
});

t.test('Tags, tagOf, formatTag', async (t) => {
  t.equal(tagOf('PatientName'), 0x00100010);
  t.equal(formatTag(Tags.SeriesDescription), '(0008,103E)');
  t.equal(formatTag(tagOf('PixelData')), '(7FE0,0010)');
  t.equal(formatTag(0xfffee0dd), '(FFFE,E0DD)');
  t.equal(Object.keys(Tags).length, 26);
});

const DATA = '/usr/lib/python3/dist-packages/pydicom/data';

function fromFile(path: string): Promise<InstanceAttributes | string> {
  const buf = readFileSync(path);
  const meta = readPart10Header(buf);
  return attributesOf(meta.transferSyntaxUid, [buf.subarray(meta.datasetOffset)]);
}

t.test(
  'pydicom: one instance in eight transfer syntaxes',
  { skip: existsSync(DATA) ? false : `${DATA} is absent` },
  async (t) => {
    const base = await fromFile(join(DATA, 'test_files/MR_small.dcm'));
    t.match(base, {
      patientName: 'CompressedSamples^MR1',
      modality: 'MR',
      rows: 64,
      columns: 64,
      sopClassUid: '1.2.840.10008.5.1.4.1.1.4',
    });
    for (const variant of [
      'implicit',
      'bigendian',
      'expb',
      'RLE',
      'jp2klossless',
      'jpeg_ls_lossless',
      'padded',
    ]) {
      t.same(await fromFile(join(DATA, `test_files/MR_small_${variant}.dcm`)), base, variant);
    }
    t.match(
      await fromFile(join(DATA, 'test_files/image_dfl.dcm')),
      { rows: 512, columns: 512, modality: 'OT' },
      'deflated',
    );
    t.match(await fromFile(join(DATA, 'test_files/reportsi_with_empty_number_tags.dcm')), {
      patientName: 'Last Name^First Name',
    });
    t.match(
      await fromFile(join(DATA, 'test_files/UN_sequence.dcm')),
      /^GW_ERR_DATASET_MISSING_UID/,
    );
    t.match(await fromFile(join(DATA, 'charset_files/chrH32.dcm')), {
      specificCharacterSet: 'ISO 2022 IR 13\\ISO 2022 IR 87',
      patientName: 'ﾔﾏﾀﾞ^ﾀﾛｳ=山田^太郎=やまだ^たろう',
    });
    t.match(await fromFile(join(DATA, 'charset_files/chrI2.dcm')), {
      specificCharacterSet: '\\ISO 2022 IR 149',
      patientName: 'Hong^Gildong=洪^吉洞=홍^길동',
    });
  },
);
