/**
 * Typed C-FIND SCU, Study Root (PS3.4 C.4.1, C.6.2): a query at STUDY, SERIES or IMAGE level
 * with any keys, a result cap and a deadline; past either, a C-CANCEL (PS3.7 9.3.2.3) and the
 * remaining responses are drained. FindCollector is the pure part: it decodes each response.
 */
import { decodeIdentifier, textOf, type IdentifierElement } from '../dicom/identifier.js';
import { encodeIdentifier } from '../dicom/identifier.js';
import { EXPLICIT_VR_LE, IMPLICIT_VR_LE } from '../dicom/uids.js';
import { CommandField, isPending, Priority } from '../dimse/command.js';
import { GatewayError } from '../errors.js';
import type { RequestorAssociation } from './association.js';
import type { DimseResponse } from './options.js';
import {
  keywordOf,
  queryElements,
  type QueryKeys,
  type QueryLevel,
  type QueryMatch,
} from './query-keys.js';

/** PS3.4 Annex B (Table B.5-1): Study Root Query/Retrieve Information Model. */
export const STUDY_ROOT_FIND = '1.2.840.10008.5.1.4.1.2.2.1';
export const STUDY_ROOT_MOVE = '1.2.840.10008.5.1.4.1.2.2.2';

/** The contexts a Q/R association proposes: FIND and MOVE, Explicit then Implicit VR LE. */
export const QR_CONTEXTS = [
  { abstractSyntaxUid: STUDY_ROOT_FIND, transferSyntaxUids: [EXPLICIT_VR_LE, IMPLICIT_VR_LE] },
  { abstractSyntaxUid: STUDY_ROOT_MOVE, transferSyntaxUids: [EXPLICIT_VR_LE, IMPLICIT_VR_LE] },
] as const;

/** PS3.7 C: FE00 Cancel. */
export const STATUS_CANCEL = 0xfe00;

export interface FindQuery {
  level: QueryLevel;
  keys: QueryKeys;
  /** Raw keys beyond the keyword table. */
  extra?: readonly IdentifierElement[];
  /** Stop (C-CANCEL) after this many matches; the result says `capped`. */
  maxResults?: number;
  /** Stop (C-CANCEL) after this long; the result says `timedOut`. */
  timeoutMs?: number;
}

export interface FindResult {
  matches: QueryMatch[];
  /** The final status (0000 success, FE00 cancel, else a failure). */
  status: number;
  errorComment?: string;
  /** We cancelled because maxResults was reached: there may be more matches. */
  capped: boolean;
  timedOut: boolean;
}

/** PS3.4 C.4.1.1.4: what a C-FIND final status means. */
export function findStatusKind(status: number): 'success' | 'cancel' | 'pending' | 'failure' {
  if (status === 0) return 'success';
  if (status === STATUS_CANCEL) return 'cancel';
  if (isPending(status)) return 'pending';
  return 'failure';
}

/** A failure status of C-FIND or C-MOVE (A700 out of resources, A900, Cxxx, A801 …). */
export class QueryFailedError extends GatewayError {
  constructor(
    readonly operation: 'C-FIND' | 'C-MOVE',
    readonly dimseStatus: number,
    comment?: string,
  ) {
    super(
      'GW_ERR_PROTOCOL',
      `${operation} failed with status 0x${dimseStatus.toString(16).padStart(4, '0')}` +
        (comment ? ` (${comment})` : ''),
    );
    this.name = 'QueryFailedError';
  }
}

/** Decodes C-FIND responses one by one (pure); says when to cancel. */
export class FindCollector {
  readonly matches: QueryMatch[] = [];
  final: DimseResponse | undefined;
  capped = false;

  constructor(
    private readonly explicit: boolean,
    private readonly maxResults = Infinity,
  ) {}

  /** Returns 'cancel' once the cap is reached (the caller sends C-CANCEL once). */
  push(rsp: DimseResponse): 'continue' | 'cancel' | 'done' {
    const status = rsp.command.status ?? 0xc000;
    if (!isPending(status)) {
      this.final = rsp;
      return 'done';
    }
    if (this.capped) return 'continue'; // drained after our C-CANCEL
    if (!rsp.dataset) {
      // PS3.4 C.4.1.2.3: every Pending response carries an identifier.
      throw new GatewayError('GW_ERR_PROTOCOL', 'C-FIND Pending response without an identifier');
    }
    this.matches.push(decodeMatch(rsp.dataset, this.explicit));
    if (this.matches.length >= this.maxResults) {
      this.capped = true;
      return 'cancel';
    }
    return 'continue';
  }
}

/** The keyword keys of a response identifier, as text. */
export function decodeMatch(dataset: Buffer, explicit: boolean): QueryMatch {
  const m: QueryMatch = {};
  for (const [tag, el] of decodeIdentifier(dataset, explicit)) {
    const k = keywordOf(tag);
    const v = textOf(el.value);
    if (k && v !== undefined && v !== '') m[k] = v;
  }
  return m;
}

/**
 * Runs one C-FIND on an association that accepted STUDY_ROOT_FIND. Resolves with the matches and
 * the final status (failures included: the caller decides); rejects on association failures.
 */
export async function cFind(assoc: RequestorAssociation, q: FindQuery): Promise<FindResult> {
  const pc = assoc.contextFor(STUDY_ROOT_FIND);
  if (!pc) {
    throw new GatewayError('GW_ERR_PROTOCOL', 'the source refused Study Root C-FIND');
  }
  const explicit = pc.transferSyntaxUid === EXPLICIT_VR_LE;
  const collector = new FindCollector(explicit, q.maxResults);
  const identifier = encodeIdentifier(queryElements(q.level, q.keys, q.extra), explicit);
  let cancelled = false;
  let timedOut = false;
  const cancel = (): void => {
    if (cancelled) return;
    cancelled = true;
    void assoc.cancel().catch(() => {}); // a failed write ends the association: request() says so
  };
  const timer =
    q.timeoutMs !== undefined
      ? setTimeout(() => {
          timedOut = true;
          cancel();
        }, q.timeoutMs)
      : undefined;
  try {
    for await (const rsp of assoc.request(
      pc,
      {
        commandField: CommandField.CFindRq,
        affectedSopClassUid: STUDY_ROOT_FIND,
        priority: Priority.Medium,
      },
      identifier,
    )) {
      if (collector.push(rsp) === 'cancel') cancel();
    }
  } finally {
    clearTimeout(timer);
  }
  const final = collector.final!;
  return {
    matches: collector.matches,
    status: final.command.status ?? 0xc000,
    errorComment: final.command.errorComment,
    capped: collector.capped,
    timedOut,
  };
}
