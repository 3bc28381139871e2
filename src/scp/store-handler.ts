import type { Logger } from 'pino';

/** What the association hands to the C-STORE consumer (src/ingest): the interface between them. */

export interface AssociationInfo {
  id: string;
  callingAeTitle: string;
  calledAeTitle: string;
  remoteAddress: string;
  remotePort: number;
  tls: boolean;
}

export interface StoreRequest {
  messageId: number;
  sopClassUid: string;
  sopInstanceUid: string;
  transferSyntaxUid: string;
  moveOriginatorAeTitle?: string;
  moveOriginatorMessageId?: number;
}

/** Receives one instance's data set bytes; created per C-STORE by the StoreHandler. */
export interface InstanceSink {
  /** Returns a promise when the caller must wait before writing more (backpressure). */
  write(chunk: Buffer): Promise<void> | undefined;
  /** All bytes received: make it durable and indexed, then say which status to answer. */
  finish(): Promise<{ status: number; errorComment?: string }>;
  /** The association ended before the last fragment: drop everything written so far. */
  abort(reason: string): Promise<void>;
  /** The transport closed while finish() runs: stop waiting for others, nobody hears the answer. */
  peerGone?(): void;
}

export interface StoreHandler {
  /** Throws a GatewayError to refuse the instance (its status is answered after the data set is read). */
  begin(assoc: AssociationInfo, req: StoreRequest, log: Logger): InstanceSink;
}
