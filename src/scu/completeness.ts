/**
 * Completeness of a study against its source, decided on SOP Instance UIDs (pure). The
 * study-level count is only a shortcut to skip a study that is already complete; what is missing
 * is moved at the smallest level that covers it: the whole study when none of it is indexed, a
 * series when none of that series is, else the missing instances (UID lists, PS3.4 C.2.2.2.2).
 */
import type { QueryKeys, QueryLevel } from './query-keys.js';

export interface SourceSeries {
  seriesUid: string;
  instances: readonly string[];
}

export interface MovePlan {
  level: QueryLevel;
  keys: QueryKeys;
  /** Instances this move should bring. */
  instances: number;
}

export interface StudyDiff {
  /** Instances the source lists. */
  total: number;
  /** SOP Instance UIDs the source lists and the index lacks. */
  missing: string[];
  /** The moves that bring exactly what is missing (empty when complete). */
  plan: MovePlan[];
}

/** At most this many UIDs in one IMAGE-level C-MOVE (its identifier stays a few KiB). */
export const MAX_UIDS_PER_MOVE = 100;

/**
 * The shortcut: true when the source's study-level count (NumberOfStudyRelatedInstances, if it
 * returns one) equals the index's, and `deep` is off. Equal counts only: an index holding more
 * than the source may still lack some of the source's instances.
 */
export function completeByCount(
  sourceCount: string | number | undefined,
  indexedCount: number,
  deep: boolean,
): boolean {
  if (deep || sourceCount === undefined || sourceCount === '') return false;
  const n = Number(sourceCount);
  return Number.isInteger(n) && n > 0 && n === indexedCount;
}

export function diffStudy(
  studyUid: string,
  source: readonly SourceSeries[],
  indexed: ReadonlySet<string>,
  maxUidsPerMove = MAX_UIDS_PER_MOVE,
): StudyDiff {
  let total = 0;
  let present = 0;
  const missing: string[] = [];
  const perSeries: Array<{ seriesUid: string; missing: string[]; total: number }> = [];
  for (const s of source) {
    const m = s.instances.filter((uid) => !indexed.has(uid));
    total += s.instances.length;
    present += s.instances.length - m.length;
    missing.push(...m);
    if (m.length > 0)
      perSeries.push({ seriesUid: s.seriesUid, missing: m, total: s.instances.length });
  }
  if (missing.length === 0) return { total, missing, plan: [] };
  if (present === 0) {
    return {
      total,
      missing,
      plan: [{ level: 'STUDY', keys: { StudyInstanceUID: studyUid }, instances: total }],
    };
  }
  const plan: MovePlan[] = [];
  for (const s of perSeries) {
    if (s.missing.length === s.total) {
      plan.push({
        level: 'SERIES',
        keys: { StudyInstanceUID: studyUid, SeriesInstanceUID: s.seriesUid },
        instances: s.total,
      });
      continue;
    }
    for (let i = 0; i < s.missing.length; i += maxUidsPerMove) {
      const uids = s.missing.slice(i, i + maxUidsPerMove);
      plan.push({
        level: 'IMAGE',
        keys: {
          StudyInstanceUID: studyUid,
          SeriesInstanceUID: s.seriesUid,
          SOPInstanceUID: uids.join('\\'),
        },
        instances: uids.length,
      });
    }
  }
  return { total, missing, plan };
}
