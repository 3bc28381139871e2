-- The index: patients > studies > series > instances, and the outbox of events.
-- Written for PostgreSQL 15+. Every row stays small (the goal is < 1 KB per instance, indexes
-- included): each value is stored once, at the level it belongs to, and instance rows point up.

CREATE TABLE patients (
  id bigserial PRIMARY KEY,
  -- '' when the dataset has none: PatientID is type 2. All such instances share the ('', '') row,
  -- which keeps no demographics (another study's name would be wrong, not just missing).
  patient_id text NOT NULL DEFAULT '',
  issuer text NOT NULL DEFAULT '',
  patient_name text,
  birth_date date,
  sex text,
  UNIQUE (patient_id, issuer)
);
-- Lookups by patient_id use the unique index above (patient_id is its leading column).
-- text_pattern_ops: prefix matches (C-FIND 'DOE*' -> LIKE 'doe%') work under any collation.
CREATE INDEX patients_name_idx ON patients (lower(patient_name) text_pattern_ops);

CREATE TABLE studies (
  id bigserial PRIMARY KEY,
  study_uid text NOT NULL UNIQUE,
  -- The patient of the first instance received; later instances do not move the study.
  patient_fk bigint NOT NULL REFERENCES patients (id),
  study_date date,
  study_time text,
  accession_number text,
  study_id text,
  description text,
  referring_physician text,
  institution text,
  -- Maintained by the instances_count trigger, in the transaction that inserts the instance.
  num_series integer NOT NULL DEFAULT 0,
  num_instances integer NOT NULL DEFAULT 0,
  total_bytes bigint NOT NULL DEFAULT 0,
  first_received_at timestamptz NOT NULL,
  last_received_at timestamptz NOT NULL
);
CREATE INDEX studies_date_idx ON studies (study_date);
CREATE INDEX studies_accession_idx ON studies (accession_number);
CREATE INDEX studies_patient_idx ON studies (patient_fk);

CREATE TABLE series (
  id bigserial PRIMARY KEY,
  series_uid text NOT NULL UNIQUE,
  study_fk bigint NOT NULL REFERENCES studies (id),
  modality text,
  series_number integer,
  description text,
  body_part text,
  num_instances integer NOT NULL DEFAULT 0,
  total_bytes bigint NOT NULL DEFAULT 0,
  last_received_at timestamptz
);
CREATE INDEX series_study_idx ON series (study_fk);

CREATE TABLE instances (
  id bigserial PRIMARY KEY,
  sop_instance_uid text NOT NULL UNIQUE,
  series_fk bigint NOT NULL REFERENCES series (id),
  sop_class_uid text NOT NULL,
  instance_number integer,
  number_of_frames integer,
  rows integer,
  columns integer,
  transfer_syntax_uid text NOT NULL,
  store_name text NOT NULL,
  object_key text NOT NULL,
  size bigint NOT NULL CHECK (size >= 0),
  sha256 text NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
  calling_ae text NOT NULL,
  called_ae text NOT NULL,
  source_address text NOT NULL,
  state text NOT NULL CHECK (state IN ('stored', 'pending-upload')),
  received_at timestamptz NOT NULL,
  -- Later arrivals of this SOP Instance UID with other bytes (identical ones are not counted).
  duplicates_received integer NOT NULL DEFAULT 0,
  last_duplicate_at timestamptz,
  last_duplicate_sha256 text CHECK (last_duplicate_sha256 ~ '^[0-9a-f]{64}$')
);
CREATE INDEX instances_series_idx ON instances (series_fk);

-- Counters live on the series and study rows so that a study's summary is one row read. A trigger,
-- not application code, bumps them: it fires only for a row that really was inserted (never for an
-- ON CONFLICT DO NOTHING), inside the same statement, so a retried or concurrent store cannot count
-- twice and recordInstance stays one round trip.
CREATE FUNCTION instances_count_insert() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  v_study bigint;
  v_first_in_series boolean;
BEGIN
  UPDATE series
     SET num_instances = num_instances + 1,
         total_bytes = total_bytes + NEW.size,
         last_received_at = GREATEST(last_received_at, NEW.received_at)
   WHERE id = NEW.series_fk
  RETURNING study_fk, num_instances = 1 INTO v_study, v_first_in_series;
  -- num_series counts series that hold instances, so a series row created by a request that then
  -- lost the race for its SOP Instance UID is not counted.
  UPDATE studies
     SET num_instances = num_instances + 1,
         num_series = num_series + v_first_in_series::int,
         total_bytes = total_bytes + NEW.size,
         last_received_at = GREATEST(last_received_at, NEW.received_at)
   WHERE id = v_study;
  RETURN NULL;
END
$$;

CREATE TRIGGER instances_count AFTER INSERT ON instances
  FOR EACH ROW EXECUTE FUNCTION instances_count_insert();

CREATE TABLE outbox (
  id bigserial PRIMARY KEY,
  event_type text NOT NULL,
  -- The study the event is about, so that a worker can keep one study's events in order.
  aggregate_uid text NOT NULL,
  payload jsonb NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  available_at timestamptz NOT NULL DEFAULT now(),
  attempts integer NOT NULL DEFAULT 0,
  last_error text,
  delivered_at timestamptz,
  dead_at timestamptz
);
-- Only pending rows: what workers claim with FOR UPDATE SKIP LOCKED, due ones first.
CREATE INDEX outbox_pending_idx ON outbox (available_at, id)
  WHERE delivered_at IS NULL AND dead_at IS NULL;
