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
import type { Config } from '../config.js';
import { namedStores } from '../store/store-config.js';
import { openNamedStore, storeLookup } from '../store/open-store.js';
import { connectIndex } from '../index/open.js';
import { ExitCode } from './exit-codes.js';
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
/** Longest wait for the next chunk of one object. */
const IDLE_TIMEOUT_MS = 60_000;

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
  const skipped = c.skipped > 0 ? `, skipped ${c.skipped} (store not configured)` : '';
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
  // Each row is checked in the store it names (a store no longer configured: skipped).
  const opened = [...namedStores(cfg)].map(([name, s]) => openNamedStore(name, s, log));
  const { index, close } = await connectIndex(cfg, log, { existingOnly: true });
  // Only objects in the store: instances still 'pending-upload' are in the local spool.
  const filter = { studyInstanceUid: opts.study, from: opts.from, to: opts.to };
  try {
    const total = await index.countStoredObjects(filter);
    const progress = createProgress({
      total: total.objects,
      totalBytes: total.bytes,
      stream: io.err,
      tty: io.tty,
    });
    const counts = emptyCounts();
    const problems: Array<{ kind: string; sopInstanceUid: string; key: string; line: string }> = [];
    const t0 = performance.now();
    try {
      await verifyAll({
        rows: index.storedObjects(filter),
        storeFor: storeLookup(opened),
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
    await close();
    for (const o of opened) await o.store.close();
  }
}
