/**
 * The embedded PostgreSQL handle reports a postmaster that exits on its own (what the supervisor
 * restarts), not one that stop() ended; and start() brings a killed one back on the same port.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { startEmbeddedPostgres, type PostmasterExit } from '../../src/index/embedded-pg.js';
import { query, until } from '../helpers/verify.js';

t.test('onExit: a kill is reported, a stop() is not; start() recovers', async (t) => {
  const root = await mkdtemp(join(tmpdir(), 'gw-pg-exit-'));
  t.teardown(() => rm(root, { recursive: true, force: true }));
  const pg = await startEmbeddedPostgres({ dataDir: join(root, 'pg'), persistent: false });
  t.teardown(() => pg.stop());
  const exits: PostmasterExit[] = [];
  pg.onExit((e) => exits.push(e));

  await pg.stop();
  await pg.start();
  t.same(exits, [], 'stop() is not an exit to report');

  const pidFile = join(pg.dataDir, 'postmaster.pid');
  const pid = Number.parseInt((await readFile(pidFile, 'utf8')).split('\n')[0]!, 10);
  process.kill(pid, 'SIGKILL');
  await until(async () => exits.length > 0, 10_000, 'the exit report');
  t.same(exits, [{ pid, code: null, signal: 'SIGKILL' }]);

  await pg.start();
  const rows = await query<{ one: number }>(pg.connectionString, 'SELECT 1 AS one');
  t.same(rows, [{ one: 1 }], 'answers again on the same port after crash recovery');
  await pg.stop();
  t.equal(exits.length, 1, 'still one report');
});
