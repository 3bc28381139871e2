/**
 * The retention job's schedule and what it asks the index (the deletion itself is the index
 * contract's, against the real PostgreSQL: test/helpers/index-contract-outbox.ts).
 */
import { Writable } from 'node:stream';
import t from 'tap';
import { Metrics } from '../../src/admin/metrics.js';
import { createLogger } from '../../src/log.js';
import { OutboxPruner, startOutboxPruner } from '../../src/notify/outbox-pruner.js';

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

t.test('prunes at start and then every period, events older than retentionDays', async (t) => {
  const { log, lines } = logged();
  const asked: Date[] = [];
  let third: () => void = () => undefined;
  const thirdCall = new Promise<void>((resolve) => (third = resolve));
  const pruner = new OutboxPruner({
    outbox: {
      pruneEvents: (before) => {
        asked.push(before);
        if (asked.length === 3) third();
        return Promise.resolve(asked.length === 1 ? 7 : 0);
      },
    },
    retentionDays: 30,
    log,
    firstAfterMs: 0,
    everyMs: 1,
  });
  const started = Date.now();
  pruner.start();
  await thirdCall;
  await pruner.close();
  const ages = asked.map((d) => started - d.getTime());
  t.ok(
    ages.every((a) => Math.abs(a - 30 * 86_400_000) < 60_000),
    'each asks for events older than 30 days',
  );
  const pruned = lines.filter((l) => l.event === 'notify.outbox_pruned');
  t.match(
    pruned,
    [{ events: 7, msg: /7 outbox events older than 30 days/ }],
    'logged when some went',
  );
});

t.test('a failed prune is logged and tried again at the next period', async (t) => {
  const { log, lines } = logged();
  let calls = 0;
  let second: () => void = () => undefined;
  const secondCall = new Promise<void>((resolve) => (second = resolve));
  const pruner = new OutboxPruner({
    outbox: {
      pruneEvents: () => {
        if (++calls === 2) second();
        return calls === 1 ? Promise.reject(new Error('index down')) : Promise.resolve(0);
      },
    },
    retentionDays: 1,
    log,
    firstAfterMs: 0,
    everyMs: 1,
  });
  pruner.start();
  await secondCall;
  await pruner.close();
  t.match(
    lines.find((l) => l.event === 'notify.outbox_prune_failed'),
    { level: 'warn', err: /index down/ },
  );
});

t.test('off with retentionDays 0, or an index that cannot prune', async (t) => {
  const { log, lines } = logged();
  const noPrune = {} as Parameters<typeof startOutboxPruner>[1];
  t.equal(startOutboxPruner(0, noPrune, new Metrics(), log), undefined);
  t.equal(lines.length, 0, 'retentionDays 0: nothing said');
  t.equal(startOutboxPruner(30, noPrune, new Metrics(), log), undefined);
  t.match(lines, [{ event: 'notify.outbox_retention_unsupported' }], 'said once');
});
