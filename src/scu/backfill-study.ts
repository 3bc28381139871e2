/**
 * One study of a backfill: list what the source holds (SERIES then IMAGE level C-FIND), compare
 * the SOP Instance UIDs with the index, C-MOVE what is missing at the smallest covering level to
 * our own AE, then check the index again. The study-level count skips the listing when it
 * already matches (not with `deep`).
 */
import type { BackfillStudyRecord } from '../index/backfill-runs.js';
import type { InstanceIndex } from '../index/instance-index.js';
import type { RequestorAssociation } from './association.js';
import { completeByCount, diffStudy, type SourceSeries } from './completeness.js';
import { cFind, findStatusKind, QueryFailedError } from './find.js';
import { cMove, moveStatusKind } from './move.js';
import type { QueryMatch } from './query-keys.js';
import { isoDate } from './windows.js';

/** An IMAGE-level listing this long is refused (the study is reported failed, not truncated). */
const MAX_INSTANCES_PER_SERIES = 100_000;

export interface StudyJob {
  /** The study as the STUDY-level C-FIND returned it. */
  match: QueryMatch;
  index: Pick<InstanceIndex, 'listInstances'>;
  /** Our own AE title: the move destination. */
  destination: string;
  deep: boolean;
  dryRun: boolean;
  findTimeoutMs: number;
  signal?: AbortSignal;
  /** Each C-MOVE's outcome, as it ends (logs). */
  onMove?: (m: {
    level: string;
    instances: number;
    completed: number;
    failed: number;
    warning: number;
    status: number;
  }) => void;
}

export interface StudyResult extends BackfillStudyRecord {
  /** dry-run: what would be moved. */
  wouldMove?: number;
}

export async function checkStudy(assoc: RequestorAssociation, job: StudyJob): Promise<StudyResult> {
  const studyUid = job.match.StudyInstanceUID!;
  const base = { studyUid, studyDate: isoDate(job.match.StudyDate) };
  const indexedUids = async (): Promise<Set<string>> =>
    new Set((await job.index.listInstances(studyUid)).map((r) => r.sopInstanceUid));
  const before = await indexedUids();
  const count = job.match.NumberOfStudyRelatedInstances;
  if (completeByCount(count, before.size, job.deep)) {
    return {
      ...base,
      outcome: 'complete',
      sourceInstances: before.size,
      missingBefore: 0,
      moved: 0,
      failedSuboperations: 0,
    };
  }
  const source = await listSource(assoc, studyUid, job.findTimeoutMs);
  const diff = diffStudy(studyUid, source, before);
  const counted = { ...base, sourceInstances: diff.total, missingBefore: diff.missing.length };
  if (diff.plan.length === 0) {
    return { ...counted, outcome: 'complete', moved: 0, failedSuboperations: 0 };
  }
  if (job.dryRun) {
    return {
      ...counted,
      outcome: 'failed',
      moved: 0,
      failedSuboperations: 0,
      wouldMove: diff.missing.length,
      error: `${diff.missing.length} instances missing (dry run)`,
    };
  }
  let moved = 0;
  let failedSub = 0;
  const errors: string[] = [];
  for (const p of diff.plan) {
    job.signal?.throwIfAborted();
    const r = await cMove(assoc, {
      level: p.level,
      keys: p.keys,
      destination: job.destination,
      signal: job.signal,
    });
    moved += r.completed + r.warning;
    failedSub += r.failed;
    job.onMove?.({
      level: p.level,
      instances: p.instances,
      completed: r.completed,
      failed: r.failed,
      warning: r.warning,
      status: r.status,
    });
    const kind = moveStatusKind(r.status);
    if (kind === 'cancel') job.signal?.throwIfAborted();
    if (kind === 'failure' || kind === 'cancel') {
      errors.push(
        `C-MOVE ${p.level} status 0x${r.status.toString(16).padStart(4, '0')}${r.errorComment ? ` (${r.errorComment})` : ''}`,
      );
    } else if (r.failed > 0) {
      errors.push(`${r.failed} sub-operations failed`);
    }
  }
  // The source answers a C-MOVE only after our SCP answered every sub-operation, which it does
  // once the instance is indexed: the index tells the truth now.
  const after = await indexedUids();
  const still = diffStudy(studyUid, source, after).missing.length;
  if (still === 0)
    return { ...counted, outcome: 'backfilled', moved, failedSuboperations: failedSub };
  return {
    ...counted,
    outcome: 'failed',
    moved,
    failedSuboperations: failedSub,
    error:
      `${still} of ${diff.total} instances still missing` +
      (errors.length ? `: ${errors.join('; ')}` : ''),
  };
}

/** Every series of the study and its SOP Instance UIDs, as the source lists them. */
export async function listSource(
  assoc: RequestorAssociation,
  studyUid: string,
  timeoutMs: number,
): Promise<SourceSeries[]> {
  const series = await cFind(assoc, {
    level: 'SERIES',
    keys: { StudyInstanceUID: studyUid, SeriesInstanceUID: '' },
    timeoutMs,
  });
  check(series);
  const out: SourceSeries[] = [];
  for (const s of series.matches) {
    if (!s.SeriesInstanceUID) continue;
    const images = await cFind(assoc, {
      level: 'IMAGE',
      keys: {
        StudyInstanceUID: studyUid,
        SeriesInstanceUID: s.SeriesInstanceUID,
        SOPInstanceUID: '',
      },
      maxResults: MAX_INSTANCES_PER_SERIES,
      timeoutMs,
    });
    check(images);
    out.push({
      seriesUid: s.SeriesInstanceUID,
      instances: images.matches.flatMap((m) => (m.SOPInstanceUID ? [m.SOPInstanceUID] : [])),
    });
  }
  return out;
}

function check(r: Awaited<ReturnType<typeof cFind>>): void {
  const kind = findStatusKind(r.status);
  if (r.capped || r.timedOut) {
    throw new QueryFailedError('C-FIND', r.status, r.capped ? 'listing capped' : 'timed out');
  }
  if (kind !== 'success') throw new QueryFailedError('C-FIND', r.status, r.errorComment);
}
