-- Outbox retention (notify.retentionDays, src/notify/outbox-pruner.ts): an event that every
-- destination has taken is deleted once it is old enough, its deliveries with it (ON DELETE
-- CASCADE). The prune's check for unfinished deliveries and the cascade both look deliveries
-- up by their event: without this index each deleted event would scan outbox_deliveries.
CREATE INDEX outbox_deliveries_event_idx ON outbox_deliveries (event_id);
