/**
 * StableStudies on YDB (stable-studies.ts has the contract). `study_activity` is re-opened by
 * every instance event in the transaction that writes it (ydb-events.ts appendEvent, where
 * PostgreSQL has a trigger; it also ends a completeness recheck wait, `complete_recheck_at`);
 * a sweep is one serializable transaction that takes the quiet open studies not waiting for a
 * recheck (index activity_open_idx, or the listed studies by key), leaves out those with an
 * instance pending upload (studies.num_pending), closes them and writes their study.stable
 * events. Two sweepers that read the same studies conflict and YDB aborts one, which then
 * finds them closed.
 */
import type { StableStudies, StableSweep } from './stable-studies.js';
import type { StudyStableEvent } from './study-event.js';
import {
  appendStableEvents,
  sequencesRead,
  sequenceValues,
  setSequence,
  upsertRows,
  Writes,
} from './ydb-events.js';
import type { Run, YdbExec } from './ydb-exec.js';
import type { TableRef } from './ydb-schema.js';
import { date, num, optStr, str, ydb, type Params, type Row } from './ydb-values.js';

/** Studies held back by a pending upload are skipped; this many extra are read past them. */
const SLACK = 100;

const ACTIVITY_COLUMNS = 'study_uid, last_activity_at, stable_count, is_open, complete_recheck_at';

/** A due study: its study_activity row and its studies row (absent if it has none). */
interface Due {
  uid: string;
  activity: Row;
  study: Row | undefined;
}

export class YdbStableStudies implements StableStudies {
  constructor(
    private readonly db: YdbExec,
    private readonly t: TableRef,
    private readonly wrote: () => void,
  ) {}

  async emitStableStudies(
    quietMs: number,
    limit: number,
    only?: readonly string[],
  ): Promise<StableSweep> {
    const t = this.t;
    const out = await this.db.tx('emitStableStudies', async (run) => {
      const [nowRows, seqs] = await run(
        `SELECT CurrentUtcTimestamp() AS now; ${sequencesRead(t, ['outbox'])};`,
      );
      const now = date(nowRows?.[0]?.now);
      const { due, nextAt } = await this.due(run, now, quietMs, limit, only, true);
      const nextDueMs =
        nextAt !== undefined ? Math.max(0, nextAt.getTime() + quietMs - now.getTime()) : undefined;
      if (!due.length) return { emitted: 0, nextDueMs };
      const w = new Writes();
      let eventId = sequenceValues(seqs).get('outbox') ?? 0;
      const closed: Params[] = [];
      const events: Array<{ id: number; studyUid: string; payload: StudyStableEvent }> = [];
      for (const { uid, activity: q, study: s } of due) {
        const stableCount = num(q.stable_count) + 1;
        const payload: StudyStableEvent = {
          studyInstanceUid: uid,
          ...(optStr(s?.patient_id) ? { patientId: optStr(s?.patient_id)! } : {}),
          numberOfSeries: num(s?.num_series),
          numberOfInstances: num(s?.num_instances),
          totalBytes: num(s?.total_bytes),
          lastInstanceAt: date(q.last_activity_at).toISOString(),
          stableAt: now.toISOString(),
          stableCount,
        };
        closed.push({
          study_uid: ydb.text(uid),
          stable_at: ydb.optTs(now),
          stable_count: ydb.optInt64(stableCount),
          is_open: ydb.optBool(false),
        });
        events.push({ id: ++eventId, studyUid: uid, payload });
      }
      appendStableEvents(w, t, events, now);
      upsertRows(w, t, 'study_activity', closed);
      setSequence(w, t, 'outbox', eventId);
      await run(w.text, w.params);
      return { emitted: due.length, nextDueMs };
    });
    if (out.emitted > 0) this.wrote();
    if (out.emitted >= limit || out.nextDueMs === undefined) return { emitted: out.emitted };
    return out;
  }

  async dueStableStudies(quietMs: number, limit: number): Promise<string[]> {
    return this.db.tx('dueStableStudies', async (run) => {
      const [nowRows] = await run('SELECT CurrentUtcTimestamp() AS now');
      const { due } = await this.due(run, date(nowRows?.[0]?.now), quietMs, limit);
      return due.map((d) => d.uid);
    });
  }

  async deferStableStudy(studyUid: string, recheckMs: number): Promise<void> {
    const t = this.t;
    await this.db.tx('deferStableStudy', async (run) => {
      const [nowRows] = await run('SELECT CurrentUtcTimestamp() AS now');
      const until = new Date(date(nowRows?.[0]?.now).getTime() + recheckMs);
      await run(
        `UPDATE ${t('study_activity')} SET complete_recheck_at = $until
          WHERE study_uid = $uid AND stable_at IS NULL`,
        { uid: ydb.text(studyUid), until: ydb.optTs(until) },
      );
    });
  }

  /**
   * The studies due at `now` (open, quiet since now - quietMs, not waiting for a recheck,
   * nothing pending upload), longest quiet first, at most `limit`; `only`: among these.
   * `withNext`: also when the soonest open study not yet quiet became active (PostgreSQL's
   * NEXT_DUE_SQL: any open study, listed or not).
   */
  private async due(
    run: Run,
    now: Date,
    quietMs: number,
    limit: number,
    only?: readonly string[],
    withNext = false,
  ): Promise<{ due: Due[]; nextAt?: Date }> {
    const t = this.t;
    const cut = new Date(now.getTime() - quietMs);
    const nextSql = withNext
      ? `SELECT MIN(last_activity_at) AS next_at FROM ${t('study_activity')}
           VIEW activity_open_idx WHERE is_open = true AND last_activity_at > $cut;`
      : '';
    const quietSql =
      only === undefined
        ? `SELECT ${ACTIVITY_COLUMNS} FROM ${t('study_activity')}
             VIEW activity_open_idx WHERE is_open = true AND last_activity_at <= $cut
              AND (complete_recheck_at IS NULL OR complete_recheck_at <= $now)
            ORDER BY last_activity_at LIMIT $n;`
        : `SELECT ${ACTIVITY_COLUMNS} FROM ${t('study_activity')} WHERE study_uid IN $only;`;
    let quiet: Row[] = [];
    let nextAt: Date | undefined;
    if (only?.length !== 0) {
      // Only the parameters the text uses.
      const params: Params =
        only === undefined
          ? { cut: ydb.ts(cut), now: ydb.ts(now), n: ydb.limit(limit + SLACK) }
          : { only: ydb.textList(only), ...(withNext ? { cut: ydb.ts(cut) } : {}) };
      const [rows, later] = await run(quietSql + nextSql, params);
      quiet = rows ?? [];
      const next = later?.[0]?.next_at;
      if (next instanceof Date) nextAt = next;
    } else if (withNext) {
      const [later] = await run(nextSql, { cut: ydb.ts(cut) });
      const next = later?.[0]?.next_at;
      if (next instanceof Date) nextAt = next;
    }
    // Checked again here (the listed studies are read by key, not filtered by YDB).
    const candidates = quiet
      .filter((q) => isDue(q, now, cut))
      .sort((a, b) => date(a.last_activity_at).getTime() - date(b.last_activity_at).getTime());
    if (!candidates.length) return { due: [], nextAt };
    const [studies] = await run(
      `SELECT study_uid, patient_id, num_series, num_instances, total_bytes, num_pending
         FROM ${t('studies')} WHERE study_uid IN $uids`,
      { uids: ydb.textList(candidates.map((q) => str(q.study_uid))) },
    );
    const byUid = new Map((studies ?? []).map((s) => [str(s.study_uid), s]));
    const due: Due[] = [];
    for (const q of candidates) {
      if (due.length >= limit) break;
      const uid = str(q.study_uid);
      const study = byUid.get(uid);
      if (study && num(study.num_pending) > 0) continue;
      due.push({ uid, activity: q, study });
    }
    return { due, nextAt };
  }
}

/** Open, quiet since `cut`, and not waiting for a completeness recheck at `now`. */
function isDue(q: Row, now: Date, cut: Date): boolean {
  const recheck = q.complete_recheck_at;
  return (
    q.is_open === true &&
    date(q.last_activity_at) <= cut &&
    (!(recheck instanceof Date) || recheck <= now)
  );
}
