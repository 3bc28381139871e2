/**
 * The acceptor's association: one socket driven through the PS3.8 state machine
 * (src/dimse/state-machine.ts), with ARTIM, the idle timer, input and output bounds.
 * A little over the house's ~400 lines on purpose: the timers, the PDU queue and the
 * state transitions share one socket's state, and splitting them would hand that state
 * between files (the pure parts already live in src/dimse/ and when-drained.ts).
 */
import { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { Logger } from 'pino';
import {
  encodeAssociateAc,
  encodeAssociateRj,
  parseAssociateRq,
  type AcceptedContext,
} from '../dimse/acse.js';
import {
  AbortReason,
  AbortSource,
  encodeAbort,
  encodeReleaseRp,
  PduFramer,
  UpperLayerError,
  type Pdu,
} from '../dimse/pdu.js';
import { Event, lookup, pduEvent, transition, type State } from '../dimse/state-machine.js';
import type { AssociationOptions } from './association-options.js';
import { DimseService } from './dimse-service.js';
import { answerRoleSelections, ContextResult, negotiateRequest, Reject } from './negotiation.js';
import type { AssociationInfo } from './store-handler.js';
import { peerCommonName } from './tls-options.js';
import { whenDrained } from './when-drained.js';

export type { AssociationInfo, InstanceSink, StoreHandler, StoreRequest } from './store-handler.js';
export type { AssociationLimits, AssociationOptions, ScpObserver } from './association-options.js';

/**
 * One DICOM association on one socket: the acceptor's driver of the upper layer state
 * machine (src/dimse/state-machine.ts, PS3.8 9.2), from transport connection to close.
 * Every PDU, timer and close is an event; the table says what to do and where to go:
 *
 *   Sta2  awaiting A-ASSOCIATE-RQ, ARTIM running
 *   Sta3  the RQ is being judged (negotiation.ts, admission), synchronously
 *   Sta6  established: P-DATA, A-RELEASE, A-ABORT
 *   Sta13 RJ / RP / A-ABORT sent, awaiting close, ARTIM
 *   Sta1  closed
 *
 * PDUs are framed by PduFramer and handled strictly in order, one at a time: the next is
 * taken only once the previous one (an instance's store and index) is done and the peer has
 * taken our responses, and the socket is paused while either is behind. A framing error is queued behind the PDUs already
 * received, so messages that arrived whole before it are still answered.
 */

/** Largest non-P-DATA PDU: an A-ASSOCIATE-RQ with 128 full contexts stays below this. */
const MAX_OTHER_PDU = 1024 * 1024;
/** ARTIM in Sta13: how long the peer has to close the transport after RJ, RP or A-ABORT. */
const CLOSE_ARTIM_MS = 5_000;

type Queued = Pdu | { error: unknown };

export class Association extends EventEmitter {
  readonly info: AssociationInfo;
  /** PS3.8 9.2: Sta2 once the transport connection is accepted (Evt5 -> AE-5). */
  private state: State = transition('Sta1', Event.TransportIndication, 'acceptor').next;
  private readonly framer: PduFramer;
  private queue: Queued[] = [];
  private queuedBytes = 0;
  private running: Promise<void> | undefined;
  private paused = false;
  /** The byte stream broke PDU framing: the error is queued, later bytes are ignored. */
  private unframeable = false;
  private timer: NodeJS.Timeout | undefined;
  private log: Logger;
  private dimse: DimseService | undefined;
  /** The socket's 'close' was handled. */
  private ended = false;
  /** Handling is held until the peer reads our responses: the peer, not storage, is slow. */
  private awaitingPeer = false;

  constructor(
    readonly socket: Socket | TLSSocket,
    private readonly opts: AssociationOptions,
  ) {
    super();
    this.log = opts.log;
    this.framer = new PduFramer({
      maxPDataLength: opts.limits.maxPduLength,
      maxOtherLength: MAX_OTHER_PDU,
    });
    this.info = {
      id: opts.id,
      callingAeTitle: '',
      calledAeTitle: '',
      remoteAddress: socket.remoteAddress ?? '',
      remotePort: socket.remotePort ?? 0,
      tls: 'encrypted' in socket && socket.encrypted === true,
    };
    // Without TCP_NODELAY each response waits for the peer's delayed ACK (~40 ms).
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', (err) => {
      this.log.warn({ event: 'association.socket_error', err: err.message }, 'socket error');
    });
    socket.on('close', () => void this.onClose());
    // PS3.8 9.1.5, AE-5: ARTIM runs from the transport connection until the A-ASSOCIATE-RQ.
    // A deadline, not an idle timer: trickling bytes does not keep a connection alive.
    this.arm(opts.limits.artimMs, () => {
      this.log.warn(
        { event: 'association.timeout', idleMs: opts.limits.artimMs, established: false },
        'no A-ASSOCIATE-RQ before the ARTIM timer expired; closing',
      );
      // PS3.8 Table 9-10, Sta2 + Evt18 -> AA-2: close the transport connection, no PDU.
      this.socket.destroy();
    });
  }

  get established(): boolean {
    return this.state === 'Sta6';
  }

  /** For shutdown: a connection that has not associated yet is closed (AA-2); nothing is lost. */
  closeIfNotAssociated(): boolean {
    if (this.state !== 'Sta2') return false;
    this.socket.destroy(); // like ARTIM expiry in Sta2 (AA-2): nothing was associated
    return true;
  }

  /** For shutdown after the grace period: A-ABORT (service-provider) and close. */
  abortNow(why: string): void {
    if (this.state === 'Sta1') return;
    this.log.warn({ event: 'association.shutdown_abort' }, why);
    if (this.state === 'Sta13') this.socket.destroy();
    else this.localAbort();
  }

  private onData(chunk: Buffer): void {
    // Sta13: our side has ended its writes, so every PDU is ignored without framing (AA-6;
    // the AA-7 of a late RQ or bad PDU could not be sent any more).
    if (this.state !== 'Sta2' && this.state !== 'Sta6') return;
    if (this.unframeable) return;
    const { pdus, error } = this.framer.frame(chunk);
    // Progress is a whole PDU, not a byte: a trickle does not keep the association alive.
    if (this.state === 'Sta6' && pdus.length > 0) this.timer?.refresh();
    for (const pdu of pdus) {
      this.queue.push(pdu);
      this.queuedBytes += pdu.length;
    }
    if (error) {
      // Behind the PDUs framed before it; nothing after it is read.
      this.unframeable = true;
      this.queue.push({ error });
      this.paused = true;
      this.socket.pause();
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

  private pump(): Promise<void> {
    this.running ??= this.drain().finally(() => (this.running = undefined));
    return this.running;
  }

  private async drain(): Promise<void> {
    while (this.queue.length > 0 && (this.state === 'Sta2' || this.state === 'Sta6')) {
      if (this.socket.destroyed) return;
      const next = this.queue.shift()!;
      try {
        if ('error' in next) throw next.error;
        this.queuedBytes -= next.length;
        await this.handle(next);
      } catch (err) {
        this.fail(err);
        return;
      }
      // Backpressure: the next PDU (and so reading, once the queue is full) waits until the
      // peer has taken our responses; the idle timer aborts if it never does.
      // Checked here, not only inside whenDrained: most PDUs leave nothing unsent, and they
      // should not pay a promise and a microtask turn each on the receive path.
      if (this.socket.writableNeedDrain) {
        this.awaitingPeer = true;
        await whenDrained(this.socket).finally(() => (this.awaitingPeer = false));
      }
      if (this.paused && this.queuedBytes < this.opts.limits.highWaterMark / 2) {
        this.paused = false;
        this.socket.resume();
      }
    }
  }

  private async handle(pdu: Pdu): Promise<void> {
    const { action } = transition(this.state, pduEvent(pdu.type), 'acceptor');
    switch (action) {
      case 'AE-6':
        return this.onAssociateRq(pdu.raw);
      case 'DT-2':
        return this.dimse!.onPData(pdu);
      case 'AR-2':
        return this.onRelease(); // then AR-4
      case 'AA-2': // Sta2
      case 'AA-3': // Sta6
        return this.onPeerAbort();
      default:
        // AA-1 (Sta2) or AA-8 (Sta6): a PDU out of place; fail() sends the A-ABORT.
        throw new UpperLayerError(
          this.state === 'Sta2'
            ? `PDU type 0x${pdu.type.toString(16)} before A-ASSOCIATE-RQ`
            : `unexpected PDU type 0x${pdu.type.toString(16)} on an established association`,
          AbortReason.UnexpectedPdu,
        );
    }
  }

  private onAssociateRq(raw: Buffer): void {
    const rq = parseAssociateRq(raw);
    this.state = 'Sta3'; // AE-6: the RQ is passed to negotiation and admission
    this.info.callingAeTitle = rq.callingAeTitle;
    this.info.calledAeTitle = rq.calledAeTitle;
    this.log = this.log.child({ calling: rq.callingAeTitle, called: rq.calledAeTitle });
    const decision = negotiateRequest(rq, this.info.remoteAddress, this.opts.policy, this.info);
    if (!decision.accept) {
      this.reject(decision.result, decision.source, decision.reason, decision.why);
      return;
    }
    const refusal = this.opts.admit(rq.callingAeTitle);
    if (refusal) {
      // PS3.8 9.3.4: transient, so the sender retries later.
      this.reject(Reject.Transient, Reject.SourceProviderPresentation, refusal.reason, refusal.why);
      return;
    }
    const accepted = new Map<number, { abstractSyntaxUid: string; transferSyntaxUid: string }>();
    const answers: AcceptedContext[] = decision.contexts.map((d) => {
      const pc = rq.contexts.find((c) => c.id === d.id)!;
      if (d.result === ContextResult.Accept && d.transferSyntaxUid) {
        accepted.set(d.id, {
          abstractSyntaxUid: pc.abstractSyntaxUid,
          transferSyntaxUid: d.transferSyntaxUid,
        });
      }
      return d;
    });
    this.dimse = new DimseService({
      info: this.info,
      contexts: accepted,
      handler: this.opts.handler,
      observer: this.opts.observer,
      log: this.log,
      send: (b) => this.send(b),
      commitment: this.opts.commitment,
      peerMaxPduLength: rq.maxPduLength,
      isOpen: () => this.state === 'Sta6',
    });
    this.state = transition(this.state, Event.AssociateAccept, 'acceptor').next; // AE-7
    // Our PDUs are single small responses, far below any peer's limit (PS3.8 D.1).
    this.send(
      encodeAssociateAc({
        echo: rq.echo,
        contexts: answers,
        maxPduLength: this.opts.limits.maxPduLength,
        implementationClassUid: this.opts.implementationClassUid,
        implementationVersionName: this.opts.implementationVersionName,
        roleSelections: answerRoleSelections(
          rq.roleSelections,
          new Set([...accepted.values()].map((c) => c.abstractSyntaxUid)),
        ),
      }),
    );
    this.arm(this.opts.limits.idleTimeoutMs, () => this.onIdle());
    const tlsPeer = this.info.tls ? peerCommonName(this.socket as TLSSocket) : undefined;
    this.log.info(
      {
        event: 'association.accepted',
        remote: `${this.info.remoteAddress}:${this.info.remotePort}`,
        tls: this.info.tls,
        ...(tlsPeer ? { tlsPeer } : {}),
        contexts: rq.contexts.length,
        accepted: accepted.size,
        peerMaxPdu: rq.maxPduLength,
      },
      'association accepted',
    );
    this.opts.observer?.accepted({ callingAeTitle: this.info.callingAeTitle });
  }

  private onIdle(): void {
    if (this.running && !this.awaitingPeer) {
      // We are the slow side (storage): not the peer's idleness.
      this.timer?.refresh();
      return;
    }
    this.log.warn(
      {
        event: 'association.timeout',
        idleMs: this.opts.limits.idleTimeoutMs,
        established: true,
        // Non-zero: the peer stopped reading our responses (we stopped reading its requests).
        unsentBytes: this.socket.writableLength,
      },
      'association idle for too long; aborting',
    );
    this.localAbort();
  }

  /**
   * Evt15, the A-ABORT request primitive (AA-1), for the gateway's own reasons (idle
   * timeout, shutdown). AA-1 names the service-user source; these aborts are the
   * provider's decision and have always been sent with source 2, reason 0.
   */
  private localAbort(): void {
    if (!lookup(this.state, Event.AbortRequest, 'acceptor')) {
      // Sta2: nothing is associated yet; close as ARTIM would (AA-2).
      this.socket.destroy();
      return;
    }
    this.sendAbort(AbortSource.ServiceProvider, AbortReason.NotSpecified);
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
    this.opts.observer?.rejected({ callingAeTitle: this.info.callingAeTitle, reason: why });
    // PS3.8 Evt8 -> AE-8: send A-ASSOCIATE-RJ, start ARTIM; the requester closes the transport.
    transition(this.state, Event.AssociateReject, 'acceptor');
    this.send(encodeAssociateRj(result, source, reason));
    this.enterClosing();
  }

  private onRelease(): void {
    // PS3.8 AR-2, then at once Evt14 -> AR-4: we have nothing outstanding to finish (one
    // operation at a time).
    this.state = transition(this.state, Event.ReleaseRqReceived, 'acceptor').next;
    transition(this.state, Event.ReleaseResponse, 'acceptor');
    this.send(encodeReleaseRp());
    this.log.info(
      { event: 'association.released', instances: this.dimse?.stored ?? 0 },
      'association released',
    );
    this.enterClosing();
  }

  private onPeerAbort(): void {
    if (this.state === 'Sta6') {
      this.log.warn(
        { event: 'association.aborted_by_peer', instances: this.dimse?.stored ?? 0 },
        'peer aborted the association',
      );
    }
    // PS3.8 AA-2 (Sta2) / AA-3 (Sta6): close the transport connection.
    this.state = transition(this.state, Event.AbortReceived, 'acceptor').next;
    this.socket.destroy();
  }

  /** A protocol violation or internal failure: A-ABORT (PS3.8 9.3.8) and close. */
  private fail(err: unknown): void {
    if (this.state === 'Sta13' || this.state === 'Sta1') return;
    const message = err instanceof Error ? err.message : String(err);
    this.log.warn(
      { event: 'association.protocol_error', err: message, established: this.established },
      `aborting association: ${message}`,
    );
    // PS3.8 Table 9-10: Sta2 + Evt19 -> AA-1 (source service-user, reason not significant);
    // Sta6 + Evt19 or an unexpected PDU -> AA-8 (source service-provider, with a reason).
    const { action } = transition(this.state, Event.InvalidPdu, 'acceptor');
    if (action === 'AA-1') this.sendAbort(AbortSource.ServiceUser, 0);
    else {
      const reason = err instanceof UpperLayerError ? err.abortReason : AbortReason.NotSpecified;
      this.sendAbort(AbortSource.ServiceProvider, reason);
    }
  }

  private sendAbort(source: number, reason: number): void {
    this.send(encodeAbort(source, reason));
    this.enterClosing();
  }

  /** Sta13: stop reading PDUs, half-close, and close for good when ARTIM expires. */
  private enterClosing(): void {
    this.state = 'Sta13';
    this.queue = [];
    this.socket.end();
    // Keep reading (and discarding) so the peer's FIN is seen and the socket closes promptly.
    if (this.paused) this.socket.resume();
    this.arm(Math.min(CLOSE_ARTIM_MS, this.opts.limits.idleTimeoutMs), () => this.socket.destroy());
  }

  private send(pdu: Buffer): void {
    if (this.state === 'Sta1' || this.state === 'Sta13' || this.socket.destroyed) return;
    this.socket.write(pdu);
    if (this.socket.writableLength > this.opts.limits.maxUnsentBytes) {
      // The peer sends requests and does not read the answers. An A-ABORT would only queue
      // behind them: close the transport connection (PS3.8 AA-4 on the peer's side).
      this.log.warn(
        {
          event: 'association.output_overflow',
          unsentBytes: this.socket.writableLength,
          maxUnsentBytes: this.opts.limits.maxUnsentBytes,
        },
        'peer does not read our responses; closing the connection',
      );
      this.socket.destroy();
      return;
    }
    if (this.state === 'Sta6') this.timer?.refresh();
  }

  private arm(ms: number, fn: () => void): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(fn, ms);
  }

  private async onClose(): Promise<void> {
    if (this.ended) return;
    this.ended = true;
    const wasEstablished = this.state === 'Sta6';
    // Evt17: AA-5 in Sta2, AA-4 in Sta6 (the transport closed under us), AR-5 in Sta13;
    // in Sta1 we closed it ourselves (AA-2, AA-3).
    this.state = lookup(this.state, Event.TransportClosed, 'acceptor')?.next ?? 'Sta1';
    this.queue = [];
    if (this.timer) clearTimeout(this.timer);
    // An instance being stored right now finishes (its response is not sent): wait for it,
    // so that 'closed' means nothing of this association is in flight any more. One that waits
    // for another association's copy of its UID stops waiting now.
    this.dimse?.peerGone();
    await this.running?.catch(() => {});
    await this.dimse?.dispose(wasEstablished ? 'connection closed' : 'association ended');
    this.log.info(
      { event: 'association.closed', instances: this.dimse?.stored ?? 0 },
      'association closed',
    );
    this.emit('closed');
  }
}
