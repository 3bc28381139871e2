// The backfill sections of bench/run.ts: `backfill` (speed against movescu, C-FIND over many
// studies) and `backfill-rss` (memory over a large backfill), with their command-line options.
import { runBackfillSpeed } from './backfill-bench.js';
import { runFindBench } from './backfill-find.js';
import type { BackfillResult } from './backfill-format.js';
import { runRssBench } from './backfill-rss.js';
import type { IngestContext } from './ingest.js';
import type { SourceKind } from './qr-source.js';

export interface BackfillConfig {
  /** Studies × instances missing, moved by backfill and by movescu, in alternating rounds. */
  backfillStudies: number;
  backfillPerStudy: number;
  backfillRounds: number;
  /** The backfill's associations to the source (movescu: one). */
  backfillAssociations: number;
  backfillSources: SourceKind[];
  findStudies: number;
  rssInstances: number;
  rssSource: SourceKind;
}

/** --backfill-rounds, --backfill-sources, --find-studies, --rss-instances, --rss-source. */
export function backfillConfig(args: Record<string, string | true>): BackfillConfig {
  const str = (k: string): string | undefined =>
    typeof args[k] === 'string' ? args[k] : undefined;
  const num = (k: string, dflt: number): number => Number(str(k) ?? dflt);
  return {
    backfillStudies: 5,
    backfillPerStudy: 100,
    backfillRounds: num('backfill-rounds', 3),
    backfillAssociations: num('backfill-associations', 1),
    backfillSources: (str('backfill-sources') ?? 'dcmqrscp,orthanc').split(',') as SourceKind[],
    findStudies: num('find-studies', 1000),
    rssInstances: num('rss-instances', 10_000),
    rssSource: (str('rss-source') ?? 'orthanc') as SourceKind,
  };
}

export async function runBackfillSections(
  ctx: IngestContext,
  which: { speed: boolean; rss: boolean },
  c: BackfillConfig,
): Promise<BackfillResult> {
  const b: BackfillResult = { speed: [], find: [] };
  if (which.speed) {
    b.speed = await runBackfillSpeed(ctx, {
      sources: c.backfillSources,
      studies: c.backfillStudies,
      perStudy: c.backfillPerStudy,
      rounds: c.backfillRounds,
      associations: c.backfillAssociations,
    });
    b.find = await runFindBench(ctx, c.backfillSources, c.findStudies);
  }
  if (which.rss) b.rss = await runRssBench(ctx, c.rssSource, c.rssInstances);
  return b;
}
