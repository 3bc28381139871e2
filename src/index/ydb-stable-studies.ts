/**
 * StableStudies on YDB (stable-studies.ts has the contract). `study_activity` is re-opened by
 * every instance event in the transaction that writes it (ydb-events.ts appendEvent, where
 * PostgreSQL has a trigger); a sweep is one serializable transaction that takes the quiet open
 * studies (index activity_open_idx), leaves out those with an instance pending upload
 * (studies.num_pending), closes them and writes their study.stable events. Two sweepers that
 * read the same studies conflict and YDB aborts one, which then finds them closed.
 */
import type { StableStudies, StableSweep } from './stable-studies.js';
import type { StudyStableEvent } from './study-event.js';
import {
  appendEvent,
  sequencesRead,
  sequenceValues,
  setSequence,
  upsertRows,
  Writes,
} from './ydb-events.js';
import type { YdbExec } from './ydb-exec.js';
import type { TableRef } from './ydb-schema.js';
import { date, num, optStr, str, ydb, type Params } from './ydb-values.js';

/** Studies held back by a pending upload are skipped; this many extra are read past them. */
const SLACK = 100;

export class YdbStableStudies implements StableStudies {
  constructor(
    private readonly db: YdbExec,
    private readonly t: TableRef,
    private readonly wrote: () => void,
  ) {}

  async emitStableStudies(quietMs: number, limit: number): Promise<StableSweep> {
    const t = this.t;
    const out = await this.db.tx('emitStableStudies', async (run) => {
      const [nowRows, seqs] = await run(
        `SELECT CurrentUtcTimestamp() AS now; ${sequencesRead(t, ['outbox'])};`,
      );
      const now = date(nowRows?.[0]?.now);
      const cut = new Date(now.getTime() - quietMs);
      const [quiet, later] = await run(
        `SELECT study_uid, last_activity_at, stable_count FROM ${t('study_activity')}
           VIEW activity_open_idx WHERE is_open = true AND last_activity_at <= $cut
          ORDER BY last_activity_at LIMIT $n;
         SELECT MIN(last_activity_at) AS next_at FROM ${t('study_activity')}
           VIEW activity_open_idx WHERE is_open = true AND last_activity_at > $cut;`,
        { cut: ydb.ts(cut), n: ydb.limit(limit + SLACK) },
      );
      const next = later?.[0]?.next_at;
      const nextDueMs =
        next instanceof Date ? Math.max(0, next.getTime() + quietMs - now.getTime()) : undefined;
      if (!quiet?.length) return { emitted: 0, nextDueMs };
      const [studies] = await run(
        `SELECT study_uid, patient_id, num_series, num_instances, total_bytes, num_pending
           FROM ${t('studies')} WHERE study_uid IN $uids`,
        { uids: ydb.textList(quiet.map((q) => str(q.study_uid))) },
      );
      const byUid = new Map((studies ?? []).map((s) => [str(s.study_uid), s]));
      const w = new Writes();
      let eventId = sequenceValues(seqs).get('outbox') ?? 0;
      let emitted = 0;
      const closed: Params[] = [];
      for (const q of quiet) {
        if (emitted >= limit) break;
        const uid = str(q.study_uid);
        const s = byUid.get(uid);
        if (s && num(s.num_pending) > 0) continue;
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
        appendEvent(w, t, ++eventId, 'study.stable', uid, payload);
        emitted++;
      }
      if (!emitted) return { emitted: 0, nextDueMs };
      upsertRows(w, t, 'study_activity', closed);
      setSequence(w, t, 'outbox', eventId);
      await run(w.text, w.params);
      return { emitted, nextDueMs };
    });
    if (out.emitted > 0) this.wrote();
    if (out.emitted >= limit || out.nextDueMs === undefined) return { emitted: out.emitted };
    return out;
  }
}
