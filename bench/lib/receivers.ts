// The C-STORE receivers under test, each started fresh for a run and removed after it:
// DCMTK storescp (to local disk), Orthanc 1.10 (Debian), and the gateway as a child process.
import { mkdir, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type pg from 'pg';
import { DCMTK_ENV, startStorescp } from '../../test/helpers/dcmtk.js';
import { parseJsonLines } from '../../test/helpers/gateway-process.js';
import { freePort } from '../../test/helpers/net.js';
import { connect, type BenchPostgres } from './postgres.js';
import { ROOT, type S3Target } from './rgw-pool.js';
import { cpuMs, peakRssMb, spawnToFile, tail, waitFor, type Spawned } from './util.js';

export interface Receiver {
  aeTitle: string;
  port: number;
  pid: number;
  /** Instances the receiver holds now. */
  count(): Promise<number>;
  /** CPU ms used by the receiver process so far. */
  cpuMs(): number | undefined;
  /** Peak RSS (VmHWM) of the receiver process so far, MiB. */
  peakRssMb(): number | undefined;
  /** Stops the process and deletes everything it stored. */
  stop(): Promise<void>;
}

export async function startStorescpReceiver(dir: string): Promise<Receiver> {
  const outDir = join(dir, 'out');
  await mkdir(outDir, { recursive: true });
  // Exactly `storescp +xa -od DIR PORT`: one association at a time (no --fork), no fsync.
  const scp = await startStorescp({ aet: 'STORESCP', outDir, extraArgs: ['+xa'] });
  return {
    aeTitle: 'STORESCP',
    port: scp.port,
    pid: scp.pid,
    count: async () => (await readdir(outDir)).length,
    cpuMs: () => cpuMs(scp.pid),
    peakRssMb: () => peakRssMb(scp.pid),
    stop: async () => {
      await scp.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

export async function startOrthancReceiver(dir: string): Promise<Receiver> {
  await mkdir(dir, { recursive: true });
  for (let attempt = 1; ; attempt++) {
    const [dicomPort, httpPort] = [await freePort(), await freePort()];
    const config = {
      Name: 'bench',
      StorageDirectory: join(dir, 'storage'),
      IndexDirectory: join(dir, 'index'),
      DicomAet: 'ORTHANC',
      DicomPort: dicomPort,
      HttpPort: httpPort,
      DicomCheckCalledAet: false,
      RemoteAccessAllowed: false,
      AuthenticationEnabled: false,
      Plugins: [],
    };
    const cfgPath = join(dir, 'orthanc.json');
    await writeFile(cfgPath, JSON.stringify(config, null, 2));
    const logFile = join(dir, 'orthanc.log');
    const proc = spawnToFile('/usr/sbin/Orthanc', [cfgPath], {
      logFile,
      env: { ...process.env, ...DCMTK_ENV },
    });
    const base = `http://127.0.0.1:${httpPort}`;
    try {
      await waitFor(
        async () => {
          if (proc.child.exitCode !== null) throw new Error('Orthanc exited');
          return (await fetch(`${base}/system`).catch(() => undefined))?.ok === true;
        },
        30_000,
        'Orthanc /system',
        50,
      );
    } catch (err) {
      await proc.stop(2_000);
      const log = await readFile(logFile, 'utf8').catch(() => '');
      if (attempt < 3 && /bind|in use/i.test(log)) continue; // lost a race for a port
      throw new Error(`Orthanc did not start: ${(err as Error).message}\n${tail(log)}`, {
        cause: err,
      });
    }
    return {
      aeTitle: 'ORTHANC',
      port: dicomPort,
      pid: proc.pid,
      count: async () => {
        const r = await fetch(`${base}/statistics`);
        return ((await r.json()) as { CountInstances: number }).CountInstances;
      },
      cpuMs: () => cpuMs(proc.pid),
      peakRssMb: () => peakRssMb(proc.pid),
      stop: async () => {
        await proc.stop(20_000);
        await rm(dir, { recursive: true, force: true });
      },
    };
  }
}

export type GatewayStore =
  | { type: 'fs'; ack: 'spooled' | 'stored' }
  | { type: 's3'; target: S3Target; ack: 'spooled' | 'stored' };

export interface GatewayReceiver extends Receiver {
  logFile: string;
  /** Its index database (for a CLI run against the same index). */
  databaseUrl: string;
  /** Rows in the index: total and still 'pending-upload'. */
  rows(): Promise<{ total: number; pending: number }>;
  /** Per-instance phases from the gateway's own log lines, for one study. */
  phases(studyUid: string): Promise<PhaseTimes>;
  /** Counts of warning events (fallbacks, failures) in the log. */
  warnings(): Promise<Record<string, number>>;
}

export interface PhaseTimes {
  instances: number;
  /** Per instance of the study, ms (the log's receiveMs, storeMs, indexMs, ms). */
  receiveMs: number[];
  storeMs: number[];
  indexMs: number[];
  totalMs: number[];
  /** ack: spooled only: the spool file durable, the index row committed (from the last byte). */
  durableMs: number[];
  commitMs: number[];
}

export interface GatewayChildOptions {
  pg: BenchPostgres;
  dbName: string;
  dir: string;
  store: GatewayStore;
  /** A compiled main.js to run; without it, src/main.ts runs through the TypeScript loader. */
  gatewayMain?: string;
  /** Extra node flags, e.g. ['--cpu-prof', '--cpu-prof-dir=...']. */
  nodeFlags?: string[];
  /** Keep the run's directory (its gateway.log) after stop (bench --keep). */
  keepDir?: boolean;
  /** Merged into the config below, section by section (bench --gateway-config). */
  gatewayConfig?: Record<string, unknown>;
}

/** The gateway as in production: `dicom-gateway --config FILE serve`, its own process. */
export async function startGatewayReceiver(o: GatewayChildOptions): Promise<GatewayReceiver> {
  await mkdir(o.dir, { recursive: true });
  const databaseUrl = await o.pg.createDatabase(o.dbName);
  const s = o.store;
  const config = {
    dicom: { aeTitle: 'DICOMGW', host: '127.0.0.1', port: 0 },
    index: { type: 'postgres', url: databaseUrl },
    store:
      s.type === 'fs'
        ? { type: 'fs', root: join(o.dir, 'objects'), ack: s.ack }
        : {
            type: 's3',
            endpoint: s.target.endpoint,
            region: s.target.region,
            bucket: s.target.bucket,
            accessKeyId: s.target.accessKeyId,
            secretAccessKey: s.target.secretAccessKey,
            ack: s.ack,
            spool: { dir: join(o.dir, 'spool') },
          },
    admin: { enabled: false },
    log: { level: 'info' },
  };
  const cfgPath = join(o.dir, 'gateway.json');
  await writeFile(cfgPath, JSON.stringify(deepMerge(config, o.gatewayConfig ?? {}), null, 2));
  const logFile = join(o.dir, 'gateway.log');
  const entry = o.gatewayMain
    ? [o.gatewayMain]
    : ['--import=@tapjs/typescript/import', join(ROOT, 'src', 'main.ts')];
  // A clean environment: no DATABASE_URL / S3_* / DICOM_* of the caller may override the file.
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    // The AWS SDK warns once that its 2027 releases need Node 22; not the bench's business.
    NODE_NO_WARNINGS: '1',
  };
  if (!o.gatewayMain) env.TS_NODE_TRANSPILE_ONLY = '1';
  const proc: Spawned = spawnToFile(
    process.execPath,
    [...(o.nodeFlags ?? []), ...entry, '--config', cfgPath, 'serve'],
    { logFile, env, cwd: ROOT },
  );
  const readLog = (): Promise<string> => readFile(logFile, 'utf8').catch(() => '');
  let port = 0;
  try {
    await waitFor(
      async () => {
        if (proc.child.exitCode !== null || proc.child.signalCode !== null)
          throw new Error('the gateway exited');
        const m = /"event":"gateway\.started"[^\n]*"port":(\d+)/.exec(await readLog());
        if (m) port = Number(m[1]);
        return port > 0;
      },
      60_000,
      'gateway.started',
      50,
    );
  } catch (err) {
    await proc.stop(2_000);
    await o.pg.dropDatabase(o.dbName).catch(() => undefined);
    throw new Error(`gateway did not start: ${(err as Error).message}\n${tail(await readLog())}`, {
      cause: err,
    });
  }
  const db: pg.Client = await connect(databaseUrl);
  const rows = async (): Promise<{ total: number; pending: number }> => {
    const r = await db.query<{ total: number; pending: number }>(
      `SELECT count(*)::int AS total,
              count(*) FILTER (WHERE state = 'pending-upload')::int AS pending FROM instances`,
    );
    return r.rows[0]!;
  };
  const events = async (): Promise<Array<Record<string, unknown>>> =>
    parseJsonLines(await readLog());
  return {
    aeTitle: 'DICOMGW',
    port,
    pid: proc.pid,
    logFile,
    databaseUrl,
    count: async () => (await rows()).total,
    rows,
    cpuMs: () => cpuMs(proc.pid),
    peakRssMb: () => peakRssMb(proc.pid),
    async phases(studyUid) {
      const mine = (await events()).filter(
        (e) =>
          (e.event === 'instance.spooled' || e.event === 'instance.stored') &&
          e.studyInstanceUid === studyUid,
      );
      const pick = (k: string): number[] =>
        mine.filter((e) => e[k] !== undefined).map((e) => Number(e[k]));
      return {
        instances: mine.length,
        receiveMs: pick('receiveMs'),
        storeMs: pick('storeMs'),
        indexMs: pick('indexMs'),
        totalMs: pick('ms'),
        durableMs: pick('durableMs'),
        commitMs: pick('commitMs'),
      };
    },
    async warnings() {
      const counts: Record<string, number> = {};
      for (const e of await events()) {
        if (e.level === 'warn' || e.level === 'error' || e.level === 'fatal') {
          const k = String(e.event ?? e.msg);
          counts[k] = (counts[k] ?? 0) + 1;
        }
      }
      return counts;
    },
    stop: async () => {
      await db.end().catch(() => undefined);
      const code = await proc.stop(30_000);
      await o.pg.dropDatabase(o.dbName).catch(() => undefined);
      if (code !== 0 && !o.nodeFlags?.length) {
        process.stderr.write(`gateway exited with ${code}:\n${tail(await readLog(), 10)}\n`);
      }
      if (!o.nodeFlags?.length && !o.keepDir) await rm(o.dir, { recursive: true, force: true });
    },
  };
}

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/** `over` merged into `base`: objects key by key, anything else replaced. */
export function deepMerge(base: Json, over: Json): Json {
  const out: Json = { ...base };
  for (const [k, v] of Object.entries(over)) {
    const b = out[k];
    out[k] = isObject(b) && isObject(v) ? deepMerge(b, v) : v;
  }
  return out;
}
