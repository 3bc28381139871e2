-- Duplicate policy 'keep-versions': other content received for a stored SOP Instance UID is kept
-- as an object beside the first (keys.ts versionKey) and recorded here, so that every object the
-- gateway writes has a row: `verify` checks versions too, and an operator finds them by instance.
-- The instance row, its counters and the study keep describing the first content.
CREATE TABLE instance_versions (
  id bigserial PRIMARY KEY,
  instance_fk bigint NOT NULL REFERENCES instances (id) ON DELETE CASCADE,
  store_name text NOT NULL,
  object_key text NOT NULL,
  size bigint NOT NULL CHECK (size >= 0),
  sha256 text NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
  transfer_syntax_uid text NOT NULL,
  calling_ae text NOT NULL,
  called_ae text NOT NULL,
  source_address text NOT NULL,
  received_at timestamptz NOT NULL,
  -- The same content received again is the same version (its key is derived from the sha256).
  UNIQUE (instance_fk, sha256)
);
