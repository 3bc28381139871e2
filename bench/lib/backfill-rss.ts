// Memory during a large backfill (issue 16: the gateway's RSS must not grow with the number of
// results): `instances` tiny instances (64×64) in a few studies of two series each, in the source;
// one backfill moves them all into a fresh `serve`. VmRSS of serve and of the backfill process is
// read every 200 ms with the count of instances in the index, so the RSS at 10 %, 50 % and 90 %
// of the instances shows whether memory follows the amount moved.
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { generateStudy } from '../../test/helpers/gen-study.js';
import { freePort } from '../../test/helpers/net.js';
import {
  GATEWAY_AE,
  runBackfillCli,
  sampleRss,
  startServe,
  type RssSample,
} from './backfill-cli.js';
import type { IngestContext } from './ingest.js';
import { startSource, type SourceKind } from './qr-source.js';
import { round } from './util.js';

export interface ProcessRss {
  /** MiB: before the run (serve only), peak over the run, at 10/50/90 % of the instances. */
  before?: number;
  peak: number;
  at10?: number;
  at50?: number;
  at90?: number;
  /** RSS at 10 %, 20 %, … 100 % of the instances (the JSON report's curve). */
  deciles: Array<number | undefined>;
}

export interface RssBench {
  source: SourceKind;
  studies: number;
  instances: number;
  seconds: number;
  wallSeconds: number;
  instPerSec: number;
  serve: ProcessRss;
  cli: ProcessRss;
  samples: number;
}

export async function runRssBench(
  ctx: IngestContext,
  kind: SourceKind,
  instances: number,
  studies = 10,
): Promise<RssBench> {
  const dir = join(ctx.root, 'backfill-rss');
  const perSeries = Math.ceil(instances / studies / 2);
  const g = await generateStudy(join(dir, 'fixture'), {
    studies,
    series: 2,
    instances: perSeries,
    rows: 64,
    cols: 64,
    seed: 800,
  });
  const files = g.files.map((f) => f.path);
  const gwPort = await freePort();
  const source = await startSource(kind, { [GATEWAY_AE]: gwPort });
  try {
    const t0 = performance.now();
    await source.load(files);
    ctx.log(
      `RSS, ${kind}: ${files.length} instances (${studies} studies × 2 series × ${perSeries}, ${(g.bytes / 1e6).toFixed(0)} MB) loaded in ${((performance.now() - t0) / 1000).toFixed(0)} s`,
    );
    const gw = await startServe(ctx, `bench_rss_${kind}`, gwPort);
    try {
      const pids: Record<string, number> = { serve: gw.pid };
      const sampler = sampleRss(pids, () => gw.count());
      await new Promise((r) => setTimeout(r, 600)); // a few samples of serve at rest
      const r = await runBackfillCli(ctx, gw, source, ['--timeout', '300'], (pid) => {
        pids.cli = pid;
      });
      const samples = await sampler.stop();
      const n = files.length;
      if (r.code !== 0 || r.report.totals.instancesMoved !== n)
        throw new Error(
          `backfill moved ${r.report.totals.instancesMoved}/${n}: ${r.stderr.slice(-2000)}`,
        );
      const res: RssBench = {
        source: kind,
        studies,
        instances: n,
        seconds: round(r.report.seconds, 2),
        wallSeconds: round(r.wallSeconds, 2),
        instPerSec: round(n / r.report.seconds, 1),
        serve: summarise(samples, 'serve', n),
        cli: summarise(samples, 'cli', n),
        samples: samples.length,
      };
      ctx.log(`  ${JSON.stringify(res)}`);
      return res;
    } finally {
      await gw.stop();
    }
  } finally {
    await source.stop();
    if (!ctx.keepRuns) await rm(dir, { recursive: true, force: true });
  }
}

function summarise(samples: RssSample[], name: string, n: number): ProcessRss {
  const mine = samples.filter((s) => s.rss[name] !== undefined);
  const at = (share: number): number | undefined =>
    mine.find((s) => s.progress >= share * n)?.rss[name];
  return {
    before: name === 'serve' ? mine.find((s) => s.progress === 0)?.rss[name] : undefined,
    peak: Math.max(0, ...mine.map((s) => s.rss[name]!)),
    at10: at(0.1),
    at50: at(0.5),
    at90: at(0.9),
    deciles: Array.from({ length: 10 }, (_, i) => at((i + 1) / 10)),
  };
}
