-- Stable studies (src/index/stable-studies.ts): when each study last had an instance reach the
-- object store, and whether its quiet period has been announced with a `study.stable` event.
-- Kept here, not in a gateway's memory, so the quiet period survives a restart and several
-- gateways on one database announce each study once.
CREATE TABLE study_activity (
  study_uid text PRIMARY KEY,
  -- The commit time (transaction start) of the latest instance event of the study.
  last_activity_at timestamptz NOT NULL,
  -- Set by the statement that writes the study.stable event; a later instance clears it.
  stable_at timestamptz,
  -- How many times the study went quiet and was announced (1 for the first study.stable).
  stable_count integer NOT NULL DEFAULT 0
);
-- The sweep's scan: studies not yet announced, the longest quiet first.
CREATE INDEX study_activity_open_idx ON study_activity (last_activity_at)
  WHERE stable_at IS NULL;

-- Every instance event (instance.stored, instance.replaced) re-opens its study, in the same
-- statement that writes the event: the C-STORE path keeps its one round trip. Events are
-- written one instance per transaction, so two transactions never lock two studies in
-- opposite orders.
CREATE FUNCTION study_activity_touch() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO study_activity AS a (study_uid, last_activity_at)
  VALUES (NEW.aggregate_uid, now())
  ON CONFLICT (study_uid) DO UPDATE
    SET last_activity_at = GREATEST(a.last_activity_at, EXCLUDED.last_activity_at),
        stable_at = NULL;
  RETURN NULL;
END
$$;

CREATE TRIGGER outbox_study_activity AFTER INSERT ON outbox
  FOR EACH ROW WHEN (NEW.event_type LIKE 'instance.%')
  EXECUTE FUNCTION study_activity_touch();
