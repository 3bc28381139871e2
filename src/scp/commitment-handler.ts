import type { Logger } from 'pino';
import type { DimseCommand } from '../dimse/command.js';
import type { AssociationInfo } from './store-handler.js';

/**
 * What the acceptor hands an N-ACTION-RQ to (PS3.4 J.3.2): the Storage Commitment service in
 * src/stcommit/ implements it. The SCP only reassembles the message and answers the status.
 */
export interface NActionRequest {
  command: DimseCommand;
  /** The presentation context's transfer syntax (Implicit or Explicit VR LE). */
  transferSyntaxUid: string;
  /** The whole data set (bounded by MAX_NACTION_DATASET_BYTES). */
  dataset: Buffer;
}

/** The acceptor's side of one association, for a report sent on it (PS3.4 J.3.3). */
export interface ReportChannel {
  /** Whether the association is still established. */
  readonly open: boolean;
  /** The transfer syntax of the context the N-ACTION came on (the report's data set uses it). */
  readonly transferSyntaxUid: string;
  /**
   * Sends an N-EVENT-REPORT-RQ on the context the N-ACTION came on and resolves with the
   * response's status. Rejects when the association ends or no answer comes in time.
   */
  eventReport(fields: DimseCommand, dataset: Buffer): Promise<number>;
}

export interface CommitmentHandler {
  /**
   * Resolves with the N-ACTION-RSP status (0000 once the transaction is durable). `channel`
   * may be kept to send the report on the same association while it stays open.
   */
  nAction(
    assoc: AssociationInfo,
    rq: NActionRequest,
    channel: ReportChannel,
    log: Logger,
  ): Promise<{ status: number; errorComment?: string }>;
}

/** A commitment request names instances by two UIDs each: 4 MiB is some 30 000 of them. */
export const MAX_NACTION_DATASET_BYTES = 4 * 1024 * 1024;
