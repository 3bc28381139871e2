/**
 * The retention job's schedule and what it asks the index (the deletions themselves are the
 * index's, tested against the real PostgreSQL: index-contract-outbox.ts, pg-retention.test.ts).
 */
import { Writable } from 'node:stream';
import t from 'tap';
import { Metrics } from '../../src/admin/metrics.js';
import { parseConfig } from '../../src/config.js';
import type { InstanceIndex } from '../../src/index/instance-index.js';
import { RetentionJob, startRetention } from '../../src/index/retention-job.js';
import { createLogger } from '../../src/log.js';

const DAY_MS = 86_400_000;

function logged(): { log: ReturnType<typeof createLogger>; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  const sink = new Writable({
    write: (chunk: Buffer, _e, cb) => {
      lines.push(JSON.parse(chunk.toString()) as Record<string, unknown>);
      cb();
    },
  });
  return { log: createLogger({ level: 'info', phi: false }, sink), lines };
}

/** Resolves once `n` calls have been made. */
function calls(n: number): { seen: Date[]; done: Promise<void>; note: (d: Date) => void } {
  const seen: Date[] = [];
  let resolve: () => void = () => undefined;
  const done = new Promise<void>((r) => (resolve = r));
  return {
    seen,
    done,
    note: (d) => {
      seen.push(d);
      if (seen.length === n) resolve();
    },
  };
}

t.test('prunes a moment after start, then every period, each kind by its own age', async (t) => {
  const { log, lines } = logged();
  const outbox = calls(3);
  const runs: Date[] = [];
  const job = new RetentionJob({
    kinds: [
      {
        kind: 'outbox_events',
        days: 30,
        prune: (before) => {
          outbox.note(before);
          return Promise.resolve(outbox.seen.length === 1 ? 7 : 0);
        },
      },
      {
        kind: 'backfill_runs',
        days: 90,
        prune: (before) => (runs.push(before), Promise.resolve(0)),
      },
    ],
    log,
    firstAfterMs: 0,
    everyMs: 1,
  });
  const started = Date.now();
  job.start();
  await outbox.done;
  await job.close();
  const age = (d: Date): number => started - d.getTime();
  t.ok(
    outbox.seen.every((d) => Math.abs(age(d) - 30 * DAY_MS) < 60_000),
    'outbox: 30 days',
  );
  t.ok(
    runs.every((d) => Math.abs(age(d) - 90 * DAY_MS) < 60_000),
    'backfill runs: 90 days',
  );
  t.ok(runs.length >= 3, 'every kind at every prune');
  t.match(
    lines.filter((l) => l.event === 'index.pruned'),
    [{ outbox_events: 7, backfill_runs: 0, msg: /7 outbox events older than 30 days/ }],
    'logged once, when something went',
  );
});

t.test('a failed prune is logged; the other kinds still run', async (t) => {
  const { log, lines } = logged();
  const job = new RetentionJob({
    kinds: [
      { kind: 'outbox_events', days: 1, prune: () => Promise.reject(new Error('index down')) },
      { kind: 'commitments', days: 1, prune: () => Promise.resolve(2) },
    ],
    log,
  });
  t.same(await job.pruneOnce(), { commitments: 2 });
  t.match(lines, [
    { event: 'index.prune_failed', level: 'warn', kind: 'outbox_events', err: /index down/ },
    { event: 'index.pruned', commitments: 2 },
  ]);
});

t.test('serve: kinds kept for good or not prunable by the index are left out', async (t) => {
  const { log, lines } = logged();
  // An index that prunes only its outbox (as the YDB one prunes nothing).
  const index = {
    pruneEvents: () => Promise.resolve(0),
    commitments: {},
  } as unknown as InstanceIndex;
  const none = parseConfig({
    retention: { outboxDays: 0, backfillRunsDays: 0, commitmentsDays: 0 },
  });
  t.equal(startRetention(none.retention, index, new Metrics(), log), undefined, 'all 0: no job');
  t.equal(lines.length, 0, 'nothing said');
  const metrics = new Metrics();
  const job = startRetention(parseConfig({}).retention, index, metrics, log);
  t.ok(job, 'the outbox is pruned');
  await job?.close();
  t.match(
    lines.map((l) => [l.event, l.kind]),
    [
      ['index.retention_unsupported', 'backfill_runs'],
      ['index.retention_unsupported', 'commitments'],
    ],
  );
  const text = await metrics.registry.metrics();
  t.match(text, /dicomgw_index_pruned_total\{kind="outbox_events"\} 0/);
  t.notMatch(text, /kind="backfill_runs"/);
});
