/** SameUidWait: a writer's waits for another association's copy of its UID, bounded together. */
import { pino } from 'pino';
import t from 'tap';
import { isGatewayError } from '../../src/errors.js';
import { SameUidWait } from '../../src/ingest/same-uid-wait.js';

const log = pino({ level: 'silent' });
const never = new Promise<void>(() => undefined);

t.test('what the other settles to, when it settles first', async (t) => {
  const w = new SameUidWait(10_000, '1.2.3', log);
  t.equal(await w.wait(Promise.resolve(7)), 7);
});

t.test('GW_ERR_TIMEOUT once the deadline passes; later waits share it', async (t) => {
  const w = new SameUidWait(100, '1.2.3', log);
  const started = Date.now();
  await t.rejects(w.wait(never), { code: 'GW_ERR_TIMEOUT' });
  t.ok(Date.now() - started >= 90, 'not before the deadline');
  const again = Date.now();
  await t.rejects(w.wait(never), { code: 'GW_ERR_TIMEOUT' });
  t.ok(Date.now() - again < 90, 'the second wait gets only what is left');
});

t.test('the peer going away ends the wait at once', async (t) => {
  const w = new SameUidWait(60_000, '1.2.3', log);
  const waiting = w.wait(never).catch((err: unknown) => err);
  w.peerGone();
  t.ok(isGatewayError(await waiting, 'GW_ERR_ASSOCIATION_ABORTED'));
  await t.rejects(w.wait(never), { code: 'GW_ERR_ASSOCIATION_ABORTED' }, 'and any later one');
});
