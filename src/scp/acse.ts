import { AbortReason, PduType, UpperLayerError } from './pdu.js';

/**
 * The A-ASSOCIATE-RQ decoder and the A-ASSOCIATE-AC / -RJ / A-RELEASE-RP encoders
 * (PS3.8 9.3.2-9.3.7, PS3.7 Annex D.3.3). Pure: Buffers in, Buffers out.
 *
 * Ours rather than dcmjs-dimse's (0.3.3), whose RQ reader renumbers presentation contexts
 * that are not proposed in ascending order (it answers context 1 as 5, then aborts on its
 * transfer syntaxes), accepts any number of contexts and even or duplicate IDs, and whose AC
 * echoes the requester's asynchronous-operations window and role selections back as if we
 * had agreed to them. Here the RQ is checked against PS3.8 9.3.2 and anything malformed is
 * an UpperLayerError (the association answers it with A-ABORT).
 */

export const APPLICATION_CONTEXT = '1.2.840.10008.3.1.1.1';

/** PS3.8 9.3.2.2: presentation context IDs are odd, 1..255: at most 128 per association. */
export const MAX_PRESENTATION_CONTEXTS = 128;

export interface ProposedContextRq {
  id: number;
  abstractSyntaxUid: string;
  transferSyntaxUids: string[];
}

export interface AssociateRq {
  protocolVersion: number;
  calledAeTitle: string;
  callingAeTitle: string;
  /** Bytes 11-74 of the RQ (called, calling, reserved): the AC sends them back unchanged. */
  echo: Buffer;
  applicationContextName: string;
  contexts: ProposedContextRq[];
  /** PS3.8 D.1: 0 = no limit. */
  maxPduLength: number;
  implementationClassUid?: string;
  implementationVersionName?: string;
}

const ITEM = {
  ApplicationContext: 0x10,
  PresentationContextRq: 0x20,
  PresentationContextAc: 0x21,
  AbstractSyntax: 0x30,
  TransferSyntax: 0x40,
  UserInformation: 0x50,
  MaxLength: 0x51,
  ImplementationClassUid: 0x52,
  ImplementationVersionName: 0x55,
} as const;

interface Item {
  type: number;
  value: Buffer;
  offset: number;
}

/** Splits a run of items (4-byte header: type, reserved, 16-bit length) checking every length. */
function items(buf: Buffer, base: number, what: string): Item[] {
  const out: Item[] = [];
  let pos = 0;
  while (pos < buf.length) {
    if (buf.length - pos < 4) {
      throw invalid(`${what}: item header truncated at offset ${base + pos}`);
    }
    const type = buf[pos]!;
    const length = buf.readUInt16BE(pos + 2);
    if (pos + 4 + length > buf.length) {
      throw invalid(
        `${what}: item 0x${type.toString(16)} at offset ${base + pos} of length ${length} runs past its end`,
      );
    }
    out.push({ type, value: buf.subarray(pos + 4, pos + 4 + length), offset: base + pos });
    pos += 4 + length;
  }
  return out;
}

/**
 * Decodes a whole A-ASSOCIATE-RQ PDU (header included). Throws UpperLayerError for anything
 * PS3.8 9.3.2 does not allow. Protocol version and application context name are returned,
 * not judged: those are answered with A-ASSOCIATE-RJ (see negotiation.ts).
 */
export function parseAssociateRq(raw: Buffer): AssociateRq {
  if (raw[0] !== PduType.AssociateRq) throw invalid('not an A-ASSOCIATE-RQ');
  if (raw.length < 6 + 68) {
    throw invalid(`A-ASSOCIATE-RQ of ${raw.length - 6} bytes is shorter than its fixed fields`);
  }
  let applicationContextName: string | undefined;
  let userInfo: Item | undefined;
  const contexts: ProposedContextRq[] = [];
  const ids = new Set<number>();
  for (const it of items(raw.subarray(74), 74, 'A-ASSOCIATE-RQ')) {
    switch (it.type) {
      case ITEM.ApplicationContext:
        if (applicationContextName !== undefined) throw invalid('two application context items');
        applicationContextName = text(it.value);
        break;
      case ITEM.PresentationContextRq: {
        const pc = presentationContext(it);
        if (ids.has(pc.id)) {
          // PS3.8 7.1.1.13: an ID identifies one context; an AC answering it twice is ambiguous.
          throw invalid(`presentation context ID ${pc.id} proposed twice`);
        }
        ids.add(pc.id);
        contexts.push(pc);
        if (contexts.length > MAX_PRESENTATION_CONTEXTS) {
          throw invalid(`more than ${MAX_PRESENTATION_CONTEXTS} presentation contexts`);
        }
        break;
      }
      case ITEM.UserInformation:
        if (userInfo) throw invalid('two user information items');
        userInfo = it;
        break;
      default:
      // PS3.8 9.3.1: items of unrecognized types are ignored and skipped.
    }
  }
  if (applicationContextName === undefined) {
    throw invalid('A-ASSOCIATE-RQ without an application context item');
  }
  if (contexts.length === 0) {
    throw invalid('A-ASSOCIATE-RQ without a presentation context item');
  }
  if (!userInfo) throw invalid('A-ASSOCIATE-RQ without a user information item');
  let maxPduLength = 0;
  let implementationClassUid: string | undefined;
  let implementationVersionName: string | undefined;
  for (const sub of items(userInfo.value, userInfo.offset + 4, 'user information')) {
    if (sub.type === ITEM.MaxLength) {
      if (sub.value.length !== 4) throw invalid('maximum length sub-item is not 4 bytes');
      maxPduLength = sub.value.readUInt32BE(0);
    } else if (sub.type === ITEM.ImplementationClassUid) {
      implementationClassUid = text(sub.value);
    } else if (sub.type === ITEM.ImplementationVersionName) {
      implementationVersionName = text(sub.value);
    }
    // Asynchronous operations (53H), role selection (54H), extended negotiation (56H, 57H),
    // user identity (58H): not negotiated; leaving them out of the AC declines them
    // (PS3.7 D.3.3.3-D.3.3.7), so the defaults apply: one operation at a time, we are SCP.
  }
  return {
    protocolVersion: raw.readUInt16BE(6),
    calledAeTitle: aeTitle(raw.subarray(10, 26)),
    callingAeTitle: aeTitle(raw.subarray(26, 42)),
    echo: Buffer.from(raw.subarray(10, 74)),
    applicationContextName,
    contexts,
    maxPduLength,
    implementationClassUid,
    implementationVersionName,
  };
}

function presentationContext(it: Item): ProposedContextRq {
  if (it.value.length < 4) throw invalid(`presentation context item at ${it.offset} too short`);
  const id = it.value[0]!;
  if (id % 2 === 0) {
    throw invalid(`presentation context ID ${id} is not an odd number 1..255 (PS3.8 9.3.2.2)`);
  }
  let abstractSyntaxUid: string | undefined;
  const transferSyntaxUids: string[] = [];
  for (const sub of items(it.value.subarray(4), it.offset + 8, `presentation context ${id}`)) {
    if (sub.type === ITEM.AbstractSyntax) {
      if (abstractSyntaxUid !== undefined) {
        throw invalid(`presentation context ${id} has two abstract syntaxes`);
      }
      abstractSyntaxUid = text(sub.value);
    } else if (sub.type === ITEM.TransferSyntax) {
      transferSyntaxUids.push(text(sub.value));
    }
  }
  if (abstractSyntaxUid === undefined) {
    throw invalid(`presentation context ${id} has no abstract syntax`);
  }
  // No transfer syntax at all is left to negotiation: that context is refused (reason 4).
  return { id, abstractSyntaxUid, transferSyntaxUids };
}

/** PS3.8 9.3.2: leading and trailing spaces are not significant (some senders pad with NUL). */
function aeTitle(b: Buffer): string {
  return b.toString('latin1').replace(/^[ \0]+|[ \0]+$/g, '');
}

/** UIDs in items are not padded, but a trailing NUL or space is common enough to allow. */
function text(b: Buffer): string {
  return b.toString('latin1').replace(/[ \0]+$/, '');
}

function invalid(message: string): UpperLayerError {
  return new UpperLayerError(message, AbortReason.InvalidPduParameter);
}

export interface AcceptedContext {
  id: number;
  /** PS3.8 Table 9-18: 0 acceptance, 1 user rejection, 2 no reason, 3 abstract syntax, 4 transfer syntaxes. */
  result: number;
  transferSyntaxUid?: string;
}

export interface AssociateAcFields {
  /** From the RQ (AssociateRq.echo). */
  echo: Buffer;
  contexts: readonly AcceptedContext[];
  maxPduLength: number;
  implementationClassUid: string;
  implementationVersionName: string;
}

/** PS3.8 9.3.3: A-ASSOCIATE-AC. */
export function encodeAssociateAc(f: AssociateAcFields): Buffer {
  const fixed = Buffer.alloc(4);
  fixed.writeUInt16BE(1, 0); // PS3.8 9.3.3: protocol version, bit 0
  const max = Buffer.alloc(4);
  max.writeUInt32BE(f.maxPduLength, 0);
  const body = Buffer.concat([
    fixed,
    f.echo,
    item(ITEM.ApplicationContext, ascii(APPLICATION_CONTEXT)),
    ...f.contexts.map((pc) =>
      item(
        ITEM.PresentationContextAc,
        Buffer.concat([
          Buffer.from([pc.id, 0, pc.result, 0]),
          // PS3.8 9.3.3.2: one transfer syntax sub-item; not significant when not accepted.
          item(ITEM.TransferSyntax, ascii(pc.transferSyntaxUid ?? '1.2.840.10008.1.2')),
        ]),
      ),
    ),
    item(
      ITEM.UserInformation,
      Buffer.concat([
        item(ITEM.MaxLength, max),
        item(ITEM.ImplementationClassUid, ascii(f.implementationClassUid)),
        item(ITEM.ImplementationVersionName, ascii(f.implementationVersionName)),
      ]),
    ),
  ]);
  return pdu(PduType.AssociateAc, body);
}

/** PS3.8 9.3.4: A-ASSOCIATE-RJ. */
export function encodeAssociateRj(result: number, source: number, reason: number): Buffer {
  return pdu(PduType.AssociateRj, Buffer.from([0, result, source, reason]));
}

/** PS3.8 9.3.7: A-RELEASE-RP. */
export function encodeReleaseRp(): Buffer {
  return pdu(PduType.ReleaseRp, Buffer.alloc(4));
}

function item(type: number, value: Buffer): Buffer {
  const head = Buffer.from([type, 0, 0, 0]);
  head.writeUInt16BE(value.length, 2);
  return Buffer.concat([head, value]);
}

function ascii(s: string): Buffer {
  return Buffer.from(s, 'latin1');
}

function pdu(type: number, body: Buffer): Buffer {
  const head = Buffer.from([type, 0, 0, 0, 0, 0]);
  head.writeUInt32BE(body.length, 2);
  return Buffer.concat([head, body]);
}
