/**
 * `dicom-gateway verify`: re-reads each indexed object from the store, recomputes its sha256
 * and size and compares them with the index row (the fixity check of a digital archive: bit
 * rot, a truncated copy, an object deleted behind the gateway's back).
 *
 * stdout: one line per problem, then the summary (or one JSON document with --json).
 * stderr: progress. Exit 0 when every object checked is intact, 3 when any is missing or
 * differs, 1 when none differ but some could not be read (store unreachable).
 */
import type { Logger } from 'pino';
import pg from 'pg';
import type { Config } from '../config.js';
import { GatewayError } from '../errors.js';
import { openStore } from '../gateway.js';
import { ExitCode } from './exit-codes.js';
import { connectIndex } from './index-connection.js';
import {
  count,
  emptyCounts,
  verifyAll,
  type IndexedObject,
  type VerifyCounts,
  type VerifyOutcome,
} from './verify-objects.js';
import { createProgress } from './verify-progress.js';

export interface VerifyOptions {
  study?: string;
  /** ISO dates (YYYY-MM-DD), inclusive, on the study's Study Date. */
  from?: string;
  to?: string;
  concurrency: number;
  json?: boolean;
}

export interface VerifyIo {
  out: NodeJS.WritableStream;
  err: NodeJS.WriteStream;
  /** Show a progress bar (stderr is a terminal) rather than periodic lines. */
  tty: boolean;
}

/** Problems listed in the --json document; the counts are always complete. */
const MAX_JSON_PROBLEMS = 10_000;
const PAGE = 1_000;
/** Longest wait for the next chunk of one object. */
const IDLE_TIMEOUT_MS = 60_000;

// Only 'stored' rows: a 'pending-upload' instance is in the local spool, not in the store yet.
// A study without a Study Date is outside any --from/--to range.
const FILTER = `
  i.state = 'stored'
  AND ($1::text IS NULL OR s.study_uid = $1)
  AND ($2::date IS NULL OR s.study_date >= $2)
  AND ($3::date IS NULL OR s.study_date <= $3)`;
const FROM = `FROM instances i JOIN series se ON se.id = i.series_fk JOIN studies s ON s.id = se.study_fk`;

/** What is checked: each stored instance's object, then each version kept beside it (keep-versions). */
const SOURCES = [
  {
    table: FROM,
    id: 'i.id',
    size: 'i.size',
    object: 'i.store_name, i.object_key, i.size, i.sha256',
  },
  {
    table: `FROM instance_versions v JOIN instances i ON i.id = v.instance_fk
      JOIN series se ON se.id = i.series_fk JOIN studies s ON s.id = se.study_fk`,
    id: 'v.id',
    size: 'v.size',
    object: 'v.store_name, v.object_key, v.size, v.sha256',
  },
];

interface Row {
  id: string;
  sop_instance_uid: string;
  store_name: string;
  object_key: string;
  size: string;
  sha256: string;
}

async function indexQuery<R extends pg.QueryResultRow>(
  pool: pg.Pool,
  text: string,
  values: unknown[],
): Promise<pg.QueryResult<R>> {
  try {
    return await pool.query<R>(text, values);
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    throw new GatewayError('GW_ERR_INDEX_UNAVAILABLE', `index query failed: ${message}`, {
      cause: err,
    });
  }
}

/** Keyset pagination by row id, source by source: constant memory, rows added meanwhile come last. */
async function* indexedObjects(pool: pg.Pool, params: unknown[]): AsyncGenerator<IndexedObject> {
  for (const src of SOURCES) {
    let after = '0';
    for (;;) {
      const { rows } = await indexQuery<Row>(
        pool,
        `SELECT ${src.id} AS id, i.sop_instance_uid, ${src.object}
         ${src.table} WHERE ${FILTER} AND ${src.id} > $4 ORDER BY ${src.id} LIMIT $5`,
        [...params, after, PAGE],
      );
      for (const r of rows) {
        yield {
          sopInstanceUid: r.sop_instance_uid,
          storeName: r.store_name,
          objectKey: r.object_key,
          size: Number(r.size),
          sha256: r.sha256,
        };
      }
      if (rows.length < PAGE) break;
      after = rows[rows.length - 1]!.id;
    }
  }
}

export function problemLine(row: IndexedObject, o: VerifyOutcome): string | undefined {
  switch (o.kind) {
    case 'mismatch': {
      const what =
        o.actualSize !== row.size
          ? `size ${o.actualSize}, index says ${row.size}`
          : `sha256 ${o.actualSha256}, index says ${row.sha256}`;
      return `MISMATCH ${row.sopInstanceUid} ${row.objectKey}: ${what}`;
    }
    case 'missing':
      return `MISSING  ${row.sopInstanceUid} ${row.objectKey}: no object in the store`;
    case 'error':
      return `ERROR    ${row.sopInstanceUid} ${row.objectKey}: ${o.message}`;
    default:
      return undefined;
  }
}

export function summaryLine(c: VerifyCounts, seconds: number): string {
  const skipped = c.skipped > 0 ? `, skipped ${c.skipped} (other store)` : '';
  return (
    `checked ${c.checked}, ok ${c.ok}, mismatched ${c.mismatched}, missing ${c.missing}, ` +
    `errors ${c.errors}${skipped} (${c.bytes} bytes in ${seconds.toFixed(1)} s)`
  );
}

export function exitCodeFor(c: VerifyCounts): number {
  if (c.mismatched > 0 || c.missing > 0) return ExitCode.VerifyFailed;
  return c.errors > 0 ? ExitCode.Runtime : ExitCode.Ok;
}

export async function verifyCommand(
  cfg: Config,
  opts: VerifyOptions,
  log: Logger,
  io: VerifyIo,
): Promise<number> {
  if (opts.from && opts.to && opts.from > opts.to) {
    io.err.write(`dicom-gateway: --from ${opts.from} is after --to ${opts.to}\n`);
    return ExitCode.Config;
  }
  const { store, name: storeName } = openStore(cfg, log);
  const conn = await connectIndex(cfg, log);
  const pool = new pg.Pool({
    connectionString: conn.url,
    max: 2,
    connectionTimeoutMillis: 10_000,
    statement_timeout: 60_000,
    query_timeout: 65_000,
    application_name: 'dicom-gateway-verify',
  });
  pool.on('error', () => undefined);
  const params = [opts.study ?? null, opts.from ?? null, opts.to ?? null];
  try {
    const total = await indexQuery<{ n: string; bytes: string }>(
      pool,
      `SELECT sum(n) AS n, sum(bytes) AS bytes FROM (${SOURCES.map(
        (src) =>
          `SELECT count(*) AS n, coalesce(sum(${src.size}), 0) AS bytes
           ${src.table} WHERE ${FILTER}`,
      ).join(' UNION ALL ')}) t`,
      params,
    );
    const progress = createProgress({
      total: Number(total.rows[0]?.n ?? 0),
      totalBytes: Number(total.rows[0]?.bytes ?? 0),
      stream: io.err,
      tty: io.tty,
    });
    const counts = emptyCounts();
    const problems: Array<{ kind: string; sopInstanceUid: string; key: string; line: string }> = [];
    const t0 = performance.now();
    try {
      await verifyAll({
        rows: indexedObjects(pool, params),
        store,
        storeName,
        concurrency: opts.concurrency,
        idleTimeoutMs: IDLE_TIMEOUT_MS,
        onResult: (row, outcome) => {
          count(counts, outcome);
          progress.update(counts);
          const line = problemLine(row, outcome);
          if (!line) return;
          if (!opts.json) io.out.write(line + '\n');
          else if (problems.length < MAX_JSON_PROBLEMS) {
            problems.push({
              kind: outcome.kind,
              sopInstanceUid: row.sopInstanceUid,
              key: row.objectKey,
              line,
            });
          }
        },
      });
    } finally {
      progress.stop();
    }
    const seconds = (performance.now() - t0) / 1000;
    const code = exitCodeFor(counts);
    io.out.write(
      opts.json
        ? JSON.stringify({ ...counts, seconds, exitCode: code, problems }, null, 2) + '\n'
        : summaryLine(counts, seconds) + '\n',
    );
    return code;
  } finally {
    await pool.end();
    await conn.close();
    await store.close();
  }
}
