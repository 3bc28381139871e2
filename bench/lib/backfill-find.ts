// C-FIND over many studies (issue 16): a source holding `studies` one-instance studies spread over
// 2024. Timed: the gateway's STUDY-level C-FIND (src/scu/find.ts through SourcePool, as the
// backfill queries; --max-results above the count), with and without opening the association,
// against DCMTK findscu's wall time for the same query; then `backfill --dry-run` over the whole
// range with an empty index (every study listed at SERIES and IMAGE level) and with the index
// holding every study (Orthanc's NumberOfStudyRelatedInstances lets it skip the listing;
// dcmqrscp sends no count, so the listing runs anyway). dcmqrscp holds at most 500 studies: it
// gets the first 500.
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import pino from 'pino';
import { QR_CONTEXTS, cFind, type FindQuery } from '../../src/scu/find.js';
import { SourcePool } from '../../src/scu/source-pool.js';
import { runDcmtk } from '../../test/helpers/dcmtk.js';
import { generateStudy } from '../../test/helpers/gen-study.js';
import { freePort } from '../../test/helpers/net.js';
import { GATEWAY_AE, runBackfillCli, startServe, type CliRun } from './backfill-cli.js';
import type { IngestContext } from './ingest.js';
import { DCMQRSCP_MAX_STUDIES, startSource, type QrSource, type SourceKind } from './qr-source.js';
import { sendFiles } from './send.js';
import { median, round } from './util.js';

export interface DryRun {
  /** The command's own time, and spawn to exit. */
  seconds: number;
  wallSeconds: number;
  checked: number;
  complete: number;
}

export interface FindBench {
  source: SourceKind;
  studies: number;
  /** Matches the gateway's C-FIND returned. */
  matches: number;
  /** Medians over `repeats`, ms: new pool + association + C-FIND + release; C-FIND alone. */
  gatewayMs: number;
  gatewayWarmMs: number;
  /** findscu, process start to exit (association included). */
  findscuMs: number;
  findscuMatches: number;
  dryRunEmpty?: DryRun;
  dryRunComplete?: DryRun;
}

const RANGE = '20240101-20241231';
const QUERY: FindQuery = {
  level: 'STUDY',
  keys: { StudyInstanceUID: '', StudyDate: RANGE, NumberOfStudyRelatedInstances: '' },
  maxResults: 100_000,
  timeoutMs: 300_000,
};

export async function runFindBench(
  ctx: IngestContext,
  kinds: SourceKind[],
  studies: number,
  repeats = 3,
): Promise<FindBench[]> {
  const dir = join(ctx.root, 'backfill-find');
  const g = await generateStudy(join(dir, 'fixture'), {
    studies,
    instances: 1,
    rows: 64,
    cols: 64,
    seed: 700,
  });
  const files = g.files.map((f) => f.path);
  const gwPort = await freePort();
  const out: FindBench[] = [];
  try {
    for (const kind of kinds) {
      const n = kind === 'dcmqrscp' ? Math.min(studies, DCMQRSCP_MAX_STUDIES) : studies;
      const mine = files.slice(0, n);
      const source = await startSource(kind, { [GATEWAY_AE]: gwPort }, n);
      try {
        const t0 = performance.now();
        await source.load(mine);
        ctx.log(
          `C-FIND, ${kind}: ${n} one-instance studies loaded in ${((performance.now() - t0) / 1000).toFixed(0)} s`,
        );
        out.push(await measure(ctx, source, n, gwPort, repeats, mine));
        ctx.log(`  ${JSON.stringify(out.at(-1))}`);
      } finally {
        await source.stop();
      }
    }
  } finally {
    if (!ctx.keepRuns) await rm(dir, { recursive: true, force: true });
  }
  return out;
}

async function measure(
  ctx: IngestContext,
  source: QrSource,
  studies: number,
  gwPort: number,
  repeats: number,
  files: string[],
): Promise<FindBench> {
  const log = pino({ level: 'silent' });
  const pool = (): SourcePool =>
    new SourcePool(
      {
        host: '127.0.0.1',
        port: source.port,
        callingAeTitle: GATEWAY_AE,
        calledAeTitle: source.aeTitle,
        contexts: QR_CONTEXTS,
        timeouts: { responseMs: 300_000 },
      },
      1,
      log,
    );
  const cold: number[] = [];
  const warm: number[] = [];
  let matches = 0;
  for (let i = 0; i < repeats; i++) {
    const p = pool();
    const t0 = performance.now();
    const r = await p.use((a) => cFind(a, QUERY));
    await p.close();
    cold.push(performance.now() - t0);
    matches = r.matches.length;
    if (r.status !== 0 || matches !== studies)
      throw new Error(`gateway C-FIND: ${matches}/${studies}, status ${r.status.toString(16)}`);
  }
  const p = pool();
  try {
    await p.use((a) => cFind(a, QUERY)); // opens the association
    for (let i = 0; i < repeats; i++) {
      const t0 = performance.now();
      await p.use((a) => cFind(a, QUERY));
      warm.push(performance.now() - t0);
    }
  } finally {
    await p.close();
  }
  const scu: number[] = [];
  let scuMatches = 0;
  for (let i = 0; i < repeats; i++) {
    const t0 = performance.now();
    const r = await runDcmtk(
      'findscu',
      ['-v', '-S', '-aet', 'FINDER', '-aec', source.aeTitle, '-k', '0008,0052=STUDY', '-k', `0008,0020=${RANGE}`, '-k', '0020,000D', '-k', '0020,1208', '127.0.0.1', String(source.port)],
      { timeoutMs: 300_000 },
    ); // prettier-ignore
    scu.push(performance.now() - t0);
    scuMatches = (r.stderr + r.stdout).match(/Find Response: \d+ \(Pending/g)?.length ?? 0;
    if (r.code !== 0) throw new Error(`findscu: ${r.stderr.slice(-2000)}`);
  }
  const res: FindBench = {
    source: source.kind,
    studies,
    matches,
    gatewayMs: round(median(cold), 0),
    gatewayWarmMs: round(median(warm), 0),
    findscuMs: round(median(scu), 0),
    findscuMatches: scuMatches,
  };
  const gw = await startServe(ctx, `bench_find_${source.kind}`, gwPort);
  try {
    const dry = async (): Promise<DryRun> => {
      const r: CliRun = await runBackfillCli(ctx, gw, source, [
        ...['--dry-run', '--max-results', String(studies * 2), '--timeout', '300'],
      ]);
      if (r.report.totals.checked !== studies)
        throw new Error(`dry run checked ${r.report.totals.checked}: ${r.stderr.slice(-2000)}`);
      return {
        seconds: round(r.report.seconds, 2),
        wallSeconds: round(r.wallSeconds, 2),
        checked: r.report.totals.checked,
        complete: r.report.totals.complete,
      };
    };
    res.dryRunEmpty = await dry();
    const sent = await sendFiles({ port: gw.port, calledAet: GATEWAY_AE, files, associations: 1 });
    if (sent.failures.length) throw new Error(`storescu into the gateway: ${sent.failures[0]}`);
    res.dryRunComplete = await dry();
    if (res.dryRunComplete.complete !== studies)
      throw new Error(`dry run over a complete index: ${res.dryRunComplete.complete} complete`);
  } finally {
    await gw.stop();
  }
  return res;
}
