-- Storage Commitment Push Model transactions (PS3.4 J.3; src/index/commitment-transactions.ts).
-- One row per (requester AE title, Transaction UID): a repeated N-ACTION-RQ (its response was
-- lost) is the same transaction. State 'pending' until the report is delivered ('reported') or
-- given up ('abandoned'). `report` is fixed once decided, so every retry, in this process or
-- another after a restart, sends the same report. A claim moves next_attempt_at to the end of its
-- lease (as outbox_deliveries does): an expired claim is simply due again.
CREATE TABLE commitment_transactions (
  id bigserial PRIMARY KEY,
  transaction_uid text NOT NULL,
  requester_ae text NOT NULL,
  -- The AE title the requester called (ours or an alias): the calling AE title of the report.
  called_ae text NOT NULL,
  refs jsonb NOT NULL,
  state text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'reported', 'abandoned')),
  -- {committed: [{sopClassUid, sopInstanceUid}], failed: [{..., failureReason}]} once decided.
  report jsonb,
  -- PS3.4 J.3.3.1: 1 all committed, 2 with failures (set with report).
  event_type smallint CHECK (event_type IN (1, 2)),
  received_at timestamptz NOT NULL DEFAULT now(),
  deadline_at timestamptz NOT NULL,
  next_attempt_at timestamptz NOT NULL DEFAULT now(),
  -- Delivery attempts of the decided report.
  attempts integer NOT NULL DEFAULT 0,
  claimed_by text,
  claimed_until timestamptz,
  last_error text,
  reported_at timestamptz,
  UNIQUE (requester_ae, transaction_uid)
);
CREATE INDEX commitment_due_idx ON commitment_transactions (next_attempt_at, id)
  WHERE state = 'pending';
