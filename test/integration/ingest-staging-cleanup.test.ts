/**
 * Partial files a SIGKILL leaves mid-receive are removed at the next start (README: "removed at
 * start"): the fs store's `<root>/.staging`, with one `store.staging_cleared` event saying how
 * many files and bytes. A real gateway process, killed while a large instance is half sent.
 */
import { mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import type { ProposedContextRq } from '../../src/dimse/acse.js';
import { encodePDataTf } from '../../src/dimse/pdu.js';
import { startGatewayProcess } from '../helpers/gateway-process.js';
import { generateStudy } from '../helpers/gen-study.js';
import { startTestPostgres } from '../helpers/pg.js';
import { RawScu, storeCommand } from '../helpers/raw-scu.js';
import { datasetOf, until } from '../helpers/verify.js';

const CT = '1.2.840.10008.5.1.4.1.1.2';
const ELE = '1.2.840.10008.1.2.1';
const contexts: ProposedContextRq[] = [{ id: 1, abstractSyntaxUid: CT, transferSyntaxUids: [ELE] }];

const pgsrv = await startTestPostgres();
t.teardown(() => pgsrv.stop());
const work = await mkdtemp(join(tmpdir(), 'gw-staging-'));
t.teardown(() => rm(work, { recursive: true, force: true }));

async function stagedBytes(dir: string): Promise<number> {
  let bytes = 0;
  for (const name of await readdir(dir).catch(() => [])) {
    bytes += (await stat(join(dir, name)).catch(() => undefined))?.size ?? 0;
  }
  return bytes;
}

t.test('fs store: a partial file left by SIGKILL mid-receive is removed at start', async (t) => {
  // 2048 x 2048 x 2 bytes: an 8 MiB data set, sent in 1 MiB fragments, stopped after 4.
  const study = await generateStudy(join(work, 'study'), {
    instances: 1,
    rows: 2048,
    cols: 2048,
    seed: 81,
  });
  const f = study.files[0]!;
  const ds = datasetOf(await readFile(f.path));
  const root = join(work, 'objects');
  const staging = join(root, '.staging');
  const config = {
    dicom: { aeTitle: 'DICOMGW', host: '127.0.0.1', port: 0, maxPduLength: 1 << 20 },
    index: { type: 'postgres', url: pgsrv.connectionString },
    store: { type: 'fs', root, ack: 'stored' },
    admin: { enabled: false },
    log: { level: 'info' },
  };
  const gw = await startGatewayProcess(config, join(work, 'config.json'));
  t.teardown(() => void gw.child.kill('SIGKILL'));
  const scu = await RawScu.connect('127.0.0.1', gw.port);
  t.teardown(() => scu.destroy());
  t.equal((await scu.associate('KILLME', 'DICOMGW', contexts)).kind, 'accepted');
  scu.write(encodePDataTf(1, true, true, storeCommand(1, CT, f.sopInstanceUid)));
  const half = 4 << 20;
  for (let i = 0; i < half; i += 1 << 20) {
    scu.write(encodePDataTf(1, false, false, ds.subarray(i, i + (1 << 20) - 12)));
  }
  const partial = await until(
    async () => {
      const b = await stagedBytes(staging);
      return b >= 2 << 20 && b;
    },
    30_000,
    'the partial file to grow in staging',
  );
  gw.child.kill('SIGKILL');
  await gw.exited;
  t.ok((await readdir(staging)).length > 0, `a partial file of ${partial}+ bytes is left`);

  const again = await startGatewayProcess(config, join(work, 'config.json'));
  t.teardown(() => void again.child.kill('SIGKILL'));
  t.same(await readdir(staging), [], 'staging is empty once the gateway has started');
  const cleared = again.events().filter((e) => e.event === 'store.staging_cleared');
  t.equal(cleared.length, 1, 'one structured event');
  t.ok(Number(cleared[0]?.files) >= 1, 'with the number of files');
  t.ok(Number(cleared[0]?.bytes) >= partial, 'and the bytes removed');
  again.child.kill('SIGTERM');
  await again.exited;
});
