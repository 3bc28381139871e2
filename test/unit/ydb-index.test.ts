/**
 * YdbIndex's queries and parameters, against the fake transport (test/helpers/ydb-fake.ts):
 * which statements a call sends, in which transaction, with which typed values, and what it
 * makes of the rows YDB answers. The server's semantics are not here (no YDB server can run in
 * this environment): the contract suite runs them when YDB_ENDPOINT is set.
 */
import t from 'tap';
import { Int64, Timestamp, Utf8 } from '@ydbjs/value/primitive';
import { YdbIndex } from '../../src/index/ydb-index.js';
import { schemaStatements, tableRef } from '../../src/index/ydb-schema.js';
import { expectedEvent, makeRecord, sha } from '../helpers/index-contract.js';
import { FakeYdb, type FakeCall } from '../helpers/ydb-fake.js';

function open(fake: FakeYdb): YdbIndex {
  const ix = new YdbIndex({ driver: () => fake.driver(), directory: 'gw', timeoutMs: 2_000 });
  t.teardown(() => ix.close());
  return ix;
}

/** The key of the parameter `name` (as Writes numbers them: name_N) in a call. */
function key(call: FakeCall | undefined, name: string): string | undefined {
  return Object.keys(call?.params ?? {}).find(
    (k) => k === name || new RegExp(`^${name}_\\d+$`).test(k),
  );
}

function param(call: FakeCall | undefined, name: string): unknown {
  const k = key(call, name);
  return k === undefined ? undefined : call!.params[k];
}

/** The DECLARE the SDK puts before the text for a parameter. */
function declared(call: FakeCall | undefined, name: string): string | undefined {
  return new RegExp(`DECLARE \\$${key(call, name)} AS ([^;]+);`).exec(call?.text ?? '')?.[1];
}

const utf8 = (s: string) => new Utf8(s);

t.test(
  'recordInstance, new: reads first, then one write of rows, counters and event',
  async (t) => {
    const fake = new FakeYdb();
    const ix = open(fake);
    let woken = 0;
    ix.onOutbox(() => woken++);
    const rec = makeRecord(
      { patientName: 'Иванов^Иван', studyDate: '19450509' },
      { size: 5 * 1024 ** 3, receivedAt: new Date('2024-02-01T10:00:00.123Z') },
    );
    t.same(await ix.recordInstance(rec), { kind: 'inserted' });
    const [read, write] = fake.calls;
    t.equal(fake.calls.length, 2);
    t.ok(read?.inTx && write?.inTx, 'one transaction');
    t.equal(fake.commits, 1);
    t.match(read?.text, /FROM `gw\/instances` WHERE sop_instance_uid = \$sop/);
    t.equal(param(read, 'sop'), rec.attributes.sopInstanceUid);
    for (const table of [
      'patients',
      'studies',
      'series',
      'instances',
      'outbox',
      'study_activity',
      'sequences',
    ]) {
      t.match(write?.text, new RegExp(`UPSERT INTO \`gw/${table}\``), `writes ${table}`);
    }
    t.equal(param(write, 'size'), 5368709120n, 'a size beyond 32 bits, as Int64');
    t.equal(declared(write, 'size'), 'Int64');
    t.equal(param(write, 'name'), 'Иванов^Иван', 'UTF-8 patient name');
    t.equal(declared(write, 'name'), 'Optional<Utf8>');
    t.equal(param(write, 'date'), '1945-05-09', 'study date as ISO text, before 1970 too');
    t.equal((param(write, 'received_at') as Date).toISOString(), '2024-02-01T10:00:00.123Z');
    t.equal(declared(write, 'received_at'), 'Timestamp');
    t.equal(param(write, 'pending_owner'), null, 'NULL for a stored instance');
    t.equal(param(write, 'ninst'), 1n, 'study counter from 0 to 1');
    t.equal(param(write, 'nser'), 1n, 'first instance of its series: one series');
    const payload = JSON.parse(String(param(write, 'payload')));
    t.same(payload, { ...expectedEvent(rec), size: 5 * 1024 ** 3 }, 'the event payload');
    t.equal(param(write, 'id'), 1n, 'the first event id (sequence was empty)');
    await new Promise((r) => setImmediate(r));
    t.ok(woken >= 2, 'onOutbox: once subscribed, again after the event');
  },
);

t.test('recordInstance: counters continue from the rows read', async (t) => {
  const fake = new FakeYdb();
  const ix = open(fake);
  const rec = makeRecord({}, { size: 100, state: 'pending-upload', pendingOwner: 'h:/spool' });
  fake.answer = (call) =>
    /FROM `gw\/instances`/.test(call.text)
      ? [
          [],
          [],
          [
            {
              num_series: new Int64(2n),
              num_instances: new Int64(5n),
              total_bytes: new Int64(500n),
              num_pending: new Int64(0n),
            },
          ],
          [
            {
              num_instances: new Int64(3n),
              total_bytes: new Int64(300n),
              study_uid: utf8(rec.attributes.studyInstanceUid),
              seq: new Int64(4n),
            },
          ],
          [{ name: utf8('instances'), value: new Int64(41n) }],
        ]
      : [];
  await ix.recordInstance(rec);
  const write = fake.calls[1];
  t.equal(param(write, 'ninst'), 6n);
  t.equal(param(write, 'nser'), 2n, 'a series that has instances is not counted again');
  t.equal(param(write, 'npend'), 1n, 'pending upload counted on the study');
  t.equal(param(write, 'seq'), 4n, 'the series keeps its sequence');
  t.equal(param(write, 'pending_owner'), 'h:/spool');
  t.notMatch(write?.text, /`gw\/outbox`/, 'no event while pending upload');
  t.match(write?.text, /UPSERT INTO `gw\/sequences`/);
  t.same(
    param(write, 'sequence_rows'),
    [{ name: 'instances', value: 42n }],
    'instances 41 -> 42; the known series takes no new sequence',
  );
});

function existing(rec: ReturnType<typeof makeRecord>, sha256: string) {
  return [
    [
      {
        sop_instance_uid: utf8(rec.attributes.sopInstanceUid),
        study_uid: utf8(rec.attributes.studyInstanceUid),
        series_uid: utf8(rec.attributes.seriesInstanceUid),
        store_name: utf8(rec.storeName),
        object_key: utf8(rec.objectKey),
        size: new Int64(BigInt(rec.size)),
        sha256: utf8(sha256),
        state: utf8('stored'),
      },
    ],
  ];
}

t.test(
  'recordInstance, same UID: identical writes nothing; other bytes count a duplicate',
  async (t) => {
    const fake = new FakeYdb();
    const ix = open(fake);
    const rec = makeRecord();
    fake.answer = (call) =>
      /^SELECT|DECLARE[^]*SELECT/.test(call.text) && /sop_instance_uid = \$sop;/.test(call.text)
        ? existing(rec, rec.sha256)
        : [];
    const same = await ix.recordInstance(rec);
    t.equal(same.kind, 'identical');
    t.equal(fake.calls.length, 1, 'no write');
    t.match(same.kind !== 'inserted' && same.existing, {
      size: 1000,
      state: 'stored',
      sha256: rec.sha256,
    });
    const other = await ix.recordInstance({ ...rec, sha256: sha() });
    t.equal(other.kind, 'conflict');
    const update = fake.calls[2];
    t.match(
      update?.text,
      /UPDATE `gw\/instances` SET\s+duplicates_received = COALESCE\(duplicates_received, 0\) \+ 1/,
    );
    t.equal(fake.commits, 2);
  },
);

t.test('markStored: an unknown UID is GW_ERR_INTERNAL, and nothing is written', async (t) => {
  const fake = new FakeYdb();
  const ix = open(fake);
  await t.rejects(ix.markStored('1.2.3'), {
    code: 'GW_ERR_INTERNAL',
    message: 'markStored: no instance 1.2.3 in the index',
  });
  t.equal(fake.calls.length, 1);
  t.equal(fake.commits, 0);
});

t.test(
  'claimDue: new events become deliveries, claimed with a lease on the database clock',
  async (t) => {
    const fake = new FakeYdb();
    const ix = open(fake);
    const now = new Date('2024-03-01T00:00:00.000Z');
    const rec = makeRecord();
    const payload = JSON.stringify(expectedEvent(rec));
    fake.answer = (call) => {
      if (/CurrentUtcTimestamp\(\) AS now/.test(call.text)) {
        return [
          [{ now: new Timestamp(now) }],
          [{ last_id: new Int64(6n) }],
          [{ name: utf8('deliveries'), value: new Int64(7n) }],
        ];
      }
      if (/FROM `gw\/outbox`\s+WHERE id > \$last/.test(call.text)) {
        const ev = (id: bigint, type: string) => ({
          id: new Int64(id),
          event_type: utf8(type),
          payload: utf8(type === 'study.stable' ? '{}' : payload),
          created_at: new Timestamp(new Date(now.getTime() - 1_000)),
        });
        return [[ev(7n, 'instance.stored'), ev(8n, 'study.stable')], []];
      }
      return [];
    };
    const got = await ix.claimDue({
      destination: 'orthanc',
      limit: 10,
      leaseMs: 60_000,
      owner: 'w1',
      maxAttempts: 3,
    });
    const [, read, write] = fake.calls;
    t.equal(param(read, 'last'), 6n, 'events after the cursor');
    t.match(read?.text, /VIEW deliveries_due_idx/);
    t.match(got, [
      {
        id: 8,
        eventId: 7,
        destination: 'orthanc',
        attempts: 1,
        type: 'instance.stored',
        payload: expectedEvent(rec),
      },
    ]);
    t.equal(got.length, 1, "study.stable is not an instance destination's");
    t.match(
      write?.text,
      /UPSERT INTO `gw\/outbox_deliveries` SELECT \* FROM AS_TABLE\(\$rows_\d+\)/,
    );
    t.same(
      param(write, 'rows'),
      [
        {
          id: 8n,
          event_id: 7n,
          destination: 'orthanc',
          state: 'pending',
          attempts: 1n,
          next_attempt_at: new Date('2024-03-01T00:01:00.000Z'),
          last_error: null,
          claimed_by: 'w1',
          claimed_until: new Date('2024-03-01T00:01:00.000Z'),
        },
      ],
      'one delivery row, claimed, its lease from the database clock',
    );
    t.ok(
      Object.entries(write!.params).some(([k, v]) => k.startsWith('last_') && v === 8n),
      'the cursor passes both events',
    );
    t.equal(fake.commits, 1);
  },
);

t.test('schema: every table IF NOT EXISTS, indexes declared with their table', async (t) => {
  const statements = schemaStatements(tableRef('gw'));
  t.ok(statements.every((s) => s.startsWith('CREATE TABLE IF NOT EXISTS `gw/')));
  t.ok(
    statements.some((s) =>
      /INDEX instances_pending_idx GLOBAL SYNC ON \(pending_owner, sop_instance_uid\)/.test(s),
    ),
  );
  const fake = new FakeYdb();
  await open(fake).migrate();
  t.equal(fake.calls.length, statements.length, 'one DDL query per table');
  t.notOk(
    fake.calls.some((c) => c.inTx),
    'outside transactions',
  );
});

t.test('fail/dead: only the claimer of a pending delivery changes it', async (t) => {
  const fake = new FakeYdb();
  const ix = open(fake);
  const row = (owner: string, attempts: number) => [
    [{ attempts: new Int64(BigInt(attempts)), claimed_by: utf8(owner), state: utf8('pending') }],
  ];
  fake.answer = () => row('w2', 1);
  const retryAt = new Date('2024-03-01T00:05:00.000Z');
  const failure = { id: 5, owner: 'w1', error: 'boom', retryAt, maxAttempts: 3 };
  t.equal(await ix.fail(failure), undefined, 'another owner: nothing changed');
  t.equal(await ix.dead(5, 'w1', 'refused'), false);
  t.equal(fake.calls.length, 2, 'reads only');
  fake.answer = (call) => (/^DECLARE[^]*SELECT attempts/.test(call.text) ? row('w1', 3) : []);
  t.equal(await ix.fail(failure), 'dead', 'the last allowed attempt failed');
  const update = fake.calls.at(-1);
  t.match(update?.text, /UPDATE `gw\/outbox_deliveries` SET state = \$state/);
  t.equal(param(update, 'state'), 'dead');
  t.equal((param(update, 'next') as Date).toISOString(), '2024-03-01T00:05:00.000Z');
  t.equal(await ix.fail({ ...failure, maxAttempts: 5 }), 'pending');
});
