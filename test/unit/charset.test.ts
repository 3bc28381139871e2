import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { decodeText } from '../../src/dicom/charset.js';
import { readPart10Header } from '../../src/dicom/file-meta.js';
import { DatasetReader } from '../../src/dicom/header-reader.js';

const bytes = (s: string): Buffer => Buffer.from(s, 'latin1');

/** ISO 8859-5 (ISO-IR 144): А..я are 0xB0..0xEF, in Unicode order from U+0410. */
function iso8859_5(s: string): Buffer {
  return Buffer.from(
    [...s].map((ch) => {
      const cp = ch.codePointAt(0) as number;
      if (cp >= 0x410 && cp <= 0x44f) return cp - 0x410 + 0xb0;
      if (cp < 0x80) return cp;
      throw new Error(`not in the table: ${ch}`);
    }),
  );
}

t.test('single-byte character sets (PS3.3 C.12.1.1.2, Table C.12-2)', async (t) => {
  t.equal(decodeText(iso8859_5('Иванов^Иван'), 'ISO_IR 144', 'PN'), 'Иванов^Иван');
  t.equal(decodeText(Buffer.from('Иванов^Иван '), 'ISO_IR 192', 'PN'), 'Иванов^Иван');
  t.equal(decodeText(bytes('Buc^J\xe9r\xf4me'), 'ISO_IR 100', 'PN'), 'Buc^Jérôme');
  t.equal(decodeText(bytes('\xb1'), 'ISO_IR 101', 'LO'), 'ą');
  t.equal(decodeText(bytes('\xa6'), 'ISO_IR 109', 'LO'), 'Ĥ');
  t.equal(decodeText(bytes('\xa2'), 'ISO_IR 110', 'LO'), 'ĸ');
  t.equal(decodeText(bytes('\xc7'), 'ISO_IR 127', 'LO'), 'ا');
  t.equal(decodeText(bytes('\xc1\xe1'), 'ISO_IR 126', 'LO'), 'Αα');
  t.equal(decodeText(bytes('\xe0\xe1'), 'ISO_IR 138', 'LO'), 'אב');
  // ISO 8859-9, not windows-1254: the six Turkish letters, and C1 stays C1.
  t.equal(decodeText(bytes('\xdd\xfd\xd0\xf0\xde\xfe\x80'), 'ISO_IR 148', 'LO'), 'İıĞğŞş\x80');
  t.equal(decodeText(bytes('\xa1\xb1'), 'ISO_IR 166', 'LO'), 'กฑ');
  // True ISO 8859-1, not windows-1252 (which TextDecoder('latin1') is).
  t.equal(decodeText(bytes('\x80\x9f'), 'ISO_IR 100', 'LO'), '\x80\x9f');
});

t.test('multi-byte character sets without code extensions', async (t) => {
  t.equal(
    decodeText(bytes('Wang^XiaoDong=\xcd\xf5^\xd0\xa1\xb6\xab='), 'GB18030', 'PN'),
    'Wang^XiaoDong=王^小东=',
  );
  t.equal(decodeText(bytes('\xcd\xf5'), 'GBK', 'PN'), '王');
  t.equal(
    decodeText(Buffer.from('Wang^XiaoDong=王^小東='), 'ISO_IR 192', 'PN'),
    'Wang^XiaoDong=王^小東=',
  );
});

t.test('default repertoire, padding, unknown terms', async (t) => {
  t.equal(decodeText(bytes('DOE^JOHN  \0'), undefined, 'PN'), 'DOE^JOHN');
  t.equal(decodeText(bytes('1.2.3\0'), 'ISO_IR 192', 'UI'), '1.2.3');
  t.equal(decodeText(bytes('A^B=C^D= '), undefined, 'PN'), 'A^B=C^D=', '^ and = are kept');
  t.equal(
    decodeText(bytes('  lead'), undefined, 'LO'),
    '  lead',
    'leading spaces are the caller’s business',
  );
  // High bytes without a declared character set: read as ISO 8859-1 rather than refused.
  t.equal(decodeText(bytes('J\xe9r\xf4me'), undefined, 'PN'), 'Jérôme');
  // PS3.5 6.1.2.3: CS, DA, UI... use the default repertoire whatever 0008,0005 says.
  t.equal(decodeText(Buffer.from('é'), 'ISO_IR 192', 'CS'), '\xc3\xa9');
  t.equal(decodeText(bytes('J\xe9r\xf4me'), 'X_UNKNOWN 42', 'PN'), 'Jérôme');
  t.equal(decodeText(bytes('J\xe9'), 'ISO_IR 9999', 'PN'), 'Jé');
  t.equal(decodeText(bytes('\xbb'), 'iso-ir 144', 'PN'), 'Л', 'terms are matched loosely');
  t.equal(decodeText(Buffer.alloc(0), 'ISO_IR 192', 'PN'), '');
  t.equal(
    decodeText(Buffer.from([0xff, 0xfe, 0x41]), 'ISO_IR 192', 'PN'),
    '\ufffd\ufffdA',
    'bad UTF-8 does not throw',
  );
});

t.test('ISO 2022 code extensions (PS3.5 6.1.2.5, Annexes H, I, K)', async (t) => {
  // PS3.5 H.3.1: ISO 2022 IR 87 with the default repertoire as value 1.
  const h31 =
    'Yamada^Tarou=\x1b$B;3ED\x1b(B^\x1b$BB@O:\x1b(B=\x1b$B$d$^$@\x1b(B^\x1b$B$?$m$&\x1b(B';
  t.equal(decodeText(bytes(h31), '\\ISO 2022 IR 87', 'PN'), 'Yamada^Tarou=山田^太郎=やまだ^たろう');
  // PS3.5 H.3.2: JIS X 0201 katakana (8-bit, G1) and Romaji (ESC ( J).
  const h32 =
    '\xd4\xcf\xc0\xde^\xc0\xdb\xb3=\x1b$B;3ED\x1b(J^\x1b$BB@O:\x1b(J=\x1b$B$d$^$@\x1b(J^\x1b$B$?$m$&\x1b(J';
  t.equal(
    decodeText(bytes(h32), 'ISO 2022 IR 13\\ISO 2022 IR 87', 'PN'),
    'ﾔﾏﾀﾞ^ﾀﾛｳ=山田^太郎=やまだ^たろう',
  );
  t.equal(decodeText(bytes('\x5c\x7e'), 'ISO 2022 IR 13', 'LO'), '¥‾', 'JIS X 0201 Romaji');
  // JIS X 0212 (ISO-IR 159): row 16 cell 1 is U+4E02.
  t.equal(decodeText(bytes('\x1b$(D\x30\x21\x1b(B'), '\\ISO 2022 IR 159', 'PN'), '丂');
  // PS3.5 I.2: Korean, KS X 1001 in G1.
  const i2 =
    'Hong^Gildong=\x1b$)C\xfb\xf3^\x1b$)C\xd1\xce\xd4\xd7=\x1b$)C\xc8\xab^\x1b$)C\xb1\xe6\xb5\xbf';
  t.equal(decodeText(bytes(i2), '\\ISO 2022 IR 149', 'PN'), 'Hong^Gildong=洪^吉洞=홍^길동');
  t.equal(
    decodeText(bytes('\xb1\xe8\xc8\xf1\xc1\xdf'), 'ISO 2022 IR 149', 'PN'),
    '김희중',
    'G1 designated by value 1',
  );
  // PS3.5 K.2: Chinese, GB 2312 in G1.
  const k2 = 'Zhang^XiaoDong=\x1b$)A\xd5\xc5^\x1b$)A\xd0\xa1\xb6\xab=';
  t.equal(decodeText(bytes(k2), '\\ISO 2022 IR 58', 'PN'), 'Zhang^XiaoDong=张^小东=');
  // Single-byte sets switched by escape sequences.
  const mixed = 'Buc^J\xe9r\xf4me\x1b-L\xbb\xee\x1b-A\xe9';
  t.equal(decodeText(bytes(mixed), 'ISO 2022 IR 100\\ISO 2022 IR 144', 'LO'), 'Buc^JérômeЛюé');
  t.equal(decodeText(bytes('a\x1b-F\xc1'), 'ISO 2022 IR 6\\ISO 2022 IR 126', 'LO'), 'aΑ');
  // PS3.5 6.1.2.5.3: a control character brings back the initial sets.
  t.equal(decodeText(bytes('\x1b$B;3\r\nAB'), '\\ISO 2022 IR 87', 'LT'), '山\r\nAB');
  // An unknown escape sequence is kept as text.
  t.equal(decodeText(bytes('a\x1b%Gb'), '\\ISO 2022 IR 87', 'LO'), 'a\x1b%Gb');
});

const CHARSET_FILES = '/usr/lib/python3/dist-packages/pydicom/data/charset_files';
/** Patient's Name of pydicom's charset files (from dclunie's SCS* samples). */
const NAMES: Record<string, string> = {
  'chrArab.dcm': 'قباني^لنزار',
  'chrFren.dcm': 'Buc^Jérôme',
  'chrGerm.dcm': 'Äneas^Rüdiger',
  'chrGreek.dcm': 'Διονυσιος',
  'chrH31.dcm': 'Yamada^Tarou=山田^太郎=やまだ^たろう',
  'chrH32.dcm': 'ﾔﾏﾀﾞ^ﾀﾛｳ=山田^太郎=やまだ^たろう',
  'chrHbrw.dcm': 'שרון^דבורה',
  'chrI2.dcm': 'Hong^Gildong=洪^吉洞=홍^길동',
  'chrJapMulti.dcm': 'やまだ^たろう',
  'chrJapMultiExplicitIR6.dcm': 'やまだ^たろう',
  'chrKoreanMulti.dcm': '김희중',
  'chrRuss.dcm': 'Люкceмбypг',
  'chrX1.dcm': 'Wang^XiaoDong=王^小東=',
  'chrX2.dcm': 'Wang^XiaoDong=王^小东=',
};

t.test(
  'pydicom charset files',
  { skip: existsSync(CHARSET_FILES) ? false : `${CHARSET_FILES} is absent` },
  async (t) => {
    for (const [file, name] of Object.entries(NAMES)) {
      const buf = readFileSync(join(CHARSET_FILES, file));
      const meta = readPart10Header(buf);
      const r = new DatasetReader({ transferSyntaxUid: meta.transferSyntaxUid });
      r.push(buf.subarray(meta.datasetOffset));
      await r.end();
      const charset = r.elements().get(0x00080005)?.value.toString('latin1');
      const pn = r.elements().get(0x00100010)?.value ?? Buffer.alloc(0);
      t.equal(decodeText(pn, charset, 'PN'), name, `${file} (${charset})`);
    }
  },
);

t.test('ISO_IR 203 (Latin-9) differs from Latin-1 where it should', async (t) => {
  // 0xA4 is € in ISO 8859-15 and ¤ in ISO 8859-1; 0xA6 Š vs ¦; 0xB4 Ž vs ´.
  const bytes = Buffer.from([0x4b, 0xa6, 0xb4, 0xa4]);
  t.equal(decodeText(bytes, 'ISO_IR 203', 'PN'), 'KŠŽ€');
  t.equal(decodeText(bytes, 'ISO_IR 100', 'PN'), 'K¦´¤');
  const escaped = Buffer.concat([Buffer.from([0x1b, 0x2d, 0x62]), bytes]);
  t.equal(decodeText(escaped, 'ISO 2022 IR 203', 'PN'), 'KŠŽ€');
});
