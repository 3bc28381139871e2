/**
 * The UIDs the gateway names in code (PS3.6 Annex A), in one place: the upper layer
 * (src/dimse), the acceptor's negotiation (src/scp) and the data set reader use them.
 */

/** PS3.7 A.2.1: the DICOM application context name, the only one. */
export const APPLICATION_CONTEXT = '1.2.840.10008.3.1.1.1';

/** PS3.4 A.4: Verification SOP Class (C-ECHO). */
export const VERIFICATION_SOP_CLASS = '1.2.840.10008.1.1';
/** Every Storage SOP class of PS3.4 Annex B lives under this root (PS3.6 Annex A). */
export const STORAGE_SOP_CLASS_ROOT = '1.2.840.10008.5.1.4.1.1.';

/** PS3.5 A.1: Implicit VR Little Endian, the default transfer syntax (and every command set's). */
export const IMPLICIT_VR_LE = '1.2.840.10008.1.2';
/** PS3.5 A.2 */
export const EXPLICIT_VR_LE = '1.2.840.10008.1.2.1';
/** PS3.5 A.5 */
export const DEFLATED_EXPLICIT_VR_LE = '1.2.840.10008.1.2.1.99';
/** PS3.5 A.3 (retired, still sent by old equipment). */
export const EXPLICIT_VR_BE = '1.2.840.10008.1.2.2';

/**
 * PS3.5 A.5 (Deflated Explicit VR LE), A.7 (JPIP Referenced Deflate) and A.12
 * (JPIP HTJ2K Referenced Deflate): the data set is raw-deflated (RFC 1951).
 */
export const DEFLATED_TRANSFER_SYNTAXES: ReadonlySet<string> = new Set([
  DEFLATED_EXPLICIT_VR_LE,
  '1.2.840.10008.1.2.4.95',
  '1.2.840.10008.1.2.4.205',
]);
