/**
 * Index retention on PostgreSQL (config `retention`, src/index/retention-job.ts): finished
 * backfill runs and decided storage commitment transactions older than their retention are
 * deleted with what hangs off them; running runs, pending transactions and young rows stay.
 * (The outbox's retention is in the index contract, test/helpers/index-contract-outbox.ts.)
 */
import t from 'tap';
import type { InstanceIndex } from '../../src/index/instance-index.js';
import { pgIndex } from '../../src/index/open.js';
import { startTestPostgres } from '../helpers/pg.js';
import { query } from '../helpers/verify.js';

const pgsrv = await startTestPostgres();
t.teardown(() => pgsrv.stop());
const ix: InstanceIndex = pgIndex({ connectionString: pgsrv.connectionString, poolSize: 4 });
t.teardown(() => ix.close());
await ix.migrate();
const DAY_MS = 86_400_000;
const daysAgo = (n: number): Date => new Date(Date.now() - n * DAY_MS);
const count = async (sql: string): Promise<number> =>
  Number((await query<{ n: string }>(pgsrv.connectionString, sql))[0]!.n);

t.test('backfill runs: those that ended long ago go with their studies', async (t) => {
  const scope = (day: string) => ({ sourceAe: 'PACS', from: day, to: day });
  const open = async (day: string) => (await ix.openBackfillRun(scope(day))).run.id;
  const done = await open('2024-01-01');
  const interrupted = await open('2024-01-02');
  const running = await open('2024-01-03');
  const young = await open('2024-01-04');
  for (const [i, id] of [done, interrupted, running, young].entries()) {
    await ix.recordBackfillStudy(id, {
      studyUid: `2.25.${i}`,
      outcome: 'complete',
      missingBefore: 0,
      moved: 0,
      failedSuboperations: 0,
    });
  }
  await ix.endBackfillRun(done, 'done');
  await ix.endBackfillRun(interrupted, 'interrupted', 'stopped');
  await ix.endBackfillRun(young, 'done');
  await query(
    pgsrv.connectionString,
    `UPDATE backfill_runs SET updated_at = now() - interval '100 days' WHERE id <> $1`,
    [young],
  );
  t.equal(await ix.pruneBackfillRuns!(daysAgo(90)), 2, 'the done and the interrupted old runs');
  const left = await query<{ id: string }>(
    pgsrv.connectionString,
    'SELECT id FROM backfill_runs ORDER BY id',
  );
  t.same(
    left.map((r) => Number(r.id)),
    [running, young],
    'kept: the one still running, the young one',
  );
  t.equal(await count('SELECT count(*) AS n FROM backfill_studies'), 2, 'their studies went too');
  t.equal(await ix.pruneBackfillRuns!(daysAgo(90)), 0);
});

t.test('storage commitments: reported and abandoned ones go, pending ones stay', async (t) => {
  const CT = '1.2.840.10008.5.1.4.1.1.2';
  const ids: number[] = [];
  for (let i = 0; i < 4; i++) {
    const r = await ix.commitments.recordCommitment({
      transactionUid: `2.25.90${i}`,
      requesterAeTitle: 'MOD',
      calledAeTitle: 'DICOMGW',
      references: [{ sopClassUid: CT, sopInstanceUid: `1.2.3.${i}` }],
      deadlineAt: new Date(Date.now() + 60_000),
    });
    ids.push(r.id);
  }
  const claimed = await ix.commitments.claimCommitments({ limit: 3, leaseMs: 60_000, owner: 'A' });
  t.same(
    claimed.map((c) => c.id),
    ids.slice(0, 3),
  );
  const report = { committed: [], failed: [] };
  // The first reported, the second abandoned after its last attempt, the third still pending.
  t.ok(await ix.commitments.decideCommitment(ids[0]!, 'A', report));
  t.ok(await ix.commitments.commitmentReported(ids[0]!, 'A'));
  t.ok(await ix.commitments.decideCommitment(ids[1]!, 'A', report));
  const state = await ix.commitments.commitmentAttemptFailed({
    id: ids[1]!,
    owner: 'A',
    error: 'no association',
    retryAt: new Date(),
    maxAttempts: 1,
  });
  t.equal(state, 'abandoned');
  // All old but the fourth, which is reported too.
  const fourth = await ix.commitments.claimCommitments({ limit: 1, leaseMs: 60_000, owner: 'B' });
  t.ok(await ix.commitments.decideCommitment(fourth[0]!.id, 'B', report));
  t.ok(await ix.commitments.commitmentReported(fourth[0]!.id, 'B'));
  await query(
    pgsrv.connectionString,
    `UPDATE commitment_transactions SET received_at = now() - interval '100 days' WHERE id <> $1`,
    [ids[3]],
  );
  t.equal(await ix.commitments.pruneCommitments!(daysAgo(90)), 2, 'reported and abandoned');
  const left = await query<{ id: string; state: string }>(
    pgsrv.connectionString,
    'SELECT id, state FROM commitment_transactions ORDER BY id',
  );
  t.same(
    left.map((r) => [Number(r.id), r.state]),
    [
      [ids[2], 'pending'],
      [ids[3], 'reported'],
    ],
    'kept: the pending one, the young one',
  );
});
