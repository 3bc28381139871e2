/**
 * How the gateway calls a Q/R source: the requestor options of a callable peer (one place for
 * the backfill command and serve), and, inside serve, one SourcePool per source shared by every
 * user at once (the reconcile job, the stable-study check), so that together they never open
 * more than the peer's maxAssociations. The pool lives while someone uses it and is closed
 * (its associations released) when the last user is done: a PACS is not kept associated idle
 * between rounds.
 */
import type { Logger } from 'pino';
import type { Config } from '../config.js';
import { QR_CONTEXTS } from './find.js';
import type { RequestorOptions } from './options.js';
import { callablePeer, type CallablePeer } from './peer.js';
import { SourcePool } from './source-pool.js';

/** Requestor options for Q/R with `peer`; `timeoutMs` bounds each wait but a C-MOVE's. */
export function sourceOptions(
  cfg: Config,
  peer: CallablePeer,
  timeoutMs: number,
): RequestorOptions {
  return {
    host: peer.host,
    port: peer.port,
    tls: peer.tls,
    callingAeTitle: cfg.dicom.aeTitle,
    calledAeTitle: peer.aeTitle,
    contexts: QR_CONTEXTS,
    implementationClassUid: cfg.dicom.implementationClassUid,
    implementationVersionName: cfg.dicom.implementationVersionName,
    // A C-MOVE's responses may be minutes apart on a slow PACS; each wait is still bounded.
    timeouts: {
      connectMs: timeoutMs,
      associateMs: timeoutMs,
      responseMs: Math.max(timeoutMs, 600_000),
      releaseMs: timeoutMs,
    },
  };
}

export class SharedSource {
  private pool?: SourcePool;
  private users = 0;
  private closing: Promise<void> = Promise.resolve();

  constructor(
    readonly peer: CallablePeer,
    private readonly opts: RequestorOptions,
    private readonly log: Logger,
  ) {}

  /** Runs `fn` with the source's pool (opened for the first user, closed after the last). */
  async with<T>(fn: (pool: SourcePool) => Promise<T>): Promise<T> {
    this.users++;
    try {
      // A pool being closed releases its associations before a new one opens any.
      if (!this.pool) await this.closing;
      this.pool ??= new SourcePool(this.opts, this.peer.maxAssociations, this.log);
      return await fn(this.pool);
    } finally {
      if (--this.users === 0 && this.pool) {
        const p = this.pool;
        this.pool = undefined;
        this.closing = p.close().catch(() => {});
        await this.closing;
      }
    }
  }
}

/**
 * One SharedSource per AE title, made when first asked for, with that asker's timeout for
 * connecting and associating (each C-FIND still gets its caller's own timeout).
 */
export function sharedSources(
  cfg: Config,
  log: Logger,
): (ae: string, timeoutMs: number) => SharedSource {
  const made = new Map<string, SharedSource>();
  return (ae, timeoutMs) => {
    let s = made.get(ae);
    if (!s) {
      const peer = callablePeer(cfg, ae);
      s = new SharedSource(peer, sourceOptions(cfg, peer, timeoutMs), log);
      made.set(ae, s);
    }
    return s;
  };
}
