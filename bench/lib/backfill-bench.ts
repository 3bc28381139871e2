/**
 * Backfill speed against a plain DCMTK movescu of the same studies into storescp, one run each,
 * from the same dcmqrscp source. Work in progress: not yet a section of bench/run.ts (no C-FIND
 * timing, no RSS yet). The backfill time is the CLI's own (its report), without Node's start.
 */
import { spawnSync } from 'node:child_process';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startDcmqrscp } from '../../test/helpers/dcmqrscp.js';
import { startStorescp, storescu } from '../../test/helpers/dcmtk.js';
import { runCli } from '../../test/helpers/gateway-process.js';
import { startTestGateway } from '../../test/helpers/gateway.js';
import { generateStudy } from '../../test/helpers/gen-study.js';
import { startTestPostgres } from '../../test/helpers/pg.js';

/** Moves STUDIES × PER_STUDY instances both ways and prints inst/s of each. */
export async function runBackfillBench(STUDIES: number, PER_STUDY: number): Promise<void> {
  const work = await mkdtemp(join(tmpdir(), 'bench-backfill-'));
  const db = await startTestPostgres();
  const gw = await startTestGateway({ databaseUrl: db.connectionString, dicom: {} });
  const out = join(work, 'storescp');
  await import('node:fs/promises').then((fs) => fs.mkdir(out));
  const scp = await startStorescp({ aet: 'MOVEDEST', outDir: out });
  const qr = await startDcmqrscp({
    aeTitle: 'QRSCP',
    hosts: {
      gateway: ['DICOMGW', '127.0.0.1', gw.port],
      movedest: ['MOVEDEST', '127.0.0.1', scp.port],
    },
  });
  try {
    const files: string[] = [];
    const studyUids: string[] = [];
    const studyOf = new Map<string, string>();
    let bytes = 0;
    for (let k = 0; k < STUDIES; k++) {
      const g = await generateStudy(join(work, `s${k}`), {
        series: 2,
        instances: PER_STUDY / 2,
        rows: 256,
        cols: 256,
        seed: 900 + k,
      });
      files.push(...g.files.map((f) => f.path));
      studyUids.push(g.files[0]!.studyUid);
      for (const f of g.files) studyOf.set(f.path, f.studyUid);
      bytes += g.bytes;
    }
    const loaded = await storescu({
      host: '127.0.0.1',
      port: qr.port,
      callingAet: 'LOADER',
      calledAet: 'QRSCP',
      files,
    });
    if (loaded.code !== 0) throw new Error(loaded.stderr);
    const n = files.length;
    console.log(`${n} instances, ${(bytes / 1e6).toFixed(1)} MB in dcmqrscp`);

    const t0 = process.hrtime.bigint();
    const mv = spawnSync(
      'movescu',
      ['-S', '-aet', 'MOVER', '-aec', 'QRSCP', '-aem', 'MOVEDEST', '-k', '0008,0052=STUDY',
       '-k', '0008,0020=20240101-20241231', '127.0.0.1', String(qr.port)],
      { env: { ...process.env, TCP_NODELAY: '1' }, encoding: 'utf8' },
    ); // prettier-ignore
    const movescuS = Number(process.hrtime.bigint() - t0) / 1e9;
    const got = (await readdir(out)).length;
    if (mv.status !== 0 || got !== n) throw new Error(`movescu: ${got}/${n} ${mv.stderr}`);
    console.log(
      `movescu -> storescp: ${movescuS.toFixed(2)} s, ${(n / movescuS).toFixed(0)} inst/s`,
    );

    // The receiver's own rate for reference: storescu of the first two studies into the gateway
    // (a movescu to the gateway fails here: dcmqrscp answers A702 before it connects, not yet
    // understood); backfill then moves the rest.
    const direct = files.filter(
      (f) => studyOf.get(f) === studyUids[0] || studyOf.get(f) === studyUids[1],
    );
    const t2 = process.hrtime.bigint();
    const sent = await storescu({
      host: '127.0.0.1',
      port: gw.port,
      callingAet: 'MODALITY',
      calledAet: 'DICOMGW',
      files: direct,
    });
    if (sent.code !== 0) throw new Error(sent.stderr);
    const directN = direct.length;
    const directS = Number(process.hrtime.bigint() - t2) / 1e9;
    console.log(`storescu -> gateway (${directN}): ${(directN / directS).toFixed(0)} inst/s`);
    const cfg = join(work, 'cfg.json');
    await writeFile(
      cfg,
      JSON.stringify({
        dicom: {
          aeTitle: 'DICOMGW',
          host: '127.0.0.1',
          port: gw.port,
          peers: [{ aeTitle: 'QRSCP', host: '127.0.0.1', port: qr.port }],
        },
        index: { type: 'postgres', url: db.connectionString },
        store: { type: 'fs', root: join(work, 'unused') },
        admin: { enabled: false },
        log: { level: 'warn' },
      }),
    );
    const t1 = process.hrtime.bigint();
    const r = await runCli(
      ['--config', cfg, 'backfill', '--source', 'QRSCP', '--from', '2024-01-01', '--to', '2024-12-31', '--json'],
      600_000,
    ); // prettier-ignore
    const wallS = Number(process.hrtime.bigint() - t1) / 1e9;
    const rep = JSON.parse(r.stdout) as { seconds: number; totals: { instancesMoved: number } };
    if (r.code !== 0 || rep.totals.instancesMoved !== n - directN)
      throw new Error(r.stderr.slice(-2000));
    console.log(
      `backfill -> gateway: ${rep.seconds.toFixed(2)} s in the command (${wallS.toFixed(2)} s with ` +
        `Node's start), ${((n - directN) / rep.seconds).toFixed(0)} inst/s moved; ` +
        `${((n - directN) / rep.seconds / (directN / directS)).toFixed(2)}x storescu's rate into the same gateway`,
    );
  } finally {
    await qr.stop();
    await scp.stop();
    await gw.close();
    await db.stop();
    await rm(work, { recursive: true, force: true });
  }
}
