/**
 * The worker against an in-memory OutboxDeliveries and scripted destinations: results recorded
 * per event, backoff on retry, dead on refusal and after maxAttempts, a wake-up starts a
 * delivery at once, one destination down holds back no other, and close() ends within its bound
 * even with a delivery hanging.
 */
import { setTimeout as delay } from 'node:timers/promises';
import { pino } from 'pino';
import t from 'tap';
import type {
  ClaimRequest,
  Delivery,
  DeliveryFailure,
  DeliveryState,
  OutboxDeliveries,
} from '../../src/index/outbox-deliveries.js';
import type { DeliveryResult, Destination, NotifyEvent } from '../../src/notify/destination.js';
import { NotifyWorker } from '../../src/notify/worker.js';
import type { InstanceStoredEvent } from '../../src/index/outbox-event.js';

type Row = Delivery & {
  state: DeliveryState;
  due: number;
  leasedUntil: number;
};

class FakeDeliveries implements OutboxDeliveries {
  rows: Row[] = [];
  private listeners = new Set<() => void>();
  private nextEvent = 1;
  add(destinations: string[], n: number, routedTo?: string[]): void {
    for (let i = 0; i < n; i++) {
      const eventId = this.nextEvent++;
      for (const destination of destinations) {
        this.rows.push({
          id: this.rows.length + 1,
          destination,
          eventId,
          type: 'instance.stored',
          payload: {
            sopInstanceUid: `1.2.${eventId}`,
            ...(routedTo ? { destinations: routedTo } : {}),
          } as InstanceStoredEvent,
          createdAt: new Date(),
          attempts: 0,
          state: 'pending',
          due: 0,
          leasedUntil: 0,
        });
      }
    }
    for (const l of this.listeners) l();
  }
  async claimDue(r: ClaimRequest): Promise<Delivery[]> {
    const now = Date.now();
    const got = this.rows
      .filter((x) => x.destination === r.destination && x.state === 'pending')
      .filter((x) => x.due <= now && x.leasedUntil <= now)
      .slice(0, r.limit);
    for (const x of got) {
      x.attempts++;
      x.leasedUntil = now + r.leaseMs;
    }
    return got.map((x) => ({ ...x }));
  }
  async complete(ids: readonly number[]): Promise<number> {
    for (const id of ids) this.rows[id - 1]!.state = 'done';
    return ids.length;
  }
  async fail(f: DeliveryFailure): Promise<DeliveryState | undefined> {
    const x = this.rows[f.id - 1]!;
    x.lastError = f.error;
    x.leasedUntil = 0;
    x.due = f.retryAt.getTime();
    x.state = x.attempts >= f.maxAttempts ? 'dead' : 'pending';
    return x.state;
  }
  async dead(id: number, _owner: string, error: string): Promise<boolean> {
    Object.assign(this.rows[id - 1]!, { state: 'dead', lastError: error });
    return true;
  }
  async listDead(): Promise<Delivery[]> {
    return this.rows.filter((x) => x.state === 'dead');
  }
  async requeueDead(): Promise<number> {
    return 0;
  }
  async deliveryCounts() {
    return [];
  }
  onOutbox(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
  states(destination: string): DeliveryState[] {
    return this.rows.filter((x) => x.destination === destination).map((x) => x.state);
  }
}

class Scripted implements Destination {
  readonly type = 'scripted';
  readonly events = ['instance.stored'] as const;
  calls: NotifyEvent[][] = [];
  constructor(
    readonly name: string,
    readonly maxBatch: number,
    public answer: (e: NotifyEvent) => DeliveryResult | 'hang',
  ) {}
  async deliver(events: readonly NotifyEvent[], signal: AbortSignal): Promise<DeliveryResult[]> {
    this.calls.push([...events]);
    const out: DeliveryResult[] = [];
    for (const e of events) {
      const r = this.answer(e);
      if (r === 'hang') {
        await delay(60_000, undefined, { signal });
        throw new Error('unreachable');
      }
      out.push(r);
    }
    return out;
  }
  async close(): Promise<void> {}
}

async function until(what: string, probe: () => boolean, ms = 5_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!probe()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await delay(5);
  }
}

const log = pino({ level: process.env.DBG ? 'debug' : 'silent' });
const options = {
  maxAttempts: 3,
  batchSize: 10,
  concurrency: 1,
  leaseMs: 60_000,
  pollMs: 60_000, // only wake-ups and full batches move the worker in these tests
  backoff: { initialMs: 10, maxMs: 20 },
  log,
};

t.test(
  'results per event; batches; dead on refusal; retry then dead after maxAttempts',
  async (t) => {
    const store = new FakeDeliveries();
    const dest = new Scripted('a', 4, (e) =>
      e.eventId === 2
        ? { outcome: 'dead', error: 'refused' }
        : e.eventId === 3
          ? { outcome: 'retry', error: 'later' }
          : { outcome: 'ok' },
    );
    const worker = new NotifyWorker({ ...options, deliveries: store, destinations: [dest] });
    worker.start();
    t.teardown(() => worker.close(1_000));
    store.add(['a'], 6);
    await until('every delivery settled', () => store.states('a').every((s) => s !== 'pending'));
    t.same(store.states('a'), ['done', 'dead', 'dead', 'done', 'done', 'done']);
    t.equal(store.rows[2]!.attempts, 3, 'the retried one was tried maxAttempts times');
    t.equal(store.rows[2]!.lastError, 'later');
    t.ok(
      dest.calls.every((c) => c.length <= 4),
      'no batch above the destination maxBatch',
    );
  },
);

t.test('one destination down holds back no other', async (t) => {
  const store = new FakeDeliveries();
  const down = new Scripted('down', 10, () => 'hang');
  const up = new Scripted('up', 10, () => ({ outcome: 'ok' }));
  const worker = new NotifyWorker({ ...options, deliveries: store, destinations: [down, up] });
  worker.start();
  store.add(['down', 'up'], 5);
  await until('up delivered', () => store.states('up').every((s) => s === 'done'));
  t.ok(
    store.states('down').every((s) => s === 'pending'),
    'down: still pending',
  );
  const started = Date.now();
  await worker.close(2_000);
  t.ok(Date.now() - started < 2_500, 'close ends within its bound despite a hanging delivery');
  t.ok(
    store.rows.filter((x) => x.destination === 'down').every((x) => x.due <= Date.now()),
    'the interrupted deliveries are due again at once',
  );
});

t.test('a result list of the wrong length is a retry for the whole batch', async (t) => {
  const store = new FakeDeliveries();
  const dest: Destination = {
    name: 'short',
    type: 'broken',
    events: ['instance.stored'],
    maxBatch: 10,
    deliver: async () => [],
    close: async () => {},
  };
  const worker = new NotifyWorker({ ...options, deliveries: store, destinations: [dest] });
  worker.start();
  t.teardown(() => worker.close(1_000));
  store.add(['short'], 2);
  await until('dead after maxAttempts', () => store.states('short').every((s) => s === 'dead'));
  t.match(store.rows[0]!.lastError, /answered 0 results for [12] events/);
});

t.test('an event a routing rule addressed to other destinations is done unsent', async (t) => {
  const deliveries = new FakeDeliveries();
  const a = new Scripted('a', 10, () => ({ outcome: 'ok' }));
  const b = new Scripted('b', 10, () => ({ outcome: 'ok' }));
  const w = new NotifyWorker({ ...options, deliveries, destinations: [a, b] });
  t.teardown(() => w.close(1000));
  w.start();
  deliveries.add(['a', 'b'], 2, ['b']);
  deliveries.add(['a', 'b'], 1);
  await until('every delivery done', () => deliveries.rows.every((x) => x.state === 'done'));
  t.same(
    a.calls.flat().map((e) => (e.payload as InstanceStoredEvent).sopInstanceUid),
    ['1.2.3'],
    'a: only the unrouted one',
  );
  t.same(
    b.calls.flat().map((e) => (e.payload as InstanceStoredEvent).sopInstanceUid),
    ['1.2.1', '1.2.2', '1.2.3'],
  );
});
