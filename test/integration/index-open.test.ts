/**
 * connectIndex with `index.type: embedded`: serve/migrate start (and create) the cluster; the
 * read-only commands refuse a directory without one, use the server of a gateway already running
 * on it, and otherwise start it for themselves and stop it after.
 */
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import t from 'tap';
import { parseConfig } from '../../src/config.js';
import { connectIndex } from '../../src/index/open.js';

const work = await mkdtemp(join(tmpdir(), 'gw-index-open-'));
t.teardown(() => rm(work, { recursive: true, force: true }));
// Captured, to check the shape of the embedded server's log lines at the end.
const lines: string[] = [];
const log = pino({ level: 'debug' }, { write: (line: string) => void lines.push(line) });
const cfg = parseConfig({ index: { type: 'embedded', dataDir: join(work, 'pg'), port: 0 } });

t.test('no cluster yet: the read-only commands refuse, naming the directory', async (t) => {
  await t.rejects(connectIndex(cfg, log, { existingOnly: true }), {
    code: 'GW_ERR_CONFIG',
    message: /no embedded index in .*pg \(index\.dataDir\)/,
  });
});

t.test('a running gateway server is used; otherwise one is started and stopped', async (t) => {
  const serving = await connectIndex(cfg, log);
  t.equal(serving.source, 'embedded-started');
  try {
    await serving.index.migrate();
    const beside = await connectIndex(cfg, log, { existingOnly: true });
    t.equal(beside.source, 'embedded-running');
    try {
      t.match(await beside.index.summary(), { studies: 0, instances: 0 });
    } finally {
      await beside.close();
    }
    await serving.index.ping(); // closing the second one left the server running
  } finally {
    await serving.close();
  }
  const alone = await connectIndex(cfg, log, { existingOnly: true });
  t.equal(alone.source, 'embedded-started');
  try {
    t.match(await alone.index.summary(), { studies: 0 });
  } finally {
    await alone.close();
  }
  t.notOk(existsSync(join(work, 'pg', 'postmaster.pid')), 'the server it started stopped with it');
});

t.test('log lines of the embedded server name their component once', async (t) => {
  const tagged = lines.filter((l) => l.includes('"component"'));
  t.ok(tagged.length > 0, `${tagged.length} lines carry a component`);
  for (const line of tagged) {
    t.equal(line.split('"component"').length - 1, 1, line.slice(0, 160));
  }
  t.ok(
    tagged.some((l) => (JSON.parse(l) as { component?: string }).component === 'embedded-pg'),
    'the component is embedded-pg',
  );
});
