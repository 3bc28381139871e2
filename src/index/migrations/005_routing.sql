-- Routing rules (docs/routing.md): the labels an accept rule gives an instance, and the notify
-- destinations it names (also carried in the instance's outbox event, field `destinations`).
-- NULL: no routing rule said anything (no labels, the default destinations).
ALTER TABLE instances ADD COLUMN labels text[];
ALTER TABLE instances ADD COLUMN destinations text[];
-- Which instances carry a label (`WHERE labels @> ARRAY['mammo']`).
CREATE INDEX instances_labels_idx ON instances USING gin (labels) WHERE labels IS NOT NULL;
