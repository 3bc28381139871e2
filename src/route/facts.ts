/**
 * What a routing rule is evaluated on: the association (calling and called AE title, the
 * peer's address) and, for an instance, its header attributes. Attributes are asked for by
 * keyword and decoded only when a rule tests them, so rules that decide on the association
 * or on Modality cost nothing more.
 */
import { decodeText } from '../dicom/charset.js';
import type { CollectedElement } from '../dicom/header-reader.js';
import { ROUTE_KEYWORDS, type RouteKeyword } from './keywords.js';

export interface RouteFacts {
  readonly callingAe: string;
  readonly calledAe: string;
  /** The peer's address as the socket reports it (`::ffff:a.b.c.d` is handled). */
  readonly address: string;
  /**
   * The SOP Class UID the C-STORE request names (Affected SOP Class UID, PS3.7 9.1.1.1):
   * known before the data set. When absent, `sopClass` reads SOPClassUID from the attributes.
   */
  readonly sopClassUid?: string | undefined;
  /**
   * The decoded values of a top-level attribute: multi-valued attributes split at `\`,
   * leading and trailing spaces removed, empty values dropped; undefined when the attribute
   * is absent or has no value.
   */
  readonly attributes: (keyword: RouteKeyword) => readonly string[] | undefined;
}

/** At association time there is no instance: every attribute is absent. */
export const NO_ATTRIBUTES: RouteFacts['attributes'] = () => undefined;

/** What DatasetReader offers once its header is complete. */
export interface HeaderSource {
  elements(): ReadonlyMap<number, CollectedElement>;
  readonly littleEndian: boolean;
}

/**
 * The attributes of a data set read by DatasetReader, decoded on first use (then cached):
 * text per Specific Character Set (src/dicom/charset.ts), binary numbers per byte order.
 */
export function headerAttributes(header: HeaderSource): RouteFacts['attributes'] {
  const elements = header.elements();
  const cache = new Map<RouteKeyword, readonly string[] | undefined>();
  let charset: string | undefined;
  let charsetRead = false;
  return (keyword) => {
    if (cache.has(keyword)) return cache.get(keyword);
    const [tag, vr] = ROUTE_KEYWORDS[keyword];
    const bytes = elements.get(tag)?.value;
    let values: readonly string[] | undefined;
    if (bytes && bytes.length > 0) {
      if (!charsetRead) {
        const cs = elements.get(ROUTE_KEYWORDS.SpecificCharacterSet[0])?.value;
        charset = cs && cs.length > 0 ? decodeText(cs, undefined, 'CS').trim() : undefined;
        charsetRead = true;
      }
      values = decodeValues(bytes, vr, charset, header.littleEndian);
    }
    cache.set(keyword, values);
    return values;
  };
}

/** PS3.5 Table 6.2-1: these VRs hold one value, a backslash in them is text. */
const SINGLE_VALUED = new Set(['LT', 'ST', 'UT', 'UR']);
/** PS3.5 Table 6.2-1: binary integers, their size and signedness. */
const BINARY: Readonly<Record<string, [number, boolean]>> = {
  US: [2, false],
  SS: [2, true],
  UL: [4, false],
  SL: [4, true],
};

export function decodeValues(
  bytes: Buffer,
  vr: string,
  charset: string | undefined,
  littleEndian: boolean,
): readonly string[] | undefined {
  const binary = BINARY[vr];
  let values: string[];
  if (binary) {
    const [size, signed] = binary;
    values = [];
    // PS3.5 7.3: binary values are in the transfer syntax's byte order.
    for (let at = 0; at + size <= bytes.length; at += size) {
      const n = littleEndian
        ? signed
          ? bytes.readIntLE(at, size)
          : bytes.readUIntLE(at, size)
        : signed
          ? bytes.readIntBE(at, size)
          : bytes.readUIntBE(at, size);
      values.push(String(n));
    }
  } else {
    const text = decodeText(bytes, charset, vr);
    values = SINGLE_VALUED.has(vr) ? [text.trim()] : text.split('\\').map((v) => v.trim());
  }
  const kept = values.filter((v) => v !== '');
  return kept.length > 0 ? kept : undefined;
}
