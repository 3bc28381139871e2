/**
 * The backfill engine: walks a Study Date range of a source in windows (STUDY-level C-FIND,
 * split when the source caps or refuses a broad query), checks each study found
 * (backfill-study.ts) with bounded concurrency on the source's associations (SourcePool),
 * and persists the run as it goes (BackfillRuns): each study's outcome, and a cursor before
 * which every day is walked. A run resumed skips the walked days and the settled studies.
 */
import type { Logger } from 'pino';
import { GatewayError, isGatewayError } from '../errors.js';
import type { BackfillRun, BackfillScope } from '../index/backfill-runs.js';
import type { InstanceIndex } from '../index/instance-index.js';
import { checkStudy, type StudyResult } from './backfill-study.js';
import { cFind, findStatusKind } from './find.js';
import type { QueryMatch } from './query-keys.js';
import type { SourcePool } from './source-pool.js';
import { addDays, isoDate, splitWindow, windowKeys, type Window } from './windows.js';

export interface BackfillOptions extends BackfillScope {
  pool: SourcePool;
  index: InstanceIndex;
  /** Our own AE title (the move destination). */
  destination: string;
  deep: boolean;
  dryRun: boolean;
  /** A STUDY-level C-FIND returning this many matches is taken as capped: the window is split. */
  maxResults: number;
  findTimeoutMs: number;
  signal?: AbortSignal;
  log: Logger;
  /** Told of each study settled (progress) and of each study found (the total grows). */
  onStudy?: (r: StudyResult) => void;
  onFound?: (n: number) => void;
}

export interface BackfillOutcome {
  run?: BackfillRun;
  resumed: boolean;
  /** Every study of the run, those settled by an earlier, interrupted part included. */
  studies: StudyResult[];
  /** Windows that could not be listed even split to one day and one modality. */
  unlisted: Array<{ window: Window; reason: string }>;
}

const SETTLED = new Set(['complete', 'backfilled']);
const STUDY_RETURN_KEYS = {
  StudyInstanceUID: '',
  StudyDate: '',
  NumberOfStudyRelatedInstances: '',
};

export async function runBackfill(o: BackfillOptions): Promise<BackfillOutcome> {
  const lock = o.dryRun ? undefined : await o.index.lockBackfillScope(o);
  if (!o.dryRun && !lock) {
    throw new GatewayError(
      'GW_ERR_CONFIG',
      `another backfill from ${o.sourceAe} of the same range is running; wait for it or stop it`,
    );
  }
  try {
    return await runLocked(o);
  } finally {
    await lock?.release();
  }
}

async function runLocked(o: BackfillOptions): Promise<BackfillOutcome> {
  const opened = o.dryRun ? undefined : await o.index.openBackfillRun(o);
  const run = opened?.run;
  const prior = run ? await o.index.backfillStudies(run.id) : [];
  const results = new Map<string, StudyResult>(prior.map((s) => [s.studyUid, s]));
  const settled = new Set(prior.filter((s) => SETTLED.has(s.outcome)).map((s) => s.studyUid));
  const unlisted: BackfillOutcome['unlisted'] = [];
  if (opened?.resumed) {
    o.log.info(
      { event: 'backfill.resumed', run: run!.id, cursor: run!.cursor, settled: settled.size },
      `resuming run ${run!.id}: ${settled.size} studies already settled` +
        (run!.cursor ? `, days before ${run!.cursor} walked` : ''),
    );
  }
  try {
    const studies = async (found: QueryMatch[]): Promise<void> => {
      const todo = found.filter((m) => m.StudyInstanceUID && !settled.has(m.StudyInstanceUID));
      o.onFound?.(todo.length);
      await eachLimited(
        todo,
        () => o.pool.limit,
        async (m) => {
          o.signal?.throwIfAborted();
          const r = await studyOutcome(o, m);
          results.set(r.studyUid, r);
          if (SETTLED.has(r.outcome)) settled.add(r.studyUid);
          if (run) await o.index.recordBackfillStudy(run.id, r);
          o.onStudy?.(r);
        },
      );
    };
    if (o.studyUid !== undefined) {
      const r = await o.pool.use((a) =>
        cFind(a, {
          level: 'STUDY',
          keys: { ...STUDY_RETURN_KEYS, StudyInstanceUID: o.studyUid },
          timeoutMs: o.findTimeoutMs,
        }),
      );
      if (findStatusKind(r.status) !== 'success')
        throw findFailure(r.status, r.errorComment, `study ${o.studyUid}`);
      if (r.matches.length === 0)
        throw new GatewayError('GW_ERR_PROTOCOL', `the source has no study ${o.studyUid}`);
      await studies(r.matches);
    } else {
      await walkWindows(o, run, studies, unlisted);
    }
    const all = [...results.values()];
    const ok = unlisted.length === 0 && all.every((s) => SETTLED.has(s.outcome));
    if (run)
      await o.index.endBackfillRun(run.id, ok ? 'done' : 'failed', ok ? undefined : 'incomplete');
    return { run, resumed: opened?.resumed ?? false, studies: all, unlisted };
  } catch (err) {
    if (run) {
      const aborted = o.signal?.aborted === true;
      await o.index
        .endBackfillRun(
          run.id,
          aborted ? 'interrupted' : 'failed',
          aborted ? 'interrupted' : (err as Error).message,
        )
        .catch((e: unknown) => o.log.error({ err: e }, 'could not record the end of the run'));
    }
    throw err;
  }
}

/** One study: checked and moved on an association of the pool; a failure is its outcome. */
async function studyOutcome(o: BackfillOptions, m: QueryMatch): Promise<StudyResult> {
  const studyUid = m.StudyInstanceUID!;
  try {
    const r = await o.pool.use((a) =>
      checkStudy(a, {
        match: m,
        index: o.index,
        destination: o.destination,
        deep: o.deep,
        dryRun: o.dryRun,
        findTimeoutMs: o.findTimeoutMs,
        signal: o.signal,
        onMove: (mv) =>
          o.log.info(
            { event: 'backfill.move', studyInstanceUid: studyUid, ...mv },
            `C-MOVE ${mv.level}: ${mv.completed} completed, ${mv.failed} failed`,
          ),
      }),
    );
    o.log.info({ event: 'backfill.study', ...r }, `study ${studyUid}: ${r.outcome}`);
    return r;
  } catch (err) {
    // The source or the pool failing as a whole ends the run; anything else is this study's.
    if (o.signal?.aborted || isFatal(err)) throw err;
    const message = err instanceof Error ? err.message : String(err);
    o.log.warn(
      { event: 'backfill.study', studyInstanceUid: studyUid, outcome: 'failed', err: message },
      `study ${studyUid}: ${message}`,
    );
    return {
      studyUid,
      studyDate: isoDate(m.StudyDate),
      outcome: 'failed',
      missingBefore: 0,
      moved: 0,
      failedSuboperations: 0,
      error: message,
    };
  }
}

/** Errors from opening the first association (the source down or refusing), the index gone. */
function isFatal(err: unknown): boolean {
  if (!isGatewayError(err)) return false;
  if (err.code === 'GW_ERR_INDEX_UNAVAILABLE') return true;
  return (
    err.message.startsWith('source ') &&
    (err.code === 'GW_ERR_PEER_UNREACHABLE' || err.code === 'GW_ERR_ASSOCIATION_REJECTED')
  );
}

async function walkWindows(
  o: BackfillOptions,
  run: BackfillRun | undefined,
  studies: (found: QueryMatch[]) => Promise<void>,
  unlisted: BackfillOutcome['unlisted'],
): Promise<void> {
  const from = run?.cursor && run.cursor > o.from! ? run.cursor : o.from!;
  if (from > o.to!) return;
  const stack: Window[] = [{ from, to: o.to!, ...(o.modality ? { modality: o.modality } : {}) }];
  const seen = new Set<string>(); // a study in several modality windows of one day is checked once
  while (stack.length > 0) {
    o.signal?.throwIfAborted();
    const w = stack.shift()!;
    const r = await o.pool.use((a) =>
      cFind(a, {
        level: 'STUDY',
        keys: { ...STUDY_RETURN_KEYS, ...windowKeys(w) },
        maxResults: o.maxResults,
        timeoutMs: o.findTimeoutMs,
      }),
    );
    const kind = findStatusKind(r.status);
    // A Cancel we did not ask for is how a source says it stopped at its own limit (Orthanc's
    // LimitFindResults answers FE00 after that many matches).
    const capped =
      r.capped || r.matches.length >= o.maxResults || (kind === 'cancel' && !r.timedOut);
    // PS3.4 C.4.1.1.4: A700 (out of resources) and Cxxx (unable to process) are how sources refuse a
    // query that is too broad; a window that is split may succeed where the whole did not.
    if (capped || (kind === 'failure' && !r.timedOut) || r.timedOut) {
      const parts = splitWindow(w);
      const reason = capped
        ? `capped at ${o.maxResults} results`
        : r.timedOut
          ? 'timed out'
          : `status 0x${r.status.toString(16)}`;
      if (parts && parts.length > 0) {
        o.log.info(
          { event: 'backfill.split', window: w, parts: parts.length, reason },
          `window ${label(w)} ${reason}: split`,
        );
        stack.unshift(...parts);
        continue;
      }
      if (kind === 'failure' && !capped)
        throw findFailure(r.status, r.errorComment, `window ${label(w)}`);
      o.log.error(
        { event: 'backfill.unlisted', window: w, reason },
        `window ${label(w)} ${reason} even split: not fully listed`,
      );
      unlisted.push({ window: w, reason });
    }
    const found = r.matches.filter((m) => m.StudyInstanceUID && !seen.has(m.StudyInstanceUID));
    for (const m of found) seen.add(m.StudyInstanceUID!);
    o.log.info(
      { event: 'backfill.window', window: w, studies: found.length },
      `window ${label(w)}: ${found.length} studies`,
    );
    await studies(found);
    // The cursor moves past a window only when every day before it is walked: modality windows
    // of one day count once the last of them is done (the next window is another day).
    const next = stack[0];
    const dayDone =
      w.modality === undefined || o.modality !== undefined || !next || next.from !== w.from;
    if (run && dayDone && unlisted.length === 0)
      await o.index.advanceBackfillCursor(run.id, addDays(w.to, 1));
  }
}

function findFailure(status: number, comment: string | undefined, what: string): GatewayError {
  return new GatewayError(
    'GW_ERR_PROTOCOL',
    `the source refused the C-FIND for ${what}: status 0x${status.toString(16).padStart(4, '0')}${comment ? ` (${comment})` : ''}`,
  );
}

function label(w: Window): string {
  return `${w.from}..${w.to}${w.modality ? ` ${w.modality}` : ''}`;
}

/** Runs `fn` over `items`, at most `limit()` at once (read before each start: it may drop). */
async function eachLimited<T>(
  items: readonly T[],
  limit: () => number,
  fn: (t: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  let failed: unknown;
  const worker = async (): Promise<void> => {
    while (next < items.length && failed === undefined) {
      const item = items[next++]!;
      try {
        await fn(item);
      } catch (err) {
        failed ??= err;
      }
    }
  };
  const n = Math.min(items.length, Math.max(1, limit()));
  await Promise.all(Array.from({ length: n }, worker));
  if (failed !== undefined) throw failed;
}
