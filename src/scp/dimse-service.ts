import type { IngestObserver } from '../admin/observer.js';
import type { Logger } from 'pino';
import { DimseStatus, GatewayError, isGatewayError, toDimseStatus } from '../errors.js';
import { VERIFICATION_SOP_CLASS } from '../dicom/uids.js';
import { CommandField, encodeResponse, isResponse, type DimseCommand } from '../dimse/command.js';
import { MessageAssembler } from '../dimse/message-assembler.js';
import { AbortReason, encodePDataTf, parsePDataTf, UpperLayerError } from '../dimse/pdu.js';
import type { AssociationInfo, InstanceSink, StoreHandler } from './store-handler.js';

/**
 * The acceptor's DIMSE service on an established association (PS3.7 9.3): takes the
 * messages MessageAssembler rebuilds from P-DATA-TF PDUs, answers C-ECHO, and feeds
 * each C-STORE's data set to an InstanceSink as it arrives. One message at a time, in
 * order (we negotiate no asynchronous operations window, PS3.7 D.3.3.3): the caller awaits
 * onPData() before handing over the next PDU.
 */

/**
 * Largest command set accepted. PS3.7 sets no limit; a C-STORE-RQ is ~200 bytes with
 * 64-character UIDs, so this is only a bound on memory held for a misbehaving peer.
 */
export const MAX_COMMAND_BYTES = 64 * 1024;

export interface DimseServiceOptions {
  info: AssociationInfo;
  /** Accepted presentation contexts by ID. */
  contexts: ReadonlyMap<number, { abstractSyntaxUid: string; transferSyntaxUid: string }>;
  handler: StoreHandler;
  /** Told of instances refused before storing (metrics). */
  observer?: Pick<IngestObserver, 'failed'>;
  log: Logger;
  /** Writes a PDU to the peer (nothing when the association is gone). */
  send: (pdu: Buffer) => void;
}

interface Pending {
  command: DimseCommand;
  pcId: number;
  sink?: InstanceSink;
  /** Status to answer instead of storing (refused before or while receiving). */
  refusal?: GatewayError;
  bytes: number;
}

export class DimseService {
  private readonly assembler: MessageAssembler;
  private pending: Pending | undefined;
  /** The sink whose finish() runs now (its answer not yet sent). */
  private finishing: InstanceSink | undefined;
  /** Instances answered 0000. */
  stored = 0;

  constructor(private readonly o: DimseServiceOptions) {
    this.assembler = new MessageAssembler({
      isAccepted: (pcId) => o.contexts.has(pcId),
      maxCommandBytes: MAX_COMMAND_BYTES,
    });
  }

  /** Handles one whole P-DATA-TF PDU. Throws UpperLayerError for protocol violations. */
  async onPData(raw: Buffer): Promise<void> {
    for (const pdv of parsePDataTf(raw)) {
      const part = this.assembler.push(pdv);
      if (!part) continue;
      if (part.kind === 'command') {
        await this.onCommand(part.command, part.pcId);
        continue;
      }
      const p = this.pending;
      // A command the assembler let announce a data set that we do not take (C-CANCEL).
      if (!p) throw protocol('data set fragment without a matching command');
      p.bytes += part.fragment.length;
      if (p.sink) {
        const wait = p.sink.write(part.fragment);
        if (wait) await wait;
      }
      if (part.last) {
        this.pending = undefined;
        await this.complete(p);
      }
    }
  }

  /** The transport closed: an instance being finished stops waiting for other associations. */
  peerGone(): void {
    this.finishing?.peerGone?.();
  }

  /** The association ended: an instance still being received is dropped, never stored. */
  async dispose(reason: string): Promise<void> {
    const p = this.pending;
    this.pending = undefined;
    if (!p?.sink) return;
    this.o.log.warn(
      {
        event: 'instance.incomplete',
        sopInstanceUid: p.command.affectedSopInstanceUid,
        bytes: p.bytes,
        reason,
      },
      'association ended in the middle of a data set; nothing kept',
    );
    await p.sink.abort(reason).catch(() => {});
  }

  private async onCommand(command: DimseCommand, pcId: number): Promise<void> {
    const pc = this.o.contexts.get(pcId)!;
    if (isResponse(command.commandField)) {
      // PS3.7 9.3: the acceptor sends no requests (yet), so no response can be outstanding.
      throw protocol(`unexpected DIMSE response 0x${hex(command.commandField)}`);
    }
    switch (command.commandField) {
      case CommandField.CEchoRq:
        // PS3.7 9.3.5.1: C-ECHO-RQ carries no data set.
        if (command.hasDataset) throw protocol('C-ECHO-RQ announces a data set');
        this.respond(pcId, command, CommandField.CEchoRsp, DimseStatus.Success);
        this.o.log.debug({ event: 'echo' }, 'C-ECHO');
        return;
      case CommandField.CStoreRq: {
        if (!command.hasDataset) throw protocol('C-STORE-RQ without a data set');
        const p: Pending = { command, pcId, bytes: 0 };
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
          p.sink = this.o.handler.begin(
            this.o.info,
            {
              messageId: command.messageId ?? 0,
              sopClassUid,
              sopInstanceUid,
              transferSyntaxUid: pc.transferSyntaxUid,
              moveOriginatorAeTitle: command.moveOriginatorAeTitle,
              moveOriginatorMessageId: command.moveOriginatorMessageId,
            },
            this.o.log,
          );
        } catch (err) {
          p.refusal = isGatewayError(err)
            ? err
            : new GatewayError('GW_ERR_INTERNAL', String(err), { cause: err });
        }
        return;
      }
      case CommandField.CCancelRq:
        // PS3.7 9.3.2.3: nothing of ours is cancellable (one operation at a time, answered).
        return;
      default: {
        // PS3.7 C.4.2: 0211 "Unrecognized operation" for a service we do not provide.
        this.o.log.warn(
          { event: 'dimse.unsupported', commandField: command.commandField },
          'unsupported DIMSE command',
        );
        if (command.hasDataset) {
          this.pending = {
            command,
            pcId,
            bytes: 0,
            refusal: new GatewayError('GW_ERR_PROTOCOL', 'unsupported operation'),
          };
          return;
        }
        this.respond(pcId, command, command.commandField | 0x8000, 0x0211);
      }
    }
  }

  private async complete(p: Pending): Promise<void> {
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
      this.o.log.warn(
        {
          event: 'instance.refused',
          sopInstanceUid: command.affectedSopInstanceUid,
          status: '0x' + hex(status),
          code: err.code,
        },
        err.message,
      );
      this.o.observer?.failed({
        callingAeTitle: this.o.info.callingAeTitle,
        sopClassUid: command.affectedSopClassUid,
        status,
        code: err.code,
      });
    } else {
      this.finishing = p.sink;
      try {
        ({ status, errorComment } = await p.sink.finish());
      } finally {
        this.finishing = undefined;
      }
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
    const body = encodeResponse({
      commandField: field,
      messageIdBeingRespondedTo: rq.messageId ?? 0,
      affectedSopClassUid: rq.affectedSopClassUid,
      affectedSopInstanceUid: rq.affectedSopInstanceUid,
      status,
      errorComment: status === DimseStatus.Success ? undefined : errorComment,
    });
    this.o.send(encodePDataTf(pcId, true, true, body));
  }
}

/** Table 9-26 has reasons for PDUs only; a broken DIMSE message is "reason not specified". */
function protocol(message: string): UpperLayerError {
  return new UpperLayerError(message, AbortReason.NotSpecified);
}

function hex(n: number): string {
  return n.toString(16).padStart(4, '0');
}
