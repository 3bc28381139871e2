/**
 * Associations to one Q/R source, at most its `maxAssociations` at once (hospital PACSs are
 * often strict). Opened lazily; when the source refuses one more (an A-ASSOCIATE-RJ, or a
 * refused connection while others are open), the pool backs off: its limit drops to what it
 * has, and the work goes on with those. Only the first association failing is an error.
 */
import type { Logger } from 'pino';
import { GatewayError, isGatewayError } from '../errors.js';
import { setTimeout as delay } from 'node:timers/promises';
import { RequestorAssociation } from './association.js';
import { AssociationRejectedError } from './errors.js';
import type { RequestorOptions } from './options.js';

/** Retries of a transient refusal of the first association. */
const TRANSIENT_RETRIES = 3;

export class SourcePool {
  private readonly idle: RequestorAssociation[] = [];
  private readonly waiting: Array<(a: RequestorAssociation | Error) => void> = [];
  private open = 0;
  private opening = 0;
  private closed = false;
  /** The limit now: maxAssociations, lowered when the source refused more. */
  limit: number;

  constructor(
    private readonly opts: RequestorOptions,
    maxAssociations: number,
    private readonly log: Logger,
  ) {
    this.limit = Math.max(1, maxAssociations);
  }

  /** Runs `fn` on an association of the pool; an association that failed under it is dropped. */
  async use<T>(fn: (a: RequestorAssociation) => Promise<T>): Promise<T> {
    const a = await this.acquire();
    let ok = false;
    try {
      const out = await fn(a);
      ok = true;
      return out;
    } finally {
      if (ok) this.giveBack(a);
      else this.drop(a);
    }
  }

  private async acquire(): Promise<RequestorAssociation> {
    if (this.closed) throw new GatewayError('GW_ERR_INTERNAL', 'source pool closed');
    const idle = this.idle.pop();
    if (idle) return idle;
    if (this.open + this.opening < this.limit) {
      this.opening++;
      try {
        const a = await this.openOne();
        this.open++;
        this.log.debug({ event: 'backfill.association', open: this.open }, 'association opened');
        return a;
      } catch (err) {
        if (this.open === 0 && this.opening === 1) {
          // Nothing open and this was the only try: the source is down or refuses. Everyone
          // waiting for an association would wait forever: they fail with the same error.
          const e = describe(err, this.opts);
          for (const w of this.waiting.splice(0)) w(e);
          throw e;
        }
        // PS3.8 9.3.4: a transient A-ASSOCIATE-RJ (or a refused connection) while others are
        // open: the source's own limit is lower than ours; go on with what we have.
        this.limit = Math.max(1, this.open);
        this.log.warn(
          { event: 'backfill.backoff', limit: this.limit, err: (err as Error).message },
          `the source refused one more association; going on with ${this.limit}`,
        );
      } finally {
        this.opening--;
      }
    }
    return new Promise<RequestorAssociation>((resolve, reject) => {
      this.waiting.push((a) => (a instanceof Error ? reject(a) : resolve(a)));
    });
  }

  /**
   * Opens one association. With none open yet, a transient A-ASSOCIATE-RJ (PS3.8 9.3.4, result 2:
   * the source is busy, e.g. dcmqrscp before it has reaped an ended association) is tried again
   * after 0.5, 1 and 2 s; a permanent one, or any other failure, is final.
   */
  private async openOne(): Promise<RequestorAssociation> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await RequestorAssociation.open(this.opts);
      } catch (err) {
        const transient =
          err instanceof AssociationRejectedError && err.rejection.result === 2 && this.open === 0;
        if (!transient || attempt >= TRANSIENT_RETRIES) throw err;
        await delay(500 * 2 ** attempt);
      }
    }
  }

  private giveBack(a: RequestorAssociation): void {
    const next = this.waiting.shift();
    if (next) next(a);
    else this.idle.push(a);
  }

  private drop(a: RequestorAssociation): void {
    a.abort();
    this.open--;
    // A waiter gets a fresh association (or the error that opening one ends with).
    const next = this.waiting.shift();
    if (next) this.acquire().then(next, (e: Error) => next(e));
  }

  /** Releases the idle associations (aborts any that will not release); fails the waiters. */
  async close(): Promise<void> {
    this.closed = true;
    for (const w of this.waiting.splice(0)) w(new GatewayError('GW_ERR_INTERNAL', 'closed'));
    await Promise.all(this.idle.splice(0).map((a) => a.release().catch(() => a.abort())));
  }
}

/** The first association failing: a message that names the source and what happened. */
function describe(err: unknown, o: RequestorOptions): GatewayError {
  const where = `source ${o.calledAeTitle} at ${o.host}:${o.port}`;
  if (isGatewayError(err, 'GW_ERR_ASSOCIATION_REJECTED')) {
    return new GatewayError(
      'GW_ERR_ASSOCIATION_REJECTED',
      `${where} refused the association: ${err.message}`,
      { cause: err },
    );
  }
  if (isGatewayError(err, 'GW_ERR_PEER_UNREACHABLE') || isGatewayError(err, 'GW_ERR_TIMEOUT')) {
    return new GatewayError(
      'GW_ERR_PEER_UNREACHABLE',
      `${where} is not reachable: ${err.message}`,
      { cause: err },
    );
  }
  const message = err instanceof Error ? err.message : String(err);
  return new GatewayError('GW_ERR_PEER_UNREACHABLE', `${where}: ${message}`, { cause: err });
}
