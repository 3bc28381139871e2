/**
 * The InstanceIndex contract, continued: the read-only reports (summary, stored objects) and the
 * outbox deliveries the notify worker relies on. Each test runs on a database of its own (the
 * harness's emptyDatabase), so counts and claims see only what the test wrote.
 */
import type { Test } from 'tap';
import type { InstanceIndex } from '../../src/index/instance-index.js';
import type { Delivery } from '../../src/index/outbox-deliveries.js';
import { makeRecord, sha, type IndexHarness } from './index-contract.js';

/** Every wait in these tests is bounded by this. */
const WAIT_MS = 10_000;

/** Migrated indexes, all on one new database (closed at the end of the test). */
async function fresh(t: Test, h: IndexHarness, n = 1): Promise<InstanceIndex[]> {
  const make = await h.emptyDatabase();
  const all = Array.from({ length: n }, make);
  t.teardown(() => Promise.all(all.map((ix) => ix.close())));
  await all[0]!.migrate();
  return all;
}

async function recordStored(ix: InstanceIndex, n: number): Promise<string[]> {
  const sops: string[] = [];
  for (let i = 0; i < n; i++) {
    const r = makeRecord();
    await ix.recordInstance(r);
    sops.push(r.attributes.sopInstanceUid);
  }
  return sops;
}

const claim = (
  ix: InstanceIndex,
  destination: string,
  over: { limit?: number; leaseMs?: number; owner?: string; maxAttempts?: number } = {},
): Promise<Delivery[]> =>
  ix.claimDue({ destination, limit: 100, leaseMs: 60_000, owner: 'w1', maxAttempts: 5, ...over });

function within<T>(p: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no ${what} within ${WAIT_MS} ms`)), WAIT_MS);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

export function reportsContract(tap: Test, h: IndexHarness): void {
  tap.test(
    'summary: counts, pending uploads, outbox backlog, last study per calling AE',
    async (t) => {
      const [ix] = await fresh(t, h);
      t.match(await ix!.summary(), {
        studies: 0,
        instances: 0,
        pendingUpload: 0,
        outboxPending: 0,
        outboxPendingCapped: false,
        lastStudyByCallingAe: [],
      });
      const a = makeRecord({}, { callingAeTitle: 'CT1', size: 100 });
      const same = { studyInstanceUid: a.attributes.studyInstanceUid };
      const b = makeRecord(same, { callingAeTitle: 'CT1', size: 200, state: 'pending-upload' });
      const c = makeRecord({ modality: 'MR', studyDate: undefined }, { callingAeTitle: 'MR1' });
      for (const r of [a, b, c]) await ix!.recordInstance(r);
      const s = await ix!.summary();
      t.match(s, {
        studies: 2,
        series: 3,
        instances: 3,
        bytes: 1300,
        pendingUpload: 1,
        // Two events (a and c), but no destination reads the outbox: no backlog.
        outboxPending: 0,
        outboxPendingCapped: false,
      });
      t.equal((await ix!.instanceEvents(10)).length, 2, 'two events in the outbox');
      // A destination claims one: one in flight, one not yet enqueued; each destination counts.
      const [first] = await claim(ix!, 'd1', { limit: 1 });
      t.same(
        await ix!.outboxPending(),
        { count: 2, capped: false },
        'd1: one in flight, one queued',
      );
      await claim(ix!, 'd2', { limit: 1 });
      t.same(await ix!.outboxPending(), { count: 4, capped: false }, 'd2: the same two');
      await ix!.complete([first!.id]);
      t.same(await ix!.outboxPending(), { count: 3, capped: false }, 'a delivery done leaves it');
      t.match(s.lastStudyByCallingAe, [
        { callingAeTitle: 'CT1', studyInstanceUid: same.studyInstanceUid, studyDate: '2024-01-31' },
        { callingAeTitle: 'MR1', modalities: ['MR'], instances: 1 },
      ]);
      t.notOk('studyDate' in s.lastStudyByCallingAe[1]!, 'no Study Date, none reported');
    },
  );

  tap.test('storedObjects: stored instances then versions, filtered, counted', async (t) => {
    const [ix] = await fresh(t, h);
    const a = makeRecord({ studyDate: '20240110' }, { size: 10 });
    const b = makeRecord({ studyDate: '20240220' }, { size: 20 });
    const pending = makeRecord({ studyDate: '20240110' }, { state: 'pending-upload' });
    for (const r of [a, b, pending]) await ix!.recordInstance(r);
    const version = { ...a, objectKey: a.objectKey + '.v', sha256: sha(), size: 11 };
    await ix!.recordVersion(version);
    const list = async (f: Parameters<InstanceIndex['storedObjects']>[0]) => {
      const keys: string[] = [];
      for await (const o of ix!.storedObjects(f)) keys.push(o.objectKey);
      return keys;
    };
    t.same(await list({}), [a.objectKey, b.objectKey, version.objectKey], 'pending left out');
    t.same(await ix!.countStoredObjects({}), { objects: 3, bytes: 41 });
    t.same(await list({ studyInstanceUid: b.attributes.studyInstanceUid }), [b.objectKey]);
    t.same(await list({ from: '2024-01-01', to: '2024-01-31' }), [a.objectKey, version.objectKey]);
    t.same(await ix!.countStoredObjects({ from: '2024-02-01' }), { objects: 1, bytes: 20 });
    t.same(await list({ from: '2025-01-01' }), []);
    const first = (await ix!.storedObjects({})[Symbol.asyncIterator]().next()).value;
    t.same(first, {
      sopInstanceUid: a.attributes.sopInstanceUid,
      storeName: 's3:dicom',
      objectKey: a.objectKey,
      size: 10,
      sha256: a.sha256,
    });
  });
}

/** The SOP Instance UID of an instance event's delivery. */
function sopOf(d: Delivery): string | undefined {
  return d.type === 'study.stable' ? undefined : d.payload.sopInstanceUid;
}

export function deliveriesContract(tap: Test, h: IndexHarness): void {
  tap.test('claim, complete: each destination gets every stored event once', async (t) => {
    const [ix] = await fresh(t, h);
    const sops = await recordStored(ix!, 5);
    await ix!.recordInstance(makeRecord({}, { state: 'pending-upload' })); // no event yet
    const got = await claim(ix!, 'orthanc', { limit: 3 });
    t.same(
      got.map((d) => sopOf(d)),
      sops.slice(0, 3),
      'oldest first, up to the limit',
    );
    t.match(got[0], { destination: 'orthanc', type: 'instance.stored', attempts: 1 });
    t.notOk('lastError' in got[0]!);
    t.same(
      (await claim(ix!, 'orthanc')).map((d) => sopOf(d)),
      sops.slice(3),
      'the rest; the claimed ones are leased',
    );
    t.equal(await ix!.complete(got.map((d) => d.id)), 3);
    t.equal(await ix!.complete(got.map((d) => d.id)), 0, 'completing twice changes nothing');
    // Another destination is independent of the first one's progress.
    const webhook = await claim(ix!, 'webhook');
    t.same(
      webhook.map((d) => sopOf(d)),
      sops,
    );
    t.same(await ix!.deliveryCounts(), [
      { destination: 'orthanc', pending: 2, pendingCapped: false, dead: 0 },
      { destination: 'webhook', pending: 5, pendingCapped: false, dead: 0 },
    ]);
    const later = await recordStored(ix!, 1);
    t.same(
      (await claim(ix!, 'orthanc')).map((d) => sopOf(d)),
      later,
      'only the new event: done and leased ones are not claimed again',
    );
  });

  tap.test('two claimers at once never get the same event for one destination', async (t) => {
    const [a, b] = await fresh(t, h, 2);
    const sops = await recordStored(a!, 40);
    // Enqueue all 40 and let their leases run out at once, so both claimers meet 40 due rows.
    t.equal((await claim(a!, 'dest', { leaseMs: 0 })).length, 40);
    const seen: Array<{ owner: string; sop: string }> = [];
    const worker = async (ix: InstanceIndex, owner: string): Promise<void> => {
      // Bounded: 40 deliveries in batches of 3 need at most 14 non-empty claims.
      for (let round = 0; round < 60 && seen.length < sops.length; round++) {
        const got = await claim(ix, 'dest', { limit: 3, owner });
        for (const d of got) seen.push({ owner, sop: sopOf(d) ?? '' });
        await ix.complete(got.map((d) => d.id));
      }
    };
    await Promise.all([worker(a!, 'a'), worker(b!, 'b')]);
    const sopsSeen = seen.map((s) => s.sop);
    t.equal(new Set(sopsSeen).size, sopsSeen.length, 'no event claimed twice');
    t.same([...sopsSeen].sort(), [...sops].sort(), 'every event claimed');
    t.same(await claim(a!, 'dest'), [], 'nothing left');
  });

  tap.test('a lease holds until it runs out, then another claimer takes over', async (t) => {
    const [ix] = await fresh(t, h);
    await recordStored(ix!, 1);
    const [held] = await claim(ix!, 'd', { owner: 'w1', leaseMs: 60_000 });
    t.ok(held);
    t.same(await claim(ix!, 'd', { owner: 'w2' }), [], 'leased: not given to another');
    t.equal(await ix!.fail({ ...failure(held!.id, 'w2'), error: 'not mine' }), undefined);
    // A lease of 0 ms has run out by the next claim: the claimer "died" without an answer.
    const [short] = await claim(ix!, 'e', { owner: 'w1', leaseMs: 0 });
    const [again] = await claim(ix!, 'e', { owner: 'w2' });
    t.equal(again?.id, short?.id, 'expired lease: claimed again');
    t.equal(again?.attempts, 2, 'the lost attempt counts');
    t.equal(
      await ix!.fail(failure(short!.id, 'w1')),
      undefined,
      'the first owner no longer holds it: its failure changes nothing',
    );
    t.equal(await ix!.complete([again!.id]), 1, 'the new owner completes it');
  });

  tap.test('fail: due again at retryAt, dead after maxAttempts; requeue', async (t) => {
    const [ix] = await fresh(t, h);
    const [, sop] = await recordStored(ix!, 2);
    const [later, soon] = await claim(ix!, 'd', { maxAttempts: 2 });
    const hourAhead = new Date(Date.now() + 3_600_000);
    t.equal(await ix!.fail({ ...failure(later!.id), retryAt: hourAhead }), 'pending');
    // A retryAt already past stands for a backoff that has elapsed (no waiting in the test).
    t.equal(await ix!.fail({ ...failure(soon!.id), maxAttempts: 2 }), 'pending');
    const retried = await claim(ix!, 'd', { maxAttempts: 2 });
    t.match(retried, [{ id: soon!.id, attempts: 2, lastError: 'boom' }], 'only the due one');
    t.match(await ix!.deliveryCounts(), [{ destination: 'd', pending: 2, dead: 0 }]);
    t.equal(await ix!.fail({ ...failure(soon!.id), maxAttempts: 2 }), 'dead', 'last attempt');
    t.same(await claim(ix!, 'd'), [], 'dead: not claimed');
    const dead = await ix!.listDead({ destination: 'd', limit: 10 });
    t.match(dead, [{ id: soon!.id, attempts: 2, lastError: 'boom', destination: 'd' }]);
    t.equal(dead[0] && sopOf(dead[0]), sop);
    t.same(await ix!.listDead({ destination: 'other', limit: 10 }), []);
    t.match(await ix!.deliveryCounts(), [{ destination: 'd', pending: 1, dead: 1 }]);
    t.equal(await ix!.requeueDead('other'), 0);
    t.equal(await ix!.requeueDead('d'), 1);
    t.match(await claim(ix!, 'd'), [{ id: soon!.id, attempts: 1 }], 'requeued: attempts reset');
  });

  tap.test(
    'dead(): a refused event goes straight to dead; so does an expired last lease',
    async (t) => {
      const [ix] = await fresh(t, h);
      await recordStored(ix!, 2);
      const [a, b] = await claim(ix!, 'd', { maxAttempts: 1, leaseMs: 0 });
      t.equal(await ix!.dead(a!.id, 'w2', 'refused'), false, 'not the owner');
      t.equal(await ix!.dead(a!.id, 'w1', 'HTTP 400'), true);
      // b's only allowed attempt ran out without an answer: the next claim buries it.
      t.same(await claim(ix!, 'd', { maxAttempts: 1 }), []);
      const dead = await ix!.listDead({ limit: 10 });
      t.same(
        dead.map((d) => d.id),
        [a!.id, b!.id],
      );
      t.equal(dead[0]?.lastError, 'HTTP 400');
      t.match(dead[1]?.lastError, /lease/);
      t.equal(await ix!.requeueDead(), 2);
    },
  );

  tap.test('pruneEvents: only old events that every destination has taken', async (t) => {
    const [ix] = await fresh(t, h);
    if (!ix!.pruneEvents) return void t.pass('this backend does not prune its outbox');
    const prune = ix!.pruneEvents.bind(ix);
    const sops = await recordStored(ix!, 4);
    // `before` falls after the fourth event: a fifth written after it is too young.
    const events = await ix!.instanceEvents(10);
    const before = new Date(events[3]!.createdAt.getTime() + 1);
    while (Date.now() <= before.getTime()) await new Promise((r) => setImmediate(r));
    sops.push(...(await recordStored(ix!, 1)));
    t.ok((await ix!.instanceEvents(10))[4]!.createdAt >= before, 'the fifth is younger');

    // d1 takes all five: done but the third (failed, due again later).
    const d1 = await claim(ix!, 'd1');
    const hourAhead = new Date(Date.now() + 3_600_000);
    t.equal(await ix!.fail({ ...failure(d1[2]!.id), retryAt: hourAhead }), 'pending');
    await ix!.complete([0, 1, 3, 4].map((i) => d1[i]!.id));
    // d2 takes the first three (its cursor stops there): the second refused (dead).
    const d2 = await claim(ix!, 'd2', { limit: 3 });
    t.equal(await ix!.dead(d2[1]!.id, 'w1', 'HTTP 400'), true);
    await ix!.complete([d2[0]!.id, d2[2]!.id]);

    t.equal(await prune(before), 1, 'one event deleted');
    const left = (await ix!.instanceEvents(10)).map((e) => e.payload.sopInstanceUid);
    // Kept: a dead delivery (for notify retry), a pending one, one d2 has not taken, a new one.
    t.same(left, sops.slice(1), 'the first went; the others stay');
    t.match(await ix!.deliveryCounts(), [
      { destination: 'd1', pending: 1, dead: 0 },
      { destination: 'd2', pending: 2, dead: 1 },
    ]);
    t.equal(await prune(before), 0, 'nothing more to delete');

    // The dead one retried and d2 catches up: both events go at the next prune.
    t.equal(await ix!.requeueDead('d2'), 1);
    const rest = await claim(ix!, 'd2');
    t.same(rest.map(sopOf).sort(), [sops[1], sops[3], sops[4]].sort());
    await ix!.complete(rest.map((d) => d.id));
    t.equal(await prune(before), 2, 'the retried one and the one d2 has now taken');
    t.same(
      (await ix!.instanceEvents(10)).map((e) => e.payload.sopInstanceUid),
      [sops[2], sops[4]],
      'kept: the one d1 still owes, the new one',
    );
    t.same(await ix!.listDead({ limit: 10 }), [], 'its deliveries went with it');
  });

  tap.test('pruneEvents: with no destination, every old event goes', async (t) => {
    const [ix] = await fresh(t, h);
    if (!ix!.pruneEvents) return void t.pass('this backend does not prune its outbox');
    await recordStored(ix!, 3);
    t.equal(await ix!.pruneEvents(new Date(Date.now() + 60_000)), 3);
    t.same(await ix!.instanceEvents(10), []);
    t.same(await ix!.outboxPending(), { count: 0, capped: false });
  });

  tap.test('onOutbox: called once listening, then when events are written', async (t) => {
    const [ix] = await fresh(t, h);
    let wake: () => void = () => undefined;
    const next = (): Promise<void> => new Promise<void>((resolve) => (wake = resolve));
    let woken = next();
    const off = ix!.onOutbox(() => wake());
    t.teardown(off);
    await within(woken, 'call once listening');
    woken = next();
    await recordStored(ix!, 1);
    await within(woken, 'wake-up after an event');
    t.equal((await claim(ix!, 'd')).length, 1, 'the event is claimable when woken');
    woken = next();
    const r = makeRecord({}, { state: 'pending-upload' });
    await ix!.recordInstance(r);
    await ix!.markStored(r.attributes.sopInstanceUid);
    await within(woken, 'wake-up after markStored');
    off();
  });
}

/** A failed attempt whose retry is due at once (retryAt in the past). */
function failure(id: number, owner = 'w1') {
  return { id, owner, error: 'boom', retryAt: new Date(Date.now() - 1_000), maxAttempts: 5 };
}
