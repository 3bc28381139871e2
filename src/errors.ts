/**
 * Every error the gateway raises on purpose is a GatewayError with a stable `code`
 * (GW_ERR_*), so logs, metrics and tests can match on it, and `toDimseStatus()`
 * maps it to the C-STORE-RSP status the sender sees.
 */

export type GatewayErrorCode =
  | 'GW_ERR_CONFIG'
  | 'GW_ERR_DATASET_MALFORMED'
  | 'GW_ERR_DATASET_TRUNCATED'
  | 'GW_ERR_DATASET_MISSING_UID'
  | 'GW_ERR_DATASET_MISMATCH'
  | 'GW_ERR_DATASET_TOO_LARGE'
  | 'GW_ERR_DATASET_HEADER_TOO_LARGE'
  | 'GW_ERR_SOP_CLASS_REFUSED'
  | 'GW_ERR_DUPLICATE_REJECTED'
  | 'GW_ERR_STORE_UNAVAILABLE'
  | 'GW_ERR_STORE_INTEGRITY'
  | 'GW_ERR_STORE_CONFLICT'
  | 'GW_ERR_INDEX_UNAVAILABLE'
  | 'GW_ERR_SPOOL_FULL'
  | 'GW_ERR_ASSOCIATION_ABORTED'
  | 'GW_ERR_PROTOCOL'
  | 'GW_ERR_TIMEOUT'
  | 'GW_ERR_INTERNAL';

export class GatewayError extends Error {
  readonly code: GatewayErrorCode;

  constructor(code: GatewayErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'GatewayError';
    this.code = code;
  }
}

export function isGatewayError(err: unknown, code?: GatewayErrorCode): err is GatewayError {
  return err instanceof GatewayError && (code === undefined || err.code === code);
}

/** DIMSE status values used by the gateway (PS3.7 Annex C, PS3.4 Table B.2-1). */
export const DimseStatus = {
  /** PS3.7 C.1.1 */
  Success: 0x0000,
  /** PS3.4 B.2.3: Warning, Coercion of Data Elements */
  WarningCoercion: 0xb000,
  /** PS3.4 B.2.3: Warning, Elements Discarded */
  WarningElementsDiscarded: 0xb006,
  /** PS3.7 C.4.2: Refused, SOP Class not supported */
  RefusedSopClassNotSupported: 0x0122,
  /** PS3.4 B.2.3: Refused, Out of Resources (A7xx) */
  OutOfResources: 0xa700,
  /** PS3.4 B.2.3: Error, Data Set does not match SOP Class (A9xx) */
  DataSetDoesNotMatchSopClass: 0xa900,
  /** PS3.4 B.2.3: Error, Cannot understand (Cxxx) */
  CannotUnderstand: 0xc000,
  /** PS3.7 C.5.3: Failure, Duplicate SOP Instance */
  DuplicateSopInstance: 0x0111,
  /** PS3.7 C.5.6: Failure, Processing failure */
  ProcessingFailure: 0x0110,
} as const;

/**
 * The status a C-STORE-RSP carries for an error. Anything not known to be the
 * sender's fault is "out of resources" (A700): the sender should retry later,
 * and it will, since PS3.4 B.2.3 lists A7xx as a transient refusal.
 */
export function toDimseStatus(err: unknown): number {
  if (!(err instanceof GatewayError)) return DimseStatus.ProcessingFailure;
  switch (err.code) {
    case 'GW_ERR_DATASET_MALFORMED':
    case 'GW_ERR_DATASET_TRUNCATED':
    case 'GW_ERR_DATASET_MISSING_UID':
    case 'GW_ERR_DATASET_HEADER_TOO_LARGE': // a resend will not fit either: not A700
      // PS3.4 B.2.3: C000-CFFF "Error: Cannot understand"
      return DimseStatus.CannotUnderstand;
    case 'GW_ERR_DATASET_MISMATCH':
      // PS3.4 B.2.3: A900-A9FF "Error: Data Set does not match SOP Class"
      return DimseStatus.DataSetDoesNotMatchSopClass;
    case 'GW_ERR_SOP_CLASS_REFUSED':
      return DimseStatus.RefusedSopClassNotSupported;
    case 'GW_ERR_DUPLICATE_REJECTED':
      return DimseStatus.DuplicateSopInstance;
    case 'GW_ERR_DATASET_TOO_LARGE':
    case 'GW_ERR_STORE_UNAVAILABLE':
    case 'GW_ERR_STORE_INTEGRITY':
    case 'GW_ERR_STORE_CONFLICT':
    case 'GW_ERR_INDEX_UNAVAILABLE':
    case 'GW_ERR_SPOOL_FULL':
    case 'GW_ERR_TIMEOUT':
      return DimseStatus.OutOfResources;
    default:
      return DimseStatus.ProcessingFailure;
  }
}
