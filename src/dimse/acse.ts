import { APPLICATION_CONTEXT, IMPLICIT_VR_LE } from '../dicom/uids.js';
import {
  aeField,
  aeTitle,
  ascii,
  encodeUserInfo,
  FIXED_END,
  invalid,
  item,
  ITEM,
  items,
  parseUserInfo,
  pdu,
  text,
  type Item,
  type RoleSelection,
  type UserInfo,
} from './acse-items.js';
import { PduType } from './pdu.js';

/**
 * The A-ASSOCIATE codec, both ways (PS3.8 9.3.2-9.3.4, PS3.7 Annex D.3.3): RQ, AC and RJ,
 * each encoded and parsed, so the acceptor (src/scp) and the requestor (src/scu) share
 * one. Pure: Buffers in, Buffers out.
 *
 * Ours rather than dcmjs-dimse's (0.3.3), whose RQ reader renumbers presentation contexts
 * that are not proposed in ascending order (it answers context 1 as 5, then aborts on its
 * transfer syntaxes), accepts any number of contexts and even or duplicate IDs, and whose AC
 * echoes the requester's asynchronous-operations window and role selections back as if we
 * had agreed to them. Here a PDU is checked against PS3.8 9.3 and anything malformed is
 * an UpperLayerError (the association answers it with A-ABORT).
 */

/** PS3.8 9.3.2.2: presentation context IDs are odd, 1..255: at most 128 per association. */
export const MAX_PRESENTATION_CONTEXTS = 128;

/** PS3.8 Table 9-18: presentation context results. */
export const ContextResult = {
  Accept: 0,
  UserRejection: 1,
  NoReason: 2,
  AbstractSyntaxNotSupported: 3,
  TransferSyntaxesNotSupported: 4,
} as const;

/** PS3.8 Table 9-21: A-ASSOCIATE-RJ result / source / reason. */
export const Reject = {
  Permanent: 1,
  Transient: 2,
  SourceServiceUser: 1,
  SourceProviderAcse: 2,
  SourceProviderPresentation: 3,
  /** Source 1 or 2. */
  ReasonNoReasonGiven: 1,
  /** Source 1. */
  ReasonApplicationContextNotSupported: 2,
  ReasonCallingAeNotRecognized: 3,
  ReasonCalledAeNotRecognized: 7,
  /** Source 2. */
  ReasonProtocolVersionNotSupported: 2,
  /** Source 3. */
  ReasonTemporaryCongestion: 1,
  ReasonLocalLimitExceeded: 2,
} as const;

export interface ProposedContextRq {
  id: number;
  abstractSyntaxUid: string;
  transferSyntaxUids: string[];
}

export interface AssociateRq extends UserInfo {
  protocolVersion: number;
  calledAeTitle: string;
  callingAeTitle: string;
  /** Bytes 11-74 of the RQ (called, calling, reserved): the AC sends them back unchanged. */
  echo: Buffer;
  applicationContextName: string;
  contexts: ProposedContextRq[];
}

/**
 * Decodes a whole A-ASSOCIATE-RQ PDU (header included). Throws UpperLayerError for anything
 * PS3.8 9.3.2 does not allow. Protocol version and application context name are returned,
 * not judged: those are answered with A-ASSOCIATE-RJ (see src/scp/negotiation.ts).
 */
export function parseAssociateRq(raw: Buffer): AssociateRq {
  const v = variableItems(raw, PduType.AssociateRq, 'A-ASSOCIATE-RQ');
  const contexts: ProposedContextRq[] = [];
  const ids = new Set<number>();
  for (const it of v.others) {
    if (it.type !== ITEM.PresentationContextRq) continue; // PS3.8 9.3.1: unknown items skipped
    const pc = proposedContext(it);
    if (ids.has(pc.id)) {
      // PS3.8 7.1.1.13: an ID identifies one context; an AC answering it twice is ambiguous.
      throw invalid(`presentation context ID ${pc.id} proposed twice`);
    }
    ids.add(pc.id);
    contexts.push(pc);
    if (contexts.length > MAX_PRESENTATION_CONTEXTS) {
      throw invalid(`more than ${MAX_PRESENTATION_CONTEXTS} presentation contexts`);
    }
  }
  if (contexts.length === 0) {
    throw invalid('A-ASSOCIATE-RQ without a presentation context item');
  }
  return {
    protocolVersion: raw.readUInt16BE(6),
    calledAeTitle: aeTitle(raw.subarray(10, 26)),
    callingAeTitle: aeTitle(raw.subarray(26, 42)),
    echo: Buffer.from(raw.subarray(10, FIXED_END)),
    applicationContextName: v.applicationContextName,
    contexts,
    ...parseUserInfo(v.userInfo),
  };
}

/** The fixed header and the application context / user information items of an RQ or AC. */
function variableItems(
  raw: Buffer,
  type: number,
  what: string,
): { applicationContextName: string; userInfo: Item; others: Item[] } {
  if (raw[0] !== type) throw invalid(`not an ${what}`);
  if (raw.length < FIXED_END) {
    throw invalid(`${what} of ${raw.length - 6} bytes is shorter than its fixed fields`);
  }
  let applicationContextName: string | undefined;
  let userInfo: Item | undefined;
  const others: Item[] = [];
  for (const it of items(raw.subarray(FIXED_END), FIXED_END, what)) {
    if (it.type === ITEM.ApplicationContext) {
      if (applicationContextName !== undefined) throw invalid('two application context items');
      applicationContextName = text(it.value);
    } else if (it.type === ITEM.UserInformation) {
      if (userInfo) throw invalid('two user information items');
      userInfo = it;
    } else others.push(it);
  }
  if (applicationContextName === undefined) {
    throw invalid(`${what} without an application context item`);
  }
  if (!userInfo && type === PduType.AssociateRq) {
    throw invalid(`${what} without a user information item`);
  }
  // PS3.8 9.3.3: the AC's user information is mandatory too, but an AC without one is still
  // unambiguous (no maximum length means no limit); be lenient with what peers answer.
  return {
    applicationContextName,
    userInfo: userInfo ?? { type: ITEM.UserInformation, value: Buffer.alloc(0), offset: 0 },
    others,
  };
}

function proposedContext(it: Item): ProposedContextRq {
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

export interface AssociateRqFields {
  calledAeTitle: string;
  callingAeTitle: string;
  contexts: readonly ProposedContextRq[];
  /** What we accept (PS3.8 D.1); 0 = no limit. */
  maxPduLength: number;
  implementationClassUid: string;
  implementationVersionName?: string;
  /** PS3.7 D.3.3.4: roles proposed for ourselves (e.g. SCP of Storage Commitment for its report). */
  roleSelections?: readonly RoleSelection[];
}

/** PS3.8 9.3.2: A-ASSOCIATE-RQ, protocol version 1, the DICOM application context. */
export function encodeAssociateRq(f: AssociateRqFields): Buffer {
  const fixed = Buffer.alloc(FIXED_END - 6);
  fixed.writeUInt16BE(1, 0); // PS3.8 9.3.2: protocol version, bit 0
  aeField(f.calledAeTitle).copy(fixed, 4);
  aeField(f.callingAeTitle).copy(fixed, 20);
  return pdu(
    PduType.AssociateRq,
    Buffer.concat([
      fixed,
      item(ITEM.ApplicationContext, ascii(APPLICATION_CONTEXT)),
      ...f.contexts.map((pc) =>
        item(
          ITEM.PresentationContextRq,
          Buffer.concat([
            Buffer.from([pc.id, 0, 0, 0]),
            item(ITEM.AbstractSyntax, ascii(pc.abstractSyntaxUid)),
            ...pc.transferSyntaxUids.map((ts) => item(ITEM.TransferSyntax, ascii(ts))),
          ]),
        ),
      ),
      encodeUserInfo(f),
    ]),
  );
}

export interface AcceptedContext {
  id: number;
  /** PS3.8 Table 9-18: 0 acceptance, 1 user rejection, 2 no reason, 3 abstract syntax, 4 transfer syntaxes. */
  result: number;
  transferSyntaxUid?: string;
}

export interface AssociateAc extends UserInfo {
  protocolVersion: number;
  applicationContextName: string;
  contexts: AcceptedContext[];
}

/** Decodes a whole A-ASSOCIATE-AC PDU. Throws UpperLayerError for anything PS3.8 9.3.3 forbids. */
export function parseAssociateAc(raw: Buffer): AssociateAc {
  const v = variableItems(raw, PduType.AssociateAc, 'A-ASSOCIATE-AC');
  const contexts: AcceptedContext[] = [];
  for (const it of v.others) {
    if (it.type !== ITEM.PresentationContextAc) continue;
    if (it.value.length < 4) throw invalid(`presentation context item at ${it.offset} too short`);
    const id = it.value[0]!;
    const result = it.value[2]!;
    let transferSyntaxUid: string | undefined;
    for (const sub of items(it.value.subarray(4), it.offset + 8, `presentation context ${id}`)) {
      if (sub.type === ITEM.TransferSyntax) transferSyntaxUid = text(sub.value);
    }
    if (contexts.some((c) => c.id === id))
      throw invalid(`presentation context ${id} answered twice`);
    if (result === ContextResult.Accept) {
      // PS3.8 9.3.3.2: an accepted context names the one transfer syntax to use.
      if (!transferSyntaxUid)
        throw invalid(`accepted presentation context ${id} names no transfer syntax`);
      contexts.push({ id, result, transferSyntaxUid });
    } else contexts.push({ id, result });
  }
  return {
    protocolVersion: raw.readUInt16BE(6),
    applicationContextName: v.applicationContextName,
    contexts,
    ...parseUserInfo(v.userInfo),
  };
}

export interface AssociateAcFields {
  /** From the RQ (AssociateRq.echo). */
  echo: Buffer;
  contexts: readonly AcceptedContext[];
  maxPduLength: number;
  implementationClassUid: string;
  implementationVersionName: string;
  /** PS3.7 D.3.3.4: answers to the requestor's role selections (see RoleSelection). */
  roleSelections?: readonly RoleSelection[];
}

/** PS3.8 9.3.3: A-ASSOCIATE-AC. */
export function encodeAssociateAc(f: AssociateAcFields): Buffer {
  const fixed = Buffer.alloc(4);
  fixed.writeUInt16BE(1, 0); // PS3.8 9.3.3: protocol version, bit 0
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
          item(ITEM.TransferSyntax, ascii(pc.transferSyntaxUid ?? IMPLICIT_VR_LE)),
        ]),
      ),
    ),
    encodeUserInfo(f),
  ]);
  return pdu(PduType.AssociateAc, body);
}

export interface AssociateRj {
  /** PS3.8 Table 9-21 (see Reject). */
  result: number;
  source: number;
  reason: number;
}

/** PS3.8 9.3.4: A-ASSOCIATE-RJ. */
export function encodeAssociateRj(result: number, source: number, reason: number): Buffer {
  return pdu(PduType.AssociateRj, Buffer.from([0, result, source, reason]));
}

export function parseAssociateRj(raw: Buffer): AssociateRj {
  if (raw[0] !== PduType.AssociateRj || raw.length !== 10) {
    throw invalid('A-ASSOCIATE-RJ is not 10 bytes');
  }
  return { result: raw[7]!, source: raw[8]!, reason: raw[9]! };
}
