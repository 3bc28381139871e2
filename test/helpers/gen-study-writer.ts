// Byte-level writing for the synthetic study generator (gen-study.ts): derived UIDs and
// hashes, text in a SpecificCharacterSet, data elements in the three uncompressed transfer
// syntaxes, the File Meta group, pixel data slices and streamed (optionally deflated) files.
import { createHash } from 'node:crypto';
import { open } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { endianness } from 'node:os';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createDeflateRaw } from 'node:zlib';

export type PixelPattern = 'noise' | 'gradient' | 'zeros';

const IMPLEMENTATION_VERSION_NAME = 'DCMGW_GENSTUDY1';
const CHUNK_BYTES = 4 << 20;

/** sha256 of a path below the seed; every derived value starts here so nothing depends on order. */
export function digest(seed: number, parts: Array<string | number>): Buffer {
  return createHash('sha256')
    .update(`dicom-gateway/gen-study/${seed}/${parts.join('/')}`)
    .digest();
}

export function hashInt(seed: number, ...parts: Array<string | number>): number {
  return digest(seed, parts).readUInt32LE(0);
}

/** 2.25.<128-bit integer>, shaped as a version-8 UUID so that it is a valid UUID-derived UID. */
export function makeUid(seed: number, ...parts: Array<string | number>): string {
  const b = Buffer.from(digest(seed, parts).subarray(0, 16));
  b[6] = (b[6]! & 0x0f) | 0x80;
  b[8] = (b[8]! & 0x3f) | 0x80;
  return `2.25.${BigInt(`0x${b.toString('hex')}`).toString()}`;
}

export const IMPLEMENTATION_CLASS_UID = makeUid(0, 'implementation-class');

// ---------------------------------------------------------------------------- character sets

/** 'ISO_IR_192', 'iso-ir-192', 'ISO_IR 192' -> 'ISO_IR 192' (the DICOM defined term). */
export function normalizeCharset(value: string): string {
  const m = /^ISO[ _-]?IR[ _-]?(\d+)$/i.exec(value.trim());
  return m ? `ISO_IR ${m[1]}` : value.trim();
}

/** ISO-8859-5 (ISO_IR 144) code for a Unicode code point, if it has one. */
function iso8859_5(cp: number): number | undefined {
  // ASCII, C1 controls, NBSP and the soft hyphen keep their codes
  if (cp <= 0xa0 || cp === 0xad) return cp;
  if (cp === 0xa7) return 0xfd; // section sign
  if (cp === 0x2116) return 0xf0; // numero sign
  // U+0401..U+045F map to 0xA1..0xFF by a fixed offset, except the three code points whose slots
  // hold the characters above
  if (cp >= 0x401 && cp <= 0x45f && cp !== 0x40d && cp !== 0x450 && cp !== 0x45d) return cp - 0x360;
  return undefined;
}

/** Encode text for an LO/PN/SH/ST/LT/UT value in the given SpecificCharacterSet. */
export function encodeText(text: string, charset: string | undefined): Buffer {
  if (charset === 'ISO_IR 192') return Buffer.from(text, 'utf8');
  const limit = charset === 'ISO_IR 100' ? 0xff : charset === 'ISO_IR 144' ? Infinity : 0x7f;
  if (charset !== undefined && charset !== 'ISO_IR 6' && limit === 0x7f) {
    throw new Error(`gen-study: unsupported SpecificCharacterSet '${charset}'`);
  }
  const out: number[] = [];
  for (const ch of text) {
    const cp = ch.codePointAt(0)!;
    const b = charset === 'ISO_IR 144' ? iso8859_5(cp) : cp <= limit ? cp : undefined;
    if (b === undefined)
      throw new Error(`gen-study: '${ch}' cannot be encoded in ${charset ?? 'ASCII'}`);
    out.push(b);
  }
  return Buffer.from(out);
}

// ---------------------------------------------------------------------------- element encoding

export type Value = string | string[] | number | number[] | Buffer;
export type Element = [tag: number, vr: string, value: Value];

export interface Syntax {
  implicit: boolean;
  little: boolean;
}

// VRs whose explicit-VR header has 2 reserved bytes and a 32-bit length
const LONG_VRS = new Set('OB OD OF OL OV OW SQ SV UC UN UR UT UV'.split(' '));
const TEXT_VRS = new Set(['LO', 'LT', 'PN', 'SH', 'ST', 'UC', 'UT']);

export function valueBytes(vr: string, v: Value, sx: Syntax, charset: string | undefined): Buffer {
  if (Buffer.isBuffer(v)) return v;
  if (vr === 'US' || vr === 'UL' || vr === 'AT') {
    const nums = Array.isArray(v) ? (v as number[]) : [v as number];
    const size = vr === 'US' ? 2 : 4;
    const out = Buffer.alloc(nums.length * size);
    nums.forEach((n, k) => {
      if (vr === 'US') out[sx.little ? 'writeUInt16LE' : 'writeUInt16BE'](n, k * 2);
      else if (vr === 'UL') out[sx.little ? 'writeUInt32LE' : 'writeUInt32BE'](n, k * 4);
      else {
        // AT is a (group, element) pair of 16-bit values, each in the syntax's byte order
        out[sx.little ? 'writeUInt16LE' : 'writeUInt16BE'](n >>> 16, k * 4);
        out[sx.little ? 'writeUInt16LE' : 'writeUInt16BE'](n & 0xffff, k * 4 + 2);
      }
    });
    return out;
  }
  const text = Array.isArray(v) ? v.join('\\') : String(v);
  const raw = TEXT_VRS.has(vr) ? encodeText(text, charset) : Buffer.from(text, 'latin1');
  if (raw.length % 2 === 0) return raw;
  return Buffer.concat([raw, Buffer.from([vr === 'UI' ? 0 : 0x20])]);
}

export function elementHeader(tag: number, vr: string, length: number, sx: Syntax): Buffer {
  const le = sx.little;
  if (sx.implicit) {
    const h = Buffer.alloc(8);
    h.writeUInt16LE(tag >>> 16, 0);
    h.writeUInt16LE(tag & 0xffff, 2);
    h.writeUInt32LE(length, 4);
    return h;
  }
  const long = LONG_VRS.has(vr);
  const h = Buffer.alloc(long ? 12 : 8);
  h[le ? 'writeUInt16LE' : 'writeUInt16BE'](tag >>> 16, 0);
  h[le ? 'writeUInt16LE' : 'writeUInt16BE'](tag & 0xffff, 2);
  h.write(vr, 4, 'latin1');
  if (long) h[le ? 'writeUInt32LE' : 'writeUInt32BE'](length, 8);
  else h[le ? 'writeUInt16LE' : 'writeUInt16BE'](length, 6);
  return h;
}

export function encodeElements(els: Element[], sx: Syntax, charset?: string): Buffer {
  const parts: Buffer[] = [];
  for (const [tag, vr, v] of [...els].sort((a, b) => a[0] - b[0])) {
    const value = valueBytes(vr, v, sx, charset);
    parts.push(elementHeader(tag, vr, value.length, sx), value);
  }
  return Buffer.concat(parts);
}

export function encodeFileMeta(sopClassUid: string, sopInstanceUid: string, tsUid: string): Buffer {
  const sx = { implicit: false, little: true };
  const body = encodeElements(
    [
      [0x00020001, 'OB', Buffer.from([0, 1])],
      [0x00020002, 'UI', sopClassUid],
      [0x00020003, 'UI', sopInstanceUid],
      [0x00020010, 'UI', tsUid],
      [0x00020012, 'UI', IMPLEMENTATION_CLASS_UID],
      [0x00020013, 'SH', IMPLEMENTATION_VERSION_NAME],
      [0x00020016, 'AE', 'GENSTUDY'],
    ],
    sx,
  );
  return Buffer.concat([encodeElements([[0x00020000, 'UL', body.length]], sx), body]);
}

// ---------------------------------------------------------------------------- pixel data

export interface PixelPlan {
  rows: number;
  cols: number;
  frames: number;
  bitsStored: number;
  little: boolean;
  pattern: PixelPattern;
}

/**
 * xorshift128 (Marsaglia 2003) noise, two pixels per 32-bit word, masked to BitsStored. JS
 * 32-bit integer arithmetic is exactly specified, so the stream is the same everywhere; it is
 * ~5x faster here than AES-CTR (no AES-NI on these VMs) and compresses not at all.
 */
function fillNoise(words: Uint32Array, s: Int32Array, mask: number): void {
  let x = s[0]!;
  let y = s[1]!;
  let z = s[2]!;
  let w = s[3]!;
  for (let k = 0; k < words.length; k++) {
    const t = x ^ (x << 11);
    x = y;
    y = z;
    z = w;
    w = w ^ (w >>> 19) ^ t ^ (t >>> 8);
    words[k] = w & mask;
  }
  s[0] = x;
  s[1] = y;
  s[2] = z;
  s[3] = w;
}

/** Slices of whole rows, already in file byte order. */
export function* pixelChunks(
  p: PixelPlan,
  seed: number,
  key: Array<string | number>,
): Generator<Buffer> {
  const rowBytes = p.cols * 2;
  const chunkRows = Math.max(1, Math.min(p.rows, Math.floor(CHUNK_BYTES / rowBytes)));
  const maxval = 2 ** p.bitsStored - 1;
  const hostLE = endianness() === 'LE';
  const state = new Int32Array(4);
  const d = digest(seed, ['pixels', ...key]);
  for (let k = 0; k < 4; k++) state[k] = d.readInt32LE(k * 4);
  if (state.every((v) => v === 0)) state[0] = 1; // the one state xorshift cannot leave
  const mask = (maxval << 16) | maxval;
  const zeros = Buffer.alloc(chunkRows * rowBytes);
  const phase = hashInt(seed, 'phase', ...key) & 0xffff;
  const kx = Math.floor(4096 / p.cols) + 1;
  const ky = Math.floor(4096 / p.rows) + 1;
  for (let f = 0; f < p.frames; f++) {
    for (let r0 = 0; r0 < p.rows; r0 += chunkRows) {
      const n = Math.min(chunkRows, p.rows - r0) * rowBytes;
      if (p.pattern === 'zeros') {
        yield zeros.subarray(0, n);
        continue;
      }
      // allocUnsafeSlow: never pooled, so byteOffset is 0 and typed-array views are aligned;
      // every byte is overwritten below.
      const buf = Buffer.allocUnsafeSlow(n);
      if (p.pattern === 'noise') {
        const whole = n & ~3;
        fillNoise(new Uint32Array(buf.buffer, 0, whole / 4), state, mask);
        // a big-endian host stored the words high byte first: make them little-endian
        if (!hostLE) buf.subarray(0, whole).swap32();
        if (whole < n) {
          const last = new Uint32Array(1);
          fillNoise(last, state, mask);
          buf.writeUInt16LE(last[0]! & 0xffff, whole);
        }
        if (!p.little) buf.swap16();
      } else {
        const words = new Uint16Array(buf.buffer, 0, n / 2);
        for (let y = 0; y < n / rowBytes; y++) {
          const base = (r0 + y) * ky + phase + 37 * f;
          for (let x = 0; x < p.cols; x++) words[y * p.cols + x] = (base + x * kx) & maxval;
        }
        if (hostLE !== p.little) buf.swap16();
      }
      yield buf;
    }
  }
}

// ---------------------------------------------------------------------------- file writing

async function writeAll(fh: FileHandle, buf: Buffer): Promise<void> {
  for (let off = 0; off < buf.length;) off += (await fh.write(buf, off)).bytesWritten;
}

export async function writeInstance(
  path: string,
  head: Buffer,
  dataset: Iterable<Buffer>,
  deflateLevel: number | undefined,
): Promise<{ bytes: number; sha256: string }> {
  const fh = await open(path, 'w');
  const hash = createHash('sha256');
  let bytes = 0;
  const put = async (b: Buffer): Promise<void> => {
    hash.update(b);
    bytes += b.length;
    await writeAll(fh, b);
  };
  try {
    await put(head);
    if (deflateLevel === undefined) {
      for (const chunk of dataset) await put(chunk);
    } else {
      const start = bytes;
      await pipeline(
        Readable.from(dataset, { objectMode: false }),
        createDeflateRaw({ level: deflateLevel }),
        async (source: AsyncIterable<Buffer>) => {
          for await (const chunk of source) await put(chunk);
        },
      );
      // PS3.5 A.5: the deflated bitstream is padded to even length with a single NUL
      if ((bytes - start) % 2) await put(Buffer.from([0]));
    }
  } finally {
    await fh.close();
  }
  return { bytes, sha256: hash.digest('hex') };
}
