/**
 * OutboxDeliveries on YDB (outbox-deliveries.ts has the contract). How it is kept:
 * - Event ids come from the `sequences` row 'outbox', read and moved in the transaction that
 *   writes the event. Every event writer touches that row, so YDB's serializable transactions
 *   commit them in id order: a cursor that moved past id N can never meet a smaller id later
 *   (what PostgreSQL needs txids and pg_snapshot_xmin for). The price is one hot row.
 * - claimDue is one serializable transaction: it reads the destination's cursor, the next
 *   `limit` events and the due deliveries, and writes new deliveries, the cursor and the
 *   claims (next_attempt_at moved to the end of the lease, so an expired lease is due again).
 *   Two claimers that read the same rows conflict and YDB aborts one, which runs again and
 *   sees the other's claims: a delivery is never given to two claimers at once.
 * - Times are the database's (CurrentUtcTimestamp, read at the start of the transaction).
 */
import { OUTBOX_COUNT_CAP } from './index-reports.js';
import type {
  ClaimRequest,
  Delivery,
  DeliveryCounts,
  DeliveryFailure,
  DeliveryState,
  OutboxDeliveries,
} from './outbox-deliveries.js';
import { INSTANCE_EVENT_TYPES } from './outbox-event.js';
import { typedEvent } from './pg-deliveries.js';
import { sequencesRead, sequenceValues, setSequence, upsertRows, Writes } from './ydb-events.js';
import type { YdbExec } from './ydb-exec.js';
import type { TableRef } from './ydb-schema.js';
import { date, json, num, optStr, str, ydb, type Params, type Row } from './ydb-values.js';

const LEASE_LOST = 'no answer within the lease of the last attempt';

interface Due {
  id: number;
  eventId: number;
  attempts: number;
  lastError: string | undefined;
  nextAttemptAt: Date;
  fresh: boolean;
}

export class YdbDeliveries implements Omit<OutboxDeliveries, 'onOutbox'> {
  constructor(
    private readonly db: YdbExec,
    private readonly t: TableRef,
  ) {}

  claimDue(req: ClaimRequest): Promise<Delivery[]> {
    const t = this.t;
    const types = new Set<string>(req.eventTypes ?? INSTANCE_EVENT_TYPES);
    return this.db.tx('claimDue', async (run) => {
      const destText = ydb.text(req.destination);
      const [nowRows, cursorRows, seqs] = await run(
        `SELECT CurrentUtcTimestamp() AS now;
         SELECT last_id FROM ${t('outbox_cursors')} WHERE destination = $dest;
         ${sequencesRead(t, ['deliveries'])};`,
        { dest: destText },
      );
      const now = date(nowRows?.[0]?.now);
      const lastId = num(cursorRows?.[0]?.last_id);
      const [events, due] = await run(
        `SELECT id, event_type, payload, created_at FROM ${t('outbox')}
          WHERE id > $last ORDER BY id LIMIT $limit;
         SELECT id, event_id, attempts, last_error, next_attempt_at
           FROM ${t('outbox_deliveries')} VIEW deliveries_due_idx
          WHERE destination = $dest AND state = 'pending'u AND next_attempt_at <= $now
          ORDER BY next_attempt_at, id LIMIT $limit;`,
        { dest: destText, last: ydb.int64(lastId), limit: ydb.limit(req.limit), now: ydb.ts(now) },
      );
      const w = new Writes();
      let nextId = sequenceValues(seqs).get('deliveries') ?? 0;
      const eventsById = new Map<number, Row>();
      const fresh: Due[] = [];
      for (const e of events ?? []) {
        const id = num(e.id);
        eventsById.set(id, e);
        if (!types.has(str(e.event_type))) continue;
        const createdAt = date(e.created_at);
        fresh.push({
          id: ++nextId,
          eventId: id,
          attempts: 0,
          lastError: undefined,
          nextAttemptAt: createdAt < now ? createdAt : now,
          fresh: true,
        });
      }
      const lastEvent = events?.at(-1);
      if (lastEvent) {
        w.add(`UPSERT INTO ${t('outbox_cursors')} (destination, last_id) VALUES ($dest, $last)`, {
          dest: destText,
          last: ydb.int64(num(lastEvent.id)),
        });
      }
      if (fresh.length) setSequence(w, t, 'deliveries', nextId);
      const old: Due[] = (due ?? []).map((d) => ({
        id: num(d.id),
        eventId: num(d.event_id),
        attempts: num(d.attempts),
        lastError: optStr(d.last_error),
        nextAttemptAt: date(d.next_attempt_at),
        fresh: false,
      }));
      const chosen = [...old, ...fresh]
        .sort((a, b) => a.nextAttemptAt.getTime() - b.nextAttemptAt.getTime() || a.id - b.id)
        .slice(0, req.limit);
      const chosenIds = new Set(chosen.map((d) => d.id));
      const rows: Params[] = [];
      const dest = req.destination;
      for (const d of fresh) {
        if (!chosenIds.has(d.id)) {
          rows.push(this.deliveryRow(d, dest, 'pending', 0, d.nextAttemptAt, null));
        }
      }
      const leaseEnd = new Date(now.getTime() + req.leaseMs);
      const claimed: Due[] = [];
      for (const d of chosen) {
        if (d.attempts >= req.maxAttempts) {
          const error = LEASE_LOST + (d.lastError !== undefined ? ` (before: ${d.lastError})` : '');
          const dead = { ...d, lastError: error };
          rows.push(this.deliveryRow(dead, dest, 'dead', d.attempts, d.nextAttemptAt, null));
          continue;
        }
        claimed.push({ ...d, attempts: d.attempts + 1 });
        rows.push(
          this.deliveryRow(d, dest, 'pending', d.attempts + 1, leaseEnd, req.owner, leaseEnd),
        );
      }
      upsertRows(w, t, 'outbox_deliveries', rows);
      const missing = claimed.map((d) => d.eventId).filter((id) => !eventsById.has(id));
      if (missing.length) {
        const [rows] = await run(
          `SELECT id, event_type, payload, created_at FROM ${t('outbox')} WHERE id IN $ids`,
          { ids: ydb.int64List(missing) },
        );
        for (const e of rows ?? []) eventsById.set(num(e.id), e);
      }
      if (!w.empty) await run(w.text, w.params);
      return claimed
        .sort((a, b) => a.eventId - b.eventId)
        .flatMap((d) => {
          const e = eventsById.get(d.eventId);
          return e ? [toDelivery(d, req.destination, e)] : [];
        });
    });
  }

  /** A delivery row as claimDue writes it (all its columns, so every row has the same). */
  private deliveryRow(
    d: Due,
    destination: string,
    state: DeliveryState,
    attempts: number,
    nextAttemptAt: Date,
    claimedBy: string | null,
    claimedUntil: Date | null = null,
  ): Params {
    return {
      id: ydb.int64(d.id),
      event_id: ydb.int64(d.eventId),
      destination: ydb.optText(destination),
      state: ydb.optText(state),
      attempts: ydb.optInt64(attempts),
      next_attempt_at: ydb.optTs(nextAttemptAt),
      last_error: ydb.optText(d.lastError ?? null),
      claimed_by: ydb.optText(claimedBy),
      claimed_until: ydb.optTs(claimedUntil),
    };
  }

  complete(ids: readonly number[]): Promise<number> {
    if (ids.length === 0) return Promise.resolve(0);
    const t = this.t;
    return this.db.tx('complete', async (run) => {
      const [rows] = await run(
        `SELECT id FROM ${t('outbox_deliveries')} WHERE id IN $ids AND state = 'pending'u`,
        { ids: ydb.int64List([...new Set(ids)]) },
      );
      const pending = (rows ?? []).map((r) => num(r.id));
      if (!pending.length) return 0;
      await run(
        `UPDATE ${t('outbox_deliveries')} SET state = 'done'u, delivered_at = CurrentUtcTimestamp(),
           claimed_by = NULL, claimed_until = NULL WHERE id IN $ids`,
        { ids: ydb.int64List(pending) },
      );
      return pending.length;
    });
  }

  fail(f: DeliveryFailure): Promise<DeliveryState | undefined> {
    return this.settle('fail', f.id, f.owner, (attempts) => ({
      state: attempts >= f.maxAttempts ? 'dead' : 'pending',
      error: f.error,
      next: f.retryAt,
    }));
  }

  async dead(id: number, owner: string, error: string): Promise<boolean> {
    return (await this.settle('dead', id, owner, () => ({ state: 'dead', error }))) !== undefined;
  }

  /** A claimer's answer about its own claim; undefined when the claim is no longer its own. */
  private settle(
    op: string,
    id: number,
    owner: string,
    next: (attempts: number) => { state: DeliveryState; error: string; next?: Date },
  ): Promise<DeliveryState | undefined> {
    const t = this.t;
    return this.db.tx(op, async (run) => {
      const [rows] = await run(
        `SELECT attempts, claimed_by, state FROM ${t('outbox_deliveries')} WHERE id = $id`,
        { id: ydb.int64(id) },
      );
      const r = rows?.[0];
      if (!r || r.state !== 'pending' || r.claimed_by !== owner) return undefined;
      const n = next(num(r.attempts));
      const setNext = n.next ? ', next_attempt_at = $next' : '';
      await run(
        `UPDATE ${t('outbox_deliveries')} SET state = $state, last_error = $err,
           claimed_by = NULL, claimed_until = NULL${setNext} WHERE id = $id`,
        {
          id: ydb.int64(id),
          state: ydb.text(n.state),
          err: ydb.text(n.error),
          ...(n.next ? { next: ydb.ts(n.next) } : {}),
        },
      );
      return n.state;
    });
  }

  async listDead(opts: { destination?: string; limit: number }): Promise<Delivery[]> {
    const t = this.t;
    const byDest = opts.destination !== undefined ? 'AND d.destination = $dest' : '';
    const [rows] = await this.db.read(
      'listDead',
      `SELECT d.id AS id, d.destination AS destination, d.event_id AS event_id,
          d.attempts AS attempts, d.last_error AS last_error, o.event_type AS event_type,
          o.payload AS payload, o.created_at AS created_at
         FROM ${t('outbox_deliveries')} VIEW deliveries_state_idx AS d
         JOIN ${t('outbox')} AS o ON o.id = d.event_id
        WHERE d.state = 'dead'u ${byDest}
        ORDER BY id LIMIT $limit`,
      {
        limit: ydb.limit(opts.limit),
        ...(opts.destination !== undefined ? { dest: ydb.text(opts.destination) } : {}),
      },
    );
    return (rows ?? []).map((r) =>
      toDelivery(
        {
          id: num(r.id),
          eventId: num(r.event_id),
          attempts: num(r.attempts),
          lastError: optStr(r.last_error),
        },
        str(r.destination),
        r,
      ),
    );
  }

  requeueDead(destination?: string): Promise<number> {
    const t = this.t;
    const byDest = destination !== undefined ? 'AND destination = $dest' : '';
    const params: Params = destination !== undefined ? { dest: ydb.text(destination) } : {};
    return this.db.tx('requeueDead', async (run) => {
      const [rows] = await run(
        `SELECT id FROM ${t('outbox_deliveries')} VIEW deliveries_state_idx
          WHERE state = 'dead'u ${byDest}`,
        params,
      );
      const ids = (rows ?? []).map((r) => num(r.id));
      if (!ids.length) return 0;
      await run(
        `UPDATE ${t('outbox_deliveries')} SET state = 'pending'u, attempts = 0,
           next_attempt_at = CurrentUtcTimestamp(), claimed_by = NULL, claimed_until = NULL
         WHERE id IN $ids`,
        { ids: ydb.int64List(ids) },
      );
      return ids.length;
    });
  }

  async deliveryCounts(): Promise<DeliveryCounts[]> {
    const t = this.t;
    const [cursors, counts, newest] = await this.db.read(
      'deliveryCounts',
      `SELECT destination, last_id FROM ${t('outbox_cursors')} ORDER BY destination;
       SELECT destination, state, COUNT(*) AS n FROM ${t('outbox_deliveries')}
         VIEW deliveries_state_idx
        WHERE state IN ('pending'u, 'dead'u) GROUP BY destination, state;
       SELECT MAX(id) AS max_id FROM ${t('outbox')};`,
    );
    const n = new Map(
      (counts ?? []).map((r) => [`${str(r.destination)}\0${str(r.state)}`, num(r.n)]),
    );
    const maxId = num(newest?.[0]?.max_id);
    return (cursors ?? []).map((c) => {
      const destination = str(c.destination);
      // Events not yet enqueued, counted by id (ids have no gaps but for events of other types).
      const queued = Math.max(0, maxId - num(c.last_id));
      const pending = (n.get(`${destination}\0pending`) ?? 0) + queued;
      return {
        destination,
        pending: Math.min(pending, OUTBOX_COUNT_CAP),
        pendingCapped: pending >= OUTBOX_COUNT_CAP,
        dead: n.get(`${destination}\0dead`) ?? 0,
      };
    });
  }
}

function toDelivery(
  d: { id: number; eventId: number; attempts: number; lastError: string | undefined },
  destination: string,
  e: Row,
): Delivery {
  return {
    id: d.id,
    destination,
    eventId: d.eventId,
    ...typedEvent(str(e.event_type), json(e.payload), d.eventId),
    createdAt: date(e.created_at),
    attempts: d.attempts,
    ...(d.lastError !== undefined ? { lastError: d.lastError } : {}),
  };
}
