/**
 * The one place that touches dcmjs-dimse's untyped surface. We use the library
 * for the ACSE part of an association (parsing A-ASSOCIATE-RQ, writing
 * A-ASSOCIATE-AC/RJ, A-RELEASE, A-ABORT); P-DATA handling is ours (see
 * association.ts for why).
 */
import type { Socket } from 'node:net';
import dimse from 'dcmjs-dimse';

export interface LibPresentationContext {
  getAbstractSyntaxUid(): string;
  getTransferSyntaxUids(): string[];
  getAcceptedTransferSyntaxUid(): string | undefined;
  getResult(): number;
  setResult(result: number, acceptedTransferSyntaxUid?: string): void;
}

export interface LibAssociation {
  getCallingAeTitle(): string;
  getCalledAeTitle(): string;
  getMaxPduLength(): number;
  setMaxPduLength(n: number): void;
  getPresentationContexts(): Array<{ id: number; context: LibPresentationContext }>;
}

/** The members of the library's Scp/Network class that the gateway calls or overrides. */
export interface LibScpInstance {
  socket: Socket;
  association?: LibAssociation;
  sendAssociationAccept(): void;
  sendAssociationReject(result: number, source: number, reason: number): void;
  sendAssociationReleaseResponse(): void;
  on(event: string, listener: (...args: never[]) => void): void;
  emit(event: string, ...args: unknown[]): unknown;
  /** Parses a whole non-P-DATA PDU and emits the matching event. */
  _processPdu(raw: Buffer): Promise<void>;
}

type LibScpClass = new (socket: Socket, opts?: Record<string, unknown>) => LibScpInstance;

interface LibModule {
  Scp: LibScpClass;
  Implementation: {
    setImplementationClassUid(uid: string): void;
    setImplementationVersion(version: string): void;
    setMaxPduLength(n: number): void;
  };
  log: { setLevel(level: string): void };
}

const lib = dimse as unknown as LibModule;

export const LibScp: LibScpClass = lib.Scp;

let configured = false;

/**
 * Process-wide library settings. The library keeps them in statics, so they are
 * set once: our implementation identity and our receive limit (advertised in
 * every A-ASSOCIATE-AC), and its own logger silenced: it logs every PDU at
 * info level through loglevel, which cost ~15% of CPU per instance; the
 * gateway logs each event itself through pino.
 */
export function configureLibrary(opts: {
  implementationClassUid: string;
  implementationVersionName: string;
  maxPduLength: number;
}): void {
  lib.Implementation.setImplementationClassUid(opts.implementationClassUid);
  lib.Implementation.setImplementationVersion(opts.implementationVersionName);
  lib.Implementation.setMaxPduLength(opts.maxPduLength);
  if (!configured) lib.log.setLevel('silent');
  configured = true;
}
