// Ingest throughput: every receiver, fresh for every run, gets a warm-up association (a small
// study of its own) and then the measured study, sent by storescu over 1 or N associations.
// Runs are interleaved (round 1 of every receiver, then round 2, ...) so that slow drifts of the
// machine spread over all receivers instead of favouring the first.
import { execFile } from 'node:child_process';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { GeneratedFile } from '../../test/helpers/gen-study.js';
import type { BenchPostgres } from './postgres.js';
import {
  deepMerge,
  startGatewayReceiver,
  startOrthancReceiver,
  startStorescpReceiver,
  type GatewayReceiver,
  type Receiver,
} from './receivers.js';
import type { RgwPool } from './rgw-pool.js';
import { TWENTY } from './routing-rules.js';
import { sendFiles } from './send.js';
import { mainThreadCpuMs, median, round, waitFor } from './util.js';

export type ReceiverId =
  | 'storescp'
  | 'orthanc'
  | 'gw-fs'
  | 'gw-fs-routed'
  | 'gw-fs-stored'
  | 'gw-s3-spooled'
  | 'gw-s3-stored'
  | 'gw-s3-spooled-wan'
  | 'gw-s3-stored-wan'
  | 'gw-s3-sustained';

export const LABELS: Record<ReceiverId, string> = {
  storescp: '(a) storescp -> disk',
  orthanc: '(b) Orthanc 1.10, SQLite',
  'gw-fs': '(c) gateway fs + PG',
  'gw-fs-routed': '(c) same, 20 routing rules',
  'gw-fs-stored': '(c) same, ack stored (publish, then index)',
  'gw-s3-spooled': '(d) gateway S3 + PG, ack spooled',
  'gw-s3-stored': '(e) gateway S3 + PG, ack stored',
  'gw-s3-spooled-wan': '(d) same, S3 over 40 ms RTT',
  'gw-s3-stored-wan': '(e) same, S3 over 40 ms RTT',
  'gw-s3-sustained': '(d) same, uploads from the first instance',
};

/**
 * ack: spooled receivers (the drain is measured: for fs stores, until every file is published
 * under its key). The sustained one uploads from the first
 * instance on (spool.burstBytes 0): its drain rate is the rate a sender can keep up all day.
 */
export const isSpooled = (id: ReceiverId): boolean =>
  id.startsWith('gw-s3-spooled') ||
  id === 'gw-s3-sustained' ||
  id === 'gw-fs' ||
  id === 'gw-fs-routed';
const SUSTAINED_CONFIG = { store: { spool: { burstBytes: 0 } } };

export interface Fixture {
  files: GeneratedFile[];
  bytes: number;
  studyUid: string;
}

export interface RunResult {
  ok: boolean;
  error?: string;
  ms?: number;
  instPerSec?: number;
  mbPerSec?: number;
  /** Spooled mode: from the first byte sent until the last upload is marked stored. */
  drainMs?: number;
  drainInstPerSec?: number;
  cpuMsPerInstance?: number;
  /** Of that, the main thread's (for Node.js, all JavaScript). */
  mainCpuMsPerInstance?: number;
  peakRssMb?: number;
  /** Gateway: medians over the measured instances of its own log's phases. */
  phases?: {
    receiveMs: number;
    storeMs: number;
    indexMs: number;
    totalMs: number;
    /** ack: spooled: the two legs of storeMs (see PhaseTimes). */
    durableMs?: number;
    commitMs?: number;
  };
  warnings?: Record<string, number>;
  /** 1-minute load average when the measured send started (other work on the machine shows here). */
  load1?: number;
}

export interface IngestResult {
  id: ReceiverId;
  label: string;
  associations: number;
  runs: RunResult[];
  median?: {
    instPerSec: number;
    mbPerSec: number;
    minInstPerSec: number;
    maxInstPerSec: number;
    drainInstPerSec?: number;
    drainMs?: number;
    cpuMsPerInstance?: number;
    mainCpuMsPerInstance?: number;
    peakRssMb?: number;
    load1?: number;
    phases?: RunResult['phases'];
  };
}

export interface IngestContext {
  root: string;
  pg: BenchPostgres;
  rgw: RgwPool;
  fixture: Fixture;
  warmup: Fixture;
  /** Compiled gateway entry point (bench/lib/build.ts); undefined: src/main.ts via the TS loader. */
  gatewayMain?: string;
  /** Merged into every gateway's config (--gateway-config), for experiments. */
  gatewayConfig?: Record<string, unknown>;
  /** Keep each run's directory, with the gateway's log (--keep). */
  keepRuns?: boolean;
  log: (line: string) => void;
}

let runCounter = 0;

export async function startReceiver(
  ctx: IngestContext,
  id: ReceiverId,
  extra: { nodeFlags?: string[]; keepDir?: boolean; bytes?: number } = {},
): Promise<Receiver> {
  const n = ++runCounter;
  const dir = join(ctx.root, 'runs', `${n}-${id}`);
  if (id === 'storescp') return startStorescpReceiver(dir);
  if (id === 'orthanc') return startOrthancReceiver(dir);
  const wan = id.endsWith('-wan');
  const bytes = extra.bytes ?? ctx.fixture.bytes + ctx.warmup.bytes;
  const store =
    id === 'gw-fs' || id === 'gw-fs-routed' || id === 'gw-fs-stored'
      ? {
          type: 'fs' as const,
          ack: id === 'gw-fs-stored' ? ('stored' as const) : ('spooled' as const),
        }
      : {
          type: 's3' as const,
          target: await ctx.rgw.bucket(bytes, wan),
          ack: isSpooled(id) ? ('spooled' as const) : ('stored' as const),
        };
  return startGatewayReceiver({
    pg: ctx.pg,
    dbName: `bench_${n}`,
    dir,
    store,
    gatewayMain: ctx.gatewayMain,
    // gw-fs-routed: the same gateway with 20 rules, every one evaluated per instance.
    gatewayConfig:
      id === 'gw-s3-sustained'
        ? deepMerge(SUSTAINED_CONFIG, ctx.gatewayConfig ?? {})
        : id === 'gw-fs-routed'
          ? { ...ctx.gatewayConfig, routing: { rules: TWENTY } }
          : ctx.gatewayConfig,
    keepDir: ctx.keepRuns,
    nodeFlags: extra.nodeFlags,
  });
}

export function isGateway(r: Receiver): r is GatewayReceiver {
  return 'rows' in r;
}

/** Waits until every row is 'stored' (the spool is drained) and `total` rows exist. */
export async function waitDrained(
  r: GatewayReceiver,
  total: number,
  timeoutMs: number,
): Promise<void> {
  await waitFor(
    async () => {
      const rows = await r.rows();
      return rows.pending === 0 && rows.total >= total;
    },
    timeoutMs,
    `the spool to drain (${total} rows stored)`,
    20,
  );
}

/** One measured run: fresh receiver, warm-up association, measured send, checks, stop. */
export async function runOnce(
  ctx: IngestContext,
  id: ReceiverId,
  associations: number,
): Promise<RunResult> {
  const { fixture, warmup } = ctx;
  const n = fixture.files.length;
  const expected = n + warmup.files.length;
  let r: Receiver | undefined;
  try {
    r = await startReceiver(ctx, id);
    const warm = await sendFiles({
      port: r.port,
      calledAet: r.aeTitle,
      files: warmup.files.map((f) => f.path),
      associations: 1,
    });
    if (warm.failures.length) throw new Error(`warm-up send failed: ${warm.failures[0]}`);
    if (isGateway(r)) await waitDrained(r, warmup.files.length, 120_000);
    // Every measured send starts with nothing left for the kernel to write back: storescp and
    // Orthanc never fsync, and their data would otherwise reach the disk during the next run,
    // slowing whichever receiver comes after them (their own figures stay as they are).
    await promisify(execFile)('sync');
    const load1 = round(loadavg()[0]!, 2);
    const cpu0 = r.cpuMs();
    const main0 = mainThreadCpuMs(r.pid);
    const t0 = process.hrtime.bigint();
    const sent = await sendFiles({
      port: r.port,
      calledAet: r.aeTitle,
      files: fixture.files.map((f) => f.path),
      associations,
    });
    if (sent.failures.length) throw new Error(`send failed: ${sent.failures[0]}`);
    const cpu1 = r.cpuMs();
    const main1 = mainThreadCpuMs(r.pid);
    const res: RunResult = {
      ok: true,
      ms: round(sent.ms, 1),
      instPerSec: round(n / (sent.ms / 1000), 1),
      mbPerSec: round(fixture.bytes / 1e6 / (sent.ms / 1000), 1),
      load1,
    };
    if (cpu0 !== undefined && cpu1 !== undefined) {
      res.cpuMsPerInstance = round((cpu1 - cpu0) / n, 2);
    }
    if (main0 !== undefined && main1 !== undefined) {
      res.mainCpuMsPerInstance = round((main1 - main0) / n, 2);
    }
    if (isGateway(r)) {
      if (isSpooled(id)) {
        await waitDrained(r, expected, 600_000);
        const drainMs = Number(process.hrtime.bigint() - t0) / 1e6;
        res.drainMs = round(drainMs, 1);
        res.drainInstPerSec = round(n / (drainMs / 1000), 1);
      }
      const rows = await r.rows();
      if (rows.pending !== 0) res.warnings = { ...res.warnings, pendingAtEnd: rows.pending };
      const ph = await r.phases(fixture.studyUid);
      if (ph.instances > 0) {
        res.phases = {
          receiveMs: round(median(ph.receiveMs), 2),
          storeMs: round(median(ph.storeMs), 2),
          indexMs: round(median(ph.indexMs), 2),
          totalMs: round(median(ph.totalMs), 2),
          ...(ph.durableMs.length ? { durableMs: round(median(ph.durableMs), 2) } : {}),
          ...(ph.commitMs.length ? { commitMs: round(median(ph.commitMs), 2) } : {}),
        };
      }
      const w = await r.warnings();
      if (Object.keys(w).length) res.warnings = { ...res.warnings, ...w };
    }
    const count = await r.count();
    if (count !== expected)
      throw new Error(`receiver holds ${count} instances, expected ${expected}`);
    res.peakRssMb = round(r.peakRssMb() ?? NaN, 1);
    return res;
  } catch (err) {
    return { ok: false, error: err instanceof Error ? err.message : String(err) };
  } finally {
    await r?.stop().catch((err: unknown) => ctx.log(`  (stop failed: ${String(err)})`));
  }
}

export function summarise(res: IngestResult, fixture: Fixture): void {
  const ok = res.runs.filter((r) => r.ok);
  if (ok.length === 0) return;
  const pick = (f: (r: RunResult) => number | undefined): number[] =>
    ok.map(f).filter((x): x is number => x !== undefined && Number.isFinite(x));
  const ips = pick((r) => r.instPerSec);
  const med = (f: (r: RunResult) => number | undefined): number | undefined => {
    const xs = pick(f);
    return xs.length ? round(median(xs), 2) : undefined;
  };
  const instPerSec = round(median(ips), 1);
  res.median = {
    instPerSec,
    mbPerSec: round((instPerSec * fixture.bytes) / fixture.files.length / 1e6, 1),
    minInstPerSec: Math.min(...ips),
    maxInstPerSec: Math.max(...ips),
    drainInstPerSec: med((r) => r.drainInstPerSec),
    drainMs: med((r) => r.drainMs),
    cpuMsPerInstance: med((r) => r.cpuMsPerInstance),
    mainCpuMsPerInstance: med((r) => r.mainCpuMsPerInstance),
    peakRssMb: med((r) => r.peakRssMb),
    load1: med((r) => r.load1),
  };
  const withPhases = ok.filter((r) => r.phases);
  if (withPhases.length) {
    const p = (k: keyof NonNullable<RunResult['phases']>): number =>
      round(median(withPhases.map((r) => r.phases![k] ?? NaN).filter((x) => !isNaN(x))), 2);
    const spooled = withPhases.some((r) => r.phases!.durableMs !== undefined);
    res.median.phases = {
      receiveMs: p('receiveMs'),
      storeMs: p('storeMs'),
      indexMs: p('indexMs'),
      totalMs: p('totalMs'),
      ...(spooled ? { durableMs: p('durableMs'), commitMs: p('commitMs') } : {}),
    };
  }
}

/** Runs the matrix: `rounds` × associations × receivers, interleaved. */
export async function runMatrix(
  ctx: IngestContext,
  ids: ReceiverId[],
  associations: number[],
  rounds: number,
): Promise<IngestResult[]> {
  const results: IngestResult[] = [];
  for (const a of associations) {
    for (const id of ids) results.push({ id, label: LABELS[id], associations: a, runs: [] });
  }
  for (let round_ = 1; round_ <= rounds; round_++) {
    for (const res of results) {
      const t = Date.now();
      const run = await runOnce(ctx, res.id, res.associations);
      res.runs.push(run);
      ctx.log(
        `  round ${round_}/${rounds} ${res.label.padEnd(34)} x${res.associations}: ` +
          (run.ok
            ? `${run.instPerSec} inst/s` +
              (run.drainInstPerSec ? `, drained ${run.drainInstPerSec} inst/s` : '') +
              (run.warnings ? ` warnings ${JSON.stringify(run.warnings)}` : '')
            : `FAILED: ${run.error}`) +
          ` (${((Date.now() - t) / 1000).toFixed(1)} s)`,
      );
    }
  }
  for (const res of results) summarise(res, ctx.fixture);
  return results;
}
