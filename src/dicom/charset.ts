/**
 * Decoding of text values per Specific Character Set (0008,0005): PS3.5 6.1
 * and PS3.3 C.12.1.1.2 (defined terms and their ISO 2022 escape sequences).
 * Never throws: an unknown character set decodes as ISO 8859-1, since a wrong
 * accent in an index is better than a refused instance.
 */
// The same class as the global TextDecoder (Node 20 has full ICU); imported for its type.
import { TextDecoder } from 'node:util';

/** The code elements of PS3.3 Tables C.12-2 to C.12-5 the decoder knows. */
type CodeSet =
  | 'ascii'
  | 'jis-roman'
  | 'jis-katakana'
  | 'jis-x0208'
  | 'jis-x0212'
  | 'ks-x1001'
  | 'gb2312'
  | 'iso-8859-1'
  | 'iso-8859-2'
  | 'iso-8859-3'
  | 'iso-8859-4'
  | 'iso-8859-5'
  | 'iso-8859-6'
  | 'iso-8859-7'
  | 'iso-8859-8'
  | 'iso-8859-9'
  | 'iso-8859-15'
  | 'tis-620';

/** G0 (bytes 0x21-0x7E) and G1 (bytes 0xA1-0xFE) designations. */
interface Designation {
  g0: CodeSet;
  g1: CodeSet | undefined;
}

type Charset =
  { kind: 'whole'; label: 'utf-8' | 'gb18030' | 'gbk' } | { kind: 'iso2022'; initial: Designation };

/** PS3.3 C.12.1.1.2: ISO-IR number of a defined term -> its initial G0/G1. */
const BY_IR = new Map<number, Designation>([
  [6, { g0: 'ascii', g1: undefined }],
  [100, { g0: 'ascii', g1: 'iso-8859-1' }],
  [101, { g0: 'ascii', g1: 'iso-8859-2' }],
  [109, { g0: 'ascii', g1: 'iso-8859-3' }],
  [110, { g0: 'ascii', g1: 'iso-8859-4' }],
  [144, { g0: 'ascii', g1: 'iso-8859-5' }],
  [127, { g0: 'ascii', g1: 'iso-8859-6' }],
  [126, { g0: 'ascii', g1: 'iso-8859-7' }],
  [138, { g0: 'ascii', g1: 'iso-8859-8' }],
  [148, { g0: 'ascii', g1: 'iso-8859-9' }],
  [166, { g0: 'ascii', g1: 'tis-620' }],
  // ISO_IR 203: Latin alphabet No. 9 (ISO 8859-15: €, Š, Ž ... where 8859-1 has ¤, ¦, ´ ...).
  [203, { g0: 'ascii', g1: 'iso-8859-15' }],
  // ISO_IR 13 / ISO 2022 IR 13: JIS X 0201 Romaji in G0, Katakana in G1.
  [13, { g0: 'jis-roman', g1: 'jis-katakana' }],
  // Multi-byte sets are invoked by escape sequences; as value 1 they leave
  // ASCII in G0 (IR 87, 159) or designate G1 (IR 149, 58).
  [87, { g0: 'ascii', g1: undefined }],
  [159, { g0: 'ascii', g1: undefined }],
  [149, { g0: 'ascii', g1: 'ks-x1001' }],
  [58, { g0: 'ascii', g1: 'gb2312' }],
]);

/** PS3.3 Tables C.12-3 and C.12-4: escape sequences and what they designate. */
const ESCAPES: ReadonlyArray<{ seq: number[]; to: 'g0' | 'g1'; set: CodeSet }> = [
  { seq: [0x28, 0x42], to: 'g0', set: 'ascii' }, // ESC ( B  ISO-IR 6
  { seq: [0x28, 0x4a], to: 'g0', set: 'jis-roman' }, // ESC ( J  ISO-IR 14
  { seq: [0x29, 0x49], to: 'g1', set: 'jis-katakana' }, // ESC ) I  ISO-IR 13
  { seq: [0x24, 0x42], to: 'g0', set: 'jis-x0208' }, // ESC $ B  ISO-IR 87
  { seq: [0x24, 0x40], to: 'g0', set: 'jis-x0208' }, // ESC $ @  JIS C 6226-1978, seen in old files
  { seq: [0x24, 0x28, 0x44], to: 'g0', set: 'jis-x0212' }, // ESC $ ( D  ISO-IR 159
  { seq: [0x24, 0x29, 0x43], to: 'g1', set: 'ks-x1001' }, // ESC $ ) C  ISO-IR 149
  { seq: [0x24, 0x29, 0x41], to: 'g1', set: 'gb2312' }, // ESC $ ) A  ISO-IR 58
  { seq: [0x2d, 0x41], to: 'g1', set: 'iso-8859-1' }, // ESC - A  ISO-IR 100
  { seq: [0x2d, 0x42], to: 'g1', set: 'iso-8859-2' }, // ESC - B  ISO-IR 101
  { seq: [0x2d, 0x43], to: 'g1', set: 'iso-8859-3' }, // ESC - C  ISO-IR 109
  { seq: [0x2d, 0x44], to: 'g1', set: 'iso-8859-4' }, // ESC - D  ISO-IR 110
  { seq: [0x2d, 0x4c], to: 'g1', set: 'iso-8859-5' }, // ESC - L  ISO-IR 144
  { seq: [0x2d, 0x47], to: 'g1', set: 'iso-8859-6' }, // ESC - G  ISO-IR 127
  { seq: [0x2d, 0x46], to: 'g1', set: 'iso-8859-7' }, // ESC - F  ISO-IR 126
  { seq: [0x2d, 0x48], to: 'g1', set: 'iso-8859-8' }, // ESC - H  ISO-IR 138
  { seq: [0x2d, 0x4d], to: 'g1', set: 'iso-8859-9' }, // ESC - M  ISO-IR 148
  { seq: [0x2d, 0x54], to: 'g1', set: 'tis-620' }, // ESC - T  ISO-IR 166
  { seq: [0x2d, 0x62], to: 'g1', set: 'iso-8859-15' }, // ESC - b  ISO-IR 203
];

/** PS3.5 6.1.2.3: only these VRs use the Specific Character Set; the rest use the default repertoire. */
const DEFAULT_REPERTOIRE_VRS = new Set([
  'AE',
  'AS',
  'CS',
  'DA',
  'DS',
  'DT',
  'IS',
  'TM',
  'UI',
  'UR',
]);

const DEFAULT: Charset = { kind: 'iso2022', initial: { g0: 'ascii', g1: undefined } };
/** Unknown terms: ISO 8859-1 in G1, the most common 8-bit repertoire. */
const FALLBACK: Charset = { kind: 'iso2022', initial: { g0: 'ascii', g1: 'iso-8859-1' } };

const decoders = new Map<string, TextDecoder>();
function textDecoder(label: string): TextDecoder {
  let d = decoders.get(label);
  if (!d) {
    d = new TextDecoder(label);
    decoders.set(label, d);
  }
  return d;
}

const charsets = new Map<string, Charset>();

/** Decodes a text value; trailing spaces and NULs are removed (PS3.5 6.2), `^` and `=` are kept. */
export function decodeText(
  bytes: Buffer,
  specificCharacterSet: string | undefined,
  vr: string,
): string {
  let text: string;
  try {
    text = DEFAULT_REPERTOIRE_VRS.has(vr)
      ? latin1(bytes)
      : decodeWith(bytes, charsetOf(specificCharacterSet ?? ''));
  } catch {
    text = latin1(bytes);
  }
  return text.replace(/[ \0]+$/, '');
}

function charsetOf(value: string): Charset {
  let cs = charsets.get(value);
  if (!cs) {
    cs = parseCharset(value);
    if (charsets.size < 256) charsets.set(value, cs);
  }
  return cs;
}

/** `ISO_IR 100`, `iso-ir 100`, `ISO 2022 IR 100` -> 100; `GB18030` -> 'GB18030'. */
function normalizeTerm(term: string): string {
  return term
    .trim()
    .toUpperCase()
    .replace(/[-_\s]+/g, ' ');
}

function parseCharset(value: string): Charset {
  // PS3.3 C.12.1.1.2: multiple values mean code extensions; an empty value 1 is the default repertoire.
  const terms = value.split('\\').map(normalizeTerm);
  // UTF-8, GB18030 and GBK allow no code extensions: they decode the whole value.
  if (terms.includes('ISO IR 192')) return { kind: 'whole', label: 'utf-8' };
  if (terms.includes('GB18030')) return { kind: 'whole', label: 'gb18030' };
  if (terms.includes('GBK')) return { kind: 'whole', label: 'gbk' };
  const first = terms[0] ?? '';
  if (first === '') return DEFAULT;
  const m = /^ISO (?:2022 )?IR (\d+)$/.exec(first);
  const initial = m ? BY_IR.get(Number(m[1])) : undefined;
  return initial ? { kind: 'iso2022', initial } : FALLBACK;
}

function decodeWith(bytes: Buffer, cs: Charset): string {
  if (cs.kind === 'whole') return textDecoder(cs.label).decode(bytes);
  return decodeIso2022(bytes, cs.initial);
}

function matchEscape(bytes: Buffer, at: number): (typeof ESCAPES)[number] | undefined {
  return ESCAPES.find((e) => e.seq.every((b, i) => bytes[at + 1 + i] === b));
}

function isDoubleByte(set: CodeSet): boolean {
  return set === 'jis-x0208' || set === 'jis-x0212';
}

/**
 * PS3.5 6.1.2.5: ISO 2022 code extension. Bytes 0x21-0x7E are read in the G0
 * set and bytes 0xA0-0xFF in the G1 set; escape sequences change G0 or G1.
 * Runs of bytes in one set are decoded together.
 */
function decodeIso2022(bytes: Buffer, initial: Designation): string {
  let { g0, g1 } = initial;
  let out = '';
  let run: number[] = [];
  let runSet: CodeSet = 'ascii';
  const flush = (): void => {
    if (run.length > 0) out += decodeRun(runSet, run);
    run = [];
  };
  const put = (set: CodeSet, b: number): void => {
    if (set !== runSet) {
      flush();
      runSet = set;
    }
    run.push(b);
  };
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i] as number;
    if (b === 0x1b) {
      const esc = matchEscape(bytes, i);
      if (esc) {
        if (esc.to === 'g0') g0 = esc.set;
        else g1 = esc.set;
        i += esc.seq.length;
        continue;
      }
      put('ascii', b); // an unknown escape is kept as text
    } else if (b < 0x20) {
      // PS3.5 6.1.2.5.3: the initial sets are active again before a control character (CR, LF, TAB, FF).
      put('ascii', b);
      g0 = initial.g0;
      g1 = initial.g1;
    } else if (b < 0x80) {
      // SPACE and DEL are single bytes even in a 94x94 set.
      put(isDoubleByte(g0) && (b === 0x20 || b === 0x7f) ? 'ascii' : g0, b);
    } else {
      put(g1 ?? 'iso-8859-1', b);
    }
  }
  flush();
  return out;
}

function decodeRun(set: CodeSet, run: number[]): string {
  const bytes = Uint8Array.from(run);
  switch (set) {
    case 'ascii':
    case 'iso-8859-1':
      return latin1(bytes);
    case 'jis-roman':
      // JIS X 0201 Romaji differs from ASCII in two places.
      return latin1(bytes).replace(/\\/g, '\u00a5').replace(/~/g, '\u203e');
    case 'jis-katakana':
      // JIS X 0201 Katakana 0xA1-0xDF are the half-width katakana U+FF61-U+FF9F.
      return run
        .map((b) => String.fromCharCode(b >= 0xa1 && b <= 0xdf ? 0xff61 + b - 0xa1 : 0xfffd))
        .join('');
    case 'jis-x0208':
      // EUC-JP carries JIS X 0208 as the 7-bit code with the high bit set.
      return textDecoder('euc-jp').decode(bytes.map((b) => b | 0x80));
    case 'jis-x0212': {
      // EUC-JP carries JIS X 0212 as 0x8F then the two bytes with the high bit set.
      const euc: number[] = [];
      for (let i = 0; i + 1 < run.length; i += 2) {
        euc.push(0x8f, (run[i] as number) | 0x80, (run[i + 1] as number) | 0x80);
      }
      return textDecoder('euc-jp').decode(Uint8Array.from(euc)) + (run.length % 2 ? '\ufffd' : '');
    }
    case 'ks-x1001':
      // EUC-KR is KS X 1001 in G1, exactly as ISO 2022 IR 149 invokes it.
      return textDecoder('euc-kr').decode(bytes);
    case 'gb2312':
      return textDecoder('gbk').decode(bytes);
    case 'iso-8859-9':
      return latin5(bytes);
    case 'tis-620':
      // windows-874 is a superset of TIS-620 (it only adds characters in 0x80-0x9F).
      return textDecoder('windows-874').decode(bytes);
    default:
      return textDecoder(set).decode(bytes);
  }
}

/** True ISO 8859-1 (TextDecoder's 'latin1' is windows-1252, which differs in 0x80-0x9F). */
function latin1(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('latin1');
}

/** ISO 8859-9 is ISO 8859-1 except six Turkish letters (TextDecoder maps it to windows-1254). */
const LATIN5: Record<number, string> = {
  0xd0: '\u011e',
  0xdd: '\u0130',
  0xde: '\u015e',
  0xf0: '\u011f',
  0xfd: '\u0131',
  0xfe: '\u015f',
};
function latin5(bytes: Uint8Array): string {
  let s = '';
  for (const b of bytes) s += LATIN5[b] ?? String.fromCharCode(b);
  return s;
}
