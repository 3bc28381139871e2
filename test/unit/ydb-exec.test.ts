/**
 * YdbExec against the fake transport (test/helpers/ydb-fake.ts): retries on YDB's retryable
 * statuses come from @ydbjs/retry's policy, inside the deadline; the rest map to GatewayErrors.
 */
import t from 'tap';
import { isGatewayError } from '../../src/errors.js';
import { toGatewayError, YDB_STATUS, YdbExec } from '../../src/index/ydb-exec.js';
import { FakeYdb } from '../helpers/ydb-fake.js';

function exec(fake: FakeYdb, timeoutMs = 2_000): YdbExec {
  return new YdbExec({ driver: () => fake.driver(), timeoutMs });
}

t.test('a transaction aborted at commit (lock invalidated) runs again, whole', async (t) => {
  const fake = new FakeYdb();
  fake.failures.push({ at: 'commit', status: YDB_STATUS.ABORTED });
  let bodies = 0;
  const out = await exec(fake).tx('op', async (run) => {
    bodies++;
    await run('SELECT 1');
    return 'done';
  });
  t.equal(out, 'done');
  t.equal(bodies, 2, 'the body ran twice');
  t.equal(fake.commits, 1, 'one commit succeeded');
  t.ok(
    fake.calls.every((c) => c.inTx),
    'queries ran in the transaction',
  );
});

for (const [name, status] of [
  ['UNAVAILABLE', YDB_STATUS.UNAVAILABLE],
  ['BAD_SESSION', YDB_STATUS.BAD_SESSION],
  ['SESSION_BUSY', YDB_STATUS.SESSION_BUSY],
  ['UNDETERMINED (idempotent: retried)', YDB_STATUS.UNDETERMINED],
] as const) {
  t.test(`a query failing with ${name} is retried`, async (t) => {
    const fake = new FakeYdb();
    fake.failures.push({ at: 'execute', status });
    let bodies = 0;
    await exec(fake).tx('op', async (run) => {
      bodies++;
      await run('SELECT 1');
    });
    // The SDK retries the statement itself (ABORTED-free statuses) or the whole transaction
    // (UNDETERMINED, only because the index marks its transactions idempotent).
    t.ok(bodies >= 1 && bodies <= 2, `body ran ${bodies} times`);
    t.equal(fake.calls.length, 2, 'the query ran again');
    t.equal(fake.commits, 1, 'and the transaction committed once');
  });
}

t.test('a read retried after a session that could not be created', async (t) => {
  const fake = new FakeYdb();
  fake.failures.push({ at: 'createSession', status: YDB_STATUS.UNAVAILABLE });
  await exec(fake).read('op', 'SELECT 1');
  t.equal(fake.calls.length, 1);
  t.equal(fake.sessions, 2);
});

t.test('a scheme error is not retried: GW_ERR_INTERNAL at once', async (t) => {
  const fake = new FakeYdb();
  fake.failures.push({ at: 'execute', status: YDB_STATUS.SCHEME_ERROR });
  let bodies = 0;
  const err = await exec(fake)
    .tx('op', async (run) => {
      bodies++;
      await run('SELECT * FROM missing');
    })
    .then(
      () => undefined,
      (e: unknown) => e,
    );
  t.ok(isGatewayError(err, 'GW_ERR_INTERNAL'), String(err));
  t.match(String((err as Error).message), /SCHEME_ERROR/);
  t.equal(bodies, 1);
  t.equal(fake.commits, 0);
});

t.test('always unavailable: GW_ERR_INDEX_UNAVAILABLE within the deadline', async (t) => {
  const fake = new FakeYdb();
  for (let i = 0; i < 10_000; i++)
    fake.failures.push({ at: 'execute', status: YDB_STATUS.UNAVAILABLE });
  const started = Date.now();
  const err = await exec(fake, 300)
    .read('ping', 'SELECT 1')
    .then(
      () => undefined,
      (e: unknown) => e,
    );
  t.ok(isGatewayError(err, 'GW_ERR_INDEX_UNAVAILABLE'), String(err));
  t.ok(Date.now() - started < 2_000, `failed after ${Date.now() - started} ms`);
  t.ok(fake.calls.length > 1, `retried ${fake.calls.length} times meanwhile`);
});

t.test('error mapping: statuses, gRPC codes, wrappers', async (t) => {
  const ydbErr = (code: number) => Object.assign(new Error('x'), { code, issues: [] });
  const grpcErr = (code: number) => Object.assign(new Error('y'), { name: 'ClientError', code });
  const code = (e: unknown) => toGatewayError(e, 'op').code;
  t.equal(code(ydbErr(YDB_STATUS.OVERLOADED)), 'GW_ERR_INDEX_UNAVAILABLE');
  t.equal(code(ydbErr(YDB_STATUS.PRECONDITION_FAILED)), 'GW_ERR_INTERNAL');
  t.equal(code(grpcErr(14)), 'GW_ERR_INDEX_UNAVAILABLE', 'gRPC UNAVAILABLE');
  t.equal(code(grpcErr(3)), 'GW_ERR_INTERNAL', 'gRPC INVALID_ARGUMENT');
  t.equal(
    code(new Error('Transaction failed.', { cause: ydbErr(YDB_STATUS.TIMEOUT) })),
    'GW_ERR_INDEX_UNAVAILABLE',
    'the SDK wraps a non-retryable transaction error; the cause decides',
  );
});

t.test('ABORTED inside the transaction: the whole transaction runs again', async (t) => {
  // The SDK retries the statement on the same transaction, which YDB has ended: NOT_FOUND.
  const fake = new FakeYdb();
  fake.failures.push(
    { at: 'execute', status: YDB_STATUS.ABORTED },
    { at: 'execute', status: YDB_STATUS.NOT_FOUND },
  );
  let bodies = 0;
  const out = await exec(fake).tx('op', async (run) => {
    bodies++;
    await run('SELECT 1');
    return bodies;
  });
  t.equal(out, 2, 'the second run of the body committed');
  t.equal(fake.commits, 1);
  t.equal(fake.sessions, 2, 'on a new session');
});
