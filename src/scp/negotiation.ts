import { checkAccess, type AccessPolicy } from './access.js';
import { ContextResult, Reject, type AssociateRq } from '../dimse/acse.js';
import {
  APPLICATION_CONTEXT,
  EXPLICIT_VR_LE,
  STORAGE_SOP_CLASS_ROOT,
  VERIFICATION_SOP_CLASS,
} from '../dicom/uids.js';
import { UID_PATTERN as UID } from '../dicom/uid.js';
import type { RoleSelection } from '../dimse/acse-items.js';
import { IMPLICIT_VR_LE } from '../dicom/uids.js';
import { STORAGE_COMMITMENT_SOP_CLASS } from '../stcommit/sop.js';

/**
 * Association negotiation policy (PS3.8 9.3.2, 9.3.4; PS3.7 D.3.3): pure functions
 * from what the requester proposed to what we answer.
 */

export { ContextResult, Reject } from '../dimse/acse.js';

export interface ProposedContext {
  id: number;
  abstractSyntaxUid: string;
  transferSyntaxUids: string[];
}

export interface ContextDecision {
  id: number;
  result: number;
  transferSyntaxUid?: string;
}

export interface NegotiationPolicy {
  aeTitle: string;
  /** Other called AE titles we answer to. */
  aliases: readonly string[];
  /** When non-empty, only these calling AE titles may associate. */
  allowedCallingAeTitles: readonly string[];
  /** `dicom.peers` compiled by compilePeers(); absent or empty: no restriction. */
  peers?: AccessPolicy['peers'];
  /** Accept SOP classes outside the PS3.4 storage root (private storage classes), like storescp --promiscuous. */
  acceptUnknownSopClasses: boolean;
  /** Accept the Storage Commitment Push Model SOP class, SCP role (PS3.4 J.3). */
  storageCommitment?: boolean;
  /**
   * Asked last, once the AE titles and the address passed (routing: can any rule accept an
   * instance of this association?). `key` identifies the association (its AssociationInfo).
   * An answer refuses it: A-ASSOCIATE-RJ permanent, source service-user, with that reason.
   */
  admitAssociation?: (
    assoc: { callingAeTitle: string; calledAeTitle: string; remoteAddress: string },
    key?: object,
  ) => { reason: number; why: string } | undefined;
}

export type AssociationDecision =
  | { accept: true; contexts: ContextDecision[] }
  | { accept: false; result: number; source: number; reason: number; why: string };

export function isStorageSopClass(uid: string): boolean {
  return uid.startsWith(STORAGE_SOP_CLASS_ROOT) && UID.test(uid);
}

/**
 * Which transfer syntax to accept from those proposed for one context. We never
 * transcode, so any syntax the sender can send is storable as is; the choice only
 * decides what the sender puts on the wire. Explicit VR Little Endian when offered:
 * it is lossless for every object (at worst the sender decompresses) and keeps VRs,
 * which Implicit VR would lose for private elements. Otherwise the first proposed.
 */
export function chooseTransferSyntax(proposed: readonly string[]): string | undefined {
  const valid = proposed.map((ts) => ts.replace(/\0+$/, '').trim()).filter((ts) => UID.test(ts));
  if (valid.includes(EXPLICIT_VR_LE)) return EXPLICIT_VR_LE;
  return valid[0];
}

/**
 * The whole answer to a decoded A-ASSOCIATE-RQ from `remoteAddress`: the ACSE checks
 * (PS3.8 9.3.4), then `negotiate`.
 */
export function negotiateRequest(
  rq: AssociateRq,
  remoteAddress: string,
  policy: NegotiationPolicy,
  key?: object,
): AssociationDecision {
  if ((rq.protocolVersion & 0x0001) === 0) {
    // PS3.8 9.3.2: version 1 is bit 0; we speak no other.
    return {
      accept: false,
      result: Reject.Permanent,
      source: Reject.SourceProviderAcse,
      reason: Reject.ReasonProtocolVersionNotSupported,
      why: `protocol version 0x${rq.protocolVersion.toString(16)} lacks version 1`,
    };
  }
  if (rq.applicationContextName !== APPLICATION_CONTEXT) {
    // PS3.7 A.2.1: the DICOM application context name is the only one.
    return {
      accept: false,
      result: Reject.Permanent,
      source: Reject.SourceServiceUser,
      reason: Reject.ReasonApplicationContextNotSupported,
      why: `application context "${rq.applicationContextName}" is not DICOM's`,
    };
  }
  return negotiate(rq.callingAeTitle, rq.calledAeTitle, rq.contexts, policy, remoteAddress, key);
}

export function negotiate(
  calling: string,
  called: string,
  contexts: readonly ProposedContext[],
  policy: NegotiationPolicy,
  remoteAddress = '',
  key?: object,
): AssociationDecision {
  if (called !== policy.aeTitle && !policy.aliases.includes(called)) {
    return {
      accept: false,
      result: Reject.Permanent,
      source: Reject.SourceServiceUser,
      reason: Reject.ReasonCalledAeNotRecognized,
      why: `called AE title "${called}" is not ours ("${policy.aeTitle}")`,
    };
  }
  const refused = checkAccess(calling, remoteAddress, {
    allowedCallingAeTitles: policy.allowedCallingAeTitles,
    peers: policy.peers ?? new Map(),
  });
  if (refused !== undefined) {
    // PS3.8 Table 9-21 has no reason for a wrong address: 3 for that too (see access.ts).
    return {
      accept: false,
      result: Reject.Permanent,
      source: Reject.SourceServiceUser,
      reason: Reject.ReasonCallingAeNotRecognized,
      why: refused,
    };
  }
  const routed = policy.admitAssociation?.(
    { callingAeTitle: calling, calledAeTitle: called, remoteAddress },
    key,
  );
  if (routed !== undefined) {
    return {
      accept: false,
      result: Reject.Permanent,
      source: Reject.SourceServiceUser,
      reason: routed.reason,
      why: routed.why,
    };
  }
  const decisions = contexts.map((pc): ContextDecision => {
    const asUid = pc.abstractSyntaxUid.replace(/\0+$/, '').trim();
    if (asUid === STORAGE_COMMITMENT_SOP_CLASS) return commitmentContext(pc, policy);
    const known =
      asUid === VERIFICATION_SOP_CLASS ||
      isStorageSopClass(asUid) ||
      (policy.acceptUnknownSopClasses && UID.test(asUid));
    if (!known) return { id: pc.id, result: ContextResult.AbstractSyntaxNotSupported };
    const ts = chooseTransferSyntax(pc.transferSyntaxUids);
    if (!ts) return { id: pc.id, result: ContextResult.TransferSyntaxesNotSupported };
    return { id: pc.id, result: ContextResult.Accept, transferSyntaxUid: ts };
  });
  return { accept: true, contexts: decisions };
}

/**
 * The Storage Commitment context: accepted when enabled, in Implicit or Explicit VR Little
 * Endian only (its data sets are decoded by src/stcommit/commitment-dataset.ts).
 */
function commitmentContext(pc: ProposedContext, policy: NegotiationPolicy): ContextDecision {
  if (!policy.storageCommitment) {
    return { id: pc.id, result: ContextResult.AbstractSyntaxNotSupported };
  }
  const ts = chooseTransferSyntax(
    pc.transferSyntaxUids.filter((t) => {
      const u = t.replace(/\0+$/, '').trim();
      return u === EXPLICIT_VR_LE || u === IMPLICIT_VR_LE;
    }),
  );
  if (!ts) return { id: pc.id, result: ContextResult.TransferSyntaxesNotSupported };
  return { id: pc.id, result: ContextResult.Accept, transferSyntaxUid: ts };
}

/**
 * PS3.7 D.3.3.4: the AC's answers to the requestor's role selections, for the SOP classes of
 * accepted contexts only. The requestor may be the SCU (the gateway is the SCP of storage and
 * of storage commitment); the SCP role it proposes for itself is refused: the gateway sends
 * no C-STORE and no N-ACTION on an association it accepted.
 */
export function answerRoleSelections(
  proposed: readonly RoleSelection[] | undefined,
  acceptedAbstractSyntaxes: ReadonlySet<string>,
): RoleSelection[] {
  return (proposed ?? [])
    .filter((r) => acceptedAbstractSyntaxes.has(r.sopClassUid))
    .map((r) => ({ sopClassUid: r.sopClassUid, scu: r.scu, scp: false }));
}
