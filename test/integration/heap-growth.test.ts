/**
 * `serve` sets V8's heap growing factor (src/heap-growth.ts): without it, a gateway receiving a
 * study ran a full GC every ~70 ms, because V8 kept the old generation's limit closer to the live
 * heap than one young generation is large and so began marking again right after each full GC.
 * The real CLI under node --trace-gc receives 300 CT instances of 0.5 MB from storescu into the
 * embedded default's store mode; the full GCs (Mark-Compact lines) during the send are counted.
 * With the setting this run counts 0; with it removed, 15 to 17.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { HEAP_GROWING_PERCENT, setHeapGrowth } from '../../src/heap-growth.js';
import { storescu } from '../helpers/dcmtk.js';
import { startGatewayProcess } from '../helpers/gateway-process.js';
import { generateStudy } from '../helpers/gen-study.js';
import { startTestPostgres } from '../helpers/pg.js';
import { query, until } from '../helpers/verify.js';

t.test('an operator-set growing factor is left alone', async (t) => {
  t.equal(setHeapGrowth(['--heap-growing-percent=50'], undefined), undefined);
  t.equal(setHeapGrowth([], '--max-old-space-size=512 --heap_growing_percent=30'), undefined);
  t.equal(setHeapGrowth([], '--max-old-space-size=512'), HEAP_GROWING_PERCENT);
});

t.test('receiving a study runs few full GCs', async (t) => {
  const pgsrv = await startTestPostgres();
  t.teardown(() => pgsrv.stop());
  const work = await mkdtemp(join(tmpdir(), 'gw-heap-'));
  t.teardown(() => rm(work, { recursive: true, force: true }));
  await generateStudy(join(work, 'warm'), { instances: 40, seed: 811 });
  await generateStudy(join(work, 'study'), { instances: 300, seed: 812 });
  const gw = await startGatewayProcess(
    {
      dicom: { aeTitle: 'DICOMGW', host: '127.0.0.1', port: 0 },
      index: { type: 'postgres', url: pgsrv.connectionString },
      store: { type: 'fs', root: join(work, 'objects'), ack: 'spooled' },
      admin: { enabled: false },
      log: { level: 'info' },
    },
    join(work, 'config.json'),
    60_000,
    ['--trace-gc'],
  );
  t.teardown(() => {
    gw.child.kill('SIGKILL');
  });
  const peer = { host: '127.0.0.1', port: gw.port, callingAet: 'MODALITY', calledAet: 'DICOMGW' };
  const stored = async (n: number): Promise<boolean> => {
    const [row] = await query<{ n: number }>(
      pgsrv.connectionString,
      "SELECT count(*)::int AS n FROM instances WHERE state = 'stored'",
    );
    return row!.n >= n;
  };
  // Start-up and the first association compile and load what they need: not counted.
  const first = await storescu({ ...peer, files: [join(work, 'warm')] });
  t.equal(first.statuses.filter((s) => s === 0).length, 40);
  await until(() => stored(40), 60_000, 'warm-up published');
  const fullGcs = (): number => (gw.output().match(/: Mark-Compact /g) ?? []).length;
  const before = fullGcs();
  const sent = await storescu({ ...peer, files: [join(work, 'study')] });
  const during = fullGcs() - before;
  t.equal(sent.statuses.filter((s) => s === 0).length, 300, 'every instance answered 0000');
  t.ok(
    during <= 5,
    `${during} full GCs while 300 instances arrived (at most 5; 15 to 17 without the setting)`,
  );
  await until(() => stored(340), 120_000, 'all published');
});
