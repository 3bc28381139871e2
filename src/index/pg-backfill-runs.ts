/** BackfillRuns on PostgreSQL (schema: migrations/007_backfill.sql); see backfill-runs.ts. */
import {
  scopeText,
  type BackfillRun,
  type BackfillRuns,
  type BackfillRunState,
  type BackfillRunSummary,
  type BackfillScope,
  type BackfillStudyRecord,
  type StudyOutcome,
} from './backfill-runs.js';
import { deleteInBatches, type PgExec } from './pg-exec.js';

interface RunRow {
  id: string;
  source_ae: string;
  date_from: string | null;
  date_to: string | null;
  modality: string | null;
  study_uid: string | null;
  state: BackfillRunState;
  cursor_date: string | null;
  started_at: Date;
}

const RUN_COLUMNS = `id, source_ae, date_from::text, date_to::text, modality, study_uid, state,
  cursor_date::text, started_at`;

// The oldest unfinished run of the scope is taken over (locked so two backfills of the same
// scope started at once do not both resume it: the second one waits, then finds it 'running').
const RESUME_SQL = `
UPDATE backfill_runs SET state = 'running', updated_at = now(), error = NULL
 WHERE id = (SELECT id FROM backfill_runs
              WHERE source_ae = $1 AND scope = $2 AND finished_at IS NULL
              ORDER BY id LIMIT 1 FOR UPDATE)
RETURNING ${RUN_COLUMNS}`;

const CREATE_SQL = `
INSERT INTO backfill_runs (source_ae, scope, date_from, date_to, modality, study_uid, state)
VALUES ($1, $2, $3, $4, $5, $6, 'running')
RETURNING ${RUN_COLUMNS}`;

const RECORD_STUDY_SQL = `
INSERT INTO backfill_studies (run_id, study_uid, study_date, outcome, source_instances,
  missing_before, moved, failed_suboperations, error)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
ON CONFLICT (run_id, study_uid) DO UPDATE SET
  study_date = EXCLUDED.study_date, outcome = EXCLUDED.outcome,
  source_instances = EXCLUDED.source_instances, missing_before = EXCLUDED.missing_before,
  moved = backfill_studies.moved + EXCLUDED.moved,
  failed_suboperations = EXCLUDED.failed_suboperations, error = EXCLUDED.error, updated_at = now()`;

export class PgBackfillRuns implements BackfillRuns {
  constructor(private readonly db: PgExec) {}

  lockBackfillScope(scope: BackfillScope): Promise<{ release(): Promise<void> } | undefined> {
    return this.tryLock(`backfill:${scope.sourceAe}:${scopeText(scope)}`);
  }

  lockReconcile(sourceAe: string): Promise<{ release(): Promise<void> } | undefined> {
    return this.tryLock(`reconcile:${sourceAe}`);
  }

  private async tryLock(key: string): Promise<{ release(): Promise<void> } | undefined> {
    const client = await this.db.pool.connect();
    try {
      const { rows } = await client.query<{ locked: boolean }>(
        'SELECT pg_try_advisory_lock(hashtextextended($1, 0)) AS locked',
        [key],
      );
      if (!rows[0]?.locked) {
        client.release();
        return undefined;
      }
    } catch (err) {
      client.release(true);
      throw err;
    }
    return {
      release: async () => {
        // Closing the connection ends the session and its lock, whatever state it is in.
        client.release(true);
        await Promise.resolve();
      },
    };
  }

  async openBackfillRun(scope: BackfillScope): Promise<{ run: BackfillRun; resumed: boolean }> {
    const key = [scope.sourceAe, scopeText(scope)];
    const resumed = await this.db.query<RunRow>(RESUME_SQL, key, 'openBackfillRun');
    if (resumed.rows[0]) return { run: toRun(resumed.rows[0]), resumed: true };
    const { rows } = await this.db.query<RunRow>(
      CREATE_SQL,
      [
        ...key,
        scope.from ?? null,
        scope.to ?? null,
        scope.modality ?? null,
        scope.studyUid ?? null,
      ],
      'openBackfillRun',
    );
    return { run: toRun(rows[0]!), resumed: false };
  }

  async recordBackfillStudy(runId: number, s: BackfillStudyRecord): Promise<void> {
    await this.db.query(
      RECORD_STUDY_SQL,
      [
        runId,
        s.studyUid,
        s.studyDate ?? null,
        s.outcome,
        s.sourceInstances ?? null,
        s.missingBefore,
        s.moved,
        s.failedSuboperations,
        s.error ?? null,
      ],
      'recordBackfillStudy',
    );
  }

  async advanceBackfillCursor(runId: number, cursor: string): Promise<void> {
    await this.db.query(
      `UPDATE backfill_runs SET cursor_date = GREATEST(cursor_date, $2::date), updated_at = now()
        WHERE id = $1`,
      [runId, cursor],
      'advanceBackfillCursor',
    );
  }

  async lastBackfillRun(sourceAe: string): Promise<BackfillRunSummary | undefined> {
    const { rows } = await this.db.query<{
      id: string;
      scope: string;
      state: BackfillRunState;
      started_at: Date;
      updated_at: Date;
      finished_at: Date | null;
      error: string | null;
      complete: string;
      backfilled: string;
      failed: string;
    }>(
      `SELECT r.id, r.scope, r.state, r.started_at, r.updated_at, r.finished_at, r.error,
         count(*) FILTER (WHERE s.outcome = 'complete') AS complete,
         count(*) FILTER (WHERE s.outcome = 'backfilled') AS backfilled,
         count(*) FILTER (WHERE s.outcome = 'failed') AS failed
         FROM (SELECT * FROM backfill_runs WHERE source_ae = $1 ORDER BY id DESC LIMIT 1) r
         LEFT JOIN backfill_studies s ON s.run_id = r.id
        GROUP BY r.id, r.scope, r.state, r.started_at, r.updated_at, r.finished_at, r.error`,
      [sourceAe],
      'lastBackfillRun',
    );
    const r = rows[0];
    if (!r) return undefined;
    return {
      id: Number(r.id),
      scope: r.scope,
      state: r.state,
      startedAt: r.started_at,
      updatedAt: r.updated_at,
      ...(r.finished_at ? { finishedAt: r.finished_at } : {}),
      ...(r.error !== null ? { error: r.error } : {}),
      studies: {
        complete: Number(r.complete),
        backfilled: Number(r.backfilled),
        failed: Number(r.failed),
      },
    };
  }

  async pruneBackfillRuns(before: Date): Promise<number> {
    // A run may hold thousands of study rows (the cascade): a few runs per statement.
    return deleteInBatches(
      this.db,
      `DELETE FROM backfill_runs WHERE id IN (
         SELECT id FROM backfill_runs WHERE state <> 'running' AND updated_at < $1
          ORDER BY id LIMIT $2)`,
      before,
      20,
      'pruneBackfillRuns',
    );
  }

  async endBackfillRun(
    runId: number,
    state: Exclude<BackfillRunState, 'running'>,
    error?: string,
  ): Promise<void> {
    await this.db.query(
      `UPDATE backfill_runs SET state = $2, error = $3, updated_at = now(),
         finished_at = CASE WHEN $2 = 'done' THEN now() END
        WHERE id = $1`,
      [runId, state, error ?? null],
      'endBackfillRun',
    );
  }

  async backfillStudies(runId: number): Promise<BackfillStudyRecord[]> {
    const { rows } = await this.db.query<{
      study_uid: string;
      study_date: string | null;
      outcome: StudyOutcome;
      source_instances: number | null;
      missing_before: number;
      moved: number;
      failed_suboperations: number;
      error: string | null;
    }>(
      `SELECT study_uid, study_date::text, outcome, source_instances, missing_before, moved,
              failed_suboperations, error
         FROM backfill_studies WHERE run_id = $1 ORDER BY updated_at, study_uid`,
      [runId],
      'backfillStudies',
    );
    return rows.map((r) => ({
      studyUid: r.study_uid,
      studyDate: r.study_date ?? undefined,
      outcome: r.outcome,
      sourceInstances: r.source_instances ?? undefined,
      missingBefore: r.missing_before,
      moved: r.moved,
      failedSuboperations: r.failed_suboperations,
      error: r.error ?? undefined,
    }));
  }
}

function toRun(r: RunRow): BackfillRun {
  return {
    id: Number(r.id),
    sourceAe: r.source_ae,
    from: r.date_from ?? undefined,
    to: r.date_to ?? undefined,
    modality: r.modality ?? undefined,
    studyUid: r.study_uid ?? undefined,
    state: r.state,
    cursor: r.cursor_date ?? undefined,
    startedAt: r.started_at,
  };
}
