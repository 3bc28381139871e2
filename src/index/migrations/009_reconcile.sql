-- study.stable waiting for completeness (notify.stableRequireComplete, src/notify/stable-gate.ts):
-- a quiet study found incomplete against its source, or whose source could not be asked, is
-- not looked at again before complete_recheck_at. Kept here, not in a gateway's memory, so the
-- gateways sharing the database do not ask the source about it again and again; a new instance
-- of the study clears it (the study is re-opened and checked once quiet again).
ALTER TABLE study_activity ADD COLUMN complete_recheck_at timestamptz;

CREATE OR REPLACE FUNCTION study_activity_touch() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO study_activity AS a (study_uid, last_activity_at)
  VALUES (NEW.aggregate_uid, now())
  ON CONFLICT (study_uid) DO UPDATE
    SET last_activity_at = GREATEST(a.last_activity_at, EXCLUDED.last_activity_at),
        stable_at = NULL,
        complete_recheck_at = NULL;
  RETURN NULL;
END
$$;
