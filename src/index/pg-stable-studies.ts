/**
 * StableStudies on PostgreSQL (schema: migrations/006_study_activity.sql, whose trigger on the
 * outbox re-opens a study with each instance event). See stable-studies.ts for the contract.
 */
import { isoUtcSql } from './outbox-event.js';
import type { PgExec } from './pg-exec.js';
import type { StableStudies, StableSweep } from './stable-studies.js';

// $1 quiet time (ms). Quiet, nothing pending upload, not waiting for a completeness recheck
// (migrations/009_reconcile.sql).
const DUE_WHERE = `a.stable_at IS NULL
     AND a.last_activity_at <= now() - $1::double precision * interval '1 millisecond'
     AND (a.complete_recheck_at IS NULL OR a.complete_recheck_at <= now())
     AND NOT EXISTS (
       SELECT 1 FROM studies s JOIN series r ON r.study_fk = s.id
         JOIN instances i ON i.series_fk = r.id
        WHERE s.study_uid = a.study_uid AND i.state = 'pending-upload')`;

// $1 quiet time (ms), $2 limit, $3 only these studies (NULL: any). One statement: the claim
// (SKIP LOCKED: another sweeper holds it, or a late instance is re-opening it), the mark and the
// event commit together.
const EMIT_SQL = `
WITH due AS (
  SELECT a.study_uid FROM study_activity a
   WHERE ${DUE_WHERE}
     AND ($3::text[] IS NULL OR a.study_uid = ANY($3::text[]))
   ORDER BY a.last_activity_at LIMIT $2
   FOR UPDATE OF a SKIP LOCKED),
upd AS (
  UPDATE study_activity a SET stable_at = now(), stable_count = a.stable_count + 1
    FROM due WHERE a.study_uid = due.study_uid
  RETURNING a.study_uid, a.last_activity_at, a.stable_at, a.stable_count),
ev AS (
  INSERT INTO outbox (event_type, aggregate_uid, payload)
  SELECT 'study.stable', u.study_uid, jsonb_strip_nulls(jsonb_build_object(
    'studyInstanceUid', u.study_uid, 'patientId', NULLIF(p.patient_id, ''),
    'numberOfSeries', coalesce(s.num_series, 0), 'numberOfInstances', coalesce(s.num_instances, 0),
    'totalBytes', coalesce(s.total_bytes, 0), 'lastInstanceAt', ${isoUtcSql('u.last_activity_at')},
    'stableAt', ${isoUtcSql('u.stable_at')}, 'stableCount', u.stable_count))
  FROM upd u LEFT JOIN studies s ON s.study_uid = u.study_uid
    LEFT JOIN patients p ON p.id = s.patient_fk
  RETURNING 1)
SELECT count(*)::int AS emitted FROM ev`;

// The soonest open study not yet due (those due but pending upload are found by the next poll).
const NEXT_DUE_SQL = `
SELECT extract(epoch FROM min(last_activity_at) - now()) * 1000
  + $1::double precision AS next_due_ms
  FROM study_activity
 WHERE stable_at IS NULL
   AND last_activity_at > now() - $1::double precision * interval '1 millisecond'`;

export class PgStableStudies implements StableStudies {
  constructor(private readonly db: PgExec) {}

  async emitStableStudies(
    quietMs: number,
    limit: number,
    only?: readonly string[],
  ): Promise<StableSweep> {
    const { rows } = await this.db.query<{ emitted: number }>(
      EMIT_SQL,
      [quietMs, limit, only ?? null],
      'emitStableStudies',
    );
    const emitted = rows[0]?.emitted ?? 0;
    if (emitted >= limit) return { emitted };
    const next = await this.db.query<{ next_due_ms: number | null }>(
      NEXT_DUE_SQL,
      [quietMs],
      'nextStableDue',
    );
    const ms = next.rows[0]?.next_due_ms;
    return ms === null || ms === undefined ? { emitted } : { emitted, nextDueMs: Math.max(0, ms) };
  }

  async dueStableStudies(quietMs: number, limit: number): Promise<string[]> {
    const { rows } = await this.db.query<{ study_uid: string }>(
      `SELECT a.study_uid FROM study_activity a WHERE ${DUE_WHERE}
        ORDER BY a.last_activity_at LIMIT $2`,
      [quietMs, limit],
      'dueStableStudies',
    );
    return rows.map((r) => r.study_uid);
  }

  async deferStableStudy(studyUid: string, recheckMs: number): Promise<void> {
    await this.db.query(
      `UPDATE study_activity
          SET complete_recheck_at = now() + $2::double precision * interval '1 millisecond'
        WHERE study_uid = $1 AND stable_at IS NULL`,
      [studyUid, recheckMs],
      'deferStableStudy',
    );
  }
}
