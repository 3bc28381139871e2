import { pino } from 'pino';
import t from 'tap';
import type { PostmasterExit } from '../../src/index/embedded-pg.js';
import {
  EmbeddedPgSupervisor,
  restartDelayMs,
  type RestartPolicy,
} from '../../src/index/embedded-pg-supervisor.js';

/** A server whose starts succeed or fail as scripted; `settled` resolves after the last one. */
function fakeServer(outcomes: Array<'ok' | 'fail'>) {
  const listeners = new Set<(exit: PostmasterExit) => void>();
  let settle!: () => void;
  const fake = {
    starts: 0,
    stops: 0,
    settled: new Promise<void>((resolve) => (settle = resolve)),
    start: async (): Promise<void> => {
      const outcome = outcomes[fake.starts++];
      // After the supervisor's reaction to this outcome (microtasks) has run.
      if (fake.starts >= outcomes.length) setImmediate(settle);
      if (outcome !== 'ok') throw new Error(`start ${fake.starts} failed`);
    },
    stop: async (): Promise<void> => {
      fake.stops++;
    },
    onExit: (listener: (exit: PostmasterExit) => void) => {
      listeners.add(listener);
      return () => void listeners.delete(listener);
    },
    crash: (): void => {
      for (const l of listeners) l({ pid: 42, code: null, signal: 'SIGKILL' });
    },
  };
  return fake;
}

function capture() {
  const lines: Array<Record<string, unknown>> = [];
  const log = pino({ level: 'debug' }, { write: (s: string) => void lines.push(JSON.parse(s)) });
  const events = (): unknown[] => lines.map((l) => l.event);
  return { log, lines, events };
}

const FAST: RestartPolicy = { maxAttempts: 3, maxDelayMs: 2, initialDelayMs: 1 };

t.test(
  'restartDelayMs: doubles from the initial delay, capped, jittered in [0.5, 1)',
  async (t) => {
    const policy = { initialDelayMs: 250, maxDelayMs: 30_000 };
    const top = (a: number): number => restartDelayMs(a, policy, () => 0.999_999);
    t.same([1, 2, 3, 4, 8, 9, 40].map(top), [250, 500, 1000, 2000, 30_000, 30_000, 30_000]);
    t.equal(
      restartDelayMs(3, policy, () => 0),
      500,
      'never below half',
    );
    t.equal(
      restartDelayMs(1, { maxDelayMs: 100 }, () => 0.999_999),
      100,
      'initial within the cap',
    );
    const seen = Array.from({ length: 100 }, () => restartDelayMs(2, policy));
    t.same(
      seen.filter((d) => d < 250 || d > 500),
      [],
      'Math.random: within [250, 500]',
    );
    t.ok(new Set(seen).size > 10, 'and spread out');
  },
);

t.test('an exit is followed by restarts until one succeeds', async (t) => {
  const server = fakeServer(['fail', 'ok']);
  const { log, lines, events } = capture();
  const sup = new EmbeddedPgSupervisor(server, FAST, log);
  t.same(sup.health(), { state: 'running', restarts: 0, error: undefined });
  server.crash();
  t.equal(sup.health().state, 'restarting', 'restarting at once');
  await server.settled;
  t.same(sup.health(), { state: 'running', restarts: 1, error: undefined });
  t.same(events(), [
    'index.embedded_exited',
    'index.embedded_restarting',
    'index.embedded_restart_failed',
    'index.embedded_restarting',
    'index.embedded_restarted',
  ]);
  t.match(lines[0], { signal: 'SIGKILL', pid: 42 });
  t.match(lines[1], { attempt: 1, maxAttempts: 3, delayMs: Number });
  t.match(lines[4], { attempt: 2, downtimeMs: Number });
  await sup.stop();
  t.equal(server.stops, 1, 'stop() stops the server');
  t.equal(sup.health().state, 'stopped');
});

t.test('gives up after maxAttempts failed starts', async (t) => {
  const server = fakeServer(['fail', 'fail', 'fail']);
  const { log, lines, events } = capture();
  const sup = new EmbeddedPgSupervisor(server, FAST, log);
  server.crash();
  await server.settled;
  t.equal(server.starts, 3);
  t.match(sup.health(), { state: 'failed', restarts: 0, error: /after 3 attempts/ });
  t.equal(events().filter((e) => e === 'index.embedded_restarting').length, 3);
  t.match(lines.at(-1), {
    event: 'index.embedded_gave_up',
    level: 50,
    attempts: 3,
    err: 'start 3 failed',
  });
  await sup.stop();
  t.equal(server.stops, 1);
});

t.test('a crash loop ends: exits soon after a restart continue the count', async (t) => {
  const server = fakeServer(['ok', 'ok', 'fail']);
  const sup = new EmbeddedPgSupervisor(server, { ...FAST, stableAfterMs: 60_000 });
  for (const restarts of [1, 2]) {
    server.crash();
    await t.resolves(waitFor(() => sup.health().restarts === restarts));
  }
  server.crash();
  await server.settled;
  t.match(sup.health(), { state: 'failed', restarts: 2 }, '3 attempts over three exits');
  t.equal(server.starts, 3);
});

t.test('a crash right after the last attempt gives up at once, saying so', async (t) => {
  const server = fakeServer(['ok']);
  const { log, lines } = capture();
  const sup = new EmbeddedPgSupervisor(server, { ...FAST, maxAttempts: 1 }, log);
  server.crash();
  await server.settled;
  t.equal(sup.health().state, 'running');
  server.crash();
  t.match(sup.health(), { state: 'failed', restarts: 1 });
  await waitFor(() => lines.at(-1)?.event === 'index.embedded_gave_up');
  t.match(lines.at(-1), { err: /exited \(SIGKILL\) again soon after a restart/ });
  t.equal(server.starts, 1, 'no start attempted');
});

t.test('a server that ran long enough starts a new count', async (t) => {
  const server = fakeServer(['ok', 'ok', 'ok', 'ok']);
  const sup = new EmbeddedPgSupervisor(server, { ...FAST, stableAfterMs: 0 });
  for (let i = 0; i < 4; i++) {
    server.crash();
    await waitFor(() => sup.health().state === 'running');
  }
  await server.settled;
  t.same(sup.health(), { state: 'running', restarts: 4, error: undefined }, 'more than 3');
  await sup.stop();
});

t.test('stop() during the backoff: no further start, exits are ignored', async (t) => {
  const server = fakeServer(['ok']);
  const sup = new EmbeddedPgSupervisor(server, { maxAttempts: 3, maxDelayMs: 60_000 });
  server.crash();
  const t0 = Date.now();
  await sup.stop();
  t.ok(Date.now() - t0 < 1_000, 'the wait is cut short');
  t.equal(server.starts, 0, 'no start after stop()');
  t.equal(server.stops, 1);
  server.crash();
  t.equal(sup.health().state, 'stopped');
  await sup.stop();
  t.equal(server.stops, 1, 'stop() twice stops once');
});

/** Polls a condition on the event loop, bounded. */
async function waitFor(cond: () => boolean, ms = 2_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setImmediate(r));
  }
}
