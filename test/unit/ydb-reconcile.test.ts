/**
 * The index methods of the reconcile job and the completeness gate on YDB, against the fake
 * transport (test/helpers/ydb-fake.ts): a completeness recheck wait (`complete_recheck_at`),
 * ended by any instance event; due studies; announcing only listed studies; the reconcile
 * lock as a lease row. The fake answers what the test scripts, not what was written: YDB's own
 * filtering is checked by the contract suite (test/helpers/index-contract-stable.ts) when
 * YDB_ENDPOINT is set, which it cannot be here.
 */
import t from 'tap';
import { Optional } from '@ydbjs/value/optional';
import { Bool, Int64, Timestamp, TimestampType, Utf8 } from '@ydbjs/value/primitive';
import { YdbIndex } from '../../src/index/ydb-index.js';
import { makeRecord } from '../helpers/index-contract.js';
import { FakeYdb, type FakeCall } from '../helpers/ydb-fake.js';

const u = (s: string) => new Utf8(s);
const i64 = (n: number) => new Int64(BigInt(n));
const ts = (d: Date | null) =>
  d === null ? new Optional(null, new TimestampType()) : new Optional(new Timestamp(d));
const now = new Date('2024-05-01T12:00:00.000Z');
const ago = (ms: number) => new Date(now.getTime() - ms);

function open(fake: FakeYdb): YdbIndex {
  const ix = new YdbIndex({ driver: () => fake.driver(), timeoutMs: 2_000 });
  t.teardown(() => ix.close());
  return ix;
}

/** A parameter by name, as Writes numbers them (name_N) or as given. */
function param(call: FakeCall | undefined, name: string): unknown {
  const k = Object.keys(call?.params ?? {}).find(
    (k) => k === name || new RegExp(`^${name}_\\d+$`).test(k),
  );
  return k === undefined ? undefined : call!.params[k];
}

/** The AS_TABLE rows a call writes into `table`. */
function rowsOf(call: FakeCall | undefined, table: string): Array<Record<string, unknown>> {
  const m = new RegExp(
    `UPSERT INTO \`${table}\` SELECT \\* FROM AS_TABLE\\(\\$(rows_\\d+)\\)`,
  ).exec(call?.text ?? '');
  return m ? (call!.params[m[1]!] as Array<Record<string, unknown>>) : [];
}

const writes = (fake: FakeYdb) =>
  fake.calls.filter((c) => /\b(UPSERT|UPDATE|DELETE)\b/.test(c.text.replace(/DECLARE[^;]+;/g, '')));

/** A study_activity row as YDB returns it. */
const activity = (uid: string, quietFor: number, o: { open?: boolean; recheck?: Date } = {}) => ({
  study_uid: u(uid),
  last_activity_at: ts(ago(quietFor)),
  stable_count: new Optional(i64(0)),
  is_open: new Optional(new Bool(o.open ?? true)),
  complete_recheck_at: ts(o.recheck ?? null),
});

const study = (uid: string, pending = 0) => ({
  study_uid: u(uid),
  patient_id: u('PID'),
  num_series: i64(1),
  num_instances: i64(2),
  total_bytes: i64(20),
  num_pending: i64(pending),
});

/** Answers: the clock, the activity rows (index read or by key), the studies rows. */
function script(
  fake: FakeYdb,
  rows: ReturnType<typeof activity>[],
  studies = rows.map((r) => study(String(r.study_uid.value))),
) {
  fake.answer = (call) => {
    if (/CurrentUtcTimestamp\(\) AS now/.test(call.text)) {
      return [[{ now: new Timestamp(now) }], [{ name: u('outbox'), value: i64(10) }]];
    }
    if (/FROM `study_activity`/.test(call.text)) {
      const next = [{ next_at: ts(ago(1_000)) }];
      if (!/last_activity_at <= \$cut|study_uid IN \$only/.test(call.text)) return [next];
      return /next_at/.test(call.text) ? [rows, next] : [rows];
    }
    if (/FROM `studies` WHERE study_uid IN \$uids/.test(call.text)) return [studies];
    return [];
  };
}

t.test('an instance event re-opens its study and ends its recheck wait', async (t) => {
  const fake = new FakeYdb();
  const ix = open(fake);
  await ix.recordInstance(makeRecord());
  const write = fake.calls.at(-1);
  t.match(
    write?.text,
    /UPSERT INTO `study_activity` \(study_uid, last_activity_at, stable_at, is_open,\s+complete_recheck_at\)\s+VALUES \(\$study_\d+, CurrentUtcTimestamp\(\), NULL, true, NULL\)/,
    'in the transaction that writes the instance and its event',
  );
  t.match(write?.text, /UPSERT INTO `outbox`/);
  t.equal(fake.commits, 1);
});

t.test(
  'dueStableStudies: quiet, open, not deferred, nothing pending; nothing written',
  async (t) => {
    const fake = new FakeYdb();
    script(
      fake,
      [
        activity('LATER', 90_000),
        activity('OLDEST', 300_000),
        activity('RECHECKED', 200_000, { recheck: ago(1) }),
        activity('DEFERRED', 250_000, { recheck: new Date(now.getTime() + 60_000) }),
        activity('PENDING', 280_000),
      ],
      [study('LATER'), study('OLDEST'), study('RECHECKED'), study('DEFERRED'), study('PENDING', 1)],
    );
    const ix = open(fake);
    t.same(await ix.dueStableStudies(60_000, 10), ['OLDEST', 'RECHECKED', 'LATER']);
    const read = fake.calls.find((c) => /FROM `study_activity`/.test(c.text));
    t.match(
      read?.text,
      /VIEW activity_open_idx WHERE is_open = true AND last_activity_at <= \$cut/,
    );
    t.match(read?.text, /AND \(complete_recheck_at IS NULL OR complete_recheck_at <= \$now\)/);
    t.same(param(read, 'now'), now, 'the database clock');
    t.same(param(read, 'cut'), ago(60_000));
    t.notMatch(read?.text, /next_at/, 'no next-due read');
    t.same(await ix.dueStableStudies(60_000, 2), ['OLDEST', 'RECHECKED'], 'up to the limit');
    t.same(writes(fake), [], 'read only');
  },
);

t.test('deferStableStudy: a recheck time on the database clock, open studies only', async (t) => {
  const fake = new FakeYdb();
  script(fake, []);
  await open(fake).deferStableStudy('1.2.3', 45_000);
  const [update, ...more] = writes(fake);
  t.same(more, []);
  t.match(
    update?.text,
    /UPDATE `study_activity` SET complete_recheck_at = \$until\s+WHERE study_uid = \$uid AND stable_at IS NULL/,
  );
  t.equal(param(update, 'uid'), '1.2.3');
  t.same(param(update, 'until'), new Date(now.getTime() + 45_000));
  t.equal(fake.commits, 1);
});

t.test('emitStableStudies(only): the listed studies that are due, by key', async (t) => {
  const fake = new FakeYdb();
  script(fake, [
    activity('B', 100_000, { recheck: ago(5_000) }),
    activity('A', 200_000),
    activity('CLOSED', 300_000, { open: false }),
    activity('NEW', 1_000),
    activity('DEFERRED', 300_000, { recheck: new Date(now.getTime() + 1) }),
  ]);
  const only = ['A', 'B', 'CLOSED', 'NEW', 'DEFERRED'];
  const out = await open(fake).emitStableStudies(60_000, 10, only);
  t.same(out, { emitted: 2, nextDueMs: 59_000 });
  const read = fake.calls.find((c) =>
    /FROM `study_activity` WHERE study_uid IN \$only/.test(c.text),
  );
  t.same(param(read, 'only'), only, 'read by key');
  const [write] = writes(fake);
  t.same(
    rowsOf(write, 'study_activity'),
    [
      { study_uid: 'A', stable_at: now, stable_count: 1n, is_open: false },
      { study_uid: 'B', stable_at: now, stable_count: 1n, is_open: false },
    ],
    'A and B closed, longest quiet first',
  );
  const events = rowsOf(write, 'outbox').map((r) => [r.id, r.aggregate_uid]);
  t.same(
    events,
    [
      [11n, 'A'],
      [12n, 'B'],
    ],
    'their events, in one statement',
  );

  const none = new FakeYdb();
  script(none, [activity('A', 200_000)]);
  t.same(await open(none).emitStableStudies(60_000, 10, []), { emitted: 0, nextDueMs: 59_000 });
  t.notOk(
    none.calls.some((c) =>
      /study_uid IN \$only|VIEW activity_open_idx WHERE is_open = true AND last_activity_at <= /.test(
        c.text,
      ),
    ),
    'an empty list: no study read',
  );
  t.same(writes(none), []);
});

t.test('lockReconcile: a lease row per source, held by one owner at a time', async (t) => {
  const fake = new FakeYdb();
  let holder: { owner: string; until: Date } | undefined = { owner: 'other', until: ago(-1_000) };
  fake.answer = (call) =>
    /CurrentUtcTimestamp\(\) AS now/.test(call.text)
      ? [
          [{ now: new Timestamp(now) }],
          holder ? [{ owner: u(holder.owner), expires_at: ts(holder.until) }] : [],
        ]
      : [];
  const ix = open(fake);
  t.equal(await ix.lockReconcile('PACS'), undefined, "another gateway's lease has not run out");
  t.equal(param(fake.calls[0], 'key'), 'reconcile:PACS');
  t.same(writes(fake), [], 'nothing written');
  holder = { owner: 'other', until: ago(1) };
  const lock = await ix.lockReconcile('PACS');
  t.ok(lock, 'an expired lease is taken over');
  const [take] = writes(fake);
  t.match(take?.text, /UPSERT INTO `backfill_locks` \(lock_key, owner, expires_at\)/);
  t.equal(param(take, 'key'), 'reconcile:PACS');
  t.same(param(take, 'until'), new Date(now.getTime() + 30_000), 'LEASE_MS on the database clock');
  const owner = param(take, 'owner');
  await lock!.release();
  const release = writes(fake).at(-1);
  t.match(release?.text, /DELETE FROM `backfill_locks` WHERE lock_key = \$key AND owner = \$owner/);
  t.same(
    [param(release, 'key'), param(release, 'owner')],
    ['reconcile:PACS', owner],
    'its own row',
  );
  holder = undefined;
  const scope = await ix.lockBackfillScope({ sourceAe: 'PACS', studyUid: '1.2' });
  t.equal(param(writes(fake).at(-1), 'key'), 'backfill:PACS:study:1.2', 'not the backfill key');
  await scope?.release();
});
