/**
 * The reconcile job of serve and study.stable waiting for completeness, against a real Orthanc
 * as the hospital PACS (C-FIND / C-MOVE SCP; its DicomModalities name the gateway's port, picked
 * before the gateways start, so each gateway of this file listens there in turn). Gateways run
 * in process on one PostgreSQL and one fs store directory; every wait polls an outcome (a log
 * line, the index, the webhook's receipts) with a deadline.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer as createHttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buffer } from 'node:stream/consumers';
import pg from 'pg';
import t, { type Test } from 'tap';
import { storescu } from '../helpers/dcmtk.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { runCli } from '../helpers/gateway-process.js';
import { generateStudy, type GeneratedFile } from '../helpers/gen-study.js';
import { closedPort, freePort } from '../helpers/net.js';
import { dataSet, loadPacs, sha256, startPacs } from '../helpers/pacs.js';
import { startTestPostgres } from '../helpers/pg.js';
import { until as pollUntil } from '../helpers/verify.js';

const work = await mkdtemp(join(tmpdir(), 'reconcile-'));
t.teardown(() => rm(work, { recursive: true, force: true }));
const dir = join(work, 'gw'); // one store directory for every gateway of the file
const pgsrv = await startTestPostgres();
t.teardown(() => pgsrv.stop());
const db = new pg.Client({ connectionString: pgsrv.connectionString });
await db.connect();
t.teardown(() => db.end());
const port = await freePort();
const orthanc = await startPacs(port);
t.teardown(() => orthanc.stop());
const PACS = { aeTitle: 'HOSPITALPACS', host: '127.0.0.1', port: orthanc.dicomPort };
/** A PACS that is down: nothing listens on its port. */
const DOWN = { aeTitle: 'DOWNPACS', host: '127.0.0.1', port: await closedPort() };
// gen-study dates its studies in 2024: a window reaching back there.
const WINDOW_DAYS = Math.ceil((Date.now() - Date.UTC(2024, 0, 1)) / 86_400_000) + 1;

let seedNo = 700;
async function studies(n: number, series: number, instances: number): Promise<GeneratedFile[][]> {
  const out: GeneratedFile[][] = [];
  for (let k = 0; k < n; k++) {
    const seed = seedNo++;
    const g = await generateStudy(join(work, `s${seed}`), {
      ...{ series, instances, rows: 16, cols: 16, seed },
    });
    out.push(g.files);
  }
  return out;
}

const gateways = new Set<TestGateway>();
/** A gateway on `port`, closed when the subtest ends (a failed one leaves the port free). */
async function gateway(
  t: Test,
  o: { reconcile?: Record<string, unknown>; notify?: Record<string, unknown> },
): Promise<TestGateway> {
  const g = await startTestGateway({
    databaseUrl: pgsrv.connectionString,
    dir,
    dicom: { port, peers: [PACS, DOWN, { aeTitle: 'MODALITY' }] },
    notify: o.notify,
    extra: o.reconcile
      ? {
          reconcile: {
            enabled: true,
            source: 'HOSPITALPACS',
            windowDays: WINDOW_DAYS,
            firstRunAfterSeconds: 0,
            ...o.reconcile,
          },
        }
      : {},
  });
  gateways.add(g);
  t.teardown(() => stop(g));
  return g;
}
async function stop(g: TestGateway): Promise<void> {
  if (gateways.delete(g)) await g.close();
}

/** A configuration file for the CLI on this file's database, store and PACS; returns its path. */
async function cliConfig(name: string, extra: Record<string, unknown>): Promise<string> {
  const path = join(work, name);
  await writeFile(
    path,
    JSON.stringify({
      dicom: { aeTitle: 'DICOMGW', host: '127.0.0.1', port, peers: [PACS] },
      index: { type: 'postgres', url: pgsrv.connectionString },
      store: { type: 'fs', root: dir },
      ...extra,
    }),
  );
  return path;
}

async function send(g: TestGateway, files: readonly GeneratedFile[]): Promise<void> {
  const r = await storescu({
    ...{ host: '127.0.0.1', port: g.port, callingAet: 'MODALITY', calledAet: 'DICOMGW' },
    files: files.map((f) => f.path),
  });
  if (r.code !== 0 || r.statuses.some((s) => s !== 0)) throw new Error(`storescu: ${r.stderr}`);
}

/** The project's poller (helpers/verify.ts) for a synchronous probe whose value may be falsy. */
async function until<T>(what: string, ms: number, probe: () => T | undefined): Promise<T> {
  const found = await pollUntil(
    async () => {
      const v = probe();
      return v === undefined ? undefined : { v };
    },
    ms,
    what,
  );
  return found.v;
}
/** The gateway's log lines of this event. */
const events = (g: TestGateway, event: string) => g.logs.filter((l) => l.event === event);
const nth = (g: TestGateway, event: string, n: number) =>
  until(`${event} #${n}`, 120_000, () => events(g, event)[n - 1]);

async function metric(g: TestGateway, name: string, labels: Record<string, string> = {}) {
  const m = g.gw.metrics.registry.getSingleMetric(name);
  if (!m) return undefined;
  const v = (await m.get()).values.find((x) =>
    Object.entries(labels).every(([k, want]) => x.labels[k] === want),
  );
  return v?.value;
}

/** Every instance of the study indexed, and each stored object's data set as the source's. */
async function assertComplete(t: Test, g: TestGateway, files: GeneratedFile[]) {
  const rows = await g.gw.index.listInstances(files[0]!.studyUid);
  t.same(rows.map((x) => x.sopInstanceUid).sort(), files.map((f) => f.sopInstanceUid).sort());
  for (const f of files) {
    const row = rows.find((x) => x.sopInstanceUid === f.sopInstanceUid);
    if (!row) continue;
    const stored = await readFile(join(dir, 'objects', row.objectKey));
    t.equal(sha256(dataSet(stored)), sha256(dataSet(await readFile(f.path))), 'bytes identical');
  }
}

// Five studies in the PACS: s1 complete in the gateway, s2 without a series, s3 without two
// instances, s4 and s5 absent.
const five = await studies(5, 2, 3);
await loadPacs(orthanc, five.flat());
const [s1, s2, s3] = five as [GeneratedFile[], GeneratedFile[], GeneratedFile[]];
const ofSeries = (s: GeneratedFile[], n: number) => s.filter((f) => f.seriesNumber === n);
const already = [...s1, ...ofSeries(s2, 1), ...ofSeries(s3, 1), ofSeries(s3, 2)[0]!];
const MISSING = 30 - already.length;

t.test('disabled by default: no job, no metric, no run', async (t) => {
  const g = await gateway(t, {});
  await send(g, already);
  t.equal(await metric(g, 'dicomgw_reconcile_runs_total'), undefined, 'no reconcile metrics');
  t.same(
    g.logs.filter((l) => String(l.event).startsWith('reconcile.')),
    [],
  );
  await stop(g);
  t.equal((await db.query('SELECT 1 FROM backfill_runs')).rowCount, 0, 'no backfill run');
});

t.test('a round makes the index and the store complete; the next moves nothing', async (t) => {
  // Rounds due every 60 ms: each must still wait for the one before it to end.
  const g = await gateway(t, { reconcile: { intervalMinutes: 0.001 } });
  const first = await nth(g, 'reconcile.finished', 1);
  t.match(first, {
    result: 'complete',
    studies: 5,
    complete: 1,
    backfilled: 4,
    incomplete: 0,
    instancesMoved: MISSING,
  });
  t.equal(g.gw.ingest.stats.received, MISSING, 'only the missing instances were received');
  for (const s of five) await assertComplete(t, g, s);
  t.equal(await metric(g, 'dicomgw_reconcile_instances_moved_total'), MISSING);
  t.equal(await metric(g, 'dicomgw_reconcile_studies_incomplete'), 0);
  t.ok((await metric(g, 'dicomgw_reconcile_last_success_timestamp_seconds'))! > 0);
  const second = await nth(g, 'reconcile.finished', 2);
  t.match(second, { result: 'complete', studies: 5, complete: 5, instancesMoved: 0 });
  t.comment(
    `round 1: ${MISSING} instances moved in ${String(first.seconds)} s; round 2: ${String(second.seconds)} s`,
  );
  t.equal(g.gw.ingest.stats.received, MISSING, 'the second round moved nothing');
  t.equal(await metric(g, 'dicomgw_reconcile_instances_moved_total'), MISSING);
  t.ok((await metric(g, 'dicomgw_reconcile_runs_total', { result: 'complete' }))! >= 2);
  await stop(g);
  // `status` names the source and its last run, as the index recorded it.
  const cfg = await cliConfig('status.json', {
    reconcile: { enabled: true, source: 'HOSPITALPACS' },
  });
  const json = await runCli(['--config', cfg, 'status', '--json']);
  t.equal(json.code, 0, json.stderr);
  const { rows: last } = await db.query<{ id: string; state: string; failed: string }>(
    `SELECT r.id, r.state, count(*) FILTER (WHERE s.outcome = 'failed') AS failed
       FROM backfill_runs r LEFT JOIN backfill_studies s ON s.run_id = r.id
      WHERE r.source_ae = 'HOSPITALPACS' GROUP BY r.id ORDER BY r.id DESC LIMIT 1`,
  );
  t.match((JSON.parse(json.stdout) as { reconcile: unknown }).reconcile, {
    source: 'HOSPITALPACS',
    lastRun: {
      id: Number(last[0]!.id),
      state: last[0]!.state,
      scope: /^dates:\d{4}-\d\d-\d\d\.\.\d{4}-\d\d-\d\d$/,
      studies: { failed: Number(last[0]!.failed) },
    },
  });
  const text = await runCli(['--config', cfg, 'status']);
  t.match(text.stdout, /reconcile\s+HOSPITALPACS: last run (done|interrupted|running) at /);
  const rounds = g.logs.filter((l) =>
    /^reconcile\.(started|finished|interrupted)$/.test(String(l.event)),
  );
  t.ok(
    rounds.every((l, i) => (l.event === 'reconcile.started') === (i % 2 === 0)),
    `rounds never overlap: ${rounds.map((l) => String(l.event).slice(10)).join(' ')}`,
  );
});

t.test('a round is skipped while another gateway holds the source', async (t) => {
  const holder = new pg.Client({ connectionString: pgsrv.connectionString });
  await holder.connect();
  t.teardown(() => holder.end());
  await holder.query(`SELECT pg_advisory_lock(hashtextextended('reconcile:HOSPITALPACS', 0))`);
  const g = await gateway(t, { reconcile: {} });
  await nth(g, 'reconcile.skipped', 1);
  t.equal(await metric(g, 'dicomgw_reconcile_runs_total', { result: 'skipped' }), 1);
  t.equal(events(g, 'reconcile.started').length, 0);
  await stop(g);
});

t.test('shutdown mid-round: recorded interrupted, the next round resumes it', async (t) => {
  const added = await studies(4, 1, 15);
  await loadPacs(orthanc, added.flat());
  const a = await gateway(t, { reconcile: {} });
  // Closed as soon as one study is backfilled: the others are still to come.
  await until('a study backfilled', 120_000, () =>
    a.logs.find((l) => l.event === 'backfill.study' && l.outcome === 'backfilled'),
  );
  await stop(a);
  const movedFirst = a.gw.ingest.stats.received;
  t.ok(movedFirst > 0 && movedFirst < 60, `${movedFirst} instances moved before shutdown`);
  t.equal(events(a, 'reconcile.interrupted').length, 1);
  const { rows } = await db.query(
    `SELECT state, finished_at FROM backfill_runs ORDER BY id DESC LIMIT 1`,
  );
  t.match(rows[0], { state: 'interrupted', finished_at: null }, 'the run waits to be resumed');
  const b = await gateway(t, { reconcile: {} });
  t.match(await nth(b, 'reconcile.finished', 1), { result: 'complete', resumed: true });
  t.equal(b.gw.ingest.stats.duplicates, 0, 'no instance received twice');
  t.equal(movedFirst + b.gw.ingest.stats.received, 60, 'every added instance once');
  for (const s of added) await assertComplete(t, b, s);
  await stop(b);
});

t.test('study.stable waits until the study is complete against its source', async (t) => {
  const received: Array<{ type: string; studyInstanceUid: string }> = [];
  const hook = createHttpServer((req, res) => {
    void buffer(req).then((body) => {
      received.push(...(JSON.parse(body.toString('utf8')) as { events: [] }).events);
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((resolve) => hook.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => hook.close(() => resolve())));
  const url = `http://127.0.0.1:${(hook.address() as AddressInfo).port}/events`;
  const g = await gateway(t, {
    notify: {
      destinations: [{ name: 'hook', type: 'webhook', url, events: ['study.stable'] }],
      stableAfterSeconds: 1,
      pollSeconds: 1,
      stableRequireComplete: { source: 'HOSPITALPACS', recheckSeconds: 1 },
    },
  });
  const [byHand, byBackfill, notInPacs] = (await studies(3, 2, 3)) as [
    GeneratedFile[],
    GeneratedFile[],
    GeneratedFile[],
  ];
  await loadPacs(orthanc, [...byHand, ...byBackfill]);
  await send(g, [...byHand.slice(1), ...byBackfill.slice(2), ...notInPacs]);
  const stableOf = (uid: string) =>
    received.filter((e) => e.type === 'study.stable' && e.studyInstanceUid === uid);
  const waiting = (uid: string, n: number) =>
    until(
      `${uid} waiting #${n}`,
      60_000,
      () =>
        g.logs.filter((l) => l.event === 'notify.stable_waiting' && l.studyInstanceUid === uid)[
          n - 1
        ],
    );
  // A study the source does not hold lacks nothing: announced.
  await until(
    'the study the PACS lacks announced',
    60_000,
    () => stableOf(notInPacs[0]!.studyUid)[0],
  );
  const hand = byHand[0]!.studyUid;
  const back = byBackfill[0]!.studyUid;
  t.match(await waiting(hand, 1), { reason: /1 of 6 instances missing against HOSPITALPACS/ });
  t.match(await waiting(back, 1), { reason: /2 of 6 instances missing/ });
  // Checked again and still waiting (recheckSeconds 1): never announced while partial.
  await waiting(hand, 2);
  t.same(stableOf(hand), [], 'not announced while partial');
  await send(g, byHand.slice(0, 1));
  await until('study.stable after the missing instance arrived', 60_000, () => stableOf(hand)[0]);
  const cfg = await cliConfig('cli.json', { admin: { enabled: false } });
  t.same(stableOf(back), [], 'the other one still waits');
  const r = await runCli([
    '--config',
    cfg,
    'backfill',
    '--source',
    'HOSPITALPACS',
    '--study',
    back,
  ]);
  t.equal(r.code, 0, r.stderr.slice(-2000));
  await until('study.stable after the backfill', 60_000, () => stableOf(back)[0]);
  // Once each: a later study going quiet shows the sweep ran again meanwhile.
  const [later] = (await studies(1, 1, 1)) as [GeneratedFile[]];
  await send(g, later);
  await until('a later study announced', 60_000, () => stableOf(later[0]!.studyUid)[0]);
  t.equal(stableOf(hand).length, 1, 'announced once');
  t.equal(stableOf(back).length, 1, 'announced once');
  await stop(g);
});

t.test('study.stable waits while the source cannot be reached, and says why', async (t) => {
  const hookEvents: Array<{ studyInstanceUid: string }> = [];
  const hook = createHttpServer((req, res) => {
    void buffer(req).then((body) => {
      hookEvents.push(...(JSON.parse(body.toString('utf8')) as { events: [] }).events);
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((resolve) => hook.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => hook.close(() => resolve())));
  const url = `http://127.0.0.1:${(hook.address() as AddressInfo).port}/events`;
  const g = await gateway(t, {
    notify: {
      destinations: [{ name: 'hook', type: 'webhook', url, events: ['study.stable'] }],
      stableAfterSeconds: 1,
      pollSeconds: 1,
      stableRequireComplete: { source: 'DOWNPACS', recheckSeconds: 1 },
    },
  });
  const [study] = (await studies(1, 1, 2)) as [GeneratedFile[]];
  await send(g, study);
  const uid = study[0]!.studyUid;
  const waits = () =>
    g.logs.filter((l) => l.event === 'notify.stable_waiting' && l.studyInstanceUid === uid);
  await until('two checks that could not reach the source', 60_000, () => waits()[1]);
  t.match(waits()[0], {
    reason: /cannot check against DOWNPACS: source DOWNPACS .* not reachable/,
  });
  // (Events of earlier subtests may be delivered again: at least once, to the same destination.)
  t.same(
    hookEvents.filter((e) => e.studyInstanceUid === uid),
    [],
    'not announced',
  );
  await stop(g);
});
