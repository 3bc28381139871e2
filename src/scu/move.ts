/**
 * C-MOVE SCU, Study Root (PS3.4 C.4.2): asks the source to send the matching instances to a
 * destination AE (ours); the sub-operations arrive on a separate association to our SCP. The
 * responses count remaining/completed/failed/warning sub-operations (PS3.7 9.3.4.2); an abort
 * signal sends C-CANCEL. MoveCollector is the pure part.
 */
import { decodeIdentifier, encodeIdentifier, textOf } from '../dicom/identifier.js';
import { EXPLICIT_VR_LE } from '../dicom/uids.js';
import { CommandField, isPending, Priority } from '../dimse/command.js';
import { GatewayError } from '../errors.js';
import type { RequestorAssociation } from './association.js';
import { STATUS_CANCEL, STUDY_ROOT_MOVE } from './find.js';
import type { DimseResponse } from './options.js';
import { queryElements, type QueryKeys, type QueryLevel } from './query-keys.js';

/** PS3.4 C.4.2.1.6: Failed SOP Instance UID List, in the final response's identifier. */
const FAILED_SOP_INSTANCE_UID_LIST = 0x00080058;

export interface MoveRequest {
  level: QueryLevel;
  /** The unique keys down to `level` (PS3.4 C.4.2.2.1: no other keys); UID lists use '\'. */
  keys: QueryKeys;
  destination: string;
  /** C-CANCEL when aborted; the move then ends with status FE00 (or whatever the source says). */
  signal?: AbortSignal;
  onProgress?: (p: MoveProgress) => void;
}

export interface MoveProgress {
  remaining?: number;
  completed: number;
  failed: number;
  warning: number;
}

export interface MoveResult extends MoveProgress {
  status: number;
  errorComment?: string;
  /** Pending responses seen. */
  pending: number;
  /** From the final response, when the source lists them. */
  failedInstances: string[];
  cancelled: boolean;
}

/** PS3.4 C.4.2.1.5: 0000 all done, B000 some sub-operations failed, FE00 cancelled, else failure. */
export function moveStatusKind(status: number): 'success' | 'warning' | 'cancel' | 'failure' {
  if (status === 0) return 'success';
  if (status === 0xb000) return 'warning';
  if (status === STATUS_CANCEL) return 'cancel';
  return 'failure';
}

export class MoveCollector {
  readonly progress: MoveProgress = { completed: 0, failed: 0, warning: 0 };
  pending = 0;
  final: DimseResponse | undefined;

  constructor(private readonly explicit: boolean) {}

  push(rsp: DimseResponse): MoveProgress {
    const c = rsp.command;
    if (isPending(c.status)) this.pending++;
    else this.final = rsp;
    // PS3.7 Table 9.3-4: the counts are optional in a final response; keep the last seen.
    if (c.remaining !== undefined) this.progress.remaining = c.remaining;
    if (c.completed !== undefined) this.progress.completed = c.completed;
    if (c.failed !== undefined) this.progress.failed = c.failed;
    if (c.warning !== undefined) this.progress.warning = c.warning;
    if (!isPending(c.status)) this.progress.remaining = 0;
    return this.progress;
  }

  failedInstances(): string[] {
    const ds = this.final?.dataset;
    if (!ds) return [];
    try {
      const v = textOf(
        decodeIdentifier(ds, this.explicit).get(FAILED_SOP_INSTANCE_UID_LIST)?.value,
      );
      return v ? v.split('\\').filter((s) => s.length > 0) : [];
    } catch {
      return []; // a list we cannot read does not change the counts
    }
  }
}

/** Runs one C-MOVE on an association that accepted STUDY_ROOT_MOVE; resolves with its final status. */
export async function cMove(assoc: RequestorAssociation, m: MoveRequest): Promise<MoveResult> {
  const pc = assoc.contextFor(STUDY_ROOT_MOVE);
  if (!pc) throw new GatewayError('GW_ERR_PROTOCOL', 'the source refused Study Root C-MOVE');
  const explicit = pc.transferSyntaxUid === EXPLICIT_VR_LE;
  const collector = new MoveCollector(explicit);
  let cancelled = false;
  const onAbort = (): void => {
    if (cancelled) return;
    cancelled = true;
    void assoc.cancel().catch(() => {});
  };
  if (m.signal?.aborted) onAbort();
  m.signal?.addEventListener('abort', onAbort, { once: true });
  try {
    for await (const rsp of assoc.request(
      pc,
      {
        commandField: CommandField.CMoveRq,
        affectedSopClassUid: STUDY_ROOT_MOVE,
        priority: Priority.Medium,
        moveDestination: m.destination,
      },
      encodeIdentifier(queryElements(m.level, m.keys), explicit),
    )) {
      const p = collector.push(rsp);
      if (isPending(rsp.command.status)) m.onProgress?.({ ...p });
    }
  } finally {
    m.signal?.removeEventListener('abort', onAbort);
  }
  const final = collector.final!;
  return {
    ...collector.progress,
    status: final.command.status ?? 0xc000,
    errorComment: final.command.errorComment,
    pending: collector.pending,
    failedInstances: collector.failedInstances(),
    cancelled,
  };
}
