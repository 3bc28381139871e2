/**
 * The requestor's association (src/scu): connect, A-ASSOCIATE, DIMSE requests and their
 * responses, release and abort, over the same codecs and state machine as the acceptor.
 * A little over the house's ~400 lines on purpose: every wait and its timeout acts on one
 * socket's state; the transport, options and errors are already in files of their own.
 */
import type net from 'node:net';
import type { Readable } from 'node:stream';
import { GatewayError } from '../errors.js';
import {
  encodeAssociateRq,
  parseAssociateAc,
  parseAssociateRj,
  type AssociateAc,
} from '../dimse/acse.js';
import { CommandField, encodeCommand, isPending } from '../dimse/command.js';
import { MessageAssembler } from '../dimse/message-assembler.js';
import {
  AbortReason,
  AbortSource,
  encodeAbort,
  encodePDataTf,
  encodeReleaseRp,
  encodeReleaseRq,
  fragmentPData,
  maxPdvValue,
  parseAbort,
  parsePDataTf,
  PduFramer,
  PduType,
  UpperLayerError,
  type Pdu,
} from '../dimse/pdu.js';
import { Event, pduEvent, transition, type Action, type State } from '../dimse/state-machine.js';
import { AssociationAbortedError, AssociationRejectedError } from './errors.js';
import {
  DEFAULT_IMPLEMENTATION_CLASS_UID,
  DEFAULT_MAX_PDU,
  DEFAULT_MAX_RESPONSE_DATASET,
  DEFAULT_TIMEOUTS,
  type DimseRequest,
  type DimseResponse,
  type PresentationContext,
  type RequestorOptions,
  type RequestorTimeouts,
} from './options.js';
import { datasetPdus } from './outgoing.js';
import { ResponseCollector } from './response-collector.js';
import { openTransport } from './transport.js';
import { Waiter } from './waiter.js';
import { acceptedContexts, proposeContexts } from './contexts.js';

/**
 * The association requestor (SCU): the requestor's driver of the upper layer state machine
 * (src/dimse/state-machine.ts, PS3.8 9.2) over one TCP or TLS connection. It opens the
 * association, sends DIMSE requests (a command and an optional data set, from a Buffer or a
 * stream, fragmented to the peer's maximum PDU length, honouring socket backpressure), reads
 * their responses (a series of Pending ones, then a final one), and releases or aborts.
 * One request at a time: no asynchronous operations window is proposed (PS3.7 D.3.3.3).
 * Every wait has a deadline; every failure is a GatewayError.
 */

/** PS3.7 sets no limit on a command set; a response's is ~200 bytes. */
const MAX_COMMAND_BYTES = 64 * 1024;

export class RequestorAssociation {
  private state: State = 'Sta1';
  private readonly waiter = new Waiter();
  private readonly framer: PduFramer;
  private readonly timeouts: RequestorTimeouts;
  private readonly responses: DimseResponse[] = [];
  private readonly collector: ResponseCollector;
  private readonly assembler: MessageAssembler;
  private answer: Pdu | undefined;
  private contexts = new Map<number, PresentationContext>();
  private peerMaxValue = 0;
  private nextMessageId = 1;
  /** The request in progress. */
  private current: { pcId: number; messageId: number } | undefined;
  private closed = false;
  private artim: NodeJS.Timeout | undefined;
  private socket!: net.Socket;

  private constructor(private readonly opts: RequestorOptions) {
    this.timeouts = { ...DEFAULT_TIMEOUTS, ...opts.timeouts };
    this.framer = new PduFramer({
      maxPDataLength: opts.maxPduLength ?? DEFAULT_MAX_PDU,
      maxOtherLength: 1024 * 1024,
    });
    this.assembler = new MessageAssembler({
      isAccepted: (id) => this.contexts.has(id),
      maxCommandBytes: MAX_COMMAND_BYTES,
    });
    this.collector = new ResponseCollector(
      opts.maxResponseDatasetBytes ?? DEFAULT_MAX_RESPONSE_DATASET,
    );
  }

  /**
   * Connects and negotiates. Rejects with AssociationRejectedError (A-ASSOCIATE-RJ),
   * AssociationAbortedError, GW_ERR_PEER_UNREACHABLE or GW_ERR_TIMEOUT.
   */
  static async open(opts: RequestorOptions): Promise<RequestorAssociation> {
    const a = new RequestorAssociation(opts);
    await a.associate();
    return a;
  }

  /** The accepted presentation contexts, by ID. */
  get accepted(): ReadonlyMap<number, PresentationContext> {
    return this.contexts;
  }

  /** The first accepted context for an abstract syntax (and transfer syntax, if given). */
  contextFor(
    abstractSyntaxUid: string,
    transferSyntaxUid?: string,
  ): PresentationContext | undefined {
    for (const pc of this.contexts.values()) {
      if (pc.abstractSyntaxUid !== abstractSyntaxUid) continue;
      if (transferSyntaxUid === undefined || pc.transferSyntaxUid === transferSyntaxUid) return pc;
    }
    return undefined;
  }

  private async associate(): Promise<void> {
    this.step(Event.AssociateRequest); // AE-1
    await this.connect();
    this.step(Event.TransportConnected); // AE-2
    const proposed = proposeContexts(this.opts.contexts);
    this.socket.write(
      encodeAssociateRq({
        callingAeTitle: this.opts.callingAeTitle,
        calledAeTitle: this.opts.calledAeTitle,
        contexts: proposed,
        maxPduLength: this.opts.maxPduLength ?? DEFAULT_MAX_PDU,
        implementationClassUid:
          this.opts.implementationClassUid ?? DEFAULT_IMPLEMENTATION_CLASS_UID,
        implementationVersionName: this.opts.implementationVersionName,
        roleSelections: this.opts.roleSelections,
      }),
    );
    let answer: Pdu;
    try {
      answer = await this.waiter.until(
        () => this.answer,
        this.timeouts.associateMs,
        'A-ASSOCIATE-AC',
      );
    } catch (err) {
      this.abort();
      throw err;
    }
    if (answer.type === PduType.AssociateRj) {
      throw new AssociationRejectedError(parseAssociateRj(answer.raw));
    }
    let ac: AssociateAc;
    try {
      ac = parseAssociateAc(answer.raw);
      this.peerMaxValue = maxPdvValue(ac.maxPduLength);
    } catch (err) {
      this.onInvalid(err);
      throw this.waiter.failed ?? err;
    }
    this.contexts = acceptedContexts(proposed, ac);
  }

  private async connect(): Promise<void> {
    const { host, port, tls } = this.opts;
    const socket = await openTransport(host, port, tls, this.timeouts.connectMs);
    this.socket = socket;
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('drain', () => this.waiter.notify());
    socket.on('error', () => {}); // 'close' follows; onClose() decides
    socket.on('close', () => this.onClose());
  }

  /**
   * Sends a request and yields its responses: Pending ones (C-FIND, C-MOVE, C-GET), then the
   * final one. Stopping the iteration early leaves the association unusable: it is aborted.
   */
  async *request(
    pc: PresentationContext | number,
    fields: DimseRequest,
    dataset?: Buffer | Readable,
  ): AsyncGenerator<DimseResponse, void, undefined> {
    if (this.current) {
      throw new GatewayError('GW_ERR_PROTOCOL', 'one request at a time on an association');
    }
    const pcId = typeof pc === 'number' ? pc : pc.id;
    if (!this.contexts.has(pcId)) {
      throw new GatewayError('GW_ERR_PROTOCOL', `presentation context ${pcId} was not accepted`);
    }
    const messageId = this.nextMessageId;
    this.nextMessageId = (this.nextMessageId % 0xffff) + 1;
    this.current = { pcId, messageId };
    let finished = false;
    try {
      const command = encodeCommand({ ...fields, messageId, hasDataset: dataset !== undefined });
      for (const p of fragmentPData(pcId, true, command, this.peerMaxValue)) await this.write(p);
      if (dataset !== undefined) {
        for await (const p of datasetPdus(pcId, dataset, this.peerMaxValue)) await this.write(p);
      }
      for (;;) {
        const rsp = await this.waiter.until(
          () => this.responses.shift(),
          this.timeouts.responseMs,
          'DIMSE response',
        );
        if (rsp.command.messageIdBeingRespondedTo !== messageId) {
          throw this.protocolFailure(
            `response to message ${rsp.command.messageIdBeingRespondedTo}, expected ${messageId}`,
          );
        }
        finished = !isPending(rsp.command.status);
        yield rsp;
        if (finished) return;
      }
    } finally {
      this.current = undefined;
      if (!finished) this.abort();
    }
  }

  /** Sends a request and resolves with its final response; Pending ones go to `onPending`. */
  async send(
    pc: PresentationContext | number,
    fields: DimseRequest,
    dataset?: Buffer | Readable,
    onPending?: (rsp: DimseResponse) => void,
  ): Promise<DimseResponse> {
    for await (const rsp of this.request(pc, fields, dataset)) {
      if (!isPending(rsp.command.status)) return rsp;
      onPending?.(rsp);
    }
    throw new GatewayError('GW_ERR_PROTOCOL', 'no final response');
  }

  /**
   * PS3.7 9.3.2.3: C-CANCEL-RQ for the request in progress (C-FIND, C-MOVE, C-GET); its
   * responses keep coming through request() until the final one (status FE00, Cancel).
   */
  async cancel(): Promise<void> {
    if (!this.current) return;
    const command = encodeCommand({
      commandField: CommandField.CCancelRq,
      messageIdBeingRespondedTo: this.current.messageId,
      hasDataset: false,
    });
    await this.write(encodePDataTf(this.current.pcId, true, true, command));
  }

  /** PS3.8 A-RELEASE (Evt11 -> AR-1): resolves once the peer answered and the transport closed. */
  async release(): Promise<void> {
    if (this.state !== 'Sta6')
      throw (
        this.waiter.failed ?? new GatewayError('GW_ERR_PROTOCOL', `cannot release in ${this.state}`)
      );
    this.step(Event.ReleaseRequest);
    this.socket.write(encodeReleaseRq());
    try {
      await this.waiter.until(
        () => (this.closed ? true : undefined),
        this.timeouts.releaseMs,
        'A-RELEASE-RP',
      );
    } catch (err) {
      this.abort();
      throw err;
    }
  }

  /** PS3.8 A-ABORT (Evt15 -> AA-1, service-user): never throws; the transport closes soon after. */
  abort(): void {
    if (this.state === 'Sta1' || this.state === 'Sta13') return;
    const { action } = this.step(Event.AbortRequest);
    if (action === 'AA-2')
      this.socket.destroy(); // Sta4: no association yet
    else this.enterClosing(encodeAbort(AbortSource.ServiceUser, 0));
    this.waiter.fail(new AssociationAbortedError('association aborted by us'));
  }

  /**
   * Waits until the association has ended, without ending it: resolves with why (an
   * AssociationAbortedError carrying the peer's A-ABORT source and reason, or the lost
   * connection). GW_ERR_TIMEOUT when it is still up after `timeoutMs`.
   */
  ended(timeoutMs: number): Promise<Error> {
    return this.waiter.until(() => this.waiter.failed, timeoutMs, 'end of the association');
  }

  /** Evt9 -> DT-1: one P-DATA-TF PDU, waiting while the socket's buffer is full. */
  private async write(pdu: Buffer): Promise<void> {
    if (this.state !== 'Sta6') {
      throw (
        this.waiter.failed ??
        new GatewayError('GW_ERR_PROTOCOL', `cannot send P-DATA in ${this.state}`)
      );
    }
    this.step(Event.PDataRequest);
    if (this.socket.write(pdu)) return;
    await this.waiter.until(
      () => (this.socket.writableNeedDrain ? undefined : true),
      this.timeouts.responseMs,
      'socket drain',
    );
  }

  private onData(chunk: Buffer): void {
    if (this.state === 'Sta13' || this.state === 'Sta1') return; // AA-6
    const { pdus, error } = this.framer.frame(chunk);
    try {
      for (const pdu of pdus) this.onPdu(pdu);
      if (error) throw error;
    } catch (err) {
      this.onInvalid(err);
    }
    this.waiter.notify();
  }

  private onPdu(pdu: Pdu): void {
    if (this.state === 'Sta13' || this.state === 'Sta1') return;
    const t = transition(this.state, pduEvent(pdu.type), 'requestor');
    if (t.action === 'AA-8') {
      // An out-of-place PDU: onInvalid() takes Evt19 (also AA-8 here) and sends the A-ABORT.
      throw new UpperLayerError(
        `unexpected PDU type 0x${pdu.type.toString(16)} in ${this.state}`,
        AbortReason.UnexpectedPdu,
      );
    }
    this.state = t.next;
    this.act(t.action, pdu);
  }

  private act(action: Action, pdu: Pdu): void {
    switch (action) {
      case 'AE-3': // accepted
      case 'AE-4': // rejected: the caller reads it, then closes
        this.answer = pdu;
        if (action === 'AE-4') this.socket.destroy();
        return;
      case 'DT-2':
      case 'AR-6':
        return this.onPData(pdu);
      case 'AR-2': // the peer asks to release while associated: agree (Evt14 -> AR-4)
        this.step(Event.ReleaseResponse);
        this.enterClosing(encodeReleaseRp());
        this.waiter.fail(new AssociationAbortedError('the peer released the association'));
        return;
      case 'AR-8': // release collision: the requestor answers first (Sta9, Evt14 -> AR-9)
        this.step(Event.ReleaseResponse);
        this.socket.write(encodeReleaseRp());
        return;
      case 'AR-3': // released
      case 'AR-10':
        if (action === 'AR-3') this.socket.destroy();
        return;
      case 'AA-3': {
        const { source, reason } = parseAbort(pdu.raw);
        this.socket.destroy();
        this.waiter.fail(
          new AssociationAbortedError(
            `the peer aborted the association (source ${source}, reason ${reason})`,
            { source, reason },
          ),
        );
        return;
      }
      default:
        throw new GatewayError('GW_ERR_INTERNAL', `requestor has no handler for ${action}`);
    }
  }

  private onPData(pdu: Pdu): void {
    for (const pdv of parsePDataTf(pdu)) {
      const part = this.assembler.push(pdv);
      const response = part && this.collector.push(part);
      if (response) this.responses.push(response);
    }
  }

  /** Evt19 (or a broken message): AA-8, A-ABORT from the service provider. */
  private onInvalid(err: unknown): void {
    if (this.state === 'Sta13' || this.state === 'Sta1') return;
    const reason = err instanceof UpperLayerError ? err.abortReason : AbortReason.NotSpecified;
    this.step(Event.InvalidPdu);
    this.enterClosing(encodeAbort(AbortSource.ServiceProvider, reason));
    const message = err instanceof Error ? err.message : String(err);
    this.waiter.fail(new GatewayError('GW_ERR_PROTOCOL', `aborted: ${message}`, { cause: err }));
  }

  private protocolFailure(message: string): GatewayError {
    this.onInvalid(new UpperLayerError(message));
    return new GatewayError('GW_ERR_PROTOCOL', message);
  }

  /** Sta13: send the last PDU, half-close, and close for good when ARTIM expires (Evt18 -> AA-2). */
  private enterClosing(last: Buffer): void {
    this.socket.end(last);
    this.artim = setTimeout(() => this.socket.destroy(), this.timeouts.releaseMs);
  }

  private onClose(): void {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.artim);
    // Evt17: AR-5 in Sta13, AA-4 elsewhere (A-P-ABORT: the transport closed under us).
    if (this.state !== 'Sta1') this.step(Event.TransportClosed);
    this.state = 'Sta1';
    this.waiter.fail(new AssociationAbortedError('the connection closed'));
  }

  private step(event: Event): { action: Action } {
    const t = transition(this.state, event, 'requestor');
    this.state = t.next;
    return t;
  }
}
