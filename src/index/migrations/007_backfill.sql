-- Backfill runs (dicom-gateway backfill): what a run covers, how far it got, and each study's
-- outcome, so an interrupted run resumes where it stopped and never moves a settled study again.
CREATE TABLE backfill_runs (
  id bigserial PRIMARY KEY,
  source_ae text NOT NULL,
  -- The run's scope as text ('dates:2024-01-01..2024-01-31' with ':CT' for a modality, or
  -- 'study:UID'): a new run with the same source and scope resumes an unfinished one.
  scope text NOT NULL,
  date_from date,
  date_to date,
  modality text,
  study_uid text,
  state text NOT NULL CHECK (state IN ('running', 'done', 'failed', 'interrupted')),
  -- Every Study Date before this day has been walked (its studies settled or recorded).
  cursor_date date,
  started_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  finished_at timestamptz,
  error text
);
CREATE INDEX backfill_runs_open_idx ON backfill_runs (source_ae, scope) WHERE finished_at IS NULL;

CREATE TABLE backfill_studies (
  run_id bigint NOT NULL REFERENCES backfill_runs (id) ON DELETE CASCADE,
  study_uid text NOT NULL,
  study_date date,
  -- complete: nothing was missing; backfilled: what was missing was moved and is now indexed;
  -- failed: still incomplete after its moves, or a query or move failed.
  outcome text NOT NULL CHECK (outcome IN ('complete', 'backfilled', 'failed')),
  source_instances integer,
  missing_before integer NOT NULL DEFAULT 0,
  moved integer NOT NULL DEFAULT 0,
  failed_suboperations integer NOT NULL DEFAULT 0,
  error text,
  updated_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (run_id, study_uid)
);
