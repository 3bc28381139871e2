/**
 * The persisted state of `dicom-gateway backfill` (schema: migrations/007_backfill.sql): a run
 * per (source, scope), its cursor (every Study Date before it walked), and each study's outcome.
 * A run that did not end 'done' is resumed by the next run with the same source and scope.
 */

export type BackfillRunState = 'running' | 'done' | 'failed' | 'interrupted';
export type StudyOutcome = 'complete' | 'backfilled' | 'failed';

export interface BackfillScope {
  sourceAe: string;
  /** ISO dates, inclusive (absent for a single study). */
  from?: string;
  to?: string;
  modality?: string;
  studyUid?: string;
}

export interface BackfillRun extends BackfillScope {
  id: number;
  state: BackfillRunState;
  /** ISO date: every day before it is walked. */
  cursor?: string;
  startedAt: Date;
}

/** A run as `status` shows it: its state, times and how its studies ended. */
export interface BackfillRunSummary {
  id: number;
  /** As scopeText() writes it ('dates:2024-01-01..2024-01-07'). */
  scope: string;
  state: BackfillRunState;
  startedAt: Date;
  updatedAt: Date;
  finishedAt?: Date;
  error?: string;
  studies: Record<StudyOutcome, number>;
}

export interface BackfillStudyRecord {
  studyUid: string;
  studyDate?: string;
  outcome: StudyOutcome;
  sourceInstances?: number;
  missingBefore: number;
  moved: number;
  failedSuboperations: number;
  error?: string;
}

export interface BackfillRuns {
  /**
   * Takes the scope's lock for as long as this process runs it (a PostgreSQL session advisory
   * lock on a connection of its own: it goes when the process dies, SIGKILL included). Returns
   * undefined when another backfill of the same source and scope holds it.
   */
  lockBackfillScope(scope: BackfillScope): Promise<{ release(): Promise<void> } | undefined>;
  /**
   * The same kind of lock for the reconcile job of serve against one source (whatever its
   * window): of the gateways sharing the database, one runs a round at a time.
   */
  lockReconcile(sourceAe: string): Promise<{ release(): Promise<void> } | undefined>;
  /** The unfinished run of this source and scope (resumed: state back to 'running'), or a new one. Durable. */
  openBackfillRun(scope: BackfillScope): Promise<{ run: BackfillRun; resumed: boolean }>;
  /** Records (or replaces) one study's outcome in the run. Durable. */
  recordBackfillStudy(runId: number, s: BackfillStudyRecord): Promise<void>;
  /** Moves the cursor forward (never back). Durable. */
  advanceBackfillCursor(runId: number, cursor: string): Promise<void>;
  /** Ends the run: 'done' finishes it; any other state leaves it to be resumed. Durable. */
  endBackfillRun(
    runId: number,
    state: Exclude<BackfillRunState, 'running'>,
    error?: string,
  ): Promise<void>;
  /** Every study outcome of the run, in the order recorded. */
  backfillStudies(runId: number): Promise<BackfillStudyRecord[]>;
  /**
   * Retention: deletes the runs that ended (done, failed or interrupted) and were last changed
   * before `before`, with their study outcomes; returns how many runs. A run still 'running'
   * stays; an interrupted one deleted is no longer resumed (the next run of its scope walks it
   * again). Absent: the backend does not prune (YDB, for now). Durable.
   */
  pruneBackfillRuns?(before: Date): Promise<number>;
  /**
   * The latest run against `sourceAe` (a reconcile round or a `backfill` command), with its
   * studies' outcomes counted; undefined when there is none. Absent: the backend cannot say
   * (YDB, for now).
   */
  lastBackfillRun?(sourceAe: string): Promise<BackfillRunSummary | undefined>;
}

/** The scope as the text a run is found by. */
export function scopeText(s: BackfillScope): string {
  if (s.studyUid !== undefined) return `study:${s.studyUid}`;
  return `dates:${s.from ?? ''}..${s.to ?? ''}${s.modality !== undefined ? `:${s.modality}` : ''}`;
}
