import { once } from 'node:events';
import { setTimeout as delay } from 'node:timers/promises';
import net from 'node:net';
import tls from 'node:tls';
import type { Logger } from 'pino';
import { GatewayError } from '../errors.js';
import { compilePeers, type PeerConfig } from './access.js';
import {
  Association,
  type AssociationLimits,
  type ScpObserver,
  type StoreHandler,
} from './association.js';
import { Reject, type NegotiationPolicy } from './negotiation.js';
import type { CommitmentHandler } from './commitment-handler.js';
import { loadTlsOptions, verifyOptionalPeer, type ScpTlsConfig } from './tls-options.js';

export interface ScpServerOptions {
  host: string;
  port: number;
  policy: NegotiationPolicy;
  /** `dicom.peers`: calling AE titles and the addresses each may come from (see access.ts). */
  peers?: readonly PeerConfig[];
  limits: AssociationLimits;
  /** Associations open at once, over all peers; more are rejected as "local limit exceeded". */
  maxAssociations: number;
  /**
   * Associations open at once per calling AE title; never all of maxAssociations, so that
   * one AE title cannot lock out the others.
   */
  maxAssociationsPerAe: number;
  /** Connections not yet associated (TLS handshakes included) at once; over it, closed at once. */
  maxPendingConnections: number;
  /** The same, per source address. */
  maxPendingConnectionsPerAddress: number;
  implementationClassUid: string;
  implementationVersionName: string;
  /** `dicom.tls`: a second listener for DICOM TLS (PS3.15 B.1), same host. */
  tls?: ScpTlsConfig;
  handler: StoreHandler;
  /** Storage Commitment requests (N-ACTION), when enabled (policy.storageCommitment). */
  commitment?: CommitmentHandler;
  log: Logger;
  /** Told of associations accepted/rejected and of refused instances (metrics). */
  observer?: ScpObserver;
}

/** After the grace period: how long aborted associations get to wind down their storage. */
const FORCE_CLOSE_MS = 5_000;

/** The DICOM listeners (plain TCP, and DICOM TLS when configured): one Association per connection. */
export class ScpServer {
  private plain: net.Server | undefined;
  private secure: tls.Server | undefined;
  private readonly tlsOptions: tls.TlsOptions | undefined;
  private readonly policy: NegotiationPolicy;
  private readonly live = new Set<Association>();
  private readonly sockets = new Set<net.Socket>();
  private readonly perAe = new Map<string, number>();
  /** Connections not associated yet, by "address:port", to their source address. */
  private readonly pending = new Map<string, string>();
  private readonly pendingPerAddress = new Map<string, number>();
  private associated = 0;
  private draining = false;
  private closing: Promise<void> | undefined;
  private nextId = 1;
  private boundPort = 0;
  private boundTlsPort: number | undefined;

  /** Throws GW_ERR_CONFIG for unusable peers addresses or TLS files. */
  constructor(private readonly opts: ScpServerOptions) {
    const peers = compilePeers(opts.peers ?? []);
    this.policy = peers.size > 0 ? { ...opts.policy, peers } : opts.policy;
    this.tlsOptions = opts.tls ? loadTlsOptions(opts.tls, opts.limits.artimMs) : undefined;
  }

  /** Established associations right now. */
  get activeAssociations(): number {
    return this.associated;
  }

  get port(): number {
    return this.boundPort;
  }

  /** The bound DICOM TLS port, when `tls` is configured and listening. */
  get tlsPort(): number | undefined {
    return this.boundTlsPort;
  }

  /** Starts listening; resolves with the bound plain port (useful with port 0). */
  async listen(): Promise<number> {
    const plain = net.createServer();
    this.track(plain, (socket) => this.accept(socket));
    this.plain = plain;
    this.boundPort = await this.bind(plain, this.opts.port);
    if (this.opts.tls && this.tlsOptions) {
      const secure = tls.createServer(this.tlsOptions, (socket) => this.acceptTls(socket));
      secure.on('tlsClientError', (err, socket) => {
        this.opts.log.warn(
          { event: 'association.tls_refused', remote: socket.remoteAddress, err: err.message },
          `TLS handshake refused: ${err.message}`,
        );
      });
      this.track(secure);
      this.secure = secure;
      try {
        this.boundTlsPort = await this.bind(secure, this.opts.tls.port);
      } catch (err) {
        plain.close();
        throw err;
      }
    }
    return this.boundPort;
  }

  private bind(server: net.Server, port: number): Promise<number> {
    return new Promise((resolve, reject) => {
      const onError = (err: NodeJS.ErrnoException): void => {
        // A taken or privileged port is the operator's to fix: say which, without a stack.
        const why =
          err.code === 'EADDRINUSE'
            ? 'the address is in use (another DICOM server or gateway on this port?)'
            : err.code === 'EACCES'
              ? 'permission denied (ports below 1024 need privileges)'
              : err.message;
        reject(
          new GatewayError('GW_ERR_CONFIG', `cannot listen on ${this.opts.host}:${port}: ${why}`, {
            cause: err,
          }),
        );
      };
      server.once('error', onError);
      server.listen({ host: this.opts.host, port }, () => {
        server.off('error', onError);
        server.on('error', (err) =>
          this.opts.log.error({ event: 'scp.error', err: err.message }, 'listener error'),
        );
        const addr = server.address();
        resolve(typeof addr === 'object' && addr ? addr.port : port);
      });
    });
  }

  /**
   * Counts raw connections (TLS ones before their handshake too) and caps those that have not
   * associated yet, overall and per source address, apart from the associated ones: idle
   * connections cannot take the slots of peers that associate (DCMTK closes them the same way).
   */
  private track(server: net.Server, onAccepted?: (socket: net.Socket) => void): void {
    server.on('connection', (socket: net.Socket) => {
      const address = socket.remoteAddress ?? '';
      const why = this.refusal(address);
      if (why) {
        this.opts.log.warn(
          { event: 'connection.refused', remote: address, why },
          'connection closed at once',
        );
        socket.destroy();
        return;
      }
      const key = connectionKey(socket);
      this.pending.set(key, address);
      this.pendingPerAddress.set(address, (this.pendingPerAddress.get(address) ?? 0) + 1);
      this.sockets.add(socket);
      socket.once('close', () => {
        this.sockets.delete(socket);
        this.associatedOrGone(key);
      });
      onAccepted?.(socket);
    });
  }

  private refusal(address: string): string | undefined {
    if (this.draining) return 'shutting down';
    const max = this.opts.maxPendingConnections;
    if (this.pending.size >= max) return `${max} connections not associated yet`;
    const maxHere = this.opts.maxPendingConnectionsPerAddress;
    if ((this.pendingPerAddress.get(address) ?? 0) >= maxHere) {
      return `${maxHere} connections not associated yet from ${address}`;
    }
    return undefined;
  }

  /** The connection `key` no longer counts as pending (idempotent). */
  private associatedOrGone(key: string): void {
    const address = this.pending.get(key);
    if (address === undefined) return;
    this.pending.delete(key);
    const n = (this.pendingPerAddress.get(address) ?? 1) - 1;
    if (n <= 0) this.pendingPerAddress.delete(address);
    else this.pendingPerAddress.set(address, n);
  }

  private acceptTls(socket: tls.TLSSocket): void {
    const refused = this.tlsOptions?.rejectUnauthorized ? undefined : verifyOptionalPeer(socket);
    if (refused) {
      this.opts.log.warn(
        { event: 'association.tls_refused', remote: socket.remoteAddress, err: refused },
        refused,
      );
      socket.destroy();
      return;
    }
    this.accept(socket);
  }

  private accept(socket: net.Socket): void {
    if (socket.destroyed) return;
    if (this.draining) {
      // A TLS handshake that completed after close() began: nothing was sent yet.
      socket.destroy();
      return;
    }
    const id = String(this.nextId++);
    let ae: string | undefined;
    const assoc = new Association(socket, {
      id,
      log: this.opts.log.child({ assoc: id }),
      policy: this.policy,
      limits: this.opts.limits,
      handler: this.opts.handler,
      commitment: this.opts.commitment,
      observer: this.opts.observer,
      implementationClassUid: this.opts.implementationClassUid,
      implementationVersionName: this.opts.implementationVersionName,
      admit: (callingAe) => {
        if (this.draining) {
          return { reason: Reject.ReasonTemporaryCongestion, why: 'shutting down' };
        }
        const n = this.perAe.get(callingAe) ?? 0;
        // One slot is always left to the other AE titles (when there is more than one).
        const perAe = Math.max(
          1,
          Math.min(this.opts.maxAssociationsPerAe, this.opts.maxAssociations - 1),
        );
        if (this.associated >= this.opts.maxAssociations) {
          return {
            reason: Reject.ReasonLocalLimitExceeded,
            why: `${this.associated} associations open (dicom.maxAssociations)`,
          };
        }
        if (n >= perAe) {
          return {
            reason: Reject.ReasonLocalLimitExceeded,
            why: `${n} associations open from ${callingAe} (dicom.maxAssociationsPerAe)`,
          };
        }
        this.associatedOrGone(connectionKey(socket));
        ae = callingAe;
        this.associated++;
        this.perAe.set(callingAe, n + 1);
        return undefined;
      },
    });
    this.live.add(assoc);
    assoc.once('closed', () => {
      this.live.delete(assoc);
      if (ae !== undefined) {
        this.associated--;
        const n = (this.perAe.get(ae) ?? 1) - 1;
        if (n <= 0) this.perAe.delete(ae);
        else this.perAe.set(ae, n);
      }
    });
  }

  /**
   * Stops accepting at once (new connections are refused by the kernel), closes connections
   * that have not associated yet, waits up to `graceMs` for open associations to end, then
   * aborts the rest: their in-flight instances were not acknowledged, so the senders will
   * resend them. Resolves once no association has storage work in flight.
   */
  close(graceMs = 10_000): Promise<void> {
    this.closing ??= this.drain(graceMs);
    return this.closing;
  }

  private async drain(graceMs: number): Promise<void> {
    this.draining = true;
    const servers = [this.plain, this.secure].filter((s): s is net.Server => s !== undefined);
    const stopped = Promise.all(servers.map((s) => once(s, 'close').catch(() => undefined)));
    for (const s of servers) s.close();
    let idle = 0;
    for (const a of this.live) if (a.closeIfNotAssociated()) idle++;
    this.opts.log.info(
      { event: 'scp.draining', open: this.live.size - idle, closedIdle: idle, graceMs },
      'no longer accepting associations; waiting for open ones to finish',
    );
    if (!(await this.allClosed(graceMs))) {
      this.opts.log.warn(
        { event: 'scp.grace_expired', open: this.live.size, graceMs },
        'associations still open after the grace period; aborting them',
      );
      for (const a of this.live) a.abortNow('shutting down: grace period over');
      if (!(await this.allClosed(FORCE_CLOSE_MS))) {
        this.opts.log.error(
          { event: 'scp.close_timeout', open: this.live.size },
          'associations did not wind down after A-ABORT; closing their sockets',
        );
      }
    }
    for (const s of this.sockets) s.destroy();
    await withTimeout(stopped, FORCE_CLOSE_MS);
  }

  /** Resolves true once every association has emitted 'closed', false at the deadline. */
  private async allClosed(ms: number): Promise<boolean> {
    // No association joins `live` while draining: new connections are refused.
    const signal = AbortSignal.timeout(ms);
    try {
      await Promise.all([...this.live].map((a) => once(a, 'closed', { signal })));
      return true;
    } catch {
      return false; // the deadline (once() removed its listeners)
    }
  }
}

/** One connection, the same for a TLS socket and the TCP socket under it. */
function connectionKey(socket: net.Socket): string {
  return `${socket.remoteAddress ?? ''}:${socket.remotePort ?? 0}`;
}

/** Waits for `p`, at most `ms`. */
async function withTimeout(p: Promise<unknown>, ms: number): Promise<void> {
  const deadline = new AbortController();
  try {
    await Promise.race([p, delay(ms, undefined, { signal: deadline.signal })]);
  } finally {
    deadline.abort(); // clears the timer when `p` won
  }
}
