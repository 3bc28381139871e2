/**
 * C-FIND / C-MOVE identifiers (PS3.4 C.4): small data sets of text attributes, in Explicit or
 * Implicit VR Little Endian (whichever the presentation context agreed). Pure: encode a list of
 * elements, decode the top-level elements of a response (nested sequences are walked over and
 * skipped, their lengths checked). Only the text VRs a query uses are decoded as text.
 */
import { GatewayError } from '../errors.js';
import { LONG_VRS } from './header-reader.js';

export interface IdentifierElement {
  tag: number;
  vr: string;
  /** The value as text ('' = universal matching / "return this key", PS3.4 C.2.2.2.3). */
  value: string;
}

const ITEM = 0xfffee000;
const ITEM_DELIMITER = 0xfffee00d;
const SEQUENCE_DELIMITER = 0xfffee0dd;
const UNDEFINED_LENGTH = 0xffffffff;
const MAX_DEPTH = 32;

/** Encodes the elements in tag order (PS3.5 7.1), each value padded to even length. */
export function encodeIdentifier(
  elements: readonly IdentifierElement[],
  explicit: boolean,
): Buffer {
  const sorted = [...elements].sort((a, b) => a.tag - b.tag);
  const parts: Buffer[] = [];
  for (const e of sorted) {
    const value = padded(e.vr, e.value);
    const long = LONG_VRS.has(e.vr);
    const head = Buffer.alloc(explicit ? (long ? 12 : 8) : 8);
    head.writeUInt16LE(e.tag >>> 16, 0);
    head.writeUInt16LE(e.tag & 0xffff, 2);
    if (!explicit) head.writeUInt32LE(value.length, 4);
    else {
      head.write(e.vr, 4, 'latin1');
      if (long) head.writeUInt32LE(value.length, 8);
      else {
        if (value.length > 0xffff) throw new RangeError(`value of ${hexTag(e.tag)} too long`);
        head.writeUInt16LE(value.length, 6);
      }
    }
    parts.push(head, value);
  }
  return Buffer.concat(parts);
}

/**
 * The top-level elements of an identifier, by tag: VR (explicit, else 'UN') and raw value.
 * Throws GW_ERR_PROTOCOL on a malformed data set.
 */
export function decodeIdentifier(
  buf: Buffer,
  explicit: boolean,
): Map<number, { vr: string; value: Buffer }> {
  const out = new Map<number, { vr: string; value: Buffer }>();
  walk(buf, 0, buf.length, explicit, 0, (tag, vr, value) => out.set(tag, { vr, value }));
  return out;
}

/** A text value as a string: PS3.5 6.2, trailing spaces and NUL padding removed (leading spaces too, except LT/ST/UT). */
export function textOf(value: Buffer | undefined): string | undefined {
  if (value === undefined) return undefined;
  return value
    .toString('latin1')
    .replace(/[\0 ]+$/, '')
    .replace(/^ +/, '');
}

/** Walks [pos, end) and returns where it stopped (end, or after a delimiter when nested). */
function walk(
  buf: Buffer,
  start: number,
  end: number,
  explicit: boolean,
  depth: number,
  onElement?: (tag: number, vr: string, value: Buffer) => void,
  untilDelimiter = false,
): number {
  if (depth > MAX_DEPTH) throw malformed('sequences nested too deep', start);
  let pos = start;
  while (pos < end) {
    if (end - pos < 8) throw malformed('truncated element header', pos);
    const tag = ((buf.readUInt16LE(pos) << 16) | buf.readUInt16LE(pos + 2)) >>> 0;
    if (tag === ITEM_DELIMITER || tag === SEQUENCE_DELIMITER) return pos + 8;
    let vr = 'UN';
    let length: number;
    let headerLength = 8;
    if (tag === ITEM) {
      length = buf.readUInt32LE(pos + 4);
    } else if (explicit) {
      vr = buf.toString('latin1', pos + 4, pos + 6);
      if (!/^[A-Z]{2}$/.test(vr)) throw malformed(`bad VR at ${hexTag(tag)}`, pos);
      if (LONG_VRS.has(vr)) {
        if (end - pos < 12) throw malformed('truncated element header', pos);
        length = buf.readUInt32LE(pos + 8);
        headerLength = 12;
      } else length = buf.readUInt16LE(pos + 6);
    } else {
      length = buf.readUInt32LE(pos + 4);
    }
    pos += headerLength;
    if (length === UNDEFINED_LENGTH) {
      // A sequence (or an item) of undefined length: walk to its delimiter.
      pos = walk(buf, pos, end, explicit, depth + 1, undefined, true);
      continue;
    }
    if (length > end - pos) throw malformed(`value of ${hexTag(tag)} runs past the end`, pos);
    if (tag === ITEM || vr === 'SQ') {
      walk(buf, pos, pos + length, explicit, depth + 1);
    } else if (depth === 0) {
      onElement?.(tag, vr, buf.subarray(pos, pos + length));
    }
    pos += length;
  }
  if (untilDelimiter) throw malformed('sequence or item without its delimiter', pos);
  return pos;
}

function padded(vr: string, text: string): Buffer {
  const b = Buffer.from(text, 'latin1');
  if (b.length % 2 === 0) return b;
  return Buffer.concat([b, Buffer.from([vr === 'UI' ? 0 : 0x20])]);
}

function malformed(what: string, pos: number): GatewayError {
  return new GatewayError('GW_ERR_PROTOCOL', `identifier: ${what} (offset ${pos})`);
}

export function hexTag(tag: number): string {
  const h = tag.toString(16).padStart(8, '0').toUpperCase();
  return `(${h.slice(0, 4)},${h.slice(4)})`;
}
