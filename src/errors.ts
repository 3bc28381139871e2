/**
 * Every error the gateway raises on purpose is a GatewayError with a stable `code`
 * (GW_ERR_*), so logs, metrics and tests can match on it, and `toDimseStatus()`
 * maps it to the C-STORE-RSP status the sender sees.
 */

/** Every code, so tests can go through them all. */
export const GATEWAY_ERROR_CODES = [
  'GW_ERR_CONFIG',
  'GW_ERR_DATASET_MALFORMED',
  'GW_ERR_DATASET_TRUNCATED',
  'GW_ERR_DATASET_MISSING_UID',
  'GW_ERR_DATASET_MISMATCH',
  'GW_ERR_DATASET_TOO_LARGE',
  'GW_ERR_DATASET_HEADER_TOO_LARGE',
  'GW_ERR_SOP_CLASS_REFUSED',
  'GW_ERR_DUPLICATE_REJECTED',
  'GW_ERR_DESTINATION_REFUSED',
  'GW_ERR_STORE_UNAVAILABLE',
  'GW_ERR_STORE_INTEGRITY',
  'GW_ERR_STORE_CONFLICT',
  'GW_ERR_INDEX_UNAVAILABLE',
  'GW_ERR_SPOOL_FULL',
  'GW_ERR_ASSOCIATION_ABORTED',
  'GW_ERR_ASSOCIATION_REJECTED',
  'GW_ERR_PEER_UNREACHABLE',
  'GW_ERR_PROTOCOL',
  'GW_ERR_TIMEOUT',
  'GW_ERR_INTERNAL',
] as const;

export type GatewayErrorCode = (typeof GATEWAY_ERROR_CODES)[number];

export class GatewayError extends Error {
  readonly code: GatewayErrorCode;
  /** The DIMSE status chosen for this one error (a routing rule's refusal); else the code's. */
  readonly status: number | undefined;

  constructor(
    code: GatewayErrorCode,
    message: string,
    options?: { cause?: unknown; status?: number },
  ) {
    super(message, options);
    this.name = 'GatewayError';
    this.code = code;
    this.status = options?.status;
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
 * The C-STORE-RSP status of each code. A Record, so a new code does not compile until it has
 * one. Anything not known to be the sender's fault is "out of resources" (A700): the sender
 * should retry later, and it will, since PS3.4 B.2.3 lists A7xx as a transient refusal.
 */
const STATUS_OF_CODE: Readonly<Record<GatewayErrorCode, number>> = {
  // PS3.4 B.2.3: C000-CFFF "Error: Cannot understand"
  GW_ERR_DATASET_MALFORMED: DimseStatus.CannotUnderstand,
  GW_ERR_DATASET_TRUNCATED: DimseStatus.CannotUnderstand,
  GW_ERR_DATASET_MISSING_UID: DimseStatus.CannotUnderstand,
  // A header past the reader's bound: a resend will not fit either, so not A700.
  GW_ERR_DATASET_HEADER_TOO_LARGE: DimseStatus.CannotUnderstand,
  // PS3.4 B.2.3: A900-A9FF "Error: Data Set does not match SOP Class"
  GW_ERR_DATASET_MISMATCH: DimseStatus.DataSetDoesNotMatchSopClass,
  GW_ERR_SOP_CLASS_REFUSED: DimseStatus.RefusedSopClassNotSupported,
  GW_ERR_DUPLICATE_REJECTED: DimseStatus.DuplicateSopInstance,
  GW_ERR_DATASET_TOO_LARGE: DimseStatus.OutOfResources,
  GW_ERR_STORE_UNAVAILABLE: DimseStatus.OutOfResources,
  GW_ERR_STORE_INTEGRITY: DimseStatus.OutOfResources,
  GW_ERR_STORE_CONFLICT: DimseStatus.OutOfResources,
  GW_ERR_INDEX_UNAVAILABLE: DimseStatus.OutOfResources,
  GW_ERR_SPOOL_FULL: DimseStatus.OutOfResources,
  GW_ERR_TIMEOUT: DimseStatus.OutOfResources,
  // Raised by the requestor (src/scu) about a peer we called: transient from our side too.
  GW_ERR_ASSOCIATION_ABORTED: DimseStatus.OutOfResources,
  GW_ERR_ASSOCIATION_REJECTED: DimseStatus.OutOfResources,
  GW_ERR_PEER_UNREACHABLE: DimseStatus.OutOfResources,
  // PS3.7 C.5.6: not the data's fault and not transient (a bug or a misconfiguration).
  GW_ERR_CONFIG: DimseStatus.ProcessingFailure,
  GW_ERR_PROTOCOL: DimseStatus.ProcessingFailure,
  GW_ERR_INTERNAL: DimseStatus.ProcessingFailure,
  // A destination resolver's refusal carries the status its rule chose (GatewayError.status);
  // this is only the fallback for one raised without it.
  GW_ERR_DESTINATION_REFUSED: DimseStatus.ProcessingFailure,
};

/** The status a C-STORE-RSP carries for an error; an error that is no GatewayError is a bug (0110). */
export function toDimseStatus(err: unknown): number {
  if (!(err instanceof GatewayError)) return DimseStatus.ProcessingFailure;
  return err.status ?? STATUS_OF_CODE[err.code] ?? DimseStatus.ProcessingFailure;
}
