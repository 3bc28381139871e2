/**
 * The one way YdbIndex talks to YDB: @ydbjs/query's client on a @ydbjs/core Driver, with the
 * index's rules around it.
 * - Every write is one serializable read-write transaction (`tx`), retried whole by the SDK's
 *   policy (@ydbjs/retry: ABORTED, lock invalidation, OVERLOADED, UNAVAILABLE, BAD_SESSION,
 *   SESSION_BUSY at once or with backoff; the "conditionally" retryable ones too, since every
 *   index write is idempotent). So two writers that touch the same row never both commit: the
 *   second is aborted and runs again on what the first wrote.
 * - Reads are one query in a snapshot read-only transaction (`read`), also retried.
 * - Every call is bounded by `timeoutMs` (the SDK's own retry budget is unbounded); running
 *   out, or YDB unreachable or overloaded, is GW_ERR_INDEX_UNAVAILABLE; anything else
 *   (a scheme error, a bad query) GW_ERR_INTERNAL.
 * - The Driver's readiness is a one-shot promise: a driver whose first discovery failed (YDB
 *   down at start) never becomes ready, so such a driver is replaced by a new one.
 */
import type { Driver } from '@ydbjs/core';
import { query, type QueryClient } from '@ydbjs/query';
import { defaultRetryConfig, retry } from '@ydbjs/retry';
import type { Logger } from 'pino';
import { GatewayError, isGatewayError } from '../errors.js';
import type { Params, Row } from './ydb-values.js';

/** YDB status codes (ydb_status_codes.proto) the mapping below needs. */
export const YDB_STATUS = {
  SUCCESS: 400000,
  BAD_REQUEST: 400010,
  ABORTED: 400040,
  UNAVAILABLE: 400050,
  OVERLOADED: 400060,
  SCHEME_ERROR: 400070,
  GENERIC_ERROR: 400080,
  TIMEOUT: 400090,
  BAD_SESSION: 400100,
  PRECONDITION_FAILED: 400120,
  ALREADY_EXISTS: 400130,
  SESSION_EXPIRED: 400150,
  CANCELLED: 400160,
  UNDETERMINED: 400170,
  SESSION_BUSY: 400190,
  NOT_FOUND: 400140,
} as const;

/** Statuses after which the whole (idempotent) transaction runs again. */
const TX_RETRY_STATUSES = new Set<number>([
  YDB_STATUS.ABORTED,
  YDB_STATUS.NOT_FOUND,
  YDB_STATUS.UNAVAILABLE,
  YDB_STATUS.OVERLOADED,
  YDB_STATUS.BAD_SESSION,
  YDB_STATUS.SESSION_BUSY,
  YDB_STATUS.SESSION_EXPIRED,
  YDB_STATUS.UNDETERMINED,
]);

/** Whether a failed transaction is worth running again (its status, unwrapped). */
export function txRetryable(err: unknown): boolean {
  const s = ydbErrorStatus(err);
  if (s.abort) return false;
  if (s.ydb !== undefined) return TX_RETRY_STATUSES.has(s.ydb);
  // gRPC UNAVAILABLE, RESOURCE_EXHAUSTED, ABORTED
  return s.grpc !== undefined && [14, 8, 10].includes(s.grpc);
}

/** Statuses that mean "the database cannot answer now": the caller retries later. */
const UNAVAILABLE_STATUSES = new Set<number>([
  YDB_STATUS.UNAVAILABLE,
  YDB_STATUS.OVERLOADED,
  YDB_STATUS.TIMEOUT,
  YDB_STATUS.BAD_SESSION,
  YDB_STATUS.SESSION_EXPIRED,
  YDB_STATUS.SESSION_BUSY,
  YDB_STATUS.UNDETERMINED,
  YDB_STATUS.CANCELLED,
  YDB_STATUS.ABORTED,
]);
/** gRPC codes of a transport that failed: UNAVAILABLE, DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED, CANCELLED. */
const UNAVAILABLE_GRPC = new Set<number>([14, 4, 8, 1]);

/** Runs one statement (or several, `;`-separated) in the current transaction; its result sets. */
export type Run = (text: string, params?: Params) => Promise<Row[][]>;

export interface YdbExecOptions {
  /** Makes a driver (again, after one that never became ready). */
  driver: () => Driver;
  timeoutMs: number;
  logger?: Logger | undefined;
}

export class YdbExec {
  private driver: Driver;
  private sql: QueryClient;
  private closed = false;
  private readonly inflight = new Set<Promise<unknown>>();
  readonly timeoutMs: number;
  private readonly log: Logger | undefined;

  constructor(private readonly opts: YdbExecOptions) {
    this.driver = this.newDriver();
    this.sql = query(this.driver);
    this.timeoutMs = opts.timeoutMs;
    this.log = opts.logger;
  }

  /** One serializable read-write transaction; `fn` may run more than once (retries). */
  tx<T>(op: string, fn: (run: Run) => Promise<T>): Promise<T> {
    return this.bounded(op, async (signal) => {
      await this.ready(signal);
      // The SDK retries a failed statement on the same transaction, which YDB has already
      // ended after ABORTED (locks invalidated): that retry fails with NOT_FOUND ("Transaction
      // not found") and the SDK gives up. YDB's rule is to retry the whole transaction, which
      // this outer loop does, with @ydbjs/retry's backoff.
      return retry(
        { ...defaultRetryConfig, signal, idempotent: true, retry: (e) => txRetryable(e) },
        (attemptSignal) =>
          this.sql.begin(
            { isolation: 'serializableReadWrite', idempotent: true, signal: attemptSignal },
            (tx) =>
              fn(async (text, params = {}) => (await withParams(tx(text), params)) as Row[][]),
          ),
      );
    });
  }

  /** One query in a snapshot read-only transaction. */
  read(op: string, text: string, params: Params = {}): Promise<Row[][]> {
    return this.bounded(op, async (signal) => {
      await this.ready(signal);
      const q = withParams(this.sql(text), params)
        .isolation('snapshotReadOnly')
        .idempotent(true)
        .signal(signal);
      return (await q) as Row[][];
    });
  }

  /** A schema statement (no transaction: YDB runs DDL outside them). */
  ddl(op: string, text: string): Promise<void> {
    return this.bounded(op, async (signal) => {
      await this.ready(signal);
      await this.sql(text).idempotent(true).signal(signal);
    });
  }

  /** Waits for the calls in flight (each bounded by timeoutMs), then closes the driver. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.allSettled([...this.inflight]);
    this.driver.close();
  }

  /**
   * A driver whose readiness failure is always handled: the Driver starts connecting at once,
   * and a rejection nobody awaited yet (YDB down at start) would end the process.
   */
  private newDriver(): Driver {
    const driver = this.opts.driver();
    driver.ready().catch(() => undefined);
    return driver;
  }

  private async ready(signal: AbortSignal): Promise<void> {
    const driver = this.driver;
    try {
      await driver.ready(signal);
    } catch (err) {
      if (!signal.aborted && driver === this.driver && !this.closed) {
        this.log?.warn({ err: describe(err) }, 'YDB driver never became ready; making a new one');
        this.driver = this.newDriver();
        this.sql = query(this.driver);
        driver.close();
      }
      throw err;
    }
  }

  private async bounded<T>(op: string, fn: (signal: AbortSignal) => Promise<T>): Promise<T> {
    if (this.closed) throw new GatewayError('GW_ERR_INTERNAL', `index ${op}: closed`);
    const ac = new AbortController();
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        ac.abort(new Error('deadline'));
        reject(
          new GatewayError(
            'GW_ERR_INDEX_UNAVAILABLE',
            `index ${op}: YDB did not answer within ${this.timeoutMs} ms`,
          ),
        );
      }, this.timeoutMs);
    });
    const call = Promise.race([fn(ac.signal), deadline]);
    this.inflight.add(call);
    try {
      return await call;
    } catch (err) {
      throw toGatewayError(err, op);
    } finally {
      this.inflight.delete(call);
      clearTimeout(timer);
      ac.abort(new Error('done'));
    }
  }
}

function withParams<Q extends { parameter(name: string, v: Params[string]): Q }>(
  q: Q,
  params: Params,
): Q {
  for (const [name, value] of Object.entries(params)) q = q.parameter(name, value);
  return q;
}

interface ErrorLike {
  name?: unknown;
  message?: unknown;
  code?: unknown;
  cause?: unknown;
  issues?: unknown;
}

/** The YDB status or gRPC code behind an error the SDK threw (unwrapping its wrappers). */
export function ydbErrorStatus(err: unknown): { ydb?: number; grpc?: number; abort?: boolean } {
  for (let e = err as ErrorLike | undefined, depth = 0; e && depth < 5; depth++) {
    if (e.name === 'AbortError' || e.name === 'TimeoutError') return { abort: true };
    if (e.name === 'ClientError' && typeof e.code === 'number') return { grpc: e.code };
    if (typeof e.code === 'number' && Array.isArray(e.issues)) return { ydb: e.code };
    e = e.cause as ErrorLike | undefined;
  }
  return {};
}

export function toGatewayError(err: unknown, op: string): GatewayError {
  // Our own error thrown inside a transaction body comes back wrapped by the SDK.
  for (let e = err as ErrorLike | undefined, depth = 0; e && depth < 5; depth++) {
    if (isGatewayError(e)) return e;
    e = e.cause as ErrorLike | undefined;
  }
  const s = ydbErrorStatus(err);
  const unavailable =
    s.abort === true ||
    (s.ydb !== undefined && UNAVAILABLE_STATUSES.has(s.ydb)) ||
    (s.grpc !== undefined && UNAVAILABLE_GRPC.has(s.grpc)) ||
    /connect|ECONNREFUSED|ETIMEDOUT|No connection established|ready/i.test(describe(err));
  return new GatewayError(
    unavailable ? 'GW_ERR_INDEX_UNAVAILABLE' : 'GW_ERR_INTERNAL',
    `index ${op}: ${describe(err)}`,
    { cause: err },
  );
}

export function describe(err: unknown): string {
  const parts: string[] = [];
  for (let e = err as ErrorLike | undefined, depth = 0; e && depth < 4; depth++) {
    if (typeof e.message === 'string' && e.message) parts.push(e.message);
    e = e.cause as ErrorLike | undefined;
  }
  return parts.join(': ') || String(err);
}
