/**
 * The InstanceIndex contract: one suite that talks only to the interface and a small harness,
 * so that every backend (PgIndex, YdbIndex) runs it unchanged. The ingest side is here; reports
 * and outbox deliveries are in index-contract-outbox.ts, run from indexContract. A harness that
 * cannot stop its backend or make the outbox write fail leaves those hooks out, and the tests
 * that need them are skipped with the reason.
 */
import { randomBytes } from 'node:crypto';
import type { Test } from 'tap';
import { isGatewayError } from '../../src/errors.js';
import type { InstanceIndex, InstanceRecord } from '../../src/index/instance-index.js';
import type { InstanceStoredEvent } from '../../src/index/outbox-event.js';
import { deliveriesContract, reportsContract } from './index-contract-outbox.js';
import { stableStudiesContract } from './index-contract-stable.js';

export interface IndexHarness {
  /** A migrated index on the shared backend (closed by the harness). */
  open(): Promise<InstanceIndex>;
  /** Factories of unmigrated indexes on a new, empty database. */
  emptyDatabase(): Promise<() => InstanceIndex>;
  /** Stop and start the server (absent: the test of an unreachable backend is skipped). */
  backend?: { stop(): Promise<void>; start(): Promise<void> };
  /**
   * Makes the outbox write for this SOP Instance UID fail inside its transaction; returns the
   * undo (absent: the atomicity test is skipped).
   */
  failOutboxFor?(sopInstanceUid: string): Promise<() => Promise<void>>;
  duplicatesReceived(sopInstanceUid: string): Promise<number>;
  /** How fast a call must fail while the backend is down. */
  unavailableWithinMs: number;
}

export const uid = (): string => `2.25.${BigInt('0x' + randomBytes(15).toString('hex'))}`;
export const sha = (): string => randomBytes(32).toString('hex');

export function makeRecord(
  over: Partial<InstanceRecord['attributes']> = {},
  rec: Partial<InstanceRecord> = {},
): InstanceRecord {
  const attributes = {
    patientId: 'PID-' + randomBytes(4).toString('hex'),
    patientName: 'DOE^JOHN',
    patientBirthDate: '19700101',
    patientSex: 'M',
    studyInstanceUid: uid(),
    studyDate: '20240131',
    studyTime: '101500',
    accessionNumber: 'ACC1',
    studyDescription: 'CT HEAD',
    seriesInstanceUid: uid(),
    modality: 'CT',
    seriesNumber: 1,
    sopClassUid: '1.2.840.10008.5.1.4.1.1.2',
    sopInstanceUid: uid(),
    instanceNumber: 1,
    rows: 512,
    columns: 512,
    ...over,
  };
  return {
    attributes,
    transferSyntaxUid: '1.2.840.10008.1.2.1',
    storeName: 's3:dicom',
    bucket: 'dicom',
    objectKey: `studies/${attributes.studyInstanceUid}/series/${attributes.seriesInstanceUid}/instances/${attributes.sopInstanceUid}.dcm`,
    size: 1000,
    sha256: sha(),
    callingAeTitle: 'MODALITY',
    calledAeTitle: 'DICOMGW',
    sourceAddress: '127.0.0.1',
    receivedAt: new Date(),
    state: 'stored',
    ...rec,
  };
}

/** The payload of a record's event (makeRecord's: in an S3 store, with patient and modality). */
export function expectedEvent(r: InstanceRecord): InstanceStoredEvent {
  const a = r.attributes;
  return {
    sopInstanceUid: a.sopInstanceUid,
    seriesInstanceUid: a.seriesInstanceUid,
    studyInstanceUid: a.studyInstanceUid,
    patientId: a.patientId!,
    sopClassUid: a.sopClassUid,
    modality: a.modality!,
    transferSyntaxUid: r.transferSyntaxUid,
    storeName: r.storeName,
    bucket: r.bucket!,
    key: r.objectKey,
    size: r.size,
    sha256: r.sha256,
    receivedAt: r.receivedAt.toISOString(),
    callingAeTitle: r.callingAeTitle,
  };
}

export async function eventsFor(index: InstanceIndex, sopInstanceUid: string): Promise<number> {
  const events = await index.instanceEvents(100_000);
  return events.filter(
    (e) => e.type === 'instance.stored' && e.payload.sopInstanceUid === sopInstanceUid,
  ).length;
}

export function indexContract(tap: Test, h: IndexHarness): void {
  tap.test('insert: study, series and patient aggregates', async (t) => {
    const ix = await h.open();
    const a = makeRecord({}, { size: 100, receivedAt: new Date('2024-02-01T10:00:00Z') });
    const study = {
      studyInstanceUid: a.attributes.studyInstanceUid,
      patientId: a.attributes.patientId,
    };
    const b = makeRecord(
      { ...study, seriesInstanceUid: a.attributes.seriesInstanceUid, instanceNumber: 2 },
      { size: 200, receivedAt: new Date('2024-02-01T10:00:01Z') },
    );
    const c = makeRecord(
      { ...study, modality: 'SR', seriesNumber: 2, accessionNumber: undefined },
      { size: 300, receivedAt: new Date('2024-02-01T10:00:02Z') },
    );
    for (const r of [a, b, c]) t.same(await ix.recordInstance(r), { kind: 'inserted' });
    const s = await ix.getStudy(study.studyInstanceUid);
    t.match(s, {
      studyInstanceUid: study.studyInstanceUid,
      patientId: study.patientId,
      patientName: 'DOE^JOHN',
      studyDate: '20240131',
      accessionNumber: 'ACC1',
      studyDescription: 'CT HEAD',
      modalitiesInStudy: ['CT', 'SR'],
      numberOfSeries: 2,
      numberOfInstances: 3,
      totalBytes: 600,
    });
    t.equal(s?.firstReceivedAt.toISOString(), '2024-02-01T10:00:00.000Z');
    t.equal(s?.lastReceivedAt.toISOString(), '2024-02-01T10:00:02.000Z');
    const list = await ix.listInstances(study.studyInstanceUid);
    t.same(
      list.map((i) => i.sopInstanceUid),
      [a, b, c].map((r) => r.attributes.sopInstanceUid),
      'listed by series number, then instance number',
    );
    t.same(await ix.findInstance(c.attributes.sopInstanceUid), {
      sopInstanceUid: c.attributes.sopInstanceUid,
      studyInstanceUid: study.studyInstanceUid,
      seriesInstanceUid: c.attributes.seriesInstanceUid,
      storeName: 's3:dicom',
      objectKey: c.objectKey,
      size: 300,
      sha256: c.sha256,
      state: 'stored',
    });
    t.equal(await ix.findInstance(uid()), undefined);
    t.equal(await ix.getStudy(uid()), undefined);
    for (const r of [a, b, c])
      t.equal(await eventsFor(ix, r.attributes.sopInstanceUid), 1, 'one event each');
  });

  tap.test('the event payload: typed, with bucket and key as fields', async (t) => {
    const ix = await h.open();
    const r = makeRecord({}, { receivedAt: new Date('2024-02-01T10:00:00.123Z') });
    const local = makeRecord(
      { patientId: undefined, modality: undefined },
      {
        storeName: 'fs',
        bucket: undefined,
      },
    );
    await ix.recordInstance(r);
    await ix.recordInstance(local);
    const events = await ix.instanceEvents(100_000);
    const a = r.attributes;
    const payload = events.find((e) => e.payload.sopInstanceUid === a.sopInstanceUid)?.payload;
    t.same(payload, expectedEvent(r));
    t.equal(payload?.receivedAt, '2024-02-01T10:00:00.123Z', 'as Date.toISOString() writes it');
    const l = events.find((e) => e.payload.sopInstanceUid === local.attributes.sopInstanceUid);
    t.equal(l?.type, 'instance.stored');
    t.notOk(l && 'bucket' in l.payload, 'a local store has no bucket');
    t.notOk(l && 'patientId' in l.payload, 'absent values are left out');
    t.notOk(l && 'modality' in l.payload);
  });

  tap.test('pending-upload: no event until markStored, exactly one after', async (t) => {
    const ix = await h.open();
    const r = makeRecord({}, { state: 'pending-upload', pendingOwner: 'host:/spool' });
    t.same(await ix.recordInstance(r), { kind: 'inserted' });
    t.equal(await eventsFor(ix, r.attributes.sopInstanceUid), 0);
    t.match(
      await ix.getStudy(r.attributes.studyInstanceUid),
      { numberOfInstances: 1 },
      'counted once indexed',
    );
    t.same(
      (await ix.listPending('host:/spool', 10_000)).map((p) => p.sopInstanceUid),
      [r.attributes.sopInstanceUid],
    );
    await Promise.all([
      ix.markStored(r.attributes.sopInstanceUid),
      ix.markStored(r.attributes.sopInstanceUid),
    ]);
    await ix.markStored(r.attributes.sopInstanceUid);
    t.equal((await ix.findInstance(r.attributes.sopInstanceUid))?.state, 'stored');
    const events = (await ix.instanceEvents(100_000)).filter(
      (e) => e.payload.sopInstanceUid === r.attributes.sopInstanceUid,
    );
    t.equal(events.length, 1, 'one event');
    t.match(events[0]?.payload, {
      bucket: 'dicom',
      key: r.objectKey,
      receivedAt: r.receivedAt.toISOString(),
      callingAeTitle: 'MODALITY',
      modality: 'CT',
      patientId: r.attributes.patientId,
    });
    await t.rejects(ix.markStored(uid()), { code: 'GW_ERR_INTERNAL' });
  });

  tap.test(
    'overwrite: replaceInstance writes instance.replaced with the new content',
    async (t) => {
      const ix = await h.open();
      const r = makeRecord({}, { size: 100 });
      await ix.recordInstance(r);
      const next = { ...r, sha256: sha(), size: 150, callingAeTitle: 'OTHER' };
      await ix.replaceInstance(next);
      const events = (await ix.instanceEvents(100_000)).filter(
        (e) => e.payload.sopInstanceUid === r.attributes.sopInstanceUid,
      );
      t.same(
        events.map((e) => e.type),
        ['instance.stored', 'instance.replaced'],
      );
      t.match(events[1]?.payload, {
        sha256: next.sha256,
        size: 150,
        callingAeTitle: 'OTHER',
        key: r.objectKey,
        bucket: 'dicom',
      });
      t.match(await ix.getStudy(r.attributes.studyInstanceUid), { totalBytes: 150 });
    },
  );

  tap.test('same SOP Instance UID, same bytes: identical, nothing added', async (t) => {
    const ix = await h.open();
    const a = makeRecord();
    await ix.recordInstance(a);
    const again = await ix.recordInstance({ ...a, receivedAt: new Date() });
    t.equal(again.kind, 'identical');
    if (again.kind !== 'inserted') t.equal(again.existing.sha256, a.sha256);
    t.equal(await eventsFor(ix, a.attributes.sopInstanceUid), 1, 'no second event');
    t.equal((await ix.getStudy(a.attributes.studyInstanceUid))?.numberOfInstances, 1);
    t.equal(await h.duplicatesReceived(a.attributes.sopInstanceUid), 0, 'identical is not counted');
  });

  tap.test('same SOP Instance UID, other bytes: conflict, counted, first kept', async (t) => {
    const ix = await h.open();
    const a = makeRecord();
    await ix.recordInstance(a);
    const other = { ...a, sha256: sha(), size: 5 };
    for (let i = 0; i < 2; i++) {
      const out = await ix.recordInstance(other);
      t.equal(out.kind, 'conflict');
      if (out.kind !== 'inserted') t.match(out.existing, { sha256: a.sha256, size: 1000 });
    }
    t.equal(await h.duplicatesReceived(a.attributes.sopInstanceUid), 2);
    t.equal(await eventsFor(ix, a.attributes.sopInstanceUid), 1);
    t.match(await ix.getStudy(a.attributes.studyInstanceUid), {
      numberOfInstances: 1,
      totalBytes: 1000,
    });
  });

  tap.test('20 concurrent stores into one new series; 5 concurrent resends', async (t) => {
    const ix = await h.open();
    // Open connections first, so that the stores really overlap (a cold pool staggers them).
    await Promise.all(Array.from({ length: 10 }, () => ix.ping()));
    const first = makeRecord();
    const same = {
      studyInstanceUid: first.attributes.studyInstanceUid,
      seriesInstanceUid: first.attributes.seriesInstanceUid,
      patientId: first.attributes.patientId,
    };
    const recs = Array.from({ length: 20 }, (_, i) =>
      makeRecord({ ...same, instanceNumber: i + 1 }),
    );
    const outs = await Promise.all(recs.map((r) => ix.recordInstance(r)));
    t.ok(
      outs.every((o) => o.kind === 'inserted'),
      'all inserted',
    );
    t.match(await ix.getStudy(same.studyInstanceUid), {
      numberOfInstances: 20,
      numberOfSeries: 1,
      totalBytes: 20_000,
    });
    t.equal((await ix.listInstances(same.studyInstanceUid)).length, 20);
    const resend = recs[0]!;
    const again = await Promise.all(Array.from({ length: 5 }, () => ix.recordInstance(resend)));
    t.ok(
      again.every((o) => o.kind === 'identical'),
      'resends are identical',
    );
    const racing = makeRecord(same);
    const raced = await Promise.all(Array.from({ length: 5 }, () => ix.recordInstance(racing)));
    t.same(raced.map((o) => o.kind).sort(), [
      'identical',
      'identical',
      'identical',
      'identical',
      'inserted',
    ]);
    t.equal(await eventsFor(ix, racing.attributes.sopInstanceUid), 1);
    t.match(await ix.getStudy(same.studyInstanceUid), { numberOfInstances: 21, numberOfSeries: 1 });
  });

  tap.test('patient names in UTF-8 round-trip; absent values stay absent', async (t) => {
    const ix = await h.open();
    for (const name of [
      'Иванов^Иван',
      '山田^太郎=やまだ^たろう',
      'Ærøskøbing^Zoë',
      'Wang^Xiao Ming=王^小明',
    ]) {
      const r = makeRecord({ patientName: name });
      await ix.recordInstance(r);
      t.equal((await ix.getStudy(r.attributes.studyInstanceUid))?.patientName, name);
    }
    const bare = makeRecord({
      patientId: undefined,
      patientName: 'NOBODY^X',
      studyDate: '20230230',
      accessionNumber: '',
    });
    await ix.recordInstance(bare);
    t.match(await ix.getStudy(bare.attributes.studyInstanceUid), {
      patientId: undefined,
      patientName: undefined, // studies without a PatientID share one patient row: no names on it
      studyDate: undefined, // 30 February is not a date
      accessionNumber: undefined,
    });
  });

  const failOutboxFor = h.failOutboxFor;
  tap.test(
    'the outbox event commits with the instance or not at all',
    { skip: failOutboxFor ? false : 'this backend cannot make the outbox write fail' },
    async (t) => {
      const ix = await h.open();
      const r = makeRecord();
      const undo = await failOutboxFor!(r.attributes.sopInstanceUid);
      try {
        await t.rejects(ix.recordInstance(r), { name: 'GatewayError' });
      } finally {
        await undo();
      }
      t.equal(await ix.findInstance(r.attributes.sopInstanceUid), undefined, 'no instance row');
      t.equal(await ix.getStudy(r.attributes.studyInstanceUid), undefined, 'no study row');
      t.same(await ix.recordInstance(r), { kind: 'inserted' }, 'works once the outbox accepts');
      t.equal(await eventsFor(ix, r.attributes.sopInstanceUid), 1);
    },
  );

  tap.test(
    'backend down: fails fast with GW_ERR_INDEX_UNAVAILABLE; the same index recovers',
    { skip: h.backend ? false : 'this harness cannot stop its backend' },
    async (t) => {
      const backend = h.backend!;
      const ix = await h.open();
      await ix.recordInstance(makeRecord()); // leaves idle connections in the pool
      await backend.stop();
      try {
        for (const call of [() => ix.recordInstance(makeRecord()), () => ix.ping()]) {
          const started = Date.now();
          const err = await call().then(
            () => undefined,
            (e: unknown) => e,
          );
          t.ok(isGatewayError(err, 'GW_ERR_INDEX_UNAVAILABLE'), `unavailable: ${String(err)}`);
          t.ok(
            Date.now() - started < h.unavailableWithinMs,
            `failed in ${Date.now() - started} ms`,
          );
        }
      } finally {
        await backend.start();
      }
      await ix.ping();
      t.same(await ix.recordInstance(makeRecord()), { kind: 'inserted' });
    },
  );

  tap.test('migrate() twice, and concurrently from two instances', async (t) => {
    const make = await h.emptyDatabase();
    const [a, b] = [make(), make()];
    try {
      await Promise.all([a.migrate(), b.migrate(), a.migrate()]);
      await b.migrate();
      t.same(await a.recordInstance(makeRecord()), { kind: 'inserted' });
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });

  reportsContract(tap, h);
  deliveriesContract(tap, h);
  stableStudiesContract(tap, h);
}
