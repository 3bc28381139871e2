/** SharedSource: one pool for every user at once, closed after the last (no association opened here). */
import pino from 'pino';
import t from 'tap';
import { parseConfig } from '../../src/config.js';
import { sharedSources } from '../../src/scu/source-access.js';
import type { SourcePool } from '../../src/scu/source-pool.js';

const cfg = parseConfig({
  dicom: { peers: [{ aeTitle: 'PACS', host: '127.0.0.1', port: 104, maxAssociations: 2 }] },
});
const log = pino({ level: 'silent' });

t.test('users at once share one pool; the next user after the last gets a new one', async (t) => {
  const source = sharedSources(cfg, log)('PACS', 1000);
  t.equal(source.peer.maxAssociations, 2);
  let release!: () => void;
  const held = new Promise<void>((r) => (release = r));
  const seen: SourcePool[] = [];
  const first = source.with(async (p) => {
    seen.push(p);
    await held;
  });
  const second = source.with(async (p) => {
    seen.push(p);
  });
  await second;
  release();
  await first;
  t.equal(seen.length, 2);
  t.equal(seen[0], seen[1], 'the same pool while both use it');
  await t.rejects(
    seen[0]!.use(async () => undefined),
    /source pool closed/,
    'closed after the last user',
  );
  const later = await source.with(async (p) => p);
  t.not(later, seen[0], 'a new pool for a later user');
});

t.test('one SharedSource per AE title; an unknown one is a configuration error', async (t) => {
  const sources = sharedSources(cfg, log);
  t.equal(sources('PACS', 1000), sources('PACS', 5000));
  t.throws(() => sources('OTHER', 1000), /no peer OTHER in dicom\.peers/);
});
