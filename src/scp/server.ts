import net from 'node:net';
import tls from 'node:tls';
import type { Logger } from 'pino';
import { Association, type AssociationLimits, type StoreHandler } from './association.js';
import { configureLibrary } from './dimse-lib.js';
import type { NegotiationPolicy } from './negotiation.js';

export interface ScpServerOptions {
  host: string;
  port: number;
  policy: NegotiationPolicy;
  limits: AssociationLimits;
  /** Associations open at once, over all peers; more are rejected as "local limit exceeded". */
  maxAssociations: number;
  /** Associations open at once per calling AE title. */
  maxAssociationsPerAe: number;
  implementationClassUid: string;
  implementationVersionName: string;
  /** Node TLS server options (key, cert, ca, requestCert...) for DICOM TLS (PS3.15 B.1). */
  tls?: tls.TlsOptions;
  handler: StoreHandler;
  log: Logger;
}

/** The DICOM listener: one Association per accepted connection. */
export class ScpServer {
  private server: net.Server | undefined;
  private readonly live = new Set<Association>();
  private readonly perAe = new Map<string, number>();
  private nextId = 1;

  constructor(private readonly opts: ScpServerOptions) {
    configureLibrary({
      implementationClassUid: opts.implementationClassUid,
      implementationVersionName: opts.implementationVersionName,
      maxPduLength: opts.limits.maxPduLength,
    });
  }

  get activeAssociations(): number {
    return this.live.size;
  }

  /** Starts listening; resolves with the bound port (useful with port 0). */
  listen(): Promise<number> {
    const onSocket = (socket: net.Socket): void => this.accept(socket);
    const server = this.opts.tls
      ? tls.createServer(
          { ...this.opts.tls, minVersion: this.opts.tls.minVersion ?? 'TLSv1.2' },
          onSocket,
        )
      : net.createServer(onSocket);
    if (this.opts.tls) {
      server.on('tlsClientError', (err, socket) => {
        this.opts.log.warn(
          { event: 'association.tls_refused', remote: socket.remoteAddress, err: err.message },
          `TLS handshake refused: ${err.message}`,
        );
      });
    }
    this.server = server;
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host: this.opts.host, port: this.opts.port }, () => {
        server.off('error', reject);
        server.on('error', (err) =>
          this.opts.log.error({ event: 'scp.error', err: err.message }, 'listener error'),
        );
        const addr = server.address();
        resolve(typeof addr === 'object' && addr ? addr.port : this.opts.port);
      });
    });
  }

  private accept(socket: net.Socket): void {
    const id = String(this.nextId++);
    const log = this.opts.log.child({ assoc: id });
    let ae: string | undefined;
    const assoc = new Association(socket, {
      id,
      log,
      policy: this.opts.policy,
      limits: this.opts.limits,
      handler: this.opts.handler,
      admit: (callingAe) => {
        const n = this.perAe.get(callingAe) ?? 0;
        if (this.live.size > this.opts.maxAssociations || n >= this.opts.maxAssociationsPerAe)
          return false;
        ae = callingAe;
        this.perAe.set(callingAe, n + 1);
        return true;
      },
    });
    this.live.add(assoc);
    assoc.on('closed', () => {
      this.live.delete(assoc);
      if (ae !== undefined) {
        const n = (this.perAe.get(ae) ?? 1) - 1;
        if (n <= 0) this.perAe.delete(ae);
        else this.perAe.set(ae, n);
      }
    });
  }

  /**
   * Stops accepting, waits up to `graceMs` for open associations to end, then
   * destroys the rest (their in-flight instances were not acknowledged, so the
   * senders will resend them).
   */
  async close(graceMs = 10_000): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    const deadline = Date.now() + graceMs;
    while (this.live.size > 0 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
    }
    for (const a of this.live) a.socket.destroy();
    await closed;
  }
}
