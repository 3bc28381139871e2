/**
 * OutboxDeliveries on PostgreSQL (schema: migrations/004_outbox_deliveries.sql). See
 * outbox-deliveries.ts for the contract; the SQL below is how it is kept:
 * - a destination's cursor row is locked FOR UPDATE SKIP LOCKED while one claimer moves events
 *   past it, so concurrent claimers never enqueue twice and never wait for each other;
 * - the events moved are those whose transaction is older than every running one, in (txid, id)
 *   order, so the cursor never passes an event that commits later;
 * - due deliveries are claimed FOR UPDATE SKIP LOCKED, and a claim moves next_attempt_at to the
 *   end of its lease: an expired lease is simply due again.
 */
import type pg from 'pg';
import { GatewayError } from '../errors.js';
import { OUTBOX_COUNT_CAP } from './index-reports.js';
import type {
  ClaimRequest,
  Delivery,
  DeliveryCounts,
  DeliveryFailure,
  DeliveryState,
  OutboxDeliveries,
  TypedEvent,
} from './outbox-deliveries.js';
import { INSTANCE_EVENT_TYPES, isInstanceEventType, parseInstanceEvent } from './outbox-event.js';
import { parseStudyStableEvent, STUDY_STABLE } from './study-event.js';
import type { PgExec } from './pg-exec.js';

/** The channel of the outbox_notify trigger (004_outbox_deliveries.sql). */
export const OUTBOX_CHANNEL = 'dicomgw_outbox';

const LOCK_CURSOR_SQL = `
SELECT last_txid::text AS last_txid, last_id FROM outbox_cursors
 WHERE destination = $1 FOR UPDATE SKIP LOCKED`;

const CREATE_CURSOR_SQL = `
INSERT INTO outbox_cursors (destination) VALUES ($1) ON CONFLICT DO NOTHING
RETURNING last_txid::text AS last_txid, last_id`;

// New deliveries are due from their event's creation, so a backlog drains oldest first. The
// cursor passes every event; only those of the destination's types ($5) become deliveries.
const ENQUEUE_SQL = `
WITH new AS (
  SELECT id, txid, created_at, event_type FROM outbox
   WHERE (txid, id) > ($2::xid8, $3::bigint) AND txid < pg_snapshot_xmin(pg_current_snapshot())
   ORDER BY txid, id LIMIT $4),
ins AS (
  INSERT INTO outbox_deliveries (event_id, destination, next_attempt_at)
  SELECT id, $1, created_at FROM new WHERE event_type = ANY($5::text[])
  ON CONFLICT (destination, event_id) DO NOTHING),
last AS (SELECT txid, id FROM new ORDER BY txid DESC, id DESC LIMIT 1)
UPDATE outbox_cursors c SET last_txid = last.txid, last_id = last.id
  FROM last WHERE c.destination = $1`;

const CLAIM_SQL = `
WITH due AS (
  SELECT id, attempts FROM outbox_deliveries
   WHERE destination = $1 AND state = 'pending' AND next_attempt_at <= now()
   ORDER BY next_attempt_at, id LIMIT $2
   FOR UPDATE SKIP LOCKED),
expired AS (
  UPDATE outbox_deliveries d SET state = 'dead', claimed_by = NULL, claimed_until = NULL,
    last_error = 'no answer within the lease of the last attempt'
      || coalesce(' (before: ' || d.last_error || ')', '')
  FROM due WHERE d.id = due.id AND due.attempts >= $5),
claimed AS (
  UPDATE outbox_deliveries d SET attempts = d.attempts + 1, claimed_by = $3,
    claimed_until = now() + $4::double precision * interval '1 millisecond',
    next_attempt_at = now() + $4::double precision * interval '1 millisecond'
  FROM due WHERE d.id = due.id AND due.attempts < $5
  RETURNING d.id, d.destination, d.event_id, d.attempts, d.last_error)
SELECT c.id, c.destination, c.event_id, c.attempts, c.last_error, o.event_type, o.payload,
  o.created_at
  FROM claimed c JOIN outbox o ON o.id = c.event_id ORDER BY c.event_id`;

const COMPLETE_SQL = `
UPDATE outbox_deliveries SET state = 'done', delivered_at = now(), claimed_by = NULL,
  claimed_until = NULL
 WHERE id = ANY($1::bigint[]) AND state = 'pending'`;

const FAIL_SQL = `
UPDATE outbox_deliveries SET state = CASE WHEN attempts >= $5 THEN 'dead' ELSE 'pending' END,
  next_attempt_at = $4, last_error = $3, claimed_by = NULL, claimed_until = NULL
 WHERE id = $1 AND claimed_by = $2 AND state = 'pending'
RETURNING state`;

const DEAD_SQL = `
UPDATE outbox_deliveries SET state = 'dead', last_error = $3, claimed_by = NULL,
  claimed_until = NULL
 WHERE id = $1 AND claimed_by = $2 AND state = 'pending'`;

const LIST_DEAD_SQL = `
SELECT d.id, d.destination, d.event_id, d.attempts, d.last_error, o.event_type, o.payload,
  o.created_at
  FROM outbox_deliveries d JOIN outbox o ON o.id = d.event_id
 WHERE d.state = 'dead' AND ($1::text IS NULL OR d.destination = $1)
 ORDER BY d.id LIMIT $2`;

const REQUEUE_SQL = `
UPDATE outbox_deliveries SET state = 'pending', attempts = 0, next_attempt_at = now(),
  claimed_by = NULL, claimed_until = NULL
 WHERE state = 'dead' AND ($1::text IS NULL OR destination = $1)`;

// Partial indexes bound each count by the backlog; the events past the cursor are capped.
const COUNTS_SQL = `
SELECT c.destination,
  (SELECT count(*) FROM outbox_deliveries d
    WHERE d.destination = c.destination AND d.state = 'pending') AS pending,
  (SELECT count(*) FROM (SELECT 1 FROM outbox o WHERE (o.txid, o.id) > (c.last_txid, c.last_id)
    LIMIT $1) x) AS queued,
  (SELECT count(*) FROM outbox_deliveries d
    WHERE d.destination = c.destination AND d.state = 'dead') AS dead
  FROM outbox_cursors c ORDER BY c.destination`;

// One batch of the retention: the next PRUNE_BATCH events in id order, those of them that are
// old enough and taken by every destination deleted (their deliveries by the cascade).
// Whether to go on: the batch was full and all of it was old. A destination whose first claim
// runs meanwhile has no cursor yet in this snapshot: its enqueue may then fail on a deleted
// event's foreign key (the claim is rolled back), and its next claim starts at the events left.
const PRUNE_SQL = `
WITH batch AS (
  SELECT id, txid, created_at FROM outbox WHERE id > $1 ORDER BY id LIMIT $2),
doomed AS (
  SELECT b.id FROM batch b
   WHERE b.created_at < $3
     AND NOT EXISTS (SELECT 1 FROM outbox_deliveries d
                      WHERE d.event_id = b.id AND d.state <> 'done')
     AND NOT EXISTS (SELECT 1 FROM outbox_cursors c
                      WHERE (b.txid, b.id) > (c.last_txid, c.last_id))),
gone AS (DELETE FROM outbox o USING doomed WHERE o.id = doomed.id RETURNING o.id)
SELECT (SELECT count(*) FROM gone) AS deleted, (SELECT count(*) FROM batch) AS scanned,
       (SELECT max(id) FROM batch)::text AS last_id,
       coalesce((SELECT bool_and(created_at < $3) FROM batch), false) AS all_old`;
const PRUNE_BATCH = 1_000;

interface DeliveryRow {
  id: string;
  destination: string;
  event_id: string;
  attempts: number;
  last_error: string | null;
  event_type: string;
  payload: unknown;
  created_at: Date;
}

export class PgDeliveries implements Omit<OutboxDeliveries, 'onOutbox'> {
  constructor(private readonly db: PgExec) {}

  claimDue(req: ClaimRequest): Promise<Delivery[]> {
    return this.db.transaction(async (client) => {
      const types = req.eventTypes ?? INSTANCE_EVENT_TYPES;
      await enqueue(client, req.destination, req.limit, types);
      const { rows } = await client.query<DeliveryRow>(CLAIM_SQL, [
        req.destination,
        req.limit,
        req.owner,
        req.leaseMs,
        req.maxAttempts,
      ]);
      return rows.map(toDelivery);
    }, 'claimDue');
  }

  async complete(ids: readonly number[]): Promise<number> {
    if (ids.length === 0) return 0;
    const { rowCount } = await this.db.query(COMPLETE_SQL, [ids], 'complete');
    return rowCount ?? 0;
  }

  async fail(f: DeliveryFailure): Promise<DeliveryState | undefined> {
    const { rows } = await this.db.query<{ state: DeliveryState }>(
      FAIL_SQL,
      [f.id, f.owner, f.error, f.retryAt, f.maxAttempts],
      'fail',
    );
    return rows[0]?.state;
  }

  async dead(id: number, owner: string, error: string): Promise<boolean> {
    const { rowCount } = await this.db.query(DEAD_SQL, [id, owner, error], 'dead');
    return (rowCount ?? 0) > 0;
  }

  async listDead(opts: { destination?: string; limit: number }): Promise<Delivery[]> {
    const { rows } = await this.db.query<DeliveryRow>(
      LIST_DEAD_SQL,
      [opts.destination ?? null, opts.limit],
      'listDead',
    );
    return rows.map(toDelivery);
  }

  async requeueDead(destination?: string): Promise<number> {
    const { rowCount } = await this.db.query(REQUEUE_SQL, [destination ?? null], 'requeueDead');
    return rowCount ?? 0;
  }

  async pruneEvents(before: Date): Promise<number> {
    let after = '0';
    let deleted = 0;
    for (;;) {
      const { rows } = await this.db.query<{
        deleted: string;
        scanned: string;
        last_id: string | null;
        all_old: boolean;
      }>(PRUNE_SQL, [after, PRUNE_BATCH, before], 'pruneEvents');
      const r = rows[0]!;
      deleted += Number(r.deleted);
      if (!r.all_old || Number(r.scanned) < PRUNE_BATCH || r.last_id === null) return deleted;
      after = r.last_id;
    }
  }

  async deliveryCounts(): Promise<DeliveryCounts[]> {
    const { rows } = await this.db.query<{
      destination: string;
      pending: string;
      queued: string;
      dead: string;
    }>(COUNTS_SQL, [OUTBOX_COUNT_CAP], 'deliveryCounts');
    return rows.map((r) => {
      const pending = Number(r.pending) + Number(r.queued);
      return {
        destination: r.destination,
        pending: Math.min(pending, OUTBOX_COUNT_CAP),
        pendingCapped: pending >= OUTBOX_COUNT_CAP,
        dead: Number(r.dead),
      };
    });
  }
}

/**
 * Moves up to `limit` events past the destination's cursor into deliveries. Skipped while
 * another claimer holds the cursor: it is doing the same, and its rows are claimable once it
 * commits.
 */
async function enqueue(
  client: pg.PoolClient,
  destination: string,
  limit: number,
  types: readonly string[],
): Promise<void> {
  type Cursor = { last_txid: string; last_id: string };
  let cursor = (await client.query<Cursor>(LOCK_CURSOR_SQL, [destination])).rows[0];
  // First claim for this destination: a new cursor, at the start of the outbox.
  cursor ??= (await client.query<Cursor>(CREATE_CURSOR_SQL, [destination])).rows[0];
  if (!cursor) return;
  await client.query(ENQUEUE_SQL, [destination, cursor.last_txid, cursor.last_id, limit, types]);
}

/** An outbox row's type and payload, checked. */
export function typedEvent(type: string, payload: unknown, eventId: number): TypedEvent {
  if (isInstanceEventType(type)) return { type, payload: parseInstanceEvent(payload, eventId) };
  if (type === STUDY_STABLE) return { type, payload: parseStudyStableEvent(payload, eventId) };
  throw new GatewayError('GW_ERR_INTERNAL', `outbox event ${eventId}: unknown type ${type}`);
}

function toDelivery(r: DeliveryRow): Delivery {
  const eventId = Number(r.event_id);
  return {
    id: Number(r.id),
    destination: r.destination,
    eventId,
    ...typedEvent(r.event_type, r.payload, eventId),
    createdAt: r.created_at,
    attempts: r.attempts,
    ...(r.last_error !== null ? { lastError: r.last_error } : {}),
  };
}
