import t from 'tap';
import { checkLiveness, checkReadiness, coalesce } from '../../src/admin/readiness.js';

t.test('ready only when every check passes in time', async (t) => {
  const r = await checkReadiness(
    {
      store: async () => {},
      index: () => Promise.reject(new Error('connection refused')),
      slow: () => new Promise<void>(() => {}),
    },
    50,
  );
  t.equal(r.ready, false);
  t.match(r.checks, {
    store: { ok: true },
    index: { ok: false, error: 'connection refused' },
    slow: { ok: false, error: /no answer within 50 ms/ },
  });
  t.same((await checkReadiness({ a: async () => {} }, 50)).ready, true);
});

t.test('coalesce: one run for concurrent callers, a new one after', async (t) => {
  let runs = 0;
  let release!: () => void;
  const f = coalesce(
    () =>
      new Promise<number>((resolve) => {
        runs++;
        release = () => resolve(runs);
      }),
  );
  const [a, b] = [f(), f()];
  release();
  t.same(await Promise.all([a, b]), [1, 1]);
  const c = f();
  release();
  t.equal(await c, 2);
});

t.test('live until a part says it cannot recover', async (t) => {
  t.same(checkLiveness({}), { live: true });
  t.same(checkLiveness({ index: () => undefined }), { live: true });
  t.same(checkLiveness({ index: () => 'gave up after 3 attempts', store: () => undefined }), {
    live: false,
    error: 'index: gave up after 3 attempts',
  });
});
