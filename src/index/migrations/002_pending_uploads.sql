-- Which gateway process's spool holds a 'pending-upload' instance (host + spool directory): with
-- several gateways on one database, each recovers only its own backlog at start-up.
ALTER TABLE instances ADD COLUMN pending_owner text;

-- Instances indexed as 'pending-upload' (in the local spool, or being uploaded) are found by the
-- uploader at start-up; a partial index keeps that scan proportional to the backlog, not the archive.
CREATE INDEX instances_pending_idx ON instances (pending_owner, id) WHERE state = 'pending-upload';

-- A pending row whose file never became durable (the gateway died before answering) is removed
-- again; the counters that its insert bumped go back down in the same statement.
CREATE FUNCTION instances_count_delete() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  v_study bigint;
  v_last_in_series boolean;
BEGIN
  UPDATE series
     SET num_instances = num_instances - 1,
         total_bytes = total_bytes - OLD.size
   WHERE id = OLD.series_fk
  RETURNING study_fk, num_instances = 0 INTO v_study, v_last_in_series;
  UPDATE studies
     SET num_instances = num_instances - 1,
         num_series = num_series - v_last_in_series::int,
         total_bytes = total_bytes - OLD.size
   WHERE id = v_study;
  RETURN NULL;
END
$$;

CREATE TRIGGER instances_count_delete AFTER DELETE ON instances
  FOR EACH ROW EXECUTE FUNCTION instances_count_delete();
