/**
 * The index goes away under a running gateway (the real `serve` process) and comes back:
 * - the embedded PostgreSQL's postmaster is SIGKILLed: the gateway restarts it, C-STOREs answered
 *   A700 meanwhile succeed again afterwards, /healthz stays 200;
 * - an external PostgreSQL is stopped and started again: the pool reconnects, no gateway restart;
 * - the embedded PostgreSQL cannot start again: the gateway gives up after
 *   index.restart.maxAttempts and /healthz answers 503, so an orchestrator restarts the process.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { FsStore } from '../../src/store/fs-store.js';
import { instanceKey } from '../../src/store/keys.js';
import { storescu } from '../helpers/dcmtk.js';
import { startGatewayProcess, type GatewayProcess } from '../helpers/gateway-process.js';
import { generateStudy, type GeneratedFile } from '../helpers/gen-study.js';
import { startTestPostgres } from '../helpers/pg.js';
import { checkStored, query, until } from '../helpers/verify.js';

const work = await mkdtemp(join(tmpdir(), 'gw-index-restart-'));
t.teardown(() => rm(work, { recursive: true, force: true }));
const study = await generateStudy(join(work, 'study'), {
  instances: 9,
  rows: 16,
  cols: 16,
  seed: 91,
});
const files = study.files;

interface Running {
  gw: GatewayProcess;
  admin: string;
}

async function start(
  t: Test,
  name: string,
  index: Record<string, unknown>,
  root = join(work, name, 'objects'),
): Promise<Running> {
  const gw = await startGatewayProcess(
    {
      dicom: { aeTitle: 'DICOMGW', host: '127.0.0.1', port: 0 },
      index,
      store: { type: 'fs', root, ack: 'stored' },
      admin: { enabled: true, host: '127.0.0.1', port: 0 },
      log: { level: 'info' },
    },
    join(work, `${name}.json`),
    120_000,
  );
  t.teardown(async () => {
    gw.child.kill('SIGKILL');
    await gw.exited;
  });
  const started = await until(
    async () => gw.events().find((e) => e.event === 'admin.started'),
    10_000,
    'admin.started',
  );
  return { gw, admin: `http://127.0.0.1:${Number(started.port)}` };
}

async function get(url: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(url, { signal: AbortSignal.timeout(10_000) });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

async function send(gw: GatewayProcess, file: GeneratedFile): Promise<number[]> {
  const r = await storescu({
    host: '127.0.0.1',
    port: gw.port,
    callingAet: 'STORESCU',
    calledAet: 'DICOMGW',
    files: [file.path],
    timeoutMs: 30_000,
  });
  return r.statuses;
}

/** Sends `file` again and again until it is answered 0000; returns the statuses seen before. */
async function sendUntilStored(gw: GatewayProcess, file: GeneratedFile): Promise<number[]> {
  const seen: number[] = [];
  await until(
    async () => {
      const statuses = await send(gw, file);
      if (statuses[0] === 0) return true;
      seen.push(...statuses);
      return false;
    },
    90_000,
    `${file.sopInstanceUid} answered 0000`,
  );
  return seen;
}

const events = (gw: GatewayProcess, name: string): Array<Record<string, unknown>> =>
  gw.events().filter((e) => e.event === name);

/** The connection string of a gateway's embedded index: its password file and logged port. */
async function embeddedUrl(gw: GatewayProcess, dataDir: string): Promise<string> {
  const password = (await readFile(`${dataDir}.password`, 'utf8')).trim();
  const ready = gw.events().find((e) => e.msg === 'embedded PostgreSQL ready');
  return `postgresql://postgres:${encodeURIComponent(password)}@127.0.0.1:${Number(ready?.port)}/dicom_gateway`;
}

async function postmasterPid(dataDir: string): Promise<number> {
  const text = await readFile(join(dataDir, 'postmaster.pid'), 'utf8');
  const pid = Number.parseInt(text.split('\n')[0] ?? '', 10);
  if (!(pid > 0)) throw new Error(`no pid in ${dataDir}/postmaster.pid`);
  return pid;
}

/** The instance is in the index (by URL) and in the store under `root`, byte-exact. */
async function checkIndexedAndStored(
  t: Test,
  url: string,
  root: string,
  f: GeneratedFile,
): Promise<void> {
  const rows = await query<{ n: string }>(
    url,
    'SELECT count(*) AS n FROM instances WHERE sop_instance_uid = $1',
    [f.sopInstanceUid],
  );
  t.equal(rows[0]?.n, '1', `${f.sopInstanceUid} is in the index`);
  const c = await checkStored(
    new FsStore({ root }),
    instanceKey('', f.studyUid, f.seriesUid, f.sopInstanceUid),
    f.path,
  );
  t.ok(c.datasetEqual && c.shaMetadataOk, 'and in the store, exact');
}

function metric(text: string, name: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  return line ? Number(line.slice(name.length + 1)) : Number.NaN;
}

t.test('embedded PostgreSQL killed with SIGKILL: restarted, stores succeed again', async (t) => {
  const dataDir = join(work, 'kill', 'pg');
  const { gw, admin } = await start(t, 'kill', { type: 'embedded', dataDir });
  const root = join(work, 'kill', 'objects');
  t.same(await send(gw, files[0]!), [0], 'stored before the kill');
  const url = await embeddedUrl(gw, dataDir);

  const pid = await postmasterPid(dataDir);
  process.kill(pid, 'SIGKILL');
  const before = await sendUntilStored(gw, files[1]!);
  t.ok(
    before.every((s) => s === 0xa700),
    `only A700 (transient) while it was down: ${before.map((s) => s.toString(16)).join(' ')}`,
  );

  const exited = events(gw, 'index.embedded_exited');
  t.match(exited, [{ pid, signal: 'SIGKILL' }], 'the exit is logged with its signal');
  const restarted = await until(
    async () => events(gw, 'index.embedded_restarted')[0],
    10_000,
    'index.embedded_restarted',
  );
  t.type(restarted.downtimeMs, 'number', 'the restart is logged with the downtime');
  t.comment(`down for ${Number(restarted.downtimeMs)} ms, ${before.length} sends answered A700`);
  for (const e of gw.events().filter((e) => String(e.event).startsWith('index.')))
    t.comment(JSON.stringify(e));
  t.ok(events(gw, 'index.embedded_restarting').length >= 1, 'restart attempts are logged');
  t.not(await postmasterPid(dataDir), pid, 'a new postmaster');

  await checkIndexedAndStored(t, url, root, files[1]!);
  t.equal((await get(`${admin}/healthz`)).status, 200, '/healthz 200');
  await until(async () => (await get(`${admin}/readyz`)).status === 200, 10_000, '/readyz 200');
  const text = await (await fetch(`${admin}/metrics`)).text();
  t.equal(metric(text, 'dicomgw_index_restarts_total'), 1, 'one restart counted');
  t.equal(gw.child.exitCode, null, 'the same gateway process throughout');
});

t.test('external PostgreSQL stopped and started again: no gateway restart', async (t) => {
  const pgsrv = await startTestPostgres();
  t.teardown(() => pgsrv.stop());
  const root = join(work, 'external', 'objects');
  const { gw, admin } = await start(t, 'external', {
    type: 'postgres',
    url: pgsrv.connectionString,
  });
  t.same(await send(gw, files[2]!), [0], 'stored before the outage');

  await pgsrv.stopServer();
  t.same(await send(gw, files[3]!), [0xa700], 'A700 while PostgreSQL is down');
  t.equal((await get(`${admin}/healthz`)).status, 200, '/healthz 200: the gateway is fine');
  t.equal((await get(`${admin}/readyz`)).status, 503, '/readyz 503: the index is not');
  await pgsrv.start();

  await sendUntilStored(gw, files[3]!);
  await checkIndexedAndStored(t, pgsrv.connectionString, root, files[3]!);
  await until(async () => (await get(`${admin}/readyz`)).status === 200, 10_000, '/readyz 200');
  t.equal(events(gw, 'gateway.started').length, 1, 'started once');
  t.equal(gw.child.exitCode, null, 'the same gateway process throughout');
});

t.test('embedded PostgreSQL that cannot start again: gives up, /healthz 503', async (t) => {
  const dataDir = join(work, 'broken', 'pg');
  const { gw, admin } = await start(t, 'broken', {
    type: 'embedded',
    dataDir,
    restart: { maxAttempts: 2, maxDelaySeconds: 0.2 },
  });
  t.same(await send(gw, files[4]!), [0], 'stored before the kill');
  // PostgreSQL reads PG_VERSION only at start: the running server does not notice.
  await rm(join(dataDir, 'PG_VERSION'));
  process.kill(await postmasterPid(dataDir), 'SIGKILL');

  const health = await until(
    async () => {
      const r = await get(`${admin}/healthz`);
      return r.status === 503 && r;
    },
    60_000,
    '/healthz 503',
  );
  t.match(health.body, { status: 'failed', error: /index/ }, 'the body says why');
  // The log line may trail the state /healthz reads: it crosses a pipe.
  const gaveUp = await until(
    async () =>
      events(gw, 'index.embedded_gave_up').length > 0 && events(gw, 'index.embedded_gave_up'),
    10_000,
    'index.embedded_gave_up',
  );
  t.equal(gaveUp.length, 1, 'index.embedded_gave_up logged once');
  t.match(gaveUp[0], { level: 'error', attempts: 2, err: /PG_VERSION|valid data directory/ });
  t.equal(events(gw, 'index.embedded_restarting').length, 2, 'exactly maxAttempts attempts');
  t.equal((await get(`${admin}/readyz`)).status, 503, '/readyz 503');
  t.same(await send(gw, files[5]!), [0xa700], 'stores get A700');

  gw.child.kill('SIGTERM');
  t.equal(await gw.exited, 0, 'a SIGTERM still shuts the gateway down cleanly');
});
