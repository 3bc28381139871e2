/**
 * What YdbIndex makes of the rows YDB answers (fake transport, test/helpers/ydb-fake.ts): the
 * study summary, the order of a study's instances, the stable-studies sweep, and a driver that
 * never becomes ready being replaced.
 */
import t from 'tap';
import type { Driver } from '@ydbjs/core';
import { Optional } from '@ydbjs/value/optional';
import {
  Bool,
  Int32,
  Int64,
  Timestamp,
  TimestampType,
  Utf8,
  Utf8Type,
} from '@ydbjs/value/primitive';
import { isGatewayError } from '../../src/errors.js';
import { YdbExec } from '../../src/index/ydb-exec.js';
import { YdbIndex } from '../../src/index/ydb-index.js';
import { FakeYdb } from '../helpers/ydb-fake.js';

const u = (s: string) => new Utf8(s);
const i64 = (n: number) => new Int64(BigInt(n));
const nullText = () => new Optional(null, new Utf8Type());

function open(fake: FakeYdb): YdbIndex {
  const ix = new YdbIndex({ driver: () => fake.driver(), timeoutMs: 2_000 });
  t.teardown(() => ix.close());
  return ix;
}

t.test(
  'getStudy: counters as numbers, DA back to YYYYMMDD, modalities with instances',
  async (t) => {
    const fake = new FakeYdb();
    fake.answer = () => [
      [
        {
          study_uid: u('1.2.3'),
          patient_id: u(''),
          study_date: u('1936-12-31'),
          accession_number: nullText(),
          description: u('ГОЛОВА'),
          num_series: i64(2),
          num_instances: i64(3),
          total_bytes: i64(6 * 1024 ** 3),
          first_received_at: new Timestamp(new Date('2024-02-01T10:00:00.001Z')),
          last_received_at: new Timestamp(new Date('2024-02-01T10:00:02.002Z')),
          patient_name: nullText(),
        },
      ],
      [
        { modality: u('SR'), num_instances: i64(1) },
        { modality: u('CT'), num_instances: i64(2) },
        { modality: u('MR'), num_instances: i64(0) },
      ],
    ];
    const s = await open(fake).getStudy('1.2.3');
    t.match(fake.calls[0]?.text, /LEFT JOIN `patients` AS p ON p\.patient_id = s\.patient_id/);
    t.same(s, {
      studyInstanceUid: '1.2.3',
      patientId: undefined,
      patientName: undefined,
      studyDate: '19361231',
      accessionNumber: undefined,
      studyDescription: 'ГОЛОВА',
      modalitiesInStudy: ['CT', 'SR'],
      numberOfSeries: 2,
      numberOfInstances: 3,
      totalBytes: 6 * 1024 ** 3,
      firstReceivedAt: new Date('2024-02-01T10:00:00.001Z'),
      lastReceivedAt: new Date('2024-02-01T10:00:02.002Z'),
    });
    fake.answer = () => [[], []];
    t.equal(await open(fake).getStudy('9.9'), undefined);
  },
);

t.test('listInstances: series number, series arrival, instance number, arrival', async (t) => {
  const fake = new FakeYdb();
  const inst = (sop: string, series: string, number: number | null, seq: number) => ({
    sop_instance_uid: u(sop),
    study_uid: u('1'),
    series_uid: u(series),
    store_name: u('fs'),
    object_key: u(`${sop}.dcm`),
    size: i64(1),
    sha256: u('0'.repeat(64)),
    state: u('stored'),
    instance_number:
      number === null ? new Optional(null, new Int32(0).type) : new Optional(new Int32(number)),
    seq: i64(seq),
  });
  fake.answer = () => [
    [
      inst('c', 's2', 1, 1),
      inst('a2', 's1', 2, 2),
      inst('x', 's1', null, 3),
      inst('a1', 's1', 1, 4),
      inst('n', 'sN', 1, 5),
    ],
    [
      { series_uid: u('s1'), series_number: new Optional(new Int32(1)), seq: i64(2) },
      { series_uid: u('s2'), series_number: new Optional(new Int32(2)), seq: i64(1) },
      { series_uid: u('sN'), series_number: new Optional(null, new Int32(0).type), seq: i64(3) },
    ],
  ];
  const list = await open(fake).listInstances('1');
  t.same(
    list.map((i) => i.sopInstanceUid),
    ['a1', 'a2', 'x', 'c', 'n'],
  );
});

t.test('emitStableStudies: quiet studies announced, a pending upload holds one back', async (t) => {
  const fake = new FakeYdb();
  const now = new Date('2024-05-01T12:00:00.000Z');
  fake.answer = (call) => {
    if (/CurrentUtcTimestamp\(\) AS now/.test(call.text)) {
      return [[{ now: new Timestamp(now) }], [{ name: u('outbox'), value: i64(10) }]];
    }
    if (/VIEW activity_open_idx/.test(call.text)) {
      const q = (uid: string, count: number) => ({
        study_uid: u(uid),
        last_activity_at: new Timestamp(new Date(now.getTime() - 120_000)),
        stable_count: i64(count),
        is_open: new Optional(new Bool(true)),
        complete_recheck_at: new Optional(null, new TimestampType()),
      });
      return [
        [q('A', 0), q('B', 1)],
        [{ next_at: new Optional(new Timestamp(new Date(now.getTime() - 10_000))) }],
      ];
    }
    if (/FROM `studies` WHERE study_uid IN \$uids/.test(call.text)) {
      const s = (uid: string, pending: number) => ({
        study_uid: u(uid),
        patient_id: u('PID'),
        num_series: i64(1),
        num_instances: i64(4),
        total_bytes: i64(400),
        num_pending: i64(pending),
      });
      return [[s('A', 1), s('B', 0)]];
    }
    return [];
  };
  const out = await open(fake).emitStableStudies(60_000, 10);
  t.same(out, { emitted: 1, nextDueMs: 50_000 });
  const write = fake.calls.at(-1)!;
  /** The AS_TABLE rows written into `table`. */
  const rowsOf = (table: string) => {
    const m = new RegExp(
      `UPSERT INTO \`${table}\` SELECT \\* FROM AS_TABLE\\(\\$(rows_\\d+)\\)`,
    ).exec(write.text);
    return m ? (write.params[m[1]!] as Array<Record<string, unknown>>) : undefined;
  };
  const [event, ...more] = rowsOf('outbox') ?? [];
  t.same(more, [], 'one event, in one statement');
  t.match(event, { id: 11n, event_type: 'study.stable', aggregate_uid: 'B', created_at: now });
  t.same(JSON.parse(String(event?.payload)), {
    studyInstanceUid: 'B',
    patientId: 'PID',
    numberOfSeries: 1,
    numberOfInstances: 4,
    totalBytes: 400,
    lastInstanceAt: '2024-05-01T11:58:00.000Z',
    stableAt: '2024-05-01T12:00:00.000Z',
    stableCount: 2,
  });
  t.same(
    rowsOf('study_activity'),
    [{ study_uid: 'B', stable_at: now, stable_count: 2n, is_open: false }],
    'study B closed, in one statement',
  );
  t.notMatch(
    JSON.stringify(write.params, (_k, v: unknown) => (typeof v === 'bigint' ? String(v) : v)),
    /"A"/,
    'study A (pending upload) untouched',
  );
});

t.test('a driver that never became ready is replaced by a new one', async (t) => {
  const fake = new FakeYdb();
  let made = 0;
  const driver = (): Driver => {
    made++;
    const d = fake.driver();
    if (made === 1) {
      return Object.assign(Object.create(d) as Driver, {
        ready: () => Promise.reject(new Error('discovery failed: ECONNREFUSED')),
        close: () => undefined,
      });
    }
    return d;
  };
  const exec = new YdbExec({ driver, timeoutMs: 2_000 });
  t.teardown(() => exec.close());
  const err = await exec.read('ping', 'SELECT 1').then(
    () => undefined,
    (e: unknown) => e,
  );
  t.ok(isGatewayError(err, 'GW_ERR_INDEX_UNAVAILABLE'), String(err));
  t.equal(made, 2, 'a new driver was made');
  await exec.read('ping', 'SELECT 1');
  t.equal(fake.calls.length, 1, 'the next call goes through the new one');
});

/** The column names of each SELECT list in a query text (to catch a name given twice). */
function selectLists(text: string): string[][] {
  return [...text.matchAll(/SELECT\s+([^;]*?)\s+FROM/g)].map((m) =>
    m[1]!.split(',').map((c) =>
      c
        .trim()
        .split(/\s+AS\s+/i)
        .pop()!
        .trim(),
    ),
  );
}

t.test('storedObjects: stored instances then versions, paged by sequence', async (t) => {
  const fake = new FakeYdb();
  const obj = (sop: string, seq: number, extra: Record<string, Utf8>) => ({
    seq: i64(seq),
    sop_instance_uid: u(sop),
    store_name: u('s3:dicom'),
    object_key: u(`${sop}.dcm`),
    size: i64(10 * seq),
    sha256: u('a'.repeat(64)),
    ...extra,
  });
  fake.answer = (call) => {
    if (/VIEW instances_seq_idx/.test(call.text)) {
      return [
        [
          obj('A', 1, { study_uid: u('S1'), state: u('stored') }),
          obj('P', 2, { study_uid: u('S1'), state: u('pending-upload') }),
          obj('B', 3, { study_uid: u('S2'), state: u('stored') }),
        ],
      ];
    }
    if (/VIEW versions_seq_idx/.test(call.text)) return [[obj('A', 1, {})]];
    if (/WHERE sop_instance_uid IN \$sops/.test(call.text)) {
      return [[{ sop_instance_uid: u('A'), study_uid: u('S1'), state: u('stored') }]];
    }
    return [];
  };
  const keys: string[] = [];
  for await (const o of open(fake).storedObjects({ studyInstanceUid: 'S1' }))
    keys.push(o.objectKey);
  t.same(keys, ['A.dcm', 'A.dcm'], 'the stored instance of S1, then its version');
  for (const c of fake.calls) {
    for (const list of selectLists(c.text)) {
      t.equal(new Set(list).size, list.length, `no column twice: ${list.join(', ')}`);
    }
  }
  t.same(
    await open(fake).countStoredObjects({}),
    { objects: 3, bytes: 50 },
    "A, B and A's version",
  );
});
