/**
 * Association negotiation policy (PS3.8 9.3.2, 9.3.4; PS3.7 D.3.3): pure functions
 * from what the requester proposed to what we answer.
 */

export const VERIFICATION_SOP_CLASS = '1.2.840.10008.1.1';
/** Every Storage SOP class of PS3.4 Annex B lives under this root (PS3.6 Annex A). */
export const STORAGE_SOP_CLASS_ROOT = '1.2.840.10008.5.1.4.1.1.';

export const TransferSyntax = {
  ImplicitLittle: '1.2.840.10008.1.2',
  ExplicitLittle: '1.2.840.10008.1.2.1',
  DeflatedExplicitLittle: '1.2.840.10008.1.2.1.99',
  ExplicitBig: '1.2.840.10008.1.2.2',
} as const;

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
  SourceProviderPresentation: 3,
  ReasonNoReasonGiven: 1,
  ReasonCallingAeNotRecognized: 3,
  ReasonCalledAeNotRecognized: 7,
  ReasonLocalLimitExceeded: 2,
} as const;

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
  /** Accept SOP classes outside the PS3.4 storage root (private storage classes), like storescp --promiscuous. */
  acceptUnknownSopClasses: boolean;
}

export type AssociationDecision =
  | { accept: true; contexts: ContextDecision[] }
  | { accept: false; result: number; source: number; reason: number; why: string };

const UID = /^[0-9]+(\.[0-9]+)*$/;

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
  if (valid.includes(TransferSyntax.ExplicitLittle)) return TransferSyntax.ExplicitLittle;
  return valid[0];
}

export function negotiate(
  calling: string,
  called: string,
  contexts: readonly ProposedContext[],
  policy: NegotiationPolicy,
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
  if (
    policy.allowedCallingAeTitles.length > 0 &&
    !policy.allowedCallingAeTitles.includes(calling)
  ) {
    return {
      accept: false,
      result: Reject.Permanent,
      source: Reject.SourceServiceUser,
      reason: Reject.ReasonCallingAeNotRecognized,
      why: `calling AE title "${calling}" is not in the allow-list`,
    };
  }
  const decisions = contexts.map((pc): ContextDecision => {
    const asUid = pc.abstractSyntaxUid.replace(/\0+$/, '').trim();
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
