/**
 * Every YdbIndex method once through the fake transport (test/helpers/ydb-fake.ts) with rows
 * that let it reach its writes: no query it sends uses an undeclared parameter or selects a
 * column twice (what the fake can check of YQL without a server).
 */
import t from 'tap';
import { Optional } from '@ydbjs/value/optional';
import { Bool, Int64, Timestamp, TimestampType, Utf8, Utf8Type } from '@ydbjs/value/primitive';
import { YdbIndex } from '../../src/index/ydb-index.js';
import { makeRecord, sha } from '../helpers/index-contract.js';
import { FakeYdb } from '../helpers/ydb-fake.js';

const u = (s: string) => new Utf8(s);
const i64 = (n: number) => new Int64(BigInt(n));
const now = new Date('2024-06-01T00:00:00.000Z');

t.test('every method: queries YDB would accept, as far as the fake can tell', async (t) => {
  const fake = new FakeYdb();
  const rec = makeRecord();
  const instance = {
    sop_instance_uid: u(rec.attributes.sopInstanceUid),
    study_uid: u(rec.attributes.studyInstanceUid),
    series_uid: u(rec.attributes.seriesInstanceUid),
    sop_class_uid: u(rec.attributes.sopClassUid),
    transfer_syntax_uid: u(rec.transferSyntaxUid),
    store_name: u('fs'),
    bucket: new Optional(null, new Utf8Type()),
    object_key: u(rec.objectKey),
    size: i64(100),
    sha256: u(rec.sha256),
    received_at: new Timestamp(now),
    calling_ae: u('AE'),
    destinations: new Optional(null, new Utf8Type()),
    state: u('pending-upload'),
  };
  // Enough of a row for every read: the instance (pending, so markStored/forgetPending write),
  // the database clock, a claim owned by 'w'.
  fake.answer = (call) => {
    if (/CurrentUtcTimestamp\(\) AS now/.test(call.text)) return [[{ now: new Timestamp(now) }]];
    if (/SELECT \* FROM `instances`/.test(call.text)) return [[instance]];
    if (/SELECT state FROM `instances`/.test(call.text)) return [[{ state: u('stored') }]];
    if (/FROM `study_activity`/.test(call.text)) {
      // Two quiet open studies: a sweep announces both (two events in one write).
      const open = (uid: string) => ({
        study_uid: u(uid),
        last_activity_at: new Timestamp(new Date(now.getTime() - 60_000)),
        stable_count: i64(0),
        is_open: new Bool(true),
        complete_recheck_at: new Optional(null, new TimestampType()),
      });
      return [[open('1.2'), open('1.3')], []];
    }
    if (/claimed_by, state FROM `outbox_deliveries`/.test(call.text)) {
      return [[{ attempts: i64(1), claimed_by: u('w'), state: u('pending') }]];
    }
    if (/SELECT \* FROM `commitment_transactions` WHERE id/.test(call.text)) {
      return [
        [
          {
            state: u('pending'),
            claimed_by: u('w'),
            attempts: i64(0),
            report: new Optional(null, new Utf8Type()),
          },
        ],
      ];
    }
    return [];
  };
  const ix = new YdbIndex({ driver: () => fake.driver(), timeoutMs: 2_000 });
  t.teardown(() => ix.close());
  const run = async (name: string, call: () => Promise<unknown>) => {
    const before = fake.invalid.length;
    await call().catch((e: unknown) => t.comment(`${name}: ${String(e)}`));
    t.same(fake.invalid.slice(before), [], name);
  };
  await run('migrate', () => ix.migrate());
  await run('recordInstance', () => ix.recordInstance(makeRecord()));
  await run('markStored', () => ix.markStored(rec.attributes.sopInstanceUid));
  await run('forgetPending', () => ix.forgetPending(rec.attributes.sopInstanceUid));
  instance.state = u('stored');
  await run('replaceInstance', () => ix.replaceInstance({ ...rec, sha256: sha() }));
  await run('recordVersion', () => ix.recordVersion({ ...rec, sha256: sha() }));
  await run('listPending', () => ix.listPending('o', 10, 'x'));
  await run('findInstance', () => ix.findInstance('x'));
  await run('getStudy', () => ix.getStudy('x'));
  await run('listInstances', () => ix.listInstances('x'));
  await run('instanceEvents', () => ix.instanceEvents(10));
  await run('summary', () => ix.summary());
  await run('countStoredObjects', () => ix.countStoredObjects({ from: '2024-01-01' }));
  const req = { destination: 'd', limit: 5, leaseMs: 1_000, owner: 'w', maxAttempts: 3 };
  await run('claimDue', () => ix.claimDue(req));
  await run('complete', () => ix.complete([1, 2]));
  await run('fail', () => ix.fail({ id: 1, owner: 'w', error: 'e', retryAt: now, maxAttempts: 3 }));
  await run('dead', () => ix.dead(1, 'w', 'e'));
  await run('listDead', () => ix.listDead({ destination: 'd', limit: 5 }));
  await run('listDead (all)', () => ix.listDead({ limit: 5 }));
  await run('requeueDead', () => ix.requeueDead('d'));
  await run('requeueDead (all)', () => ix.requeueDead());
  await run('deliveryCounts', () => ix.deliveryCounts());
  await run('emitStableStudies', () => ix.emitStableStudies(1_000, 5));
  await run('emitStableStudies (only)', () => ix.emitStableStudies(1_000, 5, ['1.2', '1.3']));
  await run('dueStableStudies', () => ix.dueStableStudies(1_000, 5));
  await run('deferStableStudy', () => ix.deferStableStudy('1.2', 1_000));
  await run('ping', () => ix.ping());
  const scope = { sourceAe: 'PACS', from: '2024-01-01', to: '2024-01-31' };
  await run('lockBackfillScope', async () => (await ix.lockBackfillScope(scope))?.release());
  await run('lockReconcile', async () => (await ix.lockReconcile('PACS'))?.release());
  await run('openBackfillRun', () => ix.openBackfillRun(scope));
  const study = {
    studyUid: '1.2',
    outcome: 'complete' as const,
    missingBefore: 0,
    moved: 0,
    failedSuboperations: 0,
  };
  await run('recordBackfillStudy', () => ix.recordBackfillStudy(1, study));
  await run('advanceBackfillCursor', () => ix.advanceBackfillCursor(1, '2024-01-02'));
  await run('endBackfillRun', () => ix.endBackfillRun(1, 'done'));
  await run('backfillStudies', () => ix.backfillStudies(1));
  const c = ix.commitments;
  const ref = { sopClassUid: '1.2', sopInstanceUid: '1.2.3' };
  await run('recordCommitment', () =>
    c.recordCommitment({
      transactionUid: '9.9',
      requesterAeTitle: 'R',
      calledAeTitle: 'C',
      references: [ref],
      deadlineAt: now,
    }),
  );
  await run('claimCommitments', () =>
    c.claimCommitments({ limit: 5, leaseMs: 1_000, owner: 'w', undecidedToo: true }),
  );
  await run('lookupInstances', () => c.lookupInstances(['1.2.3']));
  await run('deferCommitment', () => c.deferCommitment(1, 'w', now));
  await run('decideCommitment', () => c.decideCommitment(1, 'w', { committed: [ref], failed: [] }));
  await run('commitmentReported', () => c.commitmentReported(1, 'w'));
  await run('commitmentAttemptFailed', () =>
    c.commitmentAttemptFailed({ id: 1, owner: 'w', error: 'e', retryAt: now, maxAttempts: 3 }),
  );
  await run('releaseCommitments', () => c.releaseCommitments('w'));
  await run('commitmentCounts', () => c.commitmentCounts());
  t.ok(fake.calls.length > 60, `${fake.calls.length} queries checked`);
});
