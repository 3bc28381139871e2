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

/**
 * A whole PDU, header included, as the chunks it arrived in: views into the socket's buffers,
 * not copies. DCMTK writes each P-DATA-TF's PDU and PDV headers (12 bytes) and its value in two
 * writes, so with TCP_NODELAY nearly every PDU spans two reads; joining them would copy every
 * data set byte once more (measured: a tenth of the main thread's time). parsePDataTf reads
 * `parts` directly; `raw` joins them, once, for the small PDUs that are decoded as a whole.
 */
export class Pdu {
  private joined: Buffer | undefined;

  constructor(
    readonly type: number,
    readonly parts: readonly Buffer[],
    /** Bytes in all parts. */
    readonly length: number,
  ) {}

  /** The whole PDU as one Buffer (a copy only when it arrived in several chunks). */
  get raw(): Buffer {
    return (this.joined ??=
      this.parts.length === 1 ? this.parts[0]! : Buffer.concat(this.parts, this.length));
  }
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
      pdus.push(new Pdu(this.type, this.take(this.need), this.need));
      this.need = -1;
    }
    if (this.error) {
      // Nothing after a bad header can be framed: drop the rest.
      this.chunks = [];
      this.buffered = 0;
    }
    return { pdus, error: this.error };
  }

  /** The first n bytes held (n is a header's size: a straddling header is copied, no more). */
  private peek(n: number): Buffer {
    const first = this.chunks[0]!;
    if (first.length >= n) return first.subarray(0, n);
    const out = Buffer.alloc(n);
    let got = 0;
    for (const c of this.chunks) {
      got += c.copy(out, got, 0, Math.min(c.length, n - got));
      if (got === n) break;
    }
    return out;
  }

  /** Removes the first n bytes held, as views of the chunks they arrived in. */
  private take(n: number): Buffer[] {
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
    this.buffered -= n;
    return parts;
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

/**
 * Parses the PDV items of a whole P-DATA-TF PDU (header included), given as one Buffer or as
 * the Pdu's parts. A value is a view into the part that holds it; only a value split across
 * two reads is joined (copied). Throws GW_ERR_PROTOCOL.
 */
export function parsePDataTf(pdu: Buffer | Pick<Pdu, 'parts' | 'length'>): Pdv[] {
  const total = pdu.length;
  const bytes = new PartsReader(Buffer.isBuffer(pdu) ? [pdu] : pdu.parts);
  bytes.take(HEADER);
  const pdvs: Pdv[] = [];
  let pos = HEADER;
  while (pos < total) {
    if (total - pos < 6) {
      throw new UpperLayerError(
        `PDV item header truncated at offset ${pos}`,
        AbortReason.InvalidPduParameter,
      );
    }
    const head = bytes.take(6);
    const itemLength = head.readUInt32BE(0);
    // PS3.8 9.3.5.1: the item length covers the presentation context ID and the control header.
    if (itemLength < 2 || pos + 4 + itemLength > total) {
      throw new UpperLayerError(
        `PDV item length ${itemLength} at offset ${pos} is invalid`,
        AbortReason.InvalidPduParameter,
      );
    }
    const control = head[5]!;
    pdvs.push({
      presentationContextId: head[4]!,
      isCommand: (control & 0x01) !== 0,
      isLast: (control & 0x02) !== 0,
      value: bytes.take(itemLength - 2),
    });
    pos += 4 + itemLength;
  }
  if (pdvs.length === 0) {
    // PS3.8 9.3.5: a P-DATA-TF PDU carries one or more PDV items.
    throw new UpperLayerError('P-DATA-TF PDU without PDV items', AbortReason.InvalidPduParameter);
  }
  return pdvs;
}

/** Reads a run of Buffers front to back; the caller checks lengths against their sum first. */
class PartsReader {
  private index = 0;
  private offset = 0;

  constructor(private readonly parts: readonly Buffer[]) {}

  /** The next n bytes: a view when one part holds them all, else joined. */
  take(n: number): Buffer {
    if (n === 0) return EMPTY;
    const part = this.parts[this.index]!;
    if (part.length - this.offset > n) {
      this.offset += n;
      return part.subarray(this.offset - n, this.offset);
    }
    const pieces: Buffer[] = [];
    let got = 0;
    while (got < n) {
      const p = this.parts[this.index]!;
      const k = Math.min(p.length - this.offset, n - got);
      pieces.push(p.subarray(this.offset, this.offset + k));
      got += k;
      this.offset += k;
      if (this.offset === p.length) {
        this.index++;
        this.offset = 0;
      }
    }
    return pieces.length === 1 ? pieces[0]! : Buffer.concat(pieces, n);
  }
}

const EMPTY = Buffer.alloc(0);

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
