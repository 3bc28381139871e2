/**
 * The InstanceIndex contract for stable studies (src/index/stable-studies.ts): a study is
 * announced once per quiet period, whichever caller sweeps; an instance event re-opens it; an
 * instance pending upload holds it back. Each test runs on a database of its own.
 */
import type { Test } from 'tap';
import type { InstanceIndex } from '../../src/index/instance-index.js';
import type { Delivery } from '../../src/index/outbox-deliveries.js';
import { makeRecord, type IndexHarness } from './index-contract.js';

async function fresh(t: Test, h: IndexHarness, n = 1): Promise<InstanceIndex[]> {
  const make = await h.emptyDatabase();
  const all = Array.from({ length: n }, make);
  t.teardown(() => Promise.all(all.map((ix) => ix.close())));
  await all[0]!.migrate();
  return all;
}

/** The study.stable events a destination taking only them is given. */
const stableEvents = async (ix: InstanceIndex): Promise<Delivery[]> => {
  const got = await ix.claimDue({
    destination: 'studies',
    limit: 100,
    leaseMs: 60_000,
    owner: 'w',
    maxAttempts: 5,
    eventTypes: ['study.stable'],
  });
  await ix.complete(got.map((d) => d.id));
  return got;
};

export function stableStudiesContract(tap: Test, h: IndexHarness): void {
  tap.test('stable studies: once per quiet period, re-opened by a later instance', async (t) => {
    const [ix] = await fresh(t, h);
    const a = makeRecord();
    const study = { studyInstanceUid: a.attributes.studyInstanceUid };
    await ix!.recordInstance(a);
    await ix!.recordInstance(makeRecord(study));
    const early = await ix!.emitStableStudies(60_000, 10);
    t.equal(early.emitted, 0, 'not quiet long enough');
    t.ok(early.nextDueMs! > 0 && early.nextDueMs! <= 60_000, `due in ${early.nextDueMs} ms`);
    t.match(await ix!.emitStableStudies(0, 10), { emitted: 1 });
    t.match(await ix!.emitStableStudies(0, 10), { emitted: 0 }, 'announced once');
    const [first, ...more] = await stableEvents(ix!);
    t.same(more, []);
    t.match(first, {
      type: 'study.stable',
      payload: { ...study, numberOfInstances: 2, numberOfSeries: 2, stableCount: 1 },
    });
    const p = first!.type === 'study.stable' ? first!.payload : undefined;
    t.ok(Date.parse(p!.stableAt) >= Date.parse(p!.lastInstanceAt));
    const instanceOnly = await ix!.claimDue({
      destination: 'orthanc',
      limit: 100,
      leaseMs: 60_000,
      owner: 'w',
      maxAttempts: 5,
    });
    t.same(
      instanceOnly.map((d) => d.type),
      ['instance.stored', 'instance.stored'],
      'a destination taking instance events is not given study.stable',
    );

    await ix!.recordInstance(makeRecord(study));
    t.match(await ix!.emitStableStudies(0, 10), { emitted: 1 }, 're-opened');
    t.match(await stableEvents(ix!), [
      { payload: { ...study, numberOfInstances: 3, stableCount: 2 } },
    ]);
  });

  tap.test('stable studies: an instance pending upload holds its study back', async (t) => {
    const [ix] = await fresh(t, h);
    const pending = makeRecord({}, { state: 'pending-upload' });
    const study = { studyInstanceUid: pending.attributes.studyInstanceUid };
    await ix!.recordInstance(pending);
    await ix!.recordInstance(makeRecord(study));
    t.match(await ix!.emitStableStudies(0, 10), { emitted: 0 }, 'one instance still in a spool');
    await ix!.markStored(pending.attributes.sopInstanceUid);
    t.match(await ix!.emitStableStudies(0, 10), { emitted: 1 }, 'announced once uploaded');
    t.match(await stableEvents(ix!), [{ payload: { ...study, numberOfInstances: 2 } }]);
  });

  tap.test('stable studies: concurrent sweepers announce each study once', async (t) => {
    const all = await fresh(t, h, 3);
    const uids = new Set<string>();
    for (let i = 0; i < 30; i++) {
      const r = makeRecord();
      uids.add(r.attributes.studyInstanceUid);
      await all[0]!.recordInstance(r);
    }
    const sweep = async (ix: InstanceIndex): Promise<number> => {
      let n = 0;
      for (let round = 0; round < 50; round++) {
        const s = await ix.emitStableStudies(0, 2);
        n += s.emitted;
        if (s.emitted === 0) return n;
      }
      throw new Error('still emitting after 50 sweeps');
    };
    // Connected first, so that the sweeps overlap.
    await Promise.all(all.map((ix) => Promise.all([ix.ping(), ix.ping(), ix.ping()])));
    const counts = await Promise.all(all.map(sweep));
    t.equal(
      counts.reduce((a, b) => a + b, 0),
      30,
      `30 studies announced in all (${counts.join(' + ')})`,
    );
    const events = await stableEvents(all[0]!);
    t.equal(events.length, 30);
    t.same(
      new Set(events.map((e) => (e.type === 'study.stable' ? e.payload.studyInstanceUid : ''))),
      uids,
      'each study once',
    );
  });

  tap.test('stable studies: due, deferred, and announced only when listed', async (t) => {
    const [ix] = await fresh(t, h);
    const a = makeRecord();
    const b = makeRecord();
    const uidA = a.attributes.studyInstanceUid;
    const uidB = b.attributes.studyInstanceUid;
    await ix!.recordInstance(a);
    await ix!.recordInstance(b);
    t.same(await ix!.dueStableStudies(60_000, 10), [], 'not quiet yet');
    t.same((await ix!.dueStableStudies(0, 10)).sort(), [uidA, uidB].sort(), 'both due');
    t.same(await ix!.dueStableStudies(0, 1), [uidA], 'longest quiet first, up to the limit');
    t.match(await ix!.emitStableStudies(0, 10, [uidB]), { emitted: 1 }, 'only the listed one');
    t.same(await ix!.dueStableStudies(0, 10), [uidA]);
    await ix!.deferStableStudy(uidA, 60_000);
    t.same(await ix!.dueStableStudies(0, 10), [], 'deferred: not due');
    t.match(await ix!.emitStableStudies(0, 10), { emitted: 0 }, 'nor announced');
    await ix!.recordInstance(makeRecord({ studyInstanceUid: uidA }));
    t.same(await ix!.dueStableStudies(0, 10), [uidA], 'a new instance ends the wait');
    await ix!.deferStableStudy(uidA, 0);
    t.match(await ix!.emitStableStudies(0, 10, [uidA]), { emitted: 1 }, 'due again after it');
    t.match(await stableEvents(ix!), [
      { payload: { studyInstanceUid: uidB } },
      { payload: { studyInstanceUid: uidA, numberOfInstances: 2 } },
    ]);
  });
}
