import type tls from 'node:tls';
import type { RoleSelection } from '../dimse/acse-items.js';
import type { DimseCommand } from '../dimse/command.js';

/** What a requestor association is opened with, and the shapes of its requests. */

export interface RequestorTimeouts {
  /** Transport connection (and TLS handshake). */
  connectMs: number;
  /** A-ASSOCIATE-AC/RJ after the RQ (the requestor's ARTIM, PS3.8 9.1.5). */
  associateMs: number;
  /** Each response after a request, and each wait for the socket to drain while sending. */
  responseMs: number;
  /** A-RELEASE-RP, and the peer's close after A-ABORT (ARTIM in Sta13). */
  releaseMs: number;
}

export interface RequestorOptions {
  host: string;
  port: number;
  callingAeTitle: string;
  calledAeTitle: string;
  /** Proposed presentation contexts; IDs are assigned 1, 3, 5, … in this order. */
  contexts: ReadonlyArray<{ abstractSyntaxUid: string; transferSyntaxUids: readonly string[] }>;
  /** DICOM TLS (PS3.15 B.1): node TLS options (ca, cert, key, servername, …). */
  tls?: tls.ConnectionOptions;
  /** Our Maximum Length Received (PS3.8 D.1). Default 64 KiB. */
  maxPduLength?: number;
  /** Default: the gateway's default (config dicom.implementationClassUid). */
  implementationClassUid?: string;
  implementationVersionName?: string;
  /** PS3.7 D.3.3.4: roles proposed for ourselves (the SCP role of Storage Commitment for a report). */
  roleSelections?: readonly RoleSelection[];
  timeouts?: Partial<RequestorTimeouts>;
  /** Largest data set accepted in one response (C-FIND identifiers). Default 16 MiB. */
  maxResponseDatasetBytes?: number;
}

export interface PresentationContext {
  id: number;
  abstractSyntaxUid: string;
  transferSyntaxUid: string;
}

/** A request's command fields; Message ID and Command Data Set Type are filled in. */
export type DimseRequest = Omit<DimseCommand, 'messageId' | 'hasDataset'>;

export interface DimseResponse {
  command: DimseCommand;
  dataset?: Buffer;
}

export const DEFAULT_TIMEOUTS: RequestorTimeouts = {
  connectMs: 10_000,
  associateMs: 30_000,
  responseMs: 60_000,
  releaseMs: 10_000,
};
export const DEFAULT_MAX_PDU = 64 * 1024;
export const DEFAULT_MAX_RESPONSE_DATASET = 16 * 1024 * 1024;
/** The same default as config dicom.implementationClassUid. */
export const DEFAULT_IMPLEMENTATION_CLASS_UID = '2.25.277795835720665511339390118808545271789';
