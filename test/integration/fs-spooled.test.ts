/**
 * The embedded default: a local directory store with `ack: spooled`. Each C-STORE is answered
 * once its file is fsynced in `<root>/.spool` and its row is committed as pending-upload, side
 * by side; the uploader then publishes the file under its key (a link, with its sidecar) and
 * marks the row stored. Checked against PostgreSQL and DCMTK storescu: what was acknowledged
 * is durable and indexed at the answer, is published byte-identical, and nothing is left in
 * the spool; the spool never shows up as keys. Crash safety: test/integration/crash-fs-spooled.
 */
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { storescu } from '../helpers/dcmtk.js';
import { startTestGateway } from '../helpers/gateway.js';
import { generateStudy } from '../helpers/gen-study.js';
import { startTestPostgres } from '../helpers/pg.js';
import { countStoredExactly, query } from '../helpers/verify.js';

const pgsrv = await startTestPostgres();
t.teardown(() => pgsrv.stop());
const work = await mkdtemp(join(tmpdir(), 'gw-fs-spooled-'));
t.teardown(() => rm(work, { recursive: true, force: true }));

t.test('acknowledged = fsynced in the spool and indexed; published right after', async (t) => {
  const study = await generateStudy(join(work, 'study'), {
    series: 2,
    instances: 20,
    rows: 128,
    cols: 128,
    seed: 301,
  });
  // The config default (burstBytes 1 GiB): nothing is published while the sender sends.
  const gw = await startTestGateway({
    databaseUrl: pgsrv.connectionString,
    dir: join(work, 'gw'),
    fsOptions: { ack: 'spooled' },
  });
  t.teardown(() => gw.close());
  const root = join(work, 'gw', 'objects');
  const uids = study.files.map((f) => f.sopInstanceUid);
  // Hold the uploader back until the promise at the answer has been checked.
  const uploader = gw.gw.spool!.uploader;
  uploader.yieldTo(() => true);

  const send = (): ReturnType<typeof storescu> =>
    storescu({
      host: '127.0.0.1',
      port: gw.port,
      callingAet: 'STORESCU',
      calledAet: 'DICOMGW',
      files: study.files.map((f) => f.path),
    });
  const r = await send();
  t.same(
    r.statuses,
    uids.map(() => 0),
    'every instance answered 0000',
  );

  // At the answer: each instance has its row and its fsynced file in the spool (or, if the
  // uploader got to it, its published object): never neither.
  const rows = await query<{ sop_instance_uid: string; state: string; sha256: string }>(
    pgsrv.connectionString,
    'SELECT sop_instance_uid, state, sha256 FROM instances WHERE sop_instance_uid = ANY($1)',
    [uids],
  );
  t.equal(rows.length, uids.length, 'one row per acknowledged instance');
  const pending = rows.filter((x) => x.state === 'pending-upload');
  t.ok(pending.length > 0, `${pending.length} rows still pending-upload at the answer`);
  const spoolDir = join(root, '.spool', 'ready');
  t.ok(
    pending.every((x) => existsSync(join(spoolDir, `${x.sop_instance_uid}.dcm`))),
    'every pending row has its file in <root>/.spool/ready',
  );
  const keys: string[] = [];
  for await (const o of gw.gw.store.list('')) keys.push(o.key);
  t.ok(
    keys.every((k) => !k.startsWith('.spool')),
    'the spool is not listed as objects',
  );

  // Let it publish: every object byte-identical, every row stored, the spool empty.
  uploader.yieldTo(() => false);
  t.ok(await uploader.idle(60_000), 'the uploader published the spool');
  const exact = await countStoredExactly(gw.gw.store, gw.gw.index, study.files);
  t.equal(exact, uids.length, `all ${uids.length} objects under their keys, byte-identical`);
  const states = await query<{ state: string; n: string }>(
    pgsrv.connectionString,
    'SELECT state, count(*) AS n FROM instances GROUP BY state',
  );
  t.same(states, [{ state: 'stored', n: String(uids.length) }], 'every row stored');
  t.same(await readdir(spoolDir), [], 'nothing left in the spool');
  const events = await query<{ n: string }>(
    pgsrv.connectionString,
    "SELECT count(DISTINCT payload->>'sopInstanceUid') AS n FROM outbox",
  );
  t.equal(events[0]!.n, String(uids.length), 'one outbox event per instance, once published');

  // A resend of the same study: duplicates, nothing written twice.
  const again = await send();
  t.same(
    again.statuses,
    uids.map(() => 0),
    'a resend is answered 0000 (identical duplicates)',
  );
  t.same(await readdir(spoolDir), [], 'a resend leaves nothing in the spool');
});
