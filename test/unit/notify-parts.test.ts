import t from 'tap';
import type { StatusReport } from '../../src/admin/status-report.js';
import { formatStatus } from '../../src/cli/status-table.js';
import { backoffDelayMs } from '../../src/notify/backoff.js';
import { classifyStatus } from '../../src/notify/http.js';
import { mapImportAnswer } from '../../src/notify/orthanc-pull.js';
import { Wakeup } from '../../src/notify/wakeup.js';
import type { InstanceStoredEvent } from '../../src/index/outbox-event.js';
import type { StudyStableEvent } from '../../src/index/study-event.js';
import { entryName } from '../../src/notify/archive.js';
import {
  dead,
  instancesOnly,
  ok,
  retry,
  type DeliveryResult,
  type NotifyEvent,
} from '../../src/notify/destination.js';

t.test('backoff: exponential, capped, jitter within [base/2, base]', async (t) => {
  const o = { initialMs: 1000, maxMs: 60_000 };
  t.equal(
    backoffDelayMs(1, o, () => 1),
    1000,
  );
  t.equal(
    backoffDelayMs(1, o, () => 0),
    500,
  );
  t.equal(
    backoffDelayMs(2, o, () => 1),
    2000,
  );
  t.equal(
    backoffDelayMs(4, o, () => 1),
    8000,
  );
  t.equal(
    backoffDelayMs(30, o, () => 1),
    60_000,
    'capped at max',
  );
  t.equal(
    backoffDelayMs(1000, o, () => 0),
    30_000,
    'no overflow for huge attempt counts',
  );
  for (let a = 1; a < 12; a++) {
    const d = backoffDelayMs(a, o);
    const base = Math.min(60_000, 1000 * 2 ** (a - 1));
    t.ok(d >= base / 2 && d <= base, `attempt ${a}: ${d} within [${base / 2}, ${base}]`);
  }
});

t.test('a whole HTTP answer: which statuses are worth a retry', async (t) => {
  t.equal(classifyStatus(200), 'ok');
  t.equal(classifyStatus(204), 'ok');
  for (const s of [500, 502, 503, 504, 408, 429, 401, 403, 404])
    t.equal(classifyStatus(s), 'retry');
  for (const s of [400, 409, 413, 415, 422]) t.equal(classifyStatus(s), 'dead');
});

t.test('the import plugin answer mapped per item', async (t) => {
  const item = (httpStatus: number, error?: string) => ({
    bucket: 'b',
    key: 'k',
    httpStatus,
    status: httpStatus === 200 ? 'Success' : 'Failed',
    ...(error ? { error, message: `${error} happened` } : {}),
  });
  const answer = (...items: object[]) => JSON.stringify({ items });
  t.same(mapImportAnswer(200, answer(item(200), item(200)), 2), [
    { outcome: 'ok' },
    { outcome: 'ok' },
  ]);
  const mixed = mapImportAnswer(
    502,
    answer(
      item(200),
      item(404, 'ObjectNotFound'),
      item(413, 'ObjectTooLarge'),
      item(422, 'Sha256Mismatch'),
      item(502, 'S3Error'),
      item(500, 'ImportFailed'),
    ),
    6,
  );
  t.same(
    mixed.map((r) => r.outcome),
    ['ok', 'retry', 'dead', 'dead', 'retry', 'retry'],
  );
  t.match(mixed[3], { error: /422 Sha256Mismatch: Sha256Mismatch happened/ });
  // Not the plugin's answer: the whole batch by the HTTP status.
  t.same(
    mapImportAnswer(401, 'Unauthorized', 2).map((r) => r.outcome),
    ['retry', 'retry'],
  );
  t.same(
    mapImportAnswer(400, '{"status":"Failed","error":"BadRequest"}', 1).map((r) => r.outcome),
    ['dead'],
  );
  t.same(
    mapImportAnswer(200, answer(item(200)), 2).map((r) => r.outcome),
    ['retry', 'retry'],
    'a 200 with the wrong number of items is not trusted',
  );
});

t.test('wakeup: a ring ends a wait; a ring while busy is kept; the poll ends it too', async (t) => {
  const w = new Wakeup();
  const never = new AbortController().signal;
  const waiting = w.wait(60_000, never);
  w.ring();
  await waiting;
  w.ring();
  const started = Date.now();
  await w.wait(60_000, never);
  t.ok(Date.now() - started < 1000, 'a ring before the wait is not slept through');
  await w.wait(20, never);
  t.pass('the poll interval ends a wait');
  const stop = new AbortController();
  const stopped = w.wait(60_000, stop.signal);
  stop.abort();
  await stopped;
  t.pass('abort ends a wait');
});

t.test('status: one row per notify destination, dead ones point at notify retry', async (t) => {
  const report: StatusReport = {
    version: '1',
    generatedAt: '2024-01-01T00:00:00.000Z',
    dicom: { aeTitle: 'DICOMGW', host: '0.0.0.0', port: 11112 },
    store: '/data/objects',
    index: {
      studies: 0,
      series: 0,
      instances: 0,
      bytes: 0,
      pendingUpload: 0,
      outboxPending: 0,
      outboxPendingCapped: false,
      lastStudyByCallingAe: [],
    },
    notify: [
      { destination: 'cloud', pending: 1200, pendingCapped: false, dead: 0 },
      { destination: 'hook', pending: 100000, pendingCapped: true, dead: 3 },
    ],
  };
  const out = formatStatus(report);
  t.match(out, /^notify cloud +1,200 pending, 0 dead$/m);
  t.match(out, /^notify hook +at least 100,000 pending, 3 dead \(dicom-gateway notify retry\)$/m);
  t.match(formatStatus({ ...report, notify: { error: 'down' } }), /^notify +unavailable: down$/m);
});

t.test(
  'instancesOnly: study events are ok at once, instance results keep their places',
  async (t) => {
    const inst = (id: number): NotifyEvent => ({
      eventId: id,
      type: 'instance.stored',
      payload: { sopInstanceUid: `1.${id}` } as InstanceStoredEvent,
    });
    const study: NotifyEvent = {
      eventId: 2,
      type: 'study.stable',
      payload: { studyInstanceUid: '1.2' } as StudyStableEvent,
    };
    const seen: number[][] = [];
    const results = await instancesOnly([inst(1), study, inst(3)], async (events) => {
      seen.push(events.map((e) => e.eventId));
      return [retry('a'), dead('b')];
    });
    t.same(seen, [[1, 3]], 'only the instance events are delivered');
    t.same(results, [retry('a'), ok, dead('b')]);
    const never = async (): Promise<DeliveryResult[]> => {
      throw new Error('not called');
    };
    t.same(await instancesOnly([study], never), [ok], 'a batch of study events alone');
  },
);

t.test('archive entries are named below studies/<uid>/', async (t) => {
  t.equal(
    entryName('pfx/studies/1.2/series/1.2.3/instances/1.2.3.4.dcm', '1.2'),
    'series/1.2.3/instances/1.2.3.4.dcm',
  );
  t.equal(entryName('elsewhere/x.dcm', '1.2'), 'elsewhere/x.dcm');
});
