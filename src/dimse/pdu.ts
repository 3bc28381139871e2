import { GatewayError } from '../errors.js';

/**
 * Pure, chunk-safe framing of DICOM Upper Layer PDUs (PS3.8 9.3) and the
 * P-DATA-TF codec. No sockets in here: the association feeds Buffers in and
 * gets whole PDUs out, so every byte boundary can be tested.
 */

/** PS3.8 9.3.1: PDU types. */
export const PduType = {
  AssociateRq: 0x01,
  AssociateAc: 0x02,
  AssociateRj: 0x03,
  PDataTf: 0x04,
  ReleaseRq: 0x05,
  ReleaseRp: 0x06,
  Abort: 0x07,
} as const;

const HEADER = 6;

/** PS3.8 9.3.8, Table 9-26: A-ABORT source. */
export const AbortSource = {
  ServiceUser: 0,
  ServiceProvider: 2,
} as const;

/** PS3.8 Table 9-26: A-ABORT reason/diag (significant with source 2, service-provider). */
export const AbortReason = {
  NotSpecified: 0,
  UnrecognizedPdu: 1,
  UnexpectedPdu: 2,
  UnrecognizedPduParameter: 4,
  UnexpectedPduParameter: 5,
  InvalidPduParameter: 6,
} as const;

/**
 * A violation of the upper layer protocol (PS3.8 9.3): the association answers it with
 * A-ABORT carrying `abortReason` (PS3.8 9.2 state table, AA-1 / AA-8).
 */
export class UpperLayerError extends GatewayError {
  constructor(
    message: string,
    readonly abortReason: number = AbortReason.NotSpecified,
  ) {
    super('GW_ERR_PROTOCOL', message);
    this.name = 'UpperLayerError';
  }
}

export interface Pdu {
  type: number;
  /** The whole PDU including its 6-byte header. */
  raw: Buffer;
}

export interface FramerLimits {
  /** Largest P-DATA-TF PDU accepted (the max PDU length we advertised, PS3.8 D.1). */
  maxPDataLength: number;
  /** Largest other PDU (A-ASSOCIATE-RQ with 128 presentation contexts stays far below 64 KiB). */
  maxOtherLength: number;
}

/**
 * Splits a byte stream into PDUs. Partial data is kept as a list of chunks and
 * joined once per PDU, so a PDU arriving in many small reads (TLS records) costs
 * O(n), not O(n²) as re-concatenating on every chunk would.
 */
export class PduFramer {
  private chunks: Buffer[] = [];
  private buffered = 0;
  /** Length of the PDU being assembled (header included), or -1 while the header is incomplete. */
  private need = -1;
  private type = 0;
  private error: UpperLayerError | undefined;

  constructor(private readonly limits: FramerLimits) {}

  /** Bytes held that do not yet form a whole PDU. */
  get pendingBytes(): number {
    return this.buffered;
  }

  /** Adds bytes; returns the PDUs they complete (possibly none). Throws GW_ERR_PROTOCOL. */
  push(chunk: Buffer): Pdu[] {
    const { pdus, error } = this.frame(chunk);
    if (error) throw error;
    return pdus;
  }

  /**
   * Adds bytes; returns the PDUs they complete and, when the stream turned invalid after
   * them, the error: PDUs that arrived whole before a bad header are still handled in order.
   * Once an error is returned every later call returns it again.
   */
  frame(chunk: Buffer): { pdus: Pdu[]; error?: UpperLayerError } {
    const pdus: Pdu[] = [];
    if (this.error) return { pdus, error: this.error };
    if (chunk.length === 0) return { pdus };
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    for (;;) {
      if (this.need < 0) {
        if (this.buffered < HEADER) break;
        const head = this.peek(HEADER);
        const type = head[0]!;
        const length = head.readUInt32BE(2);
        if (type < PduType.AssociateRq || type > PduType.Abort) {
          // PS3.8 9.2 state table, Evt19: an unrecognized PDU is answered with A-ABORT.
          this.error = new UpperLayerError(
            `unrecognized PDU type 0x${hex2(type)}`,
            AbortReason.UnrecognizedPdu,
          );
          break;
        }
        const max =
          type === PduType.PDataTf ? this.limits.maxPDataLength : this.limits.maxOtherLength;
        if (length > max) {
          // PS3.8 D.1: a P-DATA-TF longer than the Maximum Length we advertised.
          this.error = new UpperLayerError(
            `PDU type 0x${hex2(type)} of ${length} bytes exceeds the limit of ${max}`,
            AbortReason.InvalidPduParameter,
          );
          break;
        }
        this.type = type;
        this.need = HEADER + length;
      }
      if (this.buffered < this.need) break;
      pdus.push({ type: this.type, raw: this.take(this.need) });
      this.need = -1;
    }
    if (this.error) {
      // Nothing after a bad header can be framed: drop the rest.
      this.chunks = [];
      this.buffered = 0;
    }
    return { pdus, error: this.error };
  }

  private peek(n: number): Buffer {
    const first = this.chunks[0]!;
    if (first.length >= n) return first.subarray(0, n);
    const joined = Buffer.concat(this.chunks);
    this.chunks = [joined];
    return joined.subarray(0, n);
  }

  private take(n: number): Buffer {
    const first = this.chunks[0]!;
    let result: Buffer;
    if (first.length === n) {
      result = first;
      this.chunks.shift();
    } else if (first.length > n) {
      result = first.subarray(0, n);
      this.chunks[0] = first.subarray(n);
    } else {
      const parts: Buffer[] = [];
      let got = 0;
      while (got < n) {
        const c = this.chunks[0]!;
        const want = n - got;
        if (c.length <= want) {
          parts.push(c);
          got += c.length;
          this.chunks.shift();
        } else {
          parts.push(c.subarray(0, want));
          this.chunks[0] = c.subarray(want);
          got += want;
        }
      }
      result = Buffer.concat(parts, n);
    }
    this.buffered -= n;
    return result;
  }
}

/** PS3.8 9.3.5.1: one Presentation Data Value item of a P-DATA-TF PDU. */
export interface Pdv {
  presentationContextId: number;
  /** Message Control Header bit 0. */
  isCommand: boolean;
  /** Message Control Header bit 1. */
  isLast: boolean;
  /** The fragment; a view into the PDU buffer, not a copy. */
  value: Buffer;
}

/** Parses the PDV items of a whole P-DATA-TF PDU (header included). Throws GW_ERR_PROTOCOL. */
export function parsePDataTf(raw: Buffer): Pdv[] {
  const pdvs: Pdv[] = [];
  let pos = HEADER;
  while (pos < raw.length) {
    if (raw.length - pos < 6) {
      throw new UpperLayerError(
        `PDV item header truncated at offset ${pos}`,
        AbortReason.InvalidPduParameter,
      );
    }
    const itemLength = raw.readUInt32BE(pos);
    // PS3.8 9.3.5.1: the item length covers the presentation context ID and the control header.
    if (itemLength < 2 || pos + 4 + itemLength > raw.length) {
      throw new UpperLayerError(
        `PDV item length ${itemLength} at offset ${pos} is invalid`,
        AbortReason.InvalidPduParameter,
      );
    }
    const pcId = raw[pos + 4]!;
    const control = raw[pos + 5]!;
    pdvs.push({
      presentationContextId: pcId,
      isCommand: (control & 0x01) !== 0,
      isLast: (control & 0x02) !== 0,
      value: raw.subarray(pos + 6, pos + 4 + itemLength),
    });
    pos += 4 + itemLength;
  }
  if (pdvs.length === 0) {
    // PS3.8 9.3.5: a P-DATA-TF PDU carries one or more PDV items.
    throw new UpperLayerError('P-DATA-TF PDU without PDV items', AbortReason.InvalidPduParameter);
  }
  return pdvs;
}

/** Encodes one P-DATA-TF PDU holding a single PDV. */
export function encodePDataTf(
  pcId: number,
  isCommand: boolean,
  isLast: boolean,
  value: Buffer,
): Buffer {
  const out = Buffer.allocUnsafe(HEADER + 6 + value.length);
  out[0] = PduType.PDataTf;
  out[1] = 0;
  out.writeUInt32BE(6 + value.length, 2);
  out.writeUInt32BE(2 + value.length, 6);
  out[10] = pcId;
  out[11] = (isCommand ? 0x01 : 0) | (isLast ? 0x02 : 0);
  value.copy(out, 12);
  return out;
}

/**
 * PS3.8 D.1: the largest PDV value a peer that advertised `maxPduLength` accepts in one
 * P-DATA-TF holding one PDV (its length counts the PDV's 4-byte length and 2-byte header).
 * A peer without a limit (0) still gets bounded PDUs: `cap`.
 */
export function maxPdvValue(maxPduLength: number, cap = 64 * 1024): number {
  const limit = maxPduLength === 0 ? cap : Math.min(maxPduLength, cap);
  if (limit <= 6) throw new UpperLayerError(`maximum PDU length ${maxPduLength} is too small`);
  return limit - 6;
}

/**
 * Splits one message part (a command set or a data set chunk) into P-DATA-TF PDUs of one
 * PDV each, at most `maxValue` bytes of value per PDV. `last` marks whether the final PDV
 * ends the command or data set (PS3.8 E.2, Message Control Header bit 1).
 */
export function fragmentPData(
  pcId: number,
  isCommand: boolean,
  value: Buffer,
  maxValue: number,
  last = true,
): Buffer[] {
  const out: Buffer[] = [];
  for (let off = 0; off < value.length || out.length === 0; off += maxValue) {
    const end = Math.min(value.length, off + maxValue);
    out.push(
      encodePDataTf(pcId, isCommand, last && end === value.length, value.subarray(off, end)),
    );
  }
  return out;
}

/** PS3.8 9.3.8: A-ABORT PDU. source 0 = service user, 2 = service provider (Table 9-26). */
export function encodeAbort(source: number, reason: number): Buffer {
  return Buffer.from([PduType.Abort, 0, 0, 0, 0, 4, 0, 0, source, reason]);
}

/** The source and reason of a whole A-ABORT PDU (PS3.8 9.3.8). */
export function parseAbort(raw: Buffer): { source: number; reason: number } {
  if (raw[0] !== PduType.Abort || raw.length !== 10) {
    throw new UpperLayerError('A-ABORT is not 10 bytes', AbortReason.InvalidPduParameter);
  }
  return { source: raw[8]!, reason: raw[9]! };
}

/** PS3.8 9.3.6: A-RELEASE-RQ. */
export function encodeReleaseRq(): Buffer {
  return Buffer.from([PduType.ReleaseRq, 0, 0, 0, 0, 4, 0, 0, 0, 0]);
}

/** PS3.8 9.3.7: A-RELEASE-RP. */
export function encodeReleaseRp(): Buffer {
  return Buffer.from([PduType.ReleaseRp, 0, 0, 0, 0, 4, 0, 0, 0, 0]);
}

function hex2(n: number): string {
  return n.toString(16).padStart(2, '0');
}
