import t from 'tap';
import { withTimeout } from '../../src/timeout.js';

const timers = (): number => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
const never = (): Promise<number> => new Promise<number>(() => undefined);

t.test('the work wins: its value, and the timer is gone', async (t) => {
  const before = timers();
  t.equal(
    await withTimeout(
      () => Promise.resolve(7),
      60_000,
      () => -1,
    ),
    7,
  );
  t.equal(
    await withTimeout(
      () => 8,
      60_000,
      () => -1,
    ),
    8,
    'a plain value',
  );
  t.equal(timers(), before, 'no timer left behind');
  await t.rejects(
    withTimeout(
      () => Promise.reject(new Error('no')),
      60_000,
      () => -1,
    ),
    /no/,
  );
  await t.rejects(
    withTimeout(
      () => {
        throw new Error('sync');
      },
      60_000,
      () => -1,
    ),
    /sync/,
    'a synchronous throw is a rejection',
  );
  t.equal(timers(), before, 'no timer left behind after a failure');
});

t.test('the time wins: what onTimeout returns or throws', async (t) => {
  t.ok(Number.isNaN(await withTimeout(never, 5, () => Number.NaN)), 'NaN');
  await t.rejects(
    withTimeout(never, 5, () => {
      throw new Error('late');
    }),
    /late/,
  );
  // What a caller like AdminServer.close does: on time, act on the work, then still wait for it.
  let finish!: (v: number) => void;
  const work = new Promise<number>((resolve) => (finish = resolve));
  let settled = false;
  const r = await withTimeout(
    () => work,
    5,
    () => {
      settled = true;
      finish(1);
      return work;
    },
  );
  t.ok(settled, 'onTimeout ran');
  t.equal(r, 1, 'onTimeout may wait for the work itself');
});
