-- Index retention (config retention, src/index/retention-job.ts): an outbox event that every
-- destination has taken is deleted once it is old enough, its deliveries with it (ON DELETE
-- CASCADE). The prune's check for unfinished deliveries and the cascade both look deliveries
-- up by their event: without this index each deleted event would scan outbox_deliveries.
-- (Backfill runs and commitment transactions need none: their deletes go by primary key, and
-- backfill_studies' primary key leads with run_id.)
CREATE INDEX outbox_deliveries_event_idx ON outbox_deliveries (event_id);
