// The backfill sections in the printed report and the target checks (issue 16).
import type { FindBench } from './backfill-find.js';
import type { SourceSpeed } from './backfill-bench.js';
import type { ProcessRss, RssBench } from './backfill-rss.js';
import type { Target } from './report.js';

export interface BackfillResult {
  speed: SourceSpeed[];
  find: FindBench[];
  rss?: RssBench;
}

/** "RSS does not grow": at 90 % of the instances at most this much above 10 %. */
export const RSS_GROWTH_MIB = 20;

export function formatBackfill(b: BackfillResult | undefined): string[] {
  if (!b || (b.speed.length === 0 && b.find.length === 0 && !b.rss)) return ['Backfill: not run'];
  const lines: string[] = [];
  for (const s of b.speed) {
    lines.push(
      `Backfill from ${s.source}: ${s.instances} instances missing (${s.studies} studies, 256×256, ${(s.bytes / 1e6).toFixed(0)} MB); backfill with ${s.associations} association(s), movescu one;` +
        ` median of ${s.rounds.length} alternating rounds`,
      `  movescu -> storescp ${s.movescuInstPerSec} inst/s; backfill -> serve ${s.backfillInstPerSec} inst/s (command's own time),` +
        ` ${s.backfillWallInstPerSec} inst/s (wall, Node's start included): ${s.ratio}× / ${s.wallRatio}× movescu`,
      `  the receiver's own rate: storescu -> serve ${s.storescuInstPerSec} inst/s (one association, fs store, fsync + index commit per instance);` +
        ` backfill = ${s.storescuRatio}× of it`,
      `  rounds (s, movescu / storescu / backfill / wall): ${s.rounds.map((r) => `${r.movescuSeconds}/${r.storescuSeconds}/${r.backfillSeconds}/${r.backfillWallSeconds}`).join(', ')}`,
    );
  }
  for (const f of b.find) {
    const dry = (d: FindBench['dryRunEmpty']): string =>
      d ? `${d.seconds} s (wall ${d.wallSeconds} s)` : 'not run';
    lines.push(
      `C-FIND over ${f.studies} studies (${f.source}, STUDY level, one date range): gateway ${f.gatewayMs} ms` +
        ` with the association, ${f.gatewayWarmMs} ms on an open one (${f.matches} matches);` +
        ` findscu ${f.findscuMs} ms (${f.findscuMatches} matches)`,
      `  backfill --dry-run over the ${f.studies}: index empty ${dry(f.dryRunEmpty)}; index complete ${dry(f.dryRunComplete)}` +
        (f.source === 'dcmqrscp'
          ? ' (no instance counts: every study listed)'
          : ' (count shortcut)'),
    );
  }
  if (b.rss) {
    const r = b.rss;
    const p = (x: ProcessRss): string =>
      `${x.before !== undefined ? `before ${x.before}, ` : ''}at 10/50/90 % ${x.at10 ?? '—'}/${x.at50 ?? '—'}/${x.at90 ?? '—'}, peak ${x.peak}`;
    lines.push(
      `Backfill of ${r.instances} instances (${r.source}, ${r.studies} studies, 64×64): ${r.seconds} s (wall ${r.wallSeconds} s), ${r.instPerSec} inst/s;` +
        ` RSS MiB (every 200 ms, ${r.samples} samples): serve ${p(r.serve)}; backfill process ${p(r.cli)}`,
    );
  }
  return lines;
}

export function backfillTargets(b: BackfillResult | undefined): Target[] {
  const t: Target[] = [];
  for (const source of ['dcmqrscp', 'orthanc'] as const) {
    const s = b?.speed.find((x) => x.source === source);
    if (!s) {
      if (source === 'dcmqrscp')
        t.push({ name: 'backfill vs movescu (dcmqrscp)', want: '≥ 0.8×', got: 'not measured' });
      continue;
    }
    const got = (r: number, ips: number): string =>
      `${r.toFixed(2)}× (${ips} vs ${s.movescuInstPerSec} inst/s)`;
    t.push(
      {
        name: `backfill vs movescu (${source}, command time)`,
        want: '≥ 0.8×',
        got: got(s.ratio, s.backfillInstPerSec),
        met: s.ratio >= 0.8,
      },
      {
        name: `backfill vs movescu (${source}, wall incl. Node)`,
        want: '≥ 0.8×',
        got: got(s.wallRatio, s.backfillWallInstPerSec),
        met: s.wallRatio >= 0.8,
      },
    );
  }
  const r = b?.rss;
  for (const [name, x] of [
    ['serve', r?.serve],
    ['backfill process', r?.cli],
  ] as const) {
    const ok = x?.at10 !== undefined && x.at90 !== undefined;
    t.push({
      name: `${r ? r.instances.toLocaleString('en-US') : '10,000'}-instance backfill: ${name} RSS growth 10→90 %`,
      want: `< ${RSS_GROWTH_MIB} MiB`,
      got: ok
        ? `${(x.at90! - x.at10!).toFixed(1)} MiB (${x.at10} -> ${x.at90}, peak ${x.peak})`
        : 'not measured',
      met: ok ? x.at90! - x.at10! < RSS_GROWTH_MIB : undefined,
    });
  }
  return t;
}
