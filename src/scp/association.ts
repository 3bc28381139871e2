import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { Logger } from 'pino';
import { DimseStatus, GatewayError, isGatewayError, toDimseStatus } from '../errors.js';
import { CommandField, encodeResponse, parseCommand, type DimseCommand } from './command.js';
import { LibScp, type LibAssociation } from './dimse-lib.js';
import {
  ContextResult,
  negotiate,
  Reject,
  VERIFICATION_SOP_CLASS,
  type NegotiationPolicy,
} from './negotiation.js';
import { encodeAbort, encodePDataTf, parsePDataTf, PduFramer, PduType, type Pdu } from './pdu.js';

/**
 * One DICOM association on one socket (PS3.8 9.2). The library's Network class
 * handles ACSE; its P-DATA path is replaced here because, in dcmjs-dimse 0.3.3:
 *  - PDUs are emitted while earlier ones are still being awaited (Network.js:804):
 *    no backpressure, and PDUs can be handled out of order under a slow consumer;
 *  - the PDU accumulator re-concatenates the partial PDU on every chunk (quadratic)
 *    and has no cap on PDU length (Network.js:966);
 *  - a PDU's remaining PDVs are dropped after a command without a data set.
 * Here PDUs are framed by PduFramer, processed strictly in order one at a time,
 * and the socket is paused while the consumer (the object store) is behind.
 */

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
}

export interface StoreHandler {
  /** Throws a GatewayError to refuse the instance (its status is answered after the data set is read). */
  begin(assoc: AssociationInfo, req: StoreRequest, log: Logger): InstanceSink;
}

export interface AssociationLimits {
  /** Largest P-DATA-TF PDU we accept; advertised as our Maximum Length Received (PS3.8 D.1). */
  maxPduLength: number;
  /** Idle time after which an association is aborted (and ARTIM before it is established). */
  idleTimeoutMs: number;
  /** Data set bytes in flight before the socket is paused. */
  highWaterMark: number;
}

export interface AssociationOptions {
  policy: NegotiationPolicy;
  limits: AssociationLimits;
  handler: StoreHandler;
  log: Logger;
  id: string;
  /** Asked when an A-ASSOCIATE-RQ arrives: false rejects it as "local limit exceeded". */
  admit: (callingAeTitle: string) => boolean;
}

const MAX_COMMAND_BYTES = 64 * 1024;

interface Pending {
  command: DimseCommand;
  pcId: number;
  sink?: InstanceSink;
  /** Status to answer instead of storing (refused before or while receiving). */
  refusal?: GatewayError;
  bytes: number;
  startedAt: bigint;
}

export class Association extends LibScp {
  private opts!: AssociationOptions;
  private framer!: PduFramer;
  private queue: Pdu[] = [];
  private queuedBytes = 0;
  private processing = false;
  private paused = false;
  private established = false;
  private closed = false;
  private info!: AssociationInfo;
  private log!: Logger;
  private accepted = new Map<number, { abstractSyntaxUid: string; transferSyntaxUid: string }>();
  private commandChunks: Buffer[] = [];
  private commandBytes = 0;
  private pending: Pending | undefined;
  private stored = 0;

  constructor(socket: Socket | TLSSocket, opts: AssociationOptions) {
    super(socket, {});
    this.opts = opts;
    this.log = opts.log;
    this.framer = new PduFramer({
      maxPDataLength: opts.limits.maxPduLength,
      maxOtherLength: 1024 * 1024,
    });
    this.info = {
      id: opts.id,
      callingAeTitle: '',
      calledAeTitle: '',
      remoteAddress: socket.remoteAddress ?? '',
      remotePort: socket.remotePort ?? 0,
      tls: 'encrypted' in socket && socket.encrypted === true,
    };
    this.attach(socket);
    this.on('associationRequested', (a: LibAssociation) => this.onAssociate(a));
    this.on('associationReleaseRequested', () => this.onRelease());
    this.on('abort', () => this.onPeerAbort());
    this.on('networkError', (err: Error) =>
      this.fail(new GatewayError('GW_ERR_PROTOCOL', err.message)),
    );
  }

  /** Replaces the library's socket wiring (called by its constructor); see attach(). */
  _wrapSocket(): void {}

  // The library registers handlers that call these; ours are installed in the constructor.
  associationRequested(): void {}
  associationReleaseRequested(): void {}
  abort(): void {}

  private attach(socket: Socket): void {
    // FACTS: without TCP_NODELAY each response waits for a delayed ACK (~40 ms).
    socket.setNoDelay(true);
    socket.setTimeout(this.opts.limits.idleTimeoutMs);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('timeout', () => {
      this.log.warn(
        {
          event: 'association.timeout',
          idleMs: this.opts.limits.idleTimeoutMs,
          established: this.established,
        },
        'association idle for too long; aborting',
      );
      // PS3.8 9.1.5: ARTIM expiry before establishment closes the transport; after, A-ABORT.
      this.sendAbortAndClose(2, 0);
    });
    socket.on('error', (err) => {
      this.log.warn({ event: 'association.socket_error', err: err.message }, 'socket error');
    });
    socket.on('close', () => void this.onClose());
  }

  private onData(chunk: Buffer): void {
    if (this.closed) return;
    let pdus: Pdu[];
    try {
      pdus = this.framer.push(chunk);
    } catch (err) {
      this.fail(err);
      return;
    }
    for (const pdu of pdus) {
      this.queue.push(pdu);
      this.queuedBytes += pdu.raw.length;
    }
    if (
      !this.paused &&
      this.queuedBytes + this.framer.pendingBytes > this.opts.limits.highWaterMark
    ) {
      this.paused = true;
      this.socket.pause();
    }
    void this.pump();
  }

  private async pump(): Promise<void> {
    if (this.processing) return;
    this.processing = true;
    try {
      while (this.queue.length > 0 && !this.closed) {
        const pdu = this.queue.shift()!;
        this.queuedBytes -= pdu.raw.length;
        if (pdu.type === PduType.PDataTf) {
          await this.onPData(pdu.raw);
        } else {
          await this._processPdu(pdu.raw);
        }
        if (this.paused && this.queuedBytes < this.opts.limits.highWaterMark / 2) {
          this.paused = false;
          this.socket.resume();
        }
      }
    } catch (err) {
      this.fail(err);
    } finally {
      this.processing = false;
    }
  }

  private onAssociate(a: LibAssociation): void {
    this.association = a;
    this.info.callingAeTitle = a.getCallingAeTitle().trim();
    this.info.calledAeTitle = a.getCalledAeTitle().trim();
    this.log = this.log.child({
      calling: this.info.callingAeTitle,
      called: this.info.calledAeTitle,
    });
    const proposed = a.getPresentationContexts().map((pc) => ({
      id: pc.id,
      abstractSyntaxUid: pc.context.getAbstractSyntaxUid(),
      transferSyntaxUids: pc.context.getTransferSyntaxUids(),
    }));
    const decision = negotiate(
      this.info.callingAeTitle,
      this.info.calledAeTitle,
      proposed,
      this.opts.policy,
    );
    if (!decision.accept) {
      this.reject(decision.result, decision.source, decision.reason, decision.why);
      return;
    }
    if (!this.opts.admit(this.info.callingAeTitle)) {
      // PS3.8 9.3.4: transient rejection, "local-limit-exceeded": the sender may retry later.
      this.reject(
        Reject.Transient,
        Reject.SourceProviderPresentation,
        Reject.ReasonLocalLimitExceeded,
        'too many associations',
      );
      return;
    }
    for (const pc of a.getPresentationContexts()) {
      const d = decision.contexts.find((c) => c.id === pc.id)!;
      pc.context.setResult(d.result, d.transferSyntaxUid);
      if (d.result === ContextResult.Accept && d.transferSyntaxUid) {
        this.accepted.set(pc.id, {
          abstractSyntaxUid: pc.context.getAbstractSyntaxUid(),
          transferSyntaxUid: d.transferSyntaxUid,
        });
      }
    }
    // The library answers min(requested, Implementation max); we advertise our own
    // receive limit instead (set in configureLibrary). Our own PDUs are single small
    // responses, far below any peer's limit (PS3.8 D.1 allows 0 = unlimited too).
    a.setMaxPduLength(this.opts.limits.maxPduLength);
    this.sendAssociationAccept();
    this.established = true;
    this.log.info(
      {
        event: 'association.accepted',
        remote: `${this.info.remoteAddress}:${this.info.remotePort}`,
        tls: this.info.tls,
        contexts: proposed.length,
        accepted: this.accepted.size,
      },
      'association accepted',
    );
  }

  private reject(result: number, source: number, reason: number, why: string): void {
    this.log.warn(
      {
        event: 'association.rejected',
        remote: this.info.remoteAddress,
        result,
        source,
        reason,
        why,
      },
      `association rejected: ${why}`,
    );
    this.sendAssociationReject(result, source, reason);
    this.socket.end();
  }

  private onRelease(): void {
    this.sendAssociationReleaseResponse();
    this.log.info(
      { event: 'association.released', instances: this.stored },
      'association released',
    );
    this.established = false;
    // PS3.8 9.2.3: after A-RELEASE-RP the requester closes the transport; don't wait forever.
    this.socket.end();
  }

  private onPeerAbort(): void {
    this.log.warn(
      { event: 'association.aborted_by_peer', instances: this.stored },
      'peer aborted the association',
    );
    this.established = false;
    this.socket.destroy();
  }

  private async onPData(raw: Buffer): Promise<void> {
    if (!this.established) {
      throw new GatewayError('GW_ERR_PROTOCOL', 'P-DATA-TF before the association was established');
    }
    for (const pdv of parsePDataTf(raw)) {
      const pc = this.accepted.get(pdv.presentationContextId);
      if (!pc) {
        throw new GatewayError(
          'GW_ERR_PROTOCOL',
          `PDV on presentation context ${pdv.presentationContextId}, which was not accepted`,
        );
      }
      if (pdv.isCommand) {
        if (this.pending) {
          throw new GatewayError(
            'GW_ERR_PROTOCOL',
            'command fragment received while a data set was expected',
          );
        }
        this.commandBytes += pdv.value.length;
        if (this.commandBytes > MAX_COMMAND_BYTES) {
          throw new GatewayError(
            'GW_ERR_PROTOCOL',
            `command set larger than ${MAX_COMMAND_BYTES} bytes`,
          );
        }
        this.commandChunks.push(pdv.value);
        if (pdv.isLast) {
          const command = parseCommand(Buffer.concat(this.commandChunks, this.commandBytes));
          this.commandChunks = [];
          this.commandBytes = 0;
          await this.onCommand(command, pdv.presentationContextId);
        }
      } else {
        const p = this.pending;
        if (!p || p.pcId !== pdv.presentationContextId) {
          throw new GatewayError('GW_ERR_PROTOCOL', 'data set fragment without a matching command');
        }
        p.bytes += pdv.value.length;
        if (p.sink) {
          const wait = p.sink.write(pdv.value);
          if (wait) await wait;
        }
        if (pdv.isLast) {
          this.pending = undefined;
          await this.completeStore(p);
        }
      }
    }
  }

  private async onCommand(command: DimseCommand, pcId: number): Promise<void> {
    const pc = this.accepted.get(pcId)!;
    switch (command.commandField) {
      case CommandField.CEchoRq:
        this.respond(pcId, command, CommandField.CEchoRsp, DimseStatus.Success);
        this.log.debug({ event: 'echo' }, 'C-ECHO');
        return;
      case CommandField.CStoreRq: {
        if (!command.hasDataset) {
          throw new GatewayError('GW_ERR_PROTOCOL', 'C-STORE-RQ without a data set');
        }
        const p: Pending = { command, pcId, bytes: 0, startedAt: process.hrtime.bigint() };
        this.pending = p;
        const sopClassUid = command.affectedSopClassUid ?? '';
        const sopInstanceUid = command.affectedSopInstanceUid ?? '';
        if (
          sopClassUid !== pc.abstractSyntaxUid ||
          pc.abstractSyntaxUid === VERIFICATION_SOP_CLASS
        ) {
          // PS3.7 9.1.1.1: the Affected SOP Class must be the context's abstract syntax.
          p.refusal = new GatewayError(
            'GW_ERR_SOP_CLASS_REFUSED',
            `SOP class ${sopClassUid} sent on a presentation context negotiated for ${pc.abstractSyntaxUid}`,
          );
          return;
        }
        try {
          p.sink = this.opts.handler.begin(
            this.info,
            {
              messageId: command.messageId ?? 0,
              sopClassUid,
              sopInstanceUid,
              transferSyntaxUid: pc.transferSyntaxUid,
              moveOriginatorAeTitle: command.moveOriginatorAeTitle,
              moveOriginatorMessageId: command.moveOriginatorMessageId,
            },
            this.log,
          );
        } catch (err) {
          p.refusal = isGatewayError(err)
            ? err
            : new GatewayError('GW_ERR_INTERNAL', String(err), { cause: err });
        }
        return;
      }
      case CommandField.CCancelRq:
        return;
      default: {
        // PS3.7 C.4.2: 0211 "Unrecognized operation" for a service we do not provide.
        this.log.warn(
          { event: 'dimse.unsupported', commandField: command.commandField },
          'unsupported DIMSE command',
        );
        if (command.hasDataset) {
          this.pending = {
            command,
            pcId,
            bytes: 0,
            startedAt: process.hrtime.bigint(),
            refusal: new GatewayError('GW_ERR_PROTOCOL', 'unsupported operation'),
          };
          return;
        }
        this.respond(pcId, command, command.commandField | 0x8000, 0x0211);
      }
    }
  }

  private async completeStore(p: Pending): Promise<void> {
    const { command } = p;
    if (command.commandField !== CommandField.CStoreRq) {
      this.respond(p.pcId, command, command.commandField | 0x8000, 0x0211);
      return;
    }
    let status: number;
    let errorComment: string | undefined;
    if (p.refusal || !p.sink) {
      const err = p.refusal ?? new GatewayError('GW_ERR_INTERNAL', 'no sink');
      status = toDimseStatus(err);
      errorComment = err.message;
      this.log.warn(
        {
          event: 'instance.refused',
          sopInstanceUid: command.affectedSopInstanceUid,
          status: hex(status),
          code: err.code,
        },
        err.message,
      );
    } else {
      ({ status, errorComment } = await p.sink.finish());
    }
    if (status === DimseStatus.Success) this.stored++;
    this.respond(p.pcId, command, CommandField.CStoreRsp, status, errorComment);
  }

  private respond(
    pcId: number,
    rq: DimseCommand,
    field: number,
    status: number,
    errorComment?: string,
  ): void {
    if (this.closed) return;
    const body = encodeResponse({
      commandField: field,
      messageIdBeingRespondedTo: rq.messageId ?? 0,
      affectedSopClassUid: rq.affectedSopClassUid,
      affectedSopInstanceUid: rq.affectedSopInstanceUid,
      status,
      errorComment: status === DimseStatus.Success ? undefined : errorComment,
    });
    this.socket.write(encodePDataTf(pcId, true, true, body));
  }

  /** A protocol violation or internal failure: A-ABORT (PS3.8 9.3.8) and close. */
  private fail(err: unknown): void {
    if (this.closed) return;
    const message = err instanceof Error ? err.message : String(err);
    this.log.warn(
      { event: 'association.protocol_error', err: message },
      `aborting association: ${message}`,
    );
    // source 2 = service provider; reason 0 = not specified (PS3.8 Table 9-26).
    this.sendAbortAndClose(2, 0);
  }

  private sendAbortAndClose(source: number, reason: number): void {
    if (!this.socket.destroyed) {
      this.socket.end(encodeAbort(source, reason));
      setTimeout(() => this.socket.destroy(), 1000).unref();
    }
  }

  private async onClose(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.queue = [];
    const p = this.pending;
    this.pending = undefined;
    if (p?.sink) {
      this.log.warn(
        {
          event: 'instance.incomplete',
          sopInstanceUid: p.command.affectedSopInstanceUid,
          bytes: p.bytes,
        },
        'association closed in the middle of a data set; nothing kept',
      );
      await p.sink.abort('association closed').catch(() => {});
    }
    this.log.info({ event: 'association.closed', instances: this.stored }, 'association closed');
    this.emit('closed');
  }
}

function hex(n: number): string {
  return '0x' + n.toString(16).padStart(4, '0');
}
