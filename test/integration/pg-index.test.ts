/**
 * The InstanceIndex contract (test/helpers/index-contract.ts) run against PgIndex on an
 * embedded PostgreSQL, then checks that only PostgreSQL can make: a constraint that fails the
 * outbox write, killed and frozen server processes, the payloads of older builds.
 */
import { randomBytes } from 'node:crypto';
import { copyFile, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import pino from 'pino';
import t from 'tap';
import { isGatewayError } from '../../src/errors.js';
import type { InstanceIndex } from '../../src/index/instance-index.js';
import { defaultMigrationsDir, migrate } from '../../src/index/migrate.js';
import { pgIndex, type PgIndexOptions } from '../../src/index/open.js';
import { expectedEvent, indexContract, makeRecord, sha } from '../helpers/index-contract.js';
import { startTestPostgres } from '../helpers/pg.js';

// ---- PgIndex on an embedded PostgreSQL -------------------------------------------------------

const logLines: string[] = [];
const logWaiters = new Set<(line: string) => void>();
const logger = pino(
  { level: 'debug' },
  {
    write: (line: string) => {
      logLines.push(line);
      for (const w of logWaiters) w(line);
    },
  },
);

/** Resolves once `count` lines logged from index `since` on (written or to come) match; bounded. */
function logged(pattern: RegExp, since: number, count: number, timeoutMs = 5_000): Promise<void> {
  let seen = logLines.slice(since).filter((l) => pattern.test(l)).length;
  if (seen >= count) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      logWaiters.delete(waiter);
      reject(new Error(`${seen} of ${count} log lines ${pattern} within ${timeoutMs} ms`));
    }, timeoutMs);
    const waiter = (line: string): void => {
      if (!pattern.test(line) || ++seen < count) return;
      clearTimeout(timer);
      logWaiters.delete(waiter);
      resolve();
    };
    logWaiters.add(waiter);
  });
}

const server = await startTestPostgres();
t.teardown(() => server.stop());
const admin = new pg.Pool({ connectionString: server.connectionString, max: 2 });
admin.on('error', () => undefined); // its idle clients die when the server stops
t.teardown(() => admin.end());
const opened: InstanceIndex[] = [];
t.teardown(() => Promise.all(opened.map((ix) => ix.close())));
const open = (
  connectionString = server.connectionString,
  over: Partial<PgIndexOptions> = {},
): InstanceIndex => {
  const ix = pgIndex({
    connectionString,
    connectionTimeoutMs: 2_000,
    statementTimeoutMs: 5_000,
    logger,
    ...over,
  });
  opened.push(ix);
  return ix;
};
await open().migrate();

let databases = 0;
async function newDatabase(): Promise<string> {
  const name = `empty_${++databases}`;
  await admin.query(`CREATE DATABASE ${name}`);
  const url = new URL(server.connectionString);
  url.pathname = `/${name}`;
  return url.toString();
}

indexContract(t, {
  open: async () => open(),
  emptyDatabase: async () => {
    const url = await newDatabase();
    return () => pgIndex({ connectionString: url, logger });
  },
  backend: { stop: () => server.stopServer(), start: () => server.start() },
  failOutboxFor: async (sop) => {
    const name = `test_fail_${randomBytes(4).toString('hex')}`;
    await admin.query(
      `ALTER TABLE outbox ADD CONSTRAINT ${name} CHECK (payload->>'sopInstanceUid' <> '${sop}') NOT VALID`,
    );
    return async () => void (await admin.query(`ALTER TABLE outbox DROP CONSTRAINT ${name}`));
  },
  duplicatesReceived: async (sop) =>
    (
      await admin.query(
        'SELECT duplicates_received AS n FROM instances WHERE sop_instance_uid = $1',
        [sop],
      )
    ).rows[0]?.n,
  unavailableWithinMs: 2_000,
});

t.test(
  'keep-versions: a version is recorded once per content, the instance untouched',
  async (t) => {
    const ix = open();
    const r = makeRecord({}, { size: 100 });
    t.same(await ix.recordInstance(r), { kind: 'inserted' });
    const v = {
      ...r,
      objectKey: r.objectKey.replace(/\.dcm$/, '.v.dcm'),
      size: 120,
      sha256: sha(),
    };
    await ix.recordVersion(v);
    await ix.recordVersion(v); // the same content again: idempotent
    await ix.recordVersion({
      ...v,
      objectKey: r.objectKey.replace(/\.dcm$/, '.w.dcm'),
      sha256: sha(),
    });
    const { rows } = await admin.query<{ object_key: string; size: string }>(
      `SELECT v.object_key, v.size FROM instance_versions v JOIN instances i ON i.id = v.instance_fk
     WHERE i.sop_instance_uid = $1 ORDER BY v.id`,
      [r.attributes.sopInstanceUid],
    );
    t.same(
      rows.map((x) => x.object_key.slice(-6)),
      ['.v.dcm', '.w.dcm'],
      'two contents, two versions',
    );
    t.match(await ix.findInstance(r.attributes.sopInstanceUid), { sha256: r.sha256, size: 100 });
    t.match(
      await ix.getStudy(r.attributes.studyInstanceUid),
      { numberOfInstances: 1, totalBytes: 100 },
      'counters describe the first content',
    );
    await t.rejects(
      ix.recordVersion(makeRecord()),
      { code: 'GW_ERR_INTERNAL' },
      'no instance: refused',
    );
  },
);

t.test('idle pooled connections killed by the server: no crash, next call works', async (t) => {
  const ix = open();
  await Promise.all(Array.from({ length: 4 }, () => ix.recordInstance(makeRecord())));
  const mark = logLines.length;
  const killed = await admin.query(
    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'dicom-gateway' AND pid <> pg_backend_pid()",
  );
  t.ok(killed.rowCount! > 0, `terminated ${killed.rowCount} connections`);
  // A pool notices a killed idle connection when its socket closes, and logs it (every index
  // here logs to this logger): wait until each killed connection was noticed.
  await logged(/idle index connection lost/, mark, killed.rowCount!);
  t.same(await ix.recordInstance(makeRecord()), { kind: 'inserted' });
});

t.test('a frozen server: calls time out (every wait is bounded), then recover', async (t) => {
  const ix = open(undefined, { connectionTimeoutMs: 1_000, statementTimeoutMs: 1_000 });
  await ix.ping();
  const pids = await serverPids(server.dataDir);
  for (const pid of pids) process.kill(pid, 'SIGSTOP');
  try {
    const started = Date.now();
    const err = await ix.recordInstance(makeRecord()).then(
      () => undefined,
      (e: unknown) => e,
    );
    t.ok(isGatewayError(err, 'GW_ERR_INDEX_UNAVAILABLE'), String(err));
    t.ok(Date.now() - started < 5_000, `failed in ${Date.now() - started} ms`);
  } finally {
    for (const pid of pids) process.kill(pid, 'SIGCONT');
  }
  t.same(await ix.recordInstance(makeRecord()), { kind: 'inserted' });
});

t.test(
  'migration 004: events of older builds get the typed payload, rows their bucket',
  async (t) => {
    // A database as the build before 004 left it: migrations 001-003, an event in the old shape.
    const dir = await mkdtemp(join(tmpdir(), 'gw-migrations-'));
    t.teardown(() => rm(dir, { recursive: true, force: true }));
    for (const f of await readdir(defaultMigrationsDir())) {
      if (/^00[1-3]_.*\.sql$/.test(f))
        await copyFile(join(defaultMigrationsDir(), f), join(dir, f));
    }
    const url = await newDatabase();
    const pool = new pg.Pool({ connectionString: url, max: 1 });
    t.teardown(() => pool.end());
    await migrate(pool, { dir });
    const r = makeRecord({}, { receivedAt: new Date('2024-03-01T08:00:00.5Z') });
    const a = r.attributes;
    await pool.query(
      `WITH p AS (INSERT INTO patients (patient_id) VALUES ($1) RETURNING id),
     s AS (INSERT INTO studies (study_uid, patient_fk, first_received_at, last_received_at)
           SELECT $2, p.id, $7, $7 FROM p RETURNING id),
     r AS (INSERT INTO series (series_uid, study_fk, modality) SELECT $3, s.id, 'CT' FROM s
           RETURNING id),
     i AS (INSERT INTO instances (sop_instance_uid, series_fk, sop_class_uid, transfer_syntax_uid,
             store_name, object_key, size, sha256, calling_ae, called_ae, source_address, state,
             received_at)
           SELECT $4, r.id, $8, $9, 's3:dicom', $5, 1000, $6, 'MODALITY', 'DICOMGW', '127.0.0.1',
             'stored', $7 FROM r RETURNING id)
     INSERT INTO outbox (event_type, aggregate_uid, payload)
     SELECT 'instance.stored', $2, jsonb_build_object('sopInstanceUid', $4::text,
       'seriesInstanceUid', $3::text, 'studyInstanceUid', $2::text, 'objectKey', $5::text,
       'storeName', 's3:dicom', 'size', 1000, 'sha256', $6::text) FROM i`,
      [
        a.patientId,
        a.studyInstanceUid,
        a.seriesInstanceUid,
        a.sopInstanceUid,
        r.objectKey,
        r.sha256,
        r.receivedAt,
        a.sopClassUid,
        r.transferSyntaxUid,
      ],
    );
    const ix = pgIndex({ connectionString: url, logger });
    t.teardown(() => ix.close());
    await ix.migrate();
    t.same((await ix.instanceEvents(10))[0]?.payload, expectedEvent(r));
    // Written before the cursor column existed, claimed first all the same.
    const newer = makeRecord();
    await ix.recordInstance(newer);
    const claimed = await ix.claimDue({
      destination: 'd',
      limit: 10,
      leaseMs: 60_000,
      owner: 'w',
      maxAttempts: 3,
    });
    t.same(
      claimed.map((d) => (d.type === 'study.stable' ? '' : d.payload.sopInstanceUid)),
      [a.sopInstanceUid, newer.attributes.sopInstanceUid],
    );
  },
);

/** The postmaster and its children (Linux /proc). */
async function serverPids(dataDir: string): Promise<number[]> {
  const postmaster = Number(
    (await readFile(join(dataDir, 'postmaster.pid'), 'utf8')).split('\n')[0],
  );
  const pids = [postmaster];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = await readFile(`/proc/${entry}/stat`, 'utf8').catch(() => '');
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    if (ppid === postmaster) pids.push(Number(entry));
  }
  return pids;
}
