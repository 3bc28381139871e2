/**
 * One pg.Pool with the index's rules around it: timeouts on every wait, failures mapped to
 * GatewayErrors, one immediate retry after a connection the server closed while it sat idle.
 * PgIndex, its reports and its deliveries each run their statements through one of these.
 */
import pg from 'pg';
import type { Logger } from 'pino';
import { GatewayError } from '../errors.js';
import { isNetworkErrorCode } from '../net/network-errors.js';

export interface PgExecOptions {
  connectionString: string;
  poolSize: number;
  /** Server-side limit per statement. */
  statementTimeoutMs: number;
  /** Limit to get a connection (from the pool or a new one). */
  connectionTimeoutMs: number;
  applicationName: string;
  logger?: Logger;
}

export class PgExec {
  readonly pool: pg.Pool;
  private readonly log: Logger | undefined;

  constructor(opts: PgExecOptions) {
    this.log = opts.logger;
    this.pool = new pg.Pool({
      connectionString: opts.connectionString,
      max: opts.poolSize,
      connectionTimeoutMillis: opts.connectionTimeoutMs,
      idleTimeoutMillis: 30_000,
      statement_timeout: opts.statementTimeoutMs,
      // The server's statement_timeout cannot fire when the server or the network hangs.
      query_timeout: opts.statementTimeoutMs + 2_000,
      keepAlive: true,
      // A client that hangs mid-transaction (migrate, a claim) must not hold its locks for ever.
      idle_in_transaction_session_timeout: 60_000,
      application_name: opts.applicationName,
    });
    // An idle client whose connection dies (server restart) emits 'error' here; unhandled, it
    // would crash the process. The pool has already dropped that client and will open new ones.
    this.pool.on('error', (err) => {
      this.log?.warn({ err: describe(err) }, 'idle index connection lost; it will be replaced');
    });
  }

  /** `prepare` names a server-side prepared statement: the hot path is parsed and planned once per connection. */
  query<R extends pg.QueryResultRow>(
    text: string,
    values: unknown[],
    op: string,
    opts: { prepare?: string; timeoutMs?: number } = {},
  ): Promise<pg.QueryResult<R>> {
    const config: pg.QueryConfig & { query_timeout?: number } = { text, values };
    if (opts.prepare) config.name = opts.prepare;
    if (opts.timeoutMs) config.query_timeout = opts.timeoutMs;
    return this.run(() => this.pool.query<R>(config), op);
  }

  /**
   * Runs `fn` in one transaction on one connection: committed when it resolves, rolled back
   * when it throws. A connection that failed is not given back to the pool.
   */
  transaction<T>(fn: (client: pg.PoolClient) => Promise<T>, op: string): Promise<T> {
    return this.run(async () => {
      const client = await this.pool.connect();
      // A checked-out client has no error listener: without one, a dying connection crashes the process.
      let broken: Error | undefined;
      const onError = (err: Error): void => {
        broken = err;
      };
      client.on('error', onError);
      try {
        await client.query('BEGIN');
        const result = await fn(client);
        await client.query('COMMIT');
        return result;
      } catch (err) {
        broken ??= await client.query('ROLLBACK').then(
          () => undefined,
          (e: Error) => e,
        );
        throw err;
      } finally {
        client.removeListener('error', onError);
        client.release(broken);
      }
    }, op);
  }

  /**
   * Maps failures to GatewayErrors. A connection that died while idle in the pool (the server
   * restarted) fails its next query: that one is retried at once on a fresh connection (the pool
   * drops a client released with an error). Safe because every operation of the index is
   * idempotent, or (a claim) harmless to repeat.
   */
  async run<T>(fn: () => Promise<T>, op: string): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      if (isRetryable(err)) {
        this.log?.debug({ err: describe(err), op }, 'retrying once');
        try {
          return await fn();
        } catch (again) {
          throw toGatewayError(again, op);
        }
      }
      throw toGatewayError(err, op);
    }
  }

  /** Waits for checked-out clients, each bounded by query_timeout. */
  end(): Promise<void> {
    return this.pool.end();
  }
}

/**
 * Worth one immediate retry: a pooled connection the server or network closed since its last use
 * (57P01: the backend was terminated), or a deadlock / serialization victim.
 */
function isRetryable(err: unknown): boolean {
  const { code, message } = errorFields(err);
  return (
    /^(ECONNRESET|EPIPE|57P01|40P01|40001)$/.test(code ?? '') ||
    /Connection terminated unexpectedly/.test(message)
  );
}

/**
 * Whether the database is unreachable or overloaded (the sender should retry: A700) rather than
 * refusing this data: connection errors (08), operator intervention (57P: shutdown, restart,
 * cancel/timeout), insufficient resources (53: disk full, too many connections), auth and a
 * missing database (28, 3D: the operator must fix them; the data is fine), lock and serialization
 * failures (55P03, 40001, 40P01), and client-side timeouts.
 */
export function isIndexUnavailable(err: unknown): boolean {
  const { code, message } = errorFields(err);
  if (code && (isNetworkErrorCode(code) || /^(08|57|53|28|3D)/.test(code))) return true;
  if (code === '55P03' || code === '40001' || code === '40P01') return true;
  return /Connection terminated|timeout|connection error|not queryable|pool after calling end/i.test(
    message,
  );
}

function toGatewayError(err: unknown, op: string): GatewayError {
  if (err instanceof GatewayError) return err;
  const { code, message } = errorFields(err);
  // 42P01 undefined_table: a database the migrations never ran on.
  if (code === '42P01') {
    return new GatewayError(
      'GW_ERR_CONFIG',
      `the index database has no gateway schema (${message}): run \`dicom-gateway migrate\``,
      { cause: err },
    );
  }
  return isIndexUnavailable(err)
    ? new GatewayError('GW_ERR_INDEX_UNAVAILABLE', `index unavailable (${op}): ${message}`, {
        cause: err,
      })
    : new GatewayError('GW_ERR_INTERNAL', `index ${op} failed: ${message}`, { cause: err });
}

function errorFields(err: unknown): { code: string | undefined; message: string } {
  const e = err as { code?: unknown; message?: unknown } | undefined;
  return {
    code: typeof e?.code === 'string' ? e.code : undefined,
    message: typeof e?.message === 'string' ? e.message : String(err),
  };
}

export function describe(err: unknown): { code?: string; message: string } {
  const { code, message } = errorFields(err);
  return code ? { code, message } : { message };
}

/**
 * Runs `sql` (a DELETE of at most $2 rows matching $1) until a statement deletes fewer than
 * `batch`: retention in short transactions that never hold many row locks. Returns the total.
 */
export async function deleteInBatches(
  db: PgExec,
  sql: string,
  before: Date,
  batch: number,
  op: string,
): Promise<number> {
  let total = 0;
  for (;;) {
    const { rowCount } = await db.query(sql, [before, batch], op);
    total += rowCount ?? 0;
    if ((rowCount ?? 0) < batch) return total;
  }
}
