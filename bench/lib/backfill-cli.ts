// The backfill bench's moving parts: the gateway's `serve` as its own process (fs store, a fixed
// DICOM port so that a source's move destination stays valid across rounds), `dicom-gateway
// backfill` run as a separate process like an operator would, and an RSS sampler of both.
import { spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { cliArgs } from '../../test/helpers/gateway-process.js';
import type { IngestContext } from './ingest.js';
import { startGatewayReceiver, type GatewayReceiver } from './receivers.js';
import type { QrSource } from './qr-source.js';
import { ROOT } from './rgw-pool.js';
import { procStatusKb, round } from './util.js';

export const GATEWAY_AE = 'DICOMGW';

/** `serve` on `port` with an empty index of its own (database `dbName`). */
export function startServe(
  ctx: IngestContext,
  dbName: string,
  port: number,
): Promise<GatewayReceiver> {
  return startGatewayReceiver({
    pg: ctx.pg,
    dbName,
    dir: join(ctx.root, 'runs', dbName),
    store: { type: 'fs', ack: 'spooled' }, // the embedded default
    gatewayMain: ctx.gatewayMain,
    keepDir: ctx.keepRuns,
    gatewayConfig: { dicom: { port } },
  });
}

export interface BackfillReportJson {
  seconds: number;
  complete: boolean;
  totals: { checked: number; complete: number; instancesMoved: number; failed: number };
}

export interface CliRun {
  code: number | null;
  report: BackfillReportJson;
  /** From spawning Node to its exit. */
  wallSeconds: number;
  stderr: string;
}

/**
 * `backfill --source SRC --from 2024-01-01 --to 2024-12-31 --json [extra]` against `gw`, as its
 * own process (the built main.js when there is one). `onStart` gets the CLI's PID.
 */
export async function runBackfillCli(
  ctx: IngestContext,
  gw: GatewayReceiver,
  source: QrSource,
  extra: string[] = [],
  onStart?: (pid: number) => void,
  maxAssociations = 1,
): Promise<CliRun> {
  const cfgPath = join(ctx.root, `backfill-${gw.port}.json`);
  await writeFile(
    cfgPath,
    JSON.stringify({
      dicom: {
        aeTitle: GATEWAY_AE,
        host: '127.0.0.1',
        port: gw.port,
        // One association to the source (the default) unless asked: as movescu uses.
        peers: [{ aeTitle: source.aeTitle, host: '127.0.0.1', port: source.port, maxAssociations }],
      },
      index: { type: 'postgres', url: gw.databaseUrl },
      store: { type: 'fs', root: join(ctx.root, 'unused-objects') },
      admin: { enabled: false },
      log: { level: 'warn' },
    }),
  );
  const args = [
    ...['--config', cfgPath, 'backfill', '--source', source.aeTitle],
    ...['--from', '2024-01-01', '--to', '2024-12-31', '--json', ...extra],
  ];
  const cmd = ctx.gatewayMain
    ? { command: process.execPath, argv: [ctx.gatewayMain, ...args] }
    : cliArgs(args);
  // Only what the CLI needs: no DICOM_* / DATABASE_URL of the caller may override the file.
  const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: process.env.HOME };
  env.NODE_NO_WARNINGS = '1';
  if (!ctx.gatewayMain) env.TS_NODE_TRANSPILE_ONLY = '1';
  const t0 = performance.now();
  const child = spawn(cmd.command, cmd.argv, { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  if (child.pid) onStart?.(child.pid);
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (s: string) => (stdout += s));
  child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
  const timer = setTimeout(() => child.kill('SIGKILL'), 1_800_000);
  const code = await new Promise<number | null>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (c) => resolve(c));
  });
  clearTimeout(timer);
  const wallSeconds = (performance.now() - t0) / 1000;
  let report: BackfillReportJson;
  try {
    report = JSON.parse(stdout) as BackfillReportJson;
  } catch {
    throw new Error(`backfill printed no report (exit ${code}):\n${stderr.slice(-3000)}`);
  }
  return { code, report, wallSeconds, stderr };
}

export interface RssSample {
  /** Seconds since the sampler started. */
  t: number;
  /** Instances in the gateway's index. */
  progress: number;
  /** VmRSS, MiB, of each sampled process (absent once it has exited). */
  rss: Record<string, number | undefined>;
}

/** Every `everyMs`: VmRSS of each PID in `pids` (filled as processes start) and the progress. */
export function sampleRss(
  pids: Record<string, number>,
  progress: () => Promise<number>,
  everyMs = 200,
): { samples: RssSample[]; stop(): Promise<RssSample[]> } {
  const samples: RssSample[] = [];
  const t0 = performance.now();
  let busy: Promise<void> = Promise.resolve();
  const take = async (): Promise<void> => {
    const rss: RssSample['rss'] = {};
    for (const [name, pid] of Object.entries(pids)) {
      const kb = procStatusKb(pid, 'VmRSS');
      rss[name] = kb === undefined ? undefined : round(kb / 1024, 1);
    }
    const p = await progress().catch(() => samples.at(-1)?.progress ?? 0);
    samples.push({ t: round((performance.now() - t0) / 1000, 2), progress: p, rss });
  };
  const timer = setInterval(() => {
    busy = busy.then(take);
  }, everyMs);
  return {
    samples,
    async stop() {
      clearInterval(timer);
      await busy;
      await take(); // the end state (the processes that are still running)
      return samples;
    },
  };
}
