import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import zlib from 'node:zlib';
import t from 'tap';
import { isGatewayError } from '../../src/errors.js';
import { buildPart10Header, readPart10Header } from '../../src/dicom/file-meta.js';
import type { Part10HeaderOptions } from '../../src/dicom/file-meta.js';

const OPTS: Part10HeaderOptions = {
  mediaStorageSopClassUid: '1.2.840.10008.5.1.4.1.1.7',
  mediaStorageSopInstanceUid: '1.2.826.0.1.3680043.8.498.1',
  transferSyntaxUid: '1.2.840.10008.1.2.1',
  implementationClassUid: '1.2.826.0.1.3680043.8.498.99',
  implementationVersionName: 'GATEWAY_0.1',
  sourceApplicationEntityTitle: 'MODALITY1',
};

/** Explicit VR LE element with a 16-bit length (PS3.5 7.1.2). */
function el(group: number, element: number, vr: string, value: string): Buffer {
  const v = Buffer.from(value.length % 2 ? value + (vr === 'UI' ? '\0' : ' ') : value, 'latin1');
  const h = Buffer.alloc(8);
  h.writeUInt16LE(group, 0);
  h.writeUInt16LE(element, 2);
  h.write(vr, 4, 'latin1');
  h.writeUInt16LE(v.length, 6);
  return Buffer.concat([h, v]);
}

/** The same element in Implicit VR LE (PS3.5 7.1.3). */
function implicit(group: number, element: number, vr: string, value: string): Buffer {
  const e = el(group, element, vr, value);
  const h = Buffer.alloc(8);
  h.writeUInt16LE(group, 0);
  h.writeUInt16LE(element, 2);
  h.writeUInt32LE(e.length - 8, 4);
  return Buffer.concat([h, e.subarray(8)]);
}

const DATASET: Array<[number, number, string, string]> = [
  [0x0008, 0x0016, 'UI', OPTS.mediaStorageSopClassUid],
  [0x0008, 0x0018, 'UI', OPTS.mediaStorageSopInstanceUid],
  [0x0008, 0x0060, 'CS', 'OT'],
  [0x0010, 0x0010, 'PN', 'Doe^John'],
  [0x0020, 0x000d, 'UI', '1.2.826.0.1.3680043.8.498.2'],
  [0x0020, 0x000e, 'UI', '1.2.826.0.1.3680043.8.498.3'],
];

t.test('round trip: build then read', async (t) => {
  const header = buildPart10Header(OPTS);
  t.same(header.subarray(0, 128), Buffer.alloc(128), '128-byte zero preamble');
  t.equal(header.toString('latin1', 128, 132), 'DICM');
  const file = Buffer.concat([header, el(0x0008, 0x0018, 'UI', '1.2.3')]);
  const meta = readPart10Header(file);
  t.equal(meta.datasetOffset, header.length);
  t.equal(meta.transferSyntaxUid, OPTS.transferSyntaxUid);
  t.equal(meta.mediaStorageSopClassUid, OPTS.mediaStorageSopClassUid);
  t.equal(meta.mediaStorageSopInstanceUid, OPTS.mediaStorageSopInstanceUid);
  t.same(
    [...meta.fileMeta.keys()],
    [
      0x00020000, 0x00020001, 0x00020002, 0x00020003, 0x00020010, 0x00020012, 0x00020013,
      0x00020016,
    ],
  );
  // PS3.10 7.1: group length counts every byte after (0002,0000) up to the data set.
  t.equal(meta.fileMeta.get(0x00020000)?.readUInt32LE(0), header.length - 132 - 12);
  t.same(meta.fileMeta.get(0x00020001), Buffer.from([0, 1]));
  // Odd-length values are padded: UI with NUL, SH and AE with a space.
  t.equal(meta.fileMeta.get(0x00020002)?.toString('latin1'), '1.2.840.10008.5.1.4.1.1.7\0');
  t.equal(meta.fileMeta.get(0x00020013)?.toString('latin1'), 'GATEWAY_0.1 ');
  t.equal(meta.fileMeta.get(0x00020016)?.toString('latin1'), 'MODALITY1 ');
  t.equal(meta.fileMeta.get(0x00020010)?.toString('latin1'), '1.2.840.10008.1.2.1\0');
  // (0002,0001) OB has 2 reserved bytes and a 32-bit length.
  t.same(header.subarray(144, 156), Buffer.from([2, 0, 1, 0, 0x4f, 0x42, 0, 0, 2, 0, 0, 0]));
});

t.test('Type 3 elements are left out when not given', async (t) => {
  const header = buildPart10Header({
    ...OPTS,
    implementationVersionName: '',
    sourceApplicationEntityTitle: '   ',
  });
  const meta = readPart10Header(header);
  t.notOk(meta.fileMeta.has(0x00020013));
  t.notOk(meta.fileMeta.has(0x00020016));
  t.equal(meta.datasetOffset, header.length);
  // Trailing UID padding given by the caller is accepted and not doubled.
  const padded = readPart10Header(
    buildPart10Header({ ...OPTS, transferSyntaxUid: '1.2.840.10008.1.2\0' }),
  );
  t.equal(padded.fileMeta.get(0x00020010)?.toString('latin1'), '1.2.840.10008.1.2\0');
});

t.test('invalid inputs', async (t) => {
  const code = (o: Partial<Part10HeaderOptions>): string => {
    try {
      buildPart10Header({ ...OPTS, ...o });
      return 'ok';
    } catch (err) {
      return isGatewayError(err) ? err.code : String(err);
    }
  };
  t.equal(code({ mediaStorageSopClassUid: '1.2.abc' }), 'GW_ERR_DATASET_MALFORMED');
  t.equal(code({ mediaStorageSopInstanceUid: '' }), 'GW_ERR_DATASET_MALFORMED');
  t.equal(code({ mediaStorageSopInstanceUid: '1.' + '2'.repeat(63) }), 'GW_ERR_DATASET_MALFORMED');
  t.equal(code({ mediaStorageSopInstanceUid: '1.' + '2'.repeat(62) }), 'ok', '64 characters');
  t.equal(code({ transferSyntaxUid: '1.2.840.10008.1.2 x' }), 'GW_ERR_DATASET_MALFORMED');
  t.equal(code({ implementationClassUid: 'x' }), 'GW_ERR_INTERNAL');
  t.equal(code({ implementationVersionName: 'A'.repeat(17) }), 'GW_ERR_INTERNAL');
  t.equal(code({ implementationVersionName: 'A\\B' }), 'GW_ERR_INTERNAL');
  t.equal(code({ sourceApplicationEntityTitle: 'A'.repeat(17) }), 'GW_ERR_INTERNAL');
  t.equal(code({ sourceApplicationEntityTitle: 'A\x01' }), 'GW_ERR_INTERNAL');
  t.equal(code({ sourceApplicationEntityTitle: 'A\\B' }), 'GW_ERR_INTERNAL');
  t.equal(
    code({ sourceApplicationEntityTitle: ' STORESCU        ' }),
    'ok',
    'spaces are not significant',
  );
  t.equal(code({ sourceApplicationEntityTitle: 'A'.repeat(16) }), 'ok');
});

t.test('readPart10Header refuses what is not a Part-10 file', async (t) => {
  const good = buildPart10Header(OPTS);
  const refuse = (b: Buffer, re: RegExp, name: string): void => {
    t.throws(() => readPart10Header(b), { code: 'GW_ERR_DATASET_MALFORMED', message: re }, name);
  };
  refuse(Buffer.alloc(100), /no "DICM" prefix/, 'too short');
  refuse(
    Buffer.concat([Buffer.alloc(128), Buffer.from('DICX'), good.subarray(132)]),
    /no "DICM"/,
    'no DICM',
  );
  refuse(good.subarray(0, good.length - 3), /runs past the end/, 'cut inside an element');
  refuse(good.subarray(0, 138), /inside an element header/, 'cut inside a header');
  const badLength = Buffer.from(good);
  badLength.writeUInt32LE(badLength.readUInt32LE(140) + 2, 140);
  refuse(badLength, /\(0002,0000\) gives group 0002 an end/, 'wrong group length');
  const badVr = Buffer.from(good);
  badVr.write('xx', 148, 'latin1');
  refuse(badVr, /invalid VR 0x7878 for \(0002,0001\)/, 'bad VR');
  const noTs = Buffer.concat([
    good.subarray(0, 132),
    el(0x0002, 0x0002, 'UI', '1.2'),
    el(0x0002, 0x0003, 'UI', '1.3'),
  ]);
  refuse(noTs, /lacks Transfer Syntax UID \(0002,0010\)/, 'no transfer syntax');
  // Without (0002,0000) the group ends at the first tag of another group.
  const noGroupLength = Buffer.concat([
    good.subarray(0, 132),
    good.subarray(144),
    el(0x0008, 0x0060, 'CS', 'OT'),
  ]);
  t.equal(readPart10Header(noGroupLength).datasetOffset, good.length - 12);
});

t.test(
  'dcmdump reads what buildPart10Header wrote',
  { skip: existsSync('/usr/bin/dcmdump') ? false : '/usr/bin/dcmdump is absent (DCMTK)' },
  async (t) => {
    const dir = t.testdir({});
    const explicit = Buffer.concat(DATASET.map(([g, e, vr, v]) => el(g, e, vr, v)));
    const cases: Array<[string, string, Buffer]> = [
      ['explicit-le', '1.2.840.10008.1.2.1', explicit],
      [
        'implicit-le',
        '1.2.840.10008.1.2',
        Buffer.concat(DATASET.map(([g, e, vr, v]) => implicit(g, e, vr, v))),
      ],
      ['deflated', '1.2.840.10008.1.2.1.99', zlib.deflateRawSync(explicit)],
    ];
    for (const [name, ts, dataset] of cases) {
      const path = join(dir, `${name}.dcm`);
      writeFileSync(
        path,
        Buffer.concat([buildPart10Header({ ...OPTS, transferSyntaxUid: ts }), dataset]),
      );
      const r = spawnSync('/usr/bin/dcmdump', [path], { encoding: 'latin1' });
      t.equal(r.status, 0, `${name}: dcmdump exits 0`);
      t.equal(r.stderr, '', `${name}: no warning or error`);
      t.match(r.stdout, /\(0002,0000\) UL \d+/);
      t.match(r.stdout, /\(0002,0016\) AE \[MODALITY1\]/);
      t.match(r.stdout, /\(0010,0010\) PN \[Doe\^John\]/);
    }
  },
);

const TEST_FILES = '/usr/lib/python3/dist-packages/pydicom/data/test_files';
/** pydicom files that are not (conformant) Part-10 files, and why. */
const REFUSED: Record<string, RegExp> = {
  'ExplVR_BigEndNoMeta.dcm': /no "DICM" prefix/, // no preamble, no File Meta
  'ExplVR_LitEndNoMeta.dcm': /no "DICM" prefix/,
  'no_meta.dcm': /no "DICM" prefix/,
  'rtstruct.dcm': /no "DICM" prefix/, // File Meta without a preamble
  'meta_missing_tsyntax.dcm': /lacks Transfer Syntax UID/,
  // Media Storage SOP Class/Instance UID (Type 1, PS3.10 7.1) missing or empty.
  'empty_charset_LEI.dcm': /lacks Media Storage SOP Class UID/,
  'nested_priv_SQ.dcm': /lacks Media Storage SOP Class UID/,
};

t.test(
  'pydicom test files',
  { skip: existsSync(TEST_FILES) ? false : `${TEST_FILES} is absent` },
  async (t) => {
    for (const name of readdirSync(TEST_FILES)
      .filter((f) => f.endsWith('.dcm'))
      .sort()) {
      const buf = readFileSync(join(TEST_FILES, name));
      const refused = REFUSED[name];
      if (refused) {
        t.throws(
          () => readPart10Header(buf),
          { code: 'GW_ERR_DATASET_MALFORMED', message: refused },
          `${name} is refused`,
        );
        continue;
      }
      const meta = readPart10Header(buf);
      t.match(
        meta.transferSyntaxUid,
        /^1\.2\.840\.10008\.1\.2/,
        `${name}: ${meta.transferSyntaxUid}`,
      );
      t.ok(meta.datasetOffset > 132 && meta.datasetOffset <= buf.length);
    }
  },
);
