/**
 * The admin HTTP endpoints against a real gateway (FsStore, embedded PostgreSQL) fed by DCMTK:
 * per-AE/modality metrics, the outbox backlog, readiness following PostgreSQL down and up, token
 * and loopback rules.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { networkInterfaces, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import t from 'tap';
import { parseConfig } from '../../src/config.js';
import { startGateway, type Gateway } from '../../src/gateway.js';
import { createLogger } from '../../src/log.js';
import { echoscu, storescu } from '../helpers/dcmtk.js';
import { generateStudy } from '../helpers/gen-study.js';
import { startTestPostgres } from '../helpers/pg.js';
import { query, until } from '../helpers/verify.js';

const TOKEN = 'test-admin-token-0123456789';

const pgsrv = await startTestPostgres();
t.teardown(() => pgsrv.stop());
const work = await mkdtemp(join(tmpdir(), 'gw-admin-'));
t.teardown(() => rm(work, { recursive: true, force: true }));
// A webhook that takes every event: the outbox keeps its rows, with no backlog.
const hook = createServer((req, res) => req.resume().on('end', () => res.end()));
await new Promise<void>((resolve) => hook.listen(0, '127.0.0.1', resolve));
t.teardown(() => new Promise<void>((resolve) => hook.close(() => resolve())));
const hookUrl = `http://127.0.0.1:${(hook.address() as AddressInfo).port}/events`;

/**
 * A gateway with the admin server on. Log level warn on purpose: the metrics must not depend on
 * the info-level `instance.stored` lines being written.
 */
async function startAdminGateway(name: string, admin: Record<string, unknown>): Promise<Gateway> {
  const cfg = parseConfig({
    dicom: { aeTitle: 'DICOMGW', host: '127.0.0.1', port: 0 },
    index: { type: 'postgres', url: pgsrv.connectionString, poolSize: 4 },
    store: { type: 'fs', root: join(work, name, 'objects'), ack: 'stored' },
    admin: { enabled: true, host: '127.0.0.1', port: 0, ...admin },
    notify: { destinations: [{ type: 'webhook', name: 'hook', url: hookUrl }], pollSeconds: 1 },
    log: { level: 'warn', phi: false },
  });
  const sink = new Writable({ write: (_c, _e, cb) => cb() });
  const gw = await startGateway(cfg, createLogger(cfg.log, sink));
  t.teardown(() => gw.close());
  return gw;
}

const gw = await startAdminGateway('main', { token: TOKEN });
const base = `http://127.0.0.1:${gw.adminPort}`;
const auth = { authorization: `Bearer ${TOKEN}` };

async function get(
  url: string,
  headers: Record<string, string> = auth,
): Promise<{ status: number; headers: Headers; text: string }> {
  const res = await fetch(url, { headers, signal: AbortSignal.timeout(10_000) });
  return { status: res.status, headers: res.headers, text: await res.text() };
}

/** One sample of the Prometheus text format; undefined when absent. */
function sample(
  text: string,
  name: string,
  labels: Record<string, string> = {},
): number | undefined {
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const have = Object.fromEntries(
      [...(m[2] ?? '').matchAll(/([a-zA-Z_]\w*)="((?:[^"\\]|\\.)*)"/g)].map((x) => [x[1], x[2]]),
    );
    if (Object.entries(labels).every(([k, v]) => have[k] === v)) return Number(m[3]);
  }
  return undefined;
}

async function metrics(): Promise<string> {
  const r = await get(`${base}/metrics`);
  if (r.status !== 200) throw new Error(`/metrics answered ${r.status}`);
  return r.text;
}

const ct = await generateStudy(join(work, 'ct'), {
  modality: 'CT',
  instances: 3,
  rows: 16,
  cols: 16,
  seed: 71,
});
const mr = await generateStudy(join(work, 'mr'), {
  modality: 'MR',
  instances: 2,
  rows: 16,
  cols: 16,
  seed: 72,
});
const peer = (callingAet: string) => ({
  host: '127.0.0.1',
  port: gw.port,
  callingAet,
  calledAet: 'DICOMGW',
});

t.test('per calling AE and modality counters after two senders', async (t) => {
  const a = await storescu({ ...peer('CT_SCANNER'), files: ct.files.map((f) => f.path) });
  const b = await storescu({ ...peer('MR_SCANNER'), files: mr.files.map((f) => f.path) });
  t.same(a.statuses, [0, 0, 0], 'CT study stored');
  t.same(b.statuses, [0, 0], 'MR study stored');

  const text = await metrics();
  const ctLabels = { calling_ae: 'CT_SCANNER', modality: 'CT' };
  const mrLabels = { calling_ae: 'MR_SCANNER', modality: 'MR' };
  t.equal(sample(text, 'dicomgw_instances_stored_total', ctLabels), 3);
  t.equal(sample(text, 'dicomgw_instances_stored_total', mrLabels), 2);
  t.equal(
    sample(text, 'dicomgw_instances_stored_total', { calling_ae: 'CT_SCANNER', modality: 'MR' }),
    undefined,
    'no cross-labelled series',
  );
  const bytes = await query<{ calling_ae: string; bytes: string }>(
    pgsrv.connectionString,
    'SELECT calling_ae, sum(size)::text AS bytes FROM instances GROUP BY calling_ae',
  );
  const indexed = Object.fromEntries(bytes.map((r) => [r.calling_ae, Number(r.bytes)]));
  t.equal(
    sample(text, 'dicomgw_bytes_stored_total', ctLabels),
    indexed.CT_SCANNER,
    'CT bytes = index sizes',
  );
  t.equal(
    sample(text, 'dicomgw_bytes_stored_total', mrLabels),
    indexed.MR_SCANNER,
    'MR bytes = index sizes',
  );
  t.equal(sample(text, 'dicomgw_store_duration_seconds_count', ctLabels), 3);
  t.equal(sample(text, 'dicomgw_store_duration_seconds_bucket', { ...mrLabels, le: '+Inf' }), 2);
  t.equal(sample(text, 'dicomgw_associations_total', { result: 'accepted' }), 2);
  t.equal(sample(text, 'dicomgw_associations_total', { result: 'rejected' }), 0);
  t.ok(sample(text, 'process_cpu_user_seconds_total') !== undefined, 'default process metrics');
  // The outbox gauge is the deliveries' backlog, not the outbox's rows (which stay).
  const delivered = await until(
    async () => {
      const m = await metrics();
      return sample(m, 'dicomgw_notify_delivered_total', { destination: 'hook' }) === 5 && m;
    },
    10_000,
    'the webhook to take the five events',
  );
  const [outbox] = await query<{ n: string }>(
    pgsrv.connectionString,
    'SELECT count(*)::text AS n FROM outbox',
  );
  t.equal(Number(outbox!.n), 5, 'five events in the outbox');
  t.equal(sample(delivered, 'dicomgw_outbox_pending'), 0, 'no backlog once delivered');
  t.equal(sample(delivered, 'dicomgw_notify_pending', { destination: 'hook' }), 0);
  // Retention: once older than retention.outboxDays (30), the delivered events are deleted.
  const pruned = { kind: 'outbox_events' };
  t.equal(sample(delivered, 'dicomgw_index_pruned_total', pruned), 0);
  await query(pgsrv.connectionString, "UPDATE outbox SET created_at = now() - interval '31 days'");
  t.match(await gw.retention?.pruneOnce(), { outbox_events: 5 }, 'the serve job prunes the five');
  const [left] = await query<{ n: string }>(
    pgsrv.connectionString,
    'SELECT (SELECT count(*) FROM outbox) + (SELECT count(*) FROM outbox_deliveries) AS n',
  );
  t.equal(Number(left!.n), 0, 'no event and no delivery left');
  t.equal(sample(await metrics(), 'dicomgw_index_pruned_total', pruned), 5, 'counted in /metrics');
  await until(
    async () => sample(await metrics(), 'dicomgw_associations_active') === 0,
    10_000,
    'associations_active back to 0',
  );
});

t.test('duplicates and rejected associations are counted', async (t) => {
  const again = await storescu({ ...peer('MR_SCANNER'), files: mr.files.map((f) => f.path) });
  t.same(again.statuses, [0, 0], 'resend answered 0000');
  const echo = await echoscu({ ...peer('CT_SCANNER'), calledAet: 'NOT_US' });
  t.not(echo.code, 0, 'association to a wrong called AE refused');
  const text = await metrics();
  t.equal(
    sample(text, 'dicomgw_duplicates_total', {
      calling_ae: 'MR_SCANNER',
      modality: 'MR',
      identical: 'true',
    }),
    2,
  );
  t.equal(
    sample(text, 'dicomgw_instances_stored_total', { calling_ae: 'MR_SCANNER', modality: 'MR' }),
    2,
  );
  t.equal(sample(text, 'dicomgw_associations_total', { result: 'accepted' }), 3);
  t.equal(sample(text, 'dicomgw_associations_total', { result: 'rejected' }), 1);
});

t.test('/status: index summary and last study per calling AE', async (t) => {
  const r = await get(`${base}/status`);
  t.equal(r.status, 200);
  const s = JSON.parse(r.text) as {
    version: string;
    dicom: { aeTitle: string; port: number };
    gateway: { activeAssociations: number; ingest: { stored: number; duplicates: number } };
    index: {
      studies: number;
      instances: number;
      lastStudyByCallingAe: Array<{
        callingAeTitle: string;
        studyInstanceUid: string;
        modalities: string[];
      }>;
    };
  };
  t.match(s.version, /^\d+\.\d+\.\d+/);
  t.same(s.dicom, { aeTitle: 'DICOMGW', host: '127.0.0.1', port: gw.port });
  t.equal(s.gateway.ingest.stored, 5);
  t.equal(s.gateway.ingest.duplicates, 2);
  t.equal(s.index.studies, 2);
  t.equal(s.index.instances, 5);
  const last = Object.fromEntries(s.index.lastStudyByCallingAe.map((x) => [x.callingAeTitle, x]));
  t.equal(last.CT_SCANNER?.studyInstanceUid, ct.files[0]!.studyUid);
  t.same(last.CT_SCANNER?.modalities, ['CT']);
  t.equal(last.MR_SCANNER?.studyInstanceUid, mr.files[0]!.studyUid);
});

t.test('/readyz follows PostgreSQL down and up; stores meanwhile fail with A700', async (t) => {
  const ready = await get(`${base}/readyz`);
  t.equal(ready.status, 200, 'ready');
  t.match(JSON.parse(ready.text), {
    ready: true,
    checks: { store: { ok: true }, index: { ok: true } },
  });

  await pgsrv.stopServer();
  let restarted = false;
  t.teardown(async () => {
    if (!restarted) await pgsrv.start();
  });
  const down = await until(
    async () => {
      const r = await get(`${base}/readyz`);
      return r.status === 503 && r;
    },
    15_000,
    '/readyz 503',
  );
  t.match(JSON.parse(down.text), {
    ready: false,
    checks: { store: { ok: true }, index: { ok: false, error: String } },
  });
  t.equal((await get(`${base}/healthz`)).status, 200, 'still alive');
  const extra = await generateStudy(join(work, 'extra'), {
    modality: 'CT',
    instances: 1,
    rows: 16,
    cols: 16,
    seed: 73,
  });
  const failed = await storescu({ ...peer('CT_SCANNER'), files: [extra.files[0]!.path] });
  t.same(failed.statuses, [0xa700], 'A700 while the index is down');
  const text = await metrics();
  t.equal(
    sample(text, 'dicomgw_instances_failed_total', {
      calling_ae: 'CT_SCANNER',
      modality: 'CT',
      status: 'a700',
    }),
    1,
  );
  t.ok(
    Number.isNaN(sample(text, 'dicomgw_outbox_pending')),
    'outbox gauge is NaN (unknown) while down',
  );
  const status = JSON.parse((await get(`${base}/status`)).text) as { index: { error?: string } };
  t.type(status.index.error, 'string', '/status still answers, with the index error');

  await pgsrv.start();
  restarted = true;
  await until(
    async () => (await get(`${base}/readyz`)).status === 200,
    30_000,
    '/readyz 200 again',
  );
  t.pass('ready again');
});

t.test('with a token: everything but /healthz needs it', async (t) => {
  for (const path of ['/metrics', '/status', '/readyz', '/nope']) {
    const none = await get(`${base}${path}`, {});
    t.equal(none.status, 401, `${path} without a token`);
    t.match(none.headers.get('www-authenticate'), /^Bearer realm=/);
    const wrong = await get(`${base}${path}`, { authorization: `Bearer ${TOKEN}x` });
    t.equal(wrong.status, 401, `${path} with a wrong token`);
    t.match(wrong.headers.get('www-authenticate'), /error="invalid_token"/);
  }
  t.equal((await get(`${base}/healthz`, {})).status, 200, '/healthz is open');
  t.equal((await get(`${base}/nope`)).status, 404, 'unknown path with the token: 404');
  const post = await fetch(`${base}/status`, { method: 'POST', headers: auth });
  t.equal(post.status, 405);
  t.equal(post.headers.get('allow'), 'GET, HEAD');
});

/** An address of this machine that is not loopback: a client there must be refused. */
const externalIp = Object.values(networkInterfaces())
  .flat()
  .find((a) => a && a.family === 'IPv4' && !a.internal)?.address;

t.test('without a token: loopback clients only', async (t) => {
  const open = await startAdminGateway('open', { host: '0.0.0.0' });
  const r = await get(`http://127.0.0.1:${open.adminPort}/status`, {});
  t.equal(r.status, 200, 'loopback client served');
  t.test(
    'a client at a non-loopback address',
    { skip: externalIp ? false : 'no such address' },
    async (t) => {
      const remote = await get(`http://${externalIp}:${open.adminPort}/status`, {});
      t.equal(remote.status, 403, `client at ${externalIp} refused`);
      const health = await get(`http://${externalIp}:${open.adminPort}/healthz`, {});
      t.equal(health.status, 200, '/healthz open');
    },
  );
});
