-- Delivery of outbox events to notify destinations (src/index/outbox-deliveries.ts), the bucket
-- as its own column, and the event payload in its typed shape (src/index/outbox-event.ts).

-- The S3 bucket of the object, so that an event names bucket and key as fields. Rows written
-- before this column existed get it from their store name, which was 's3:<bucket>' then.
ALTER TABLE instances ADD COLUMN bucket text;
UPDATE instances SET bucket = substr(store_name, 4) WHERE store_name LIKE 's3:%';

-- The writing transaction of each event. A destination's cursor moves in (txid, id) order over
-- events whose transaction is older than every transaction still running
-- (pg_snapshot_xmin), so it never passes an event whose transaction commits later: an id order
-- would, since ids are taken before commit. The constant default fills existing rows without a
-- rewrite ('0' sorts them first, in id order); new rows get their own transaction's id.
ALTER TABLE outbox ADD COLUMN txid xid8 NOT NULL DEFAULT '0';
ALTER TABLE outbox ALTER COLUMN txid SET DEFAULT pg_current_xact_id();
CREATE INDEX outbox_txid_idx ON outbox (txid, id);

-- Events written before this migration, in the payload shape of outbox-event.ts (the same
-- expressions as pg-queries.ts, frozen here as of this version).
UPDATE outbox o SET payload = jsonb_strip_nulls(jsonb_build_object(
    'sopInstanceUid', i.sop_instance_uid, 'seriesInstanceUid', r.series_uid,
    'studyInstanceUid', s.study_uid, 'patientId', NULLIF(p.patient_id, ''),
    'sopClassUid', i.sop_class_uid, 'modality', r.modality,
    'transferSyntaxUid', i.transfer_syntax_uid, 'storeName', i.store_name, 'bucket', i.bucket,
    'key', i.object_key, 'size', i.size, 'sha256', i.sha256,
    'receivedAt', to_char(i.received_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
    'callingAeTitle', i.calling_ae))
  FROM instances i JOIN series r ON r.id = i.series_fk JOIN studies s ON s.id = r.study_fk
  JOIN patients p ON p.id = s.patient_fk
 WHERE i.sop_instance_uid = o.payload->>'sopInstanceUid' AND NOT o.payload ? 'key';

-- Per destination: the last event moved into outbox_deliveries.
CREATE TABLE outbox_cursors (
  destination text PRIMARY KEY,
  last_txid xid8 NOT NULL DEFAULT '0',
  last_id bigint NOT NULL DEFAULT 0
);

-- One row per (event, destination) once the destination's cursor passed the event. A claim sets
-- next_attempt_at to the end of its lease, so one partial index serves due rows, retries and
-- expired leases alike.
CREATE TABLE outbox_deliveries (
  id bigserial PRIMARY KEY,
  event_id bigint NOT NULL REFERENCES outbox (id) ON DELETE CASCADE,
  destination text NOT NULL,
  state text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'done', 'dead')),
  attempts integer NOT NULL DEFAULT 0,
  next_attempt_at timestamptz NOT NULL DEFAULT now(),
  last_error text,
  claimed_by text,
  claimed_until timestamptz,
  delivered_at timestamptz,
  UNIQUE (destination, event_id)
);
CREATE INDEX outbox_deliveries_due_idx ON outbox_deliveries (destination, next_attempt_at, id)
  WHERE state = 'pending';
CREATE INDEX outbox_deliveries_dead_idx ON outbox_deliveries (destination, id)
  WHERE state = 'dead';

-- Wakes the notify workers (LISTEN dicomgw_outbox). NOTIFY is sent at commit, so only for
-- events that exist; identical notifications of one transaction are folded into one.
CREATE FUNCTION outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('dicomgw_outbox', '');
  RETURN NULL;
END
$$;

CREATE TRIGGER outbox_notify AFTER INSERT ON outbox
  FOR EACH ROW EXECUTE FUNCTION outbox_notify();
