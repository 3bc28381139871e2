/**
 * `npm run bench [-- --quick] [-- --profile]`: ingest throughput against DCMTK storescp and
 * Orthanc, the gateway's latency floor, WAN latency, a 1 GB instance, and the index at 1 M rows,
 * all on this machine in one run on the same generated fixture. Prints tables and target checks
 * and writes bench/results/latest.{json,txt} and quick.{json,txt} or full.{json,txt}.
 *
 * Options: --quick (100 instances, 1 round, no WAN / 1 GB, 100 k index rows: < 3 min)
 *   --profile[=gw-fs|gw-s3-spooled|gw-s3-stored] (adds one run of that gateway mode, default
 *     gw-s3-spooled, with the gateway under node --cpu-prof)
 *   --only=ingest,wan,large,index,sustained,notify,backfill,backfill-rss,profile   --runs=N
 *     --instances=N   --index-rows=N
 *   backfill (full runs): backfill of 500 missing instances against movescu into storescp from
 *     dcmqrscp and Orthanc (--backfill-rounds=N, default 3; --backfill-sources=dcmqrscp;
 *     --backfill-associations=N: the backfill's associations to the source, default 1), and
 *     C-FIND over 1,000 studies (--find-studies=N) with backfill --dry-run over them
 *   backfill-rss (not in the defaults, ~4 min): RSS of serve and of the backfill process while
 *     10,000 instances are moved (--rss-instances=N, --rss-source=orthanc|dcmqrscp)
 *   sustained (full runs): the bare PutObject ceiling at 2 and 8 uploads at once, and the gateway
 *     (ack spooled) uploading from the first instance on: its drain rate is the all-day rate
 *   --gateway=build|ts|dist: how the gateway process runs: src/ transpiled into the temp dir
 *     (default, bench/lib/build.ts), src/main.ts through the TypeScript loader, or the repository's
 *     dist/main.js (npm run build)   --keep (keep the temp dir and each run's gateway.log)
 *   --receivers=storescp,gw-s3-spooled,...: only these ingest receivers (see ReceiverId;
 *     gw-fs-routed is gw-fs with 20 routing rules: compare the two for the cost of routing)
 *   --gateway-config='{"store":{"uploadConcurrency":2}}': merged into every gateway's config
 *   --out=NAME: write bench/results/NAME.{json,txt} only. A run with --only, --receivers or
 *     --gateway-config is partial and writes nothing unless --out is given, so latest.* and
 *     quick/full.* always hold a complete run.
 * Over 400 lines: the section wiring and the printed report of every section stay in one place.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os, { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateStudy } from '../test/helpers/gen-study.js';
import { buildGateway } from './lib/build.js';
import { measureFloor, type FloorResult } from './lib/floor.js';
import { runIndexBench, type IndexResult } from './lib/index-bench.js';
import {
  LABELS,
  runMatrix,
  type Fixture,
  type IngestContext,
  type IngestResult,
  type ReceiverId,
} from './lib/ingest.js';
import { runLarge, type LargeResult } from './lib/large.js';
import { machineInfo } from './lib/machine.js';
import { runNotifyBench, type NotifyResult } from './lib/notify-bench.js';
import { startBenchPostgres, type BenchPostgres } from './lib/postgres.js';
import { runProfile, type ProfileRunResult } from './lib/profile-run.js';
import { RgwPool, ROOT } from './lib/rgw-pool.js';
import {
  durableCeiling,
  evaluateTargets,
  formatIngest,
  formatProfile,
  formatTargets,
} from './lib/report.js';
import { measureUploadCeiling, type CeilingResult } from './lib/upload-ceiling.js';
import { formatBackfill, type BackfillResult } from './lib/backfill-format.js';
import { backfillConfig, runBackfillSections } from './lib/backfill-section.js';
import { MB, round } from './lib/util.js';

// prettier-ignore
const SECTIONS = ['ingest', 'wan', 'large', 'index', 'sustained', 'notify', 'profile', 'backfill', 'backfill-rss'] as const;
type Section = (typeof SECTIONS)[number];

function parseArgs(argv: string[]): Record<string, string | true> {
  const out: Record<string, string | true> = {};
  for (const a of argv) {
    const m = /^--([a-z-]+)(?:=(.*))?$/.exec(a);
    if (!m) throw new Error(`unknown argument ${a} (see the header of bench/run.ts)`);
    out[m[1]!] = m[2] ?? true;
  }
  return out;
}

const args = parseArgs(process.argv.slice(2));
const quick = args.quick === true;
const num = (k: string, dflt: number): number =>
  typeof args[k] === 'string' ? Number(args[k]) : dflt;
const sections = new Set<Section>(
  typeof args.only === 'string'
    ? args.only.split(',').map((x) => {
        if (!(SECTIONS as readonly string[]).includes(x)) throw new Error(`unknown section ${x}`);
        return x as Section;
      })
    : quick
      ? ['ingest', 'index']
      : ['ingest', 'wan', 'large', 'index', 'sustained', 'notify', 'backfill'],
);
if (args.profile !== undefined) sections.add('profile');
const receiverFilter =
  typeof args.receivers === 'string' ? new Set(args.receivers.split(',')) : undefined;
const gatewayConfig =
  typeof args['gateway-config'] === 'string'
    ? (JSON.parse(args['gateway-config']) as Record<string, unknown>)
    : undefined;
const partial =
  typeof args.only === 'string' || receiverFilter !== undefined || gatewayConfig !== undefined;
const outName = typeof args.out === 'string' ? args.out : undefined;
const profileId: ReceiverId =
  typeof args.profile === 'string' ? (args.profile as ReceiverId) : 'gw-s3-spooled';
const cfg = {
  mode: quick ? 'quick' : 'full',
  instances: num('instances', quick ? 100 : 500),
  warmupInstances: quick ? 20 : 50,
  rounds: num('runs', quick ? 1 : 3),
  associations: [1, 4],
  wanDelayMs: 20,
  largeFrames: num('large-frames', 2048), // 512 × 512 × 2 bytes × 2048 = 1 GiB of pixel data
  indexRows: num('index-rows', quick ? 100_000 : 1_000_000),
  lookups: quick ? 500 : 2000,
  floorSamples: quick ? 20 : 40,
  rgwCapBytes: 2.5e9,
  // notify: studies of this many instances timed one after the other, and a backlog.
  notifyStudies: num('notify-studies', quick ? 5 : 10),
  notifyStudyInstances: 100,
  notifyBacklog: 500,
  ...backfillConfig(args),
};
// Sections that send the ingest fixture; the others get a one-instance stand-in.
const needsFixture = (['ingest', 'wan', 'sustained', 'notify', 'profile'] as const).some((s) =>
  sections.has(s),
);

const t0 = Date.now();
const log = (s: string): void => {
  process.stdout.write(`[${((Date.now() - t0) / 1000).toFixed(0).padStart(4)} s] ${s}\n`);
};

async function fixture(dir: string, instances: number, seed: number, frames = 1): Promise<Fixture> {
  const g = await generateStudy(dir, { instances, seed, frames, modality: 'CT' });
  return { files: g.files, bytes: g.bytes, studyUid: g.files[0]!.studyUid };
}

async function main(): Promise<void> {
  const root = await mkdtemp(join(tmpdir(), 'dicom-gw-bench-'));
  let pg: BenchPostgres | undefined;
  const rgw = new RgwPool(cfg.rgwCapBytes, cfg.wanDelayMs);
  const results: {
    ingest: IngestResult[];
    floor: { lan?: FloorResult; wan?: FloorResult };
    large?: LargeResult;
    index?: IndexResult;
    sustained?: { ceilings: CeilingResult[] };
    profile?: ProfileRunResult;
    notify: NotifyResult[];
    backfill?: BackfillResult;
  } = { ingest: [], floor: {}, notify: [] };
  try {
    log(`mode ${cfg.mode}, sections ${[...sections].join(', ')}; temp ${root}`);
    const study = await fixture(join(root, 'fixture'), needsFixture ? cfg.instances : 1, 1);
    const warmup = await fixture(join(root, 'warmup'), needsFixture ? cfg.warmupInstances : 1, 2);
    log(
      `fixture: ${study.files.length} CT instances, ${(study.bytes / 1e6).toFixed(0)} MB; warm-up study ${warmup.files.length}`,
    );
    pg = await startBenchPostgres(root);
    const machine = machineInfo(ROOT, pg.version);
    log(`PostgreSQL: ${pg.version.split(' on ')[0]}`);
    const how = typeof args.gateway === 'string' ? args.gateway : 'build';
    const gatewayMain =
      how === 'build'
        ? await buildGateway(ROOT, join(root, 'gateway-build'))
        : how === 'dist'
          ? join(ROOT, 'dist', 'main.js')
          : undefined;
    log(`gateway process: node ${gatewayMain ?? '--import=@tapjs/typescript/import src/main.ts'}`);
    const ctx: IngestContext = {
      root,
      pg,
      rgw,
      fixture: study,
      warmup,
      gatewayMain,
      gatewayConfig,
      keepRuns: args.keep === true,
      log,
    };

    // LAN and WAN runs go into one interleaved matrix: each WAN figure is compared with the LAN
    // figure of the same rounds, so load that comes and goes on the machine hits both alike.
    const floor = async (wan: boolean): Promise<FloorResult> => {
      log(
        `latency floor (S3 PUT of one 0.5 MB instance, index commit), ${wan ? `${2 * cfg.wanDelayMs} ms RTT` : 'LAN'}`,
      );
      const f = await measureFloor({
        target: await rgw.bucket(cfg.floorSamples * 2 * 0.6 * MB, wan),
        pg: ctx.pg,
        dbName: wan ? 'bench_floor_wan' : 'bench_floor',
        file: study.files[0]!,
        samples: cfg.floorSamples,
        root,
      });
      log(`  PUT ${f.putMs} ms, commit ${f.recordMs} ms -> floor ${f.floorInstPerSec} inst/s`);
      return f;
    };
    const ids: ReceiverId[] = [];
    if (sections.has('ingest')) {
      results.floor.lan = await floor(false);
      ids.push('storescp', 'orthanc', 'gw-fs', 'gw-fs-stored', 'gw-fs-routed', 'gw-s3-spooled');
      if (sections.has('wan')) ids.push('gw-s3-spooled-wan');
      ids.push('gw-s3-stored');
      if (sections.has('wan')) ids.push('gw-s3-stored-wan');
    } else if (sections.has('wan')) {
      ids.push('gw-s3-spooled-wan', 'gw-s3-stored-wan');
    }
    if (sections.has('wan')) {
      log(`WAN: S3 behind a delay proxy adding ${cfg.wanDelayMs} ms each way`);
      results.floor.wan = await floor(true);
    }
    if (receiverFilter) ids.splice(0, ids.length, ...ids.filter((id) => receiverFilter.has(id)));
    if (ids.length) {
      log(
        `ingest: ${cfg.rounds} round(s) × ${cfg.associations.join('/')} association(s) × ${ids.length} receivers`,
      );
      results.ingest.push(...(await runMatrix(ctx, ids, cfg.associations, cfg.rounds)));
    }
    if (sections.has('sustained')) {
      log('sustained: bare PutObject loop of the study (the upload ceiling), 2 and 8 at once');
      const ceilings: CeilingResult[] = [];
      for (const concurrency of [2, 8]) {
        const target = await rgw.bucket(study.bytes, false);
        const c = await measureUploadCeiling({ target, files: study.files, concurrency });
        log(`  ${concurrency} at once: ${c.instPerSec} inst/s, PUT median ${c.putMs} ms`);
        ceilings.push(c);
      }
      results.sustained = { ceilings };
      const ids: ReceiverId[] = ['gw-s3-sustained'];
      if (!receiverFilter || receiverFilter.has(ids[0]!)) {
        results.ingest.push(...(await runMatrix(ctx, ids, [1], cfg.rounds)));
      }
    }
    if (sections.has('large')) {
      const big = await fixture(join(root, 'large'), 1, 3, cfg.largeFrames);
      log(
        `large: one ${(big.bytes / 1e9).toFixed(2)} GB multi-frame instance, S3 + PG, ack spooled`,
      );
      results.large = await runLarge(ctx, big.files[0]!, cfg.largeFrames);
      await rm(join(root, 'large'), { recursive: true, force: true });
      log(`  ${JSON.stringify(results.large)}`);
    }
    if (sections.has('index')) {
      log(`index: ${cfg.indexRows.toLocaleString('en-US')} instance rows`);
      results.index = await runIndexBench({
        pg,
        instances: cfg.indexRows,
        lookups: cfg.lookups,
        log,
      });
    }
    if (sections.has('notify')) {
      const studies: Fixture[] = [];
      for (let i = 0; i < cfg.notifyStudies; i++) {
        studies.push(
          await fixture(join(root, 'notify', `s${i}`), cfg.notifyStudyInstances, 10 + i),
        );
      }
      const backlog = await fixture(join(root, 'notify', 'backlog'), cfg.notifyBacklog, 9);
      for (const mode of ['pull', 'push'] as const) {
        log(
          `notify ${mode}: ${studies.length} studies of ${cfg.notifyStudyInstances}, then a backlog of ${backlog.files.length}`,
        );
        results.notify.push(await runNotifyBench(ctx, mode, studies, backlog));
      }
      await rm(join(root, 'notify'), { recursive: true, force: true });
    }
    if (sections.has('backfill') || sections.has('backfill-rss')) {
      const which = { speed: sections.has('backfill'), rss: sections.has('backfill-rss') };
      results.backfill = await runBackfillSections(ctx, which, cfg);
    }
    if (sections.has('profile')) {
      log(`profile: ${LABELS[profileId]}, 1 association, gateway under node --cpu-prof`);
      results.profile = await runProfile(ctx, profileId, join(ROOT, 'bench', 'results', 'profile'));
    }

    const targets = evaluateTargets(results);
    const text = [
      '',
      `dicom-gateway bench (${cfg.mode}), ${new Date(t0).toISOString()}, ${((Date.now() - t0) / 1000).toFixed(0)} s`,
      `machine: ${machine.cores} × ${machine.cpuModel}, ${machine.memoryGiB} GiB, ${machine.kernel}; node ${machine.node}`,
      `versions: ${machine.dcmtk}; ${machine.orthanc}; ${pg.version.split(',')[0]}; ${machine.rgw.split('(')[0]!.trim()}`,
      `commit ${machine.gitCommit}${machine.gitDirtyFiles > 0 ? ` + ${machine.gitDirtyFiles} changed files in the work tree` : ''}`,
      '',
      `Ingest: ${study.files.length} CT instances 512×512×16 bit, ${(study.bytes / 1e6).toFixed(0)} MB, storescu with TCP_NODELAY=1;` +
        ` median of ${cfg.rounds} run(s), each into a fresh receiver after a ${warmup.files.length}-instance warm-up association`,
      results.ingest.length ? formatIngest(results.ingest, cfg.rounds) : '  (not run)',
      '  ×scp, ×Orth: the gateway figure over storescp / Orthanc at the same association count.',
      '  drained/s: instances / time until the last spooled instance was in the bucket (ack spooled).',
      "  phases: medians of the gateway log's receiveMs/storeMs/indexMs per instance (ack stored: index = insert + PUT + markStored);",
      '    ack spooled: store is the longer of two legs run side by side, from the last byte: the spool file durable (file + directory fsync), the index row committed.',
      ...routingLines(results.ingest),
      `  CPU ms/i: receiver process CPU per instance, and of that its main thread's (for the gateway: all JavaScript); load: 1-min load average at the measured send (${os.cpus().length} cores: higher means other work competed).`,
      '',
      floorLine('Floor (LAN)', results.floor.lan),
      floorLine('Floor (40 ms RTT)', results.floor.wan),
      ceilingLine(results.sustained?.ceilings),
      '',
      results.large
        ? `Large instance: ${(results.large.bytes / 1e9).toFixed(2)} GB (${results.large.frames} frames): ` +
          (results.large.ok
            ? `C-STORE-RSP after ${results.large.ackSeconds} s (${results.large.mbPerSec} MB/s), in the bucket after ${results.large.drainSeconds} s, gateway peak RSS ${results.large.peakRssMb} MiB`
            : `FAILED: ${results.large.error}`)
        : 'Large instance: not run',
      results.index
        ? `Index at ${results.index.instances.toLocaleString('en-US')} instances (${results.index.studies} studies, ${results.index.patients} patients; load ${results.index.loadSeconds} s):` +
          ` study by UID p50/p95/p99 ${results.index.studyByUid.p50Ms}/${results.index.studyByUid.p95Ms}/${results.index.studyByUid.p99Ms} ms;` +
          ` patient by ID ${results.index.patientById.p50Ms}/${results.index.patientById.p95Ms}/${results.index.patientById.p99Ms} ms;` +
          ` ${results.index.bytesPerInstance} B/instance (outbox ${results.index.outboxBytesPerInstance} B/event)`
        : 'Index: not run',
      ...formatNotify(results.notify),
      ...formatBackfill(results.backfill),
      '',
      'Targets (ratios measured in this run):',
      formatTargets(targets),
      durableCeiling(results),
      ...(results.profile
        ? [
            '',
            `Profile (${LABELS[results.profile.id]}, 1 assoc, ${results.profile.instPerSec} inst/s under --cpu-prof; raw: ${results.profile.profileFile})`,
            formatProfile('ingest', results.profile.ingest),
            formatProfile('drain', results.profile.drain, 8),
          ]
        : []),
    ].join('\n');
    process.stdout.write(`${text}\n`);
    const out = {
      version: 1,
      mode: cfg.mode,
      startedAt: new Date(t0).toISOString(),
      durationSeconds: Math.round((Date.now() - t0) / 1000),
      config: { ...cfg, sections: [...sections] },
      machine,
      fixture: {
        instances: study.files.length,
        bytes: study.bytes,
        warmupInstances: warmup.files.length,
      },
      ...results,
      targets,
      rgwClusters: rgw.restarts,
    };
    const dir = join(ROOT, 'bench', 'results');
    await mkdir(dir, { recursive: true });
    const json = `${JSON.stringify(out, null, 2)}\n`;
    const names = outName ? [outName] : partial ? [] : ['latest', cfg.mode];
    for (const name of names) {
      await writeFile(join(dir, `${name}.json`), json);
      await writeFile(join(dir, `${name}.txt`), `${text}\n`);
    }
    log(
      names.length
        ? `wrote ${names.map((n) => `bench/results/${n}.{json,txt}`).join(' and ')}`
        : 'partial run: no results written (give --out=NAME to keep them)',
    );
  } finally {
    await rgw.stop().catch((err: unknown) => log(`rgw stop failed: ${String(err)}`));
    await pg?.stop().catch((err: unknown) => log(`postgres stop failed: ${String(err)}`));
    if (args.keep !== true) await rm(root, { recursive: true, force: true });
  }
}

function ceilingLine(c: CeilingResult[] | undefined): string {
  if (!c) return 'Upload ceiling: not measured';
  return (
    'Upload ceiling (bare PutObject loop of the study into the same RGW, nothing else running): ' +
    c.map((x) => `${x.concurrency} at once ${x.instPerSec} inst/s (PUT ${x.putMs} ms)`).join(', ')
  );
}

function formatNotify(rs: NotifyResult[]): string[] {
  if (rs.length === 0) return ['Notify: not run'];
  return [
    `Notify (cloud Orthanc 1.10 + PostgreSQL index + import plugin, LAN): last C-STORE-RSP of a ${rs[0]!.instancesPerStudy}-instance study -> the whole study in Orthanc; a backlog released at once`,
    ...rs.map(
      (r) =>
        `  ${r.mode.padEnd(4)}: median ${r.medianMs} ms, p95 ${r.p95Ms} ms over ${r.latencyMs.length} studies (${r.latencyMs.join(', ')});` +
        ` backlog of ${r.backlog.instances}: ${r.backlog.seconds} s, ${r.backlog.instPerSec} inst/s`,
    ),
  ];
}

function floorLine(title: string, f: FloorResult | undefined): string {
  if (!f) return `${title}: not measured`;
  return (
    `${title}: median S3 PutObject of 0.5 MB ${f.putMs} ms + PgIndex.recordInstance ${f.recordMs} ms` +
    ` -> 1 / (PUT + commit) = ${f.floorInstPerSec} inst/s per association;` +
    ` the stored path also chains findInstance ${f.findMs} + pending insert ${f.recordPendingMs} + markStored ${f.markStoredMs} ms` +
    ` -> ${f.pathFloorInstPerSec} inst/s (${f.samples} samples each).` +
    ` Local durability (create in the spool, write 0.5 MB, fsync file and directory): ${f.durableWriteMs} ms` +
    ` -> ${f.durableFloorInstPerSec} inst/s per association at most for a receiver that makes each instance durable before answering (receive time not counted)` +
    `; with the index row committed side by side (ack spooled's promise): ${f.durableIndexedMs} ms -> ${round(1000 / f.durableIndexedMs, 1)} inst/s; four at a time ${f.durableIndexed4InstPerSec} inst/s`
  );
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(
      `bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
    );
    process.exit(1);
  },
);

/**
 * The cost of routing in the ingest figures: gw-fs with 20 rules (bench/lib/routing-rules.ts,
 * all evaluated per instance) against gw-fs without rules, in the same run (target: at most
 * 3% apart).
 */
function routingLines(ingest: IngestResult[]): string[] {
  const out: string[] = [];
  for (const routed of ingest.filter((r) => r.id === 'gw-fs-routed' && r.median)) {
    const plain = ingest.find((r) => r.id === 'gw-fs' && r.associations === routed.associations);
    if (!plain?.median) continue;
    const ratio = routed.median!.instPerSec / plain.median.instPerSec;
    out.push(
      `  routing x${routed.associations}: 20 rules ${routed.median!.instPerSec} inst/s vs none ${plain.median.instPerSec} inst/s: ` +
        `${(ratio * 100).toFixed(1)}% (${((ratio - 1) * 100).toFixed(1)}%; target within 3%)`,
    );
  }
  return out;
}
