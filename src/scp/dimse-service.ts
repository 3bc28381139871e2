import type { IngestObserver } from '../admin/observer.js';
import type { Logger } from 'pino';
import { DimseStatus, GatewayError, isGatewayError, toDimseStatus } from '../errors.js';
import { VERIFICATION_SOP_CLASS } from '../dicom/uids.js';
import {
  CommandField,
  encodeCommand,
  encodeResponse,
  isResponse,
  type DimseCommand,
} from '../dimse/command.js';
import { MessageAssembler } from '../dimse/message-assembler.js';
import {
  AbortReason,
  encodePDataTf,
  fragmentPData,
  maxPdvValue,
  parsePDataTf,
  type Pdu,
  UpperLayerError,
} from '../dimse/pdu.js';
import {
  MAX_NACTION_DATASET_BYTES,
  type CommitmentHandler,
  type ReportChannel,
} from './commitment-handler.js';
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
  /** Storage Commitment (N-ACTION-RQ); absent: answered 0211 like any other N-service. */
  commitment?: CommitmentHandler;
  /** The peer's Maximum Length Received (0 = no limit), for the requests we send on it. */
  peerMaxPduLength?: number;
  /** Whether the association is still established (a report may be sent on it). */
  isOpen?: () => boolean;
}

interface Pending {
  command: DimseCommand;
  pcId: number;
  sink?: InstanceSink;
  /** Status to answer instead of storing (refused before or while receiving). */
  refusal?: GatewayError;
  bytes: number;
  /** An N-ACTION-RQ's data set, kept whole (bounded). */
  chunks?: Buffer[];
  /** A response's data set (an N-EVENT-REPORT-RSP's Event Reply): read and dropped. */
  discard?: boolean;
}

/** How long a report sent on this association waits for its N-EVENT-REPORT-RSP. */
const REPORT_RESPONSE_MS = 30_000;

export class DimseService {
  private readonly assembler: MessageAssembler;
  private pending: Pending | undefined;
  /** The sink whose finish() runs now (its answer not yet sent). */
  private finishing: InstanceSink | undefined;
  /** Instances answered 0000. */
  stored = 0;
  /** Our N-EVENT-REPORT-RQ awaiting its response (one at a time). */
  private outstanding:
    | { messageId: number; resolve: (status: number) => void; reject: (e: Error) => void }
    | undefined;
  private nextMessageId = 1;

  constructor(private readonly o: DimseServiceOptions) {
    this.assembler = new MessageAssembler({
      isAccepted: (pcId) => o.contexts.has(pcId),
      maxCommandBytes: MAX_COMMAND_BYTES,
    });
  }

  /** Handles one whole P-DATA-TF PDU. Throws UpperLayerError for protocol violations. */
  async onPData(pdu: Buffer | Pdu): Promise<void> {
    for (const pdv of parsePDataTf(pdu)) {
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
      if (p.chunks) {
        if (p.bytes > MAX_NACTION_DATASET_BYTES) {
          p.chunks = [];
          // PS3.7 10.1.4.1.10: 0213 Resource limitation.
          p.refusal ??= new GatewayError('GW_ERR_PROTOCOL', 'N-ACTION data set too large');
        } else p.chunks.push(part.fragment);
      }
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
    this.outstanding?.reject(
      new GatewayError('GW_ERR_PEER_UNREACHABLE', `association ended: ${reason}`),
    );
    this.outstanding = undefined;
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
      // PS3.7 9.3: the only request the acceptor sends is a Storage Commitment report.
      const o = this.outstanding;
      if (
        !o ||
        command.commandField !== CommandField.NEventReportRsp ||
        command.messageIdBeingRespondedTo !== o.messageId
      ) {
        throw protocol(`unexpected DIMSE response 0x${hex(command.commandField)}`);
      }
      this.outstanding = undefined;
      o.resolve(command.status ?? 0xffff);
      if (command.hasDataset) this.pending = { command, pcId, bytes: 0, discard: true };
      return;
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
      case CommandField.NActionRq:
        if (!this.o.commitment) break;
        // PS3.4 J.3.2: the request's Transaction UID and references are its data set.
        this.pending = { command, pcId, bytes: 0, chunks: [] };
        if (!command.hasDataset) {
          this.pending = undefined;
          await this.complete({ command, pcId, bytes: 0, chunks: [] });
        }
        return;
      case CommandField.CCancelRq:
        // PS3.7 9.3.2.3: nothing of ours is cancellable (one operation at a time, answered).
        return;
    }
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

  /** PS3.4 J.3.2: the N-ACTION-RSP, once the handler has judged (and recorded) the request. */
  private async completeNAction(p: Pending, handler: CommitmentHandler): Promise<void> {
    const { command, pcId } = p;
    let status: number;
    let errorComment: string | undefined;
    if (p.refusal) {
      status = 0x0213; // PS3.7 10.1.4.1.10: Resource limitation
      errorComment = p.refusal.message;
    } else {
      try {
        ({ status, errorComment } = await handler.nAction(
          this.o.info,
          {
            command,
            transferSyntaxUid: this.o.contexts.get(pcId)!.transferSyntaxUid,
            dataset: Buffer.concat(p.chunks ?? []),
          },
          this.channel(pcId),
          this.o.log,
        ));
      } catch (err) {
        status = toDimseStatus(err) === DimseStatus.OutOfResources ? 0x0213 : 0x0110;
        errorComment = err instanceof Error ? err.message : String(err);
      }
    }
    // PS3.7 10.3.4-1: the RSP names the SOP class and instance acted on, and the Action Type ID.
    const body = encodeCommand({
      commandField: CommandField.NActionRsp,
      messageIdBeingRespondedTo: command.messageId ?? 0,
      affectedSopClassUid: command.requestedSopClassUid,
      affectedSopInstanceUid: command.requestedSopInstanceUid,
      actionTypeId: status === DimseStatus.Success ? command.actionTypeId : undefined,
      status,
      errorComment: status === DimseStatus.Success ? undefined : errorComment,
      hasDataset: false,
    });
    this.o.send(encodePDataTf(pcId, true, true, body));
  }

  /** The report channel on this association, on the context the N-ACTION came on. */
  private channel(pcId: number): ReportChannel {
    const isOpen = this.o.isOpen ?? ((): boolean => false);
    return {
      transferSyntaxUid: this.o.contexts.get(pcId)!.transferSyntaxUid,
      get open(): boolean {
        return isOpen();
      },
      eventReport: (fields, dataset) => {
        if (!isOpen()) {
          return Promise.reject(new GatewayError('GW_ERR_PEER_UNREACHABLE', 'association closed'));
        }
        if (this.outstanding) {
          return Promise.reject(new GatewayError('GW_ERR_PROTOCOL', 'a report is in flight'));
        }
        const messageId = this.nextMessageId;
        this.nextMessageId = (this.nextMessageId % 0xffff) + 1;
        const max = maxPdvValue(this.o.peerMaxPduLength ?? 0);
        return new Promise<number>((resolve, reject) => {
          const timer = setTimeout(() => {
            this.outstanding = undefined;
            reject(new GatewayError('GW_ERR_TIMEOUT', 'no N-EVENT-REPORT-RSP in time'));
          }, REPORT_RESPONSE_MS);
          this.outstanding = {
            messageId,
            resolve: (s) => {
              clearTimeout(timer);
              resolve(s);
            },
            reject: (e) => {
              clearTimeout(timer);
              reject(e);
            },
          };
          const command = encodeCommand({ ...fields, messageId, hasDataset: true });
          for (const pdu of fragmentPData(pcId, true, command, max)) this.o.send(pdu);
          for (const pdu of fragmentPData(pcId, false, dataset, max)) this.o.send(pdu);
        });
      },
    };
  }

  private async complete(p: Pending): Promise<void> {
    const { command } = p;
    if (p.discard) return;
    if (p.chunks && this.o.commitment) return this.completeNAction(p, this.o.commitment);
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
