/**
 * Storage Commitment transactions in PostgreSQL (PgCommitments through PgIndex.commitments): two
 * index instances on one database stand for two gateway processes. Claims are disjoint (SKIP
 * LOCKED), a claim whose lease ran out is taken over and the old claimer can no longer write,
 * and two services running at once report every transaction exactly once.
 */
import pino from 'pino';
import t from 'tap';
import type { InstanceIndex } from '../../src/index/instance-index.js';
import { pgIndex } from '../../src/index/open.js';
import type { CommitmentReport } from '../../src/stcommit/commitment-dataset.js';
import { CommitmentService } from '../../src/stcommit/commitment-service.js';
import { storageCommitmentSchema } from '../../src/stcommit/stcommit-config.js';
import { startTestPostgres } from '../helpers/pg.js';
import { query } from '../helpers/verify.js';

const pgsrv = await startTestPostgres();
t.teardown(() => pgsrv.stop());
const open = async (): Promise<InstanceIndex> => {
  const ix = pgIndex({ connectionString: pgsrv.connectionString, poolSize: 4 });
  t.teardown(() => ix.close());
  await ix.migrate();
  return ix;
};
const a = await open();
const b = await open();
const CT = '1.2.840.10008.5.1.4.1.1.2';
const reset = (): Promise<unknown> =>
  query(pgsrv.connectionString, 'TRUNCATE commitment_transactions');

const record = (ix: InstanceIndex, n: number, requester = 'MOD'): Promise<unknown> =>
  ix.commitments.recordCommitment({
    transactionUid: `2.25.${n}`,
    requesterAeTitle: requester,
    calledAeTitle: 'DICOMGW',
    references: [{ sopClassUid: CT, sopInstanceUid: `1.2.3.${n}` }],
    deadlineAt: new Date(Date.now() + 60_000),
  });

t.test('a repeated request is the same transaction', async (t) => {
  await reset();
  const first = await record(a, 1);
  t.same(await record(b, 1), { ...(first as object), created: false });
  t.match(first, { created: true });
  t.match(await record(a, 1, 'OTHER'), { created: true }, 'another requester, another transaction');
});

t.test('concurrent claimers get disjoint transactions', async (t) => {
  await reset();
  for (let i = 0; i < 40; i++) await record(i % 2 ? a : b, i);
  const seen = new Map<number, string>();
  const claimer = async (ix: InstanceIndex, owner: string): Promise<void> => {
    for (;;) {
      const got = await ix.commitments.claimCommitments({ limit: 3, leaseMs: 60_000, owner });
      if (got.length === 0) return;
      for (const tx of got) {
        if (seen.has(tx.id))
          t.fail(`transaction ${tx.id} claimed by ${seen.get(tx.id)} and ${owner}`);
        seen.set(tx.id, owner);
      }
    }
  };
  await Promise.all([claimer(a, 'A'), claimer(b, 'B'), claimer(a, 'A2'), claimer(b, 'B2')]);
  t.equal(seen.size, 40, 'every transaction claimed once');
});

t.test('claims racing for the same rows at the same instant never share one', async (t) => {
  await reset();
  for (let i = 0; i < 40; i++) await record(a, 500 + i);
  const claims = await Promise.all(
    [a, b, a, b].map((ix, i) =>
      ix.commitments.claimCommitments({ limit: 40, leaseMs: 60_000, owner: `R${i}` }),
    ),
  );
  const ids = claims.flat().map((c) => c.id);
  t.equal(new Set(ids).size, ids.length, 'no transaction in two claims');
});

t.test('a lease that ran out is taken over; the old claim writes nothing', async (t) => {
  await reset();
  await record(a, 7);
  const [mine] = await a.commitments.claimCommitments({ limit: 1, leaseMs: 1, owner: 'A' });
  t.ok(mine);
  let theirs;
  const deadline = Date.now() + 5000;
  while (!theirs && Date.now() < deadline) {
    [theirs] = await b.commitments.claimCommitments({ limit: 1, leaseMs: 60_000, owner: 'B' });
  }
  t.equal(theirs?.id, mine!.id, 'claimed again after the lease');
  const report = {
    committed: [],
    failed: [{ sopClassUid: CT, sopInstanceUid: '1.2.3.7', failureReason: 0x0112 }],
  };
  t.equal(await a.commitments.decideCommitment(mine!.id, 'A', report), false);
  t.equal(await a.commitments.commitmentReported(mine!.id, 'A'), false);
  t.equal(await b.commitments.decideCommitment(mine!.id, 'B', report), true);
  t.equal(await b.commitments.commitmentReported(mine!.id, 'B'), true);
  t.same(await a.commitments.commitmentCounts(), {
    pending: 0,
    committed: 0,
    failed: 1,
    abandoned: 0,
  });
});

t.test('undecided transactions deferred to later are claimable early after progress', async (t) => {
  await reset();
  await record(a, 9);
  const [tx] = await a.commitments.claimCommitments({ limit: 1, leaseMs: 60_000, owner: 'A' });
  t.equal(await a.commitments.deferCommitment(tx!.id, 'A', new Date(Date.now() + 3_600_000)), true);
  t.same(await b.commitments.claimCommitments({ limit: 5, leaseMs: 60_000, owner: 'B' }), []);
  const early = await b.commitments.claimCommitments({
    limit: 5,
    leaseMs: 60_000,
    owner: 'B',
    undecidedToo: true,
  });
  t.same(
    early.map((x) => x.id),
    [tx!.id],
  );
  const again = await a.commitments.claimCommitments({
    limit: 5,
    leaseMs: 60_000,
    owner: 'A',
    undecidedToo: true,
  });
  t.same(again, [], 'not while another holds it');
});

t.test('failed deliveries back off, then the transaction is abandoned', async (t) => {
  await reset();
  await record(a, 8);
  for (let attempt = 1; attempt <= 3; attempt++) {
    const [tx] = await a.commitments.claimCommitments({ limit: 1, leaseMs: 60_000, owner: 'A' });
    t.equal(tx?.attempts, attempt - 1);
    const state = await a.commitments.commitmentAttemptFailed({
      id: tx!.id,
      owner: 'A',
      error: 'refused',
      retryAt: new Date(),
      maxAttempts: 3,
    });
    t.equal(state, attempt < 3 ? 'pending' : 'abandoned');
  }
  t.same(await a.commitments.claimCommitments({ limit: 1, leaseMs: 60_000, owner: 'A' }), []);
  t.match(await a.commitments.commitmentCounts(), { pending: 0, abandoned: 1 });
});

t.test('two services on one database report every transaction exactly once', async (t) => {
  await reset();
  const N = 30;
  for (let i = 0; i < N; i++) await record(a, 1000 + i);
  const sends = new Map<string, number>();
  const sender = {
    async send(_target: unknown, report: CommitmentReport): Promise<void> {
      sends.set(report.transactionUid, (sends.get(report.transactionUid) ?? 0) + 1);
      await new Promise((r) => setImmediate(r));
    },
  };
  // Unknown instances with no grace: each transaction is decided (0112) at its first evaluation.
  const config = storageCommitmentSchema.parse({ enabled: true, unknownGraceSeconds: 0 });
  const log = pino({ level: 'silent' });
  const services = [a, b].map(
    (ix, i) =>
      new CommitmentService({
        config,
        store: ix.commitments,
        sender,
        log,
        owner: `S${i}`,
        batch: 2,
      }),
  );
  for (const s of services) s.start();
  const deadline = Date.now() + 20_000;
  while ((await a.commitments.commitmentCounts()).failed < N && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 50));
  }
  await Promise.all(services.map((s) => s.close()));
  t.equal(sends.size, N, 'every transaction reported');
  t.ok(
    [...sends.values()].every((n) => n === 1),
    'none twice',
  );
  t.ok(
    services.every((s) => s.stats.reported > 0),
    'both processes took part',
  );
});

t.test('the deadline turns what is still missing into a failure report', async (t) => {
  await reset();
  const deadlineAt = new Date(Date.now() + 800);
  await a.commitments.recordCommitment({
    transactionUid: '2.25.4242',
    requesterAeTitle: 'MOD',
    calledAeTitle: 'DICOMGW',
    references: [{ sopClassUid: CT, sopInstanceUid: '1.2.3.4242' }],
    deadlineAt,
  });
  const reports: Array<{ at: number; report: CommitmentReport }> = [];
  const sender = {
    send(_target: unknown, report: CommitmentReport): Promise<void> {
      reports.push({ at: Date.now(), report });
      return Promise.resolve();
    },
  };
  // A long grace: without the deadline the unknown instance would stay pending for an hour.
  const config = storageCommitmentSchema.parse({
    enabled: true,
    unknownGraceSeconds: 3600,
    recheckSeconds: 0.1,
  });
  const service = new CommitmentService({
    config,
    store: a.commitments,
    sender,
    log: pino({ level: 'silent' }),
  });
  service.start();
  t.teardown(() => service.close());
  const until = Date.now() + 10_000;
  while (reports.length === 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
  t.equal(reports.length, 1);
  t.ok(reports[0]!.at >= deadlineAt.getTime(), 'not before the deadline');
  t.same(reports[0]!.report.failed, [
    { sopClassUid: CT, sopInstanceUid: '1.2.3.4242', failureReason: 0x0112 },
  ]);
});
