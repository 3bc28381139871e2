import type { Logger } from 'pino';
import type { AssociationObserver, IngestObserver } from '../admin/observer.js';
import type { NegotiationPolicy } from './negotiation.js';
import type { CommitmentHandler } from './commitment-handler.js';
import type { StoreHandler } from './store-handler.js';

/** What the listener gives each acceptor association (src/scp/association.ts). */

export interface AssociationLimits {
  /** Largest P-DATA-TF PDU we accept; advertised as our Maximum Length Received (PS3.8 D.1). */
  maxPduLength: number;
  /**
   * Time without a whole PDU received or a PDU sent after which an established association is
   * aborted: progress is counted in PDUs, so trickling bytes does not keep it alive.
   */
  idleTimeoutMs: number;
  /** ARTIM (PS3.8 9.1.5): from the transport connection to the A-ASSOCIATE-RQ. */
  artimMs: number;
  /**
   * Bytes written that the peer has not taken yet. While any are pending beyond the socket's
   * high water mark no further PDU is handled (so reading stops too); beyond this bound the
   * association is aborted.
   */
  maxUnsentBytes: number;
  /** PDU bytes held before the socket is paused. */
  highWaterMark: number;
}

/** What the listener reports for metrics; synchronous, never throws (src/admin/observer.ts). */
export type ScpObserver = AssociationObserver & Pick<IngestObserver, 'failed'>;

export interface AssociationOptions {
  id: string;
  observer?: ScpObserver;
  policy: NegotiationPolicy;
  limits: AssociationLimits;
  handler: StoreHandler;
  /** Storage Commitment requests (N-ACTION), when enabled. */
  commitment?: CommitmentHandler;
  log: Logger;
  implementationClassUid: string;
  implementationVersionName: string;
  /**
   * Asked once an A-ASSOCIATE-RQ is acceptable: undefined admits it (the caller counts it),
   * a refusal is answered with a transient A-ASSOCIATE-RJ from the presentation service
   * provider (PS3.8 Table 9-21, source 3).
   */
  admit: (callingAeTitle: string) => { reason: number; why: string } | undefined;
}
