// Backfill speed (issue 16): `dicom-gateway backfill` of studies the index lacks entirely, against a
// plain DCMTK movescu of the same studies into storescp, from the same source (dcmqrscp, and
// Orthanc), one association each. For reference, the same files sent by storescu straight into
// a fresh serve: the receiver's own rate, which bounds the backfill's. movescu gets one query file per study (one C-MOVE per study
// on one association, as the backfill does). Rounds alternate which of the two goes first; each
// backfill round gets a fresh `serve` with an empty index on the same port. The backfill is timed
// (and the storescu reference) twice: the command's own `seconds` (its JSON report: from after Node's start and the C-ECHO of
// serve to the last study checked) and wall time from spawning Node to its exit.
import { mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { runDcmtk, startStorescp } from '../../test/helpers/dcmtk.js';
import { generateStudy } from '../../test/helpers/gen-study.js';
import { freePort } from '../../test/helpers/net.js';
import { GATEWAY_AE, runBackfillCli, startServe } from './backfill-cli.js';
import type { IngestContext } from './ingest.js';
import { startSource, type QrSource, type SourceKind } from './qr-source.js';
import { sendFiles } from './send.js';
import { median, round } from './util.js';

export interface SpeedRound {
  order: string;
  movescuSeconds: number;
  /** storescu of the same files into a fresh serve, one association (process included). */
  storescuSeconds: number;
  /** The command's own time (its report's `seconds`). */
  backfillSeconds: number;
  /** Spawn to exit, Node's start included. */
  backfillWallSeconds: number;
}

export interface SourceSpeed {
  source: SourceKind;
  studies: number;
  instances: number;
  bytes: number;
  rounds: SpeedRound[];
  /** The backfill's associations to the source. */
  associations: number;
  /** Medians over the rounds, instances per second. */
  movescuInstPerSec: number;
  backfillInstPerSec: number;
  backfillWallInstPerSec: number;
  storescuInstPerSec: number;
  /** backfill / movescu, from the medians. */
  ratio: number;
  wallRatio: number;
  /** backfill (command time) / storescu into serve. */
  storescuRatio: number;
}

export interface SpeedOptions {
  sources: SourceKind[];
  studies: number;
  perStudy: number;
  rounds: number;
  /** The backfill's associations to the source (its peer's maxAssociations); movescu uses one. */
  associations: number;
}

export async function runBackfillSpeed(
  ctx: IngestContext,
  o: SpeedOptions,
): Promise<SourceSpeed[]> {
  const dir = join(ctx.root, 'backfill-speed');
  const files: string[] = [];
  const studyUids: string[] = [];
  let bytes = 0;
  for (let k = 0; k < o.studies; k++) {
    const g = await generateStudy(join(dir, 'fixture', `s${k}`), {
      series: 2,
      instances: Math.ceil(o.perStudy / 2),
      rows: 256,
      cols: 256,
      seed: 900 + k,
    });
    files.push(...g.files.map((f) => f.path));
    studyUids.push(g.files[0]!.studyUid);
    bytes += g.bytes;
  }
  const queries = await queryFiles(join(dir, 'queries'), studyUids);
  const outDir = join(dir, 'storescp');
  await mkdir(outDir, { recursive: true });
  const scp = await startStorescp({ aet: 'MOVEDEST', outDir });
  const gwPort = await freePort();
  const out: SourceSpeed[] = [];
  try {
    for (const kind of o.sources) {
      const source = await startSource(kind, { [GATEWAY_AE]: gwPort, MOVEDEST: scp.port });
      try {
        await source.load(files);
        ctx.log(
          `backfill speed, ${kind}: ${files.length} instances (${o.studies} studies, ${(bytes / 1e6).toFixed(0)} MB) in the source; ${o.rounds} alternating rounds`,
        );
        const rounds: SpeedRound[] = [];
        for (let r = 0; r < o.rounds; r++) {
          let mv = 0;
          let st = 0;
          let bf = { seconds: 0, wall: 0 };
          const steps: Array<[string, () => Promise<void>]> = [
            ['movescu', async () => void (mv = await movescu(source, queries, outDir, files.length))],
            ['backfill', async () => void (bf = await backfill(ctx, source, `bench_bf_${kind}_${r}`, gwPort, files.length, o.associations))],
            ['storescu', async () => void (st = await storescu(ctx, `bench_st_${kind}_${r}`, files))],
          ]; // prettier-ignore
          // Each round starts with the next of the three: load that comes and goes hits all alike.
          const order = [...steps.slice(r % 3), ...steps.slice(0, r % 3)];
          for (const [, step] of order) await step();
          rounds.push({
            order: order.map(([name]) => name).join(','),
            movescuSeconds: round(mv, 3),
            storescuSeconds: round(st, 3),
            backfillSeconds: round(bf.seconds, 3),
            backfillWallSeconds: round(bf.wall, 3),
          });
          ctx.log(
            `  round ${r + 1}: movescu ${mv.toFixed(2)} s, storescu -> serve ${st.toFixed(2)} s, backfill ${bf.seconds.toFixed(2)} s (wall ${bf.wall.toFixed(2)} s)`,
          );
        }
        const n = files.length;
        const ips = (k: keyof SpeedRound): number => n / median(rounds.map((x) => x[k] as number));
        const m = ips('movescuSeconds');
        const b = ips('backfillSeconds');
        const w = ips('backfillWallSeconds');
        const d = ips('storescuSeconds');
        out.push({
          source: kind,
          studies: o.studies,
          instances: n,
          bytes,
          rounds,
          associations: o.associations,
          movescuInstPerSec: round(m, 1),
          backfillInstPerSec: round(b, 1),
          backfillWallInstPerSec: round(w, 1),
          storescuInstPerSec: round(d, 1),
          ratio: round(b / m, 2),
          wallRatio: round(w / m, 2),
          storescuRatio: round(b / d, 2),
        });
      } finally {
        await source.stop();
      }
    }
  } finally {
    await scp.stop();
    if (!ctx.keepRuns) await rm(dir, { recursive: true, force: true });
  }
  return out;
}

/** One query file per study (STUDY level, its UID), for movescu. */
async function queryFiles(dir: string, studyUids: string[]): Promise<string[]> {
  await mkdir(dir, { recursive: true });
  const out: string[] = [];
  for (const [i, uid] of studyUids.entries()) {
    const txt = join(dir, `q${i}.txt`);
    const dcm = join(dir, `q${i}.dcm`);
    await writeFile(txt, `(0008,0052) CS [STUDY]\n(0020,000d) UI [${uid}]\n`);
    const r = await runDcmtk('dump2dcm', [txt, dcm]);
    if (r.code !== 0) throw new Error(`dump2dcm: ${r.stderr}`);
    out.push(dcm);
  }
  return out;
}

/** movescu of every study into storescp (emptied first); seconds, movescu's process included. */
async function movescu(
  source: QrSource,
  queries: string[],
  outDir: string,
  n: number,
): Promise<number> {
  for (const f of await readdir(outDir)) await rm(join(outDir, f), { force: true });
  const t0 = performance.now();
  const r = await runDcmtk(
    'movescu',
    ['-S', '-aet', 'MOVER', '-aec', source.aeTitle, '-aem', 'MOVEDEST', '127.0.0.1', String(source.port), ...queries],
    { timeoutMs: 600_000 },
  ); // prettier-ignore
  const seconds = (performance.now() - t0) / 1000;
  const got = (await readdir(outDir)).length;
  if (r.code !== 0 || got !== n || /^[EW]: /m.test(r.stderr + r.stdout)) {
    throw new Error(`movescu: ${got}/${n} in storescp, exit ${r.code}: ${r.stderr.slice(-2000)}`);
  }
  return seconds;
}

/** One backfill into a fresh serve with an empty index: the command's seconds and wall seconds. */
async function backfill(
  ctx: IngestContext,
  source: QrSource,
  dbName: string,
  port: number,
  n: number,
  associations: number,
): Promise<{ seconds: number; wall: number }> {
  const gw = await startServe(ctx, dbName, port);
  try {
    const r = await runBackfillCli(ctx, gw, source, [], undefined, associations);
    if (r.code !== 0 || r.report.totals.instancesMoved !== n || (await gw.count()) !== n) {
      throw new Error(
        `backfill moved ${r.report.totals.instancesMoved}/${n} (exit ${r.code}): ${r.stderr.slice(-2000)}`,
      );
    }
    return { seconds: r.report.seconds, wall: r.wallSeconds };
  } finally {
    await gw.stop();
  }
}

/** storescu of every file into a fresh serve (any port), one association: seconds. */
async function storescu(ctx: IngestContext, dbName: string, files: string[]): Promise<number> {
  const gw = await startServe(ctx, dbName, 0);
  try {
    const r = await sendFiles({ port: gw.port, calledAet: GATEWAY_AE, files, associations: 1 });
    if (r.failures.length || (await gw.count()) !== files.length)
      throw new Error(`storescu into serve: ${r.failures[0] ?? `${await gw.count()} indexed`}`);
    return r.ms / 1000;
  } finally {
    await gw.stop();
  }
}
