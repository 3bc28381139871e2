/**
 * Spool.open at start: what a stop left half-received (incoming/, `*.part`) is removed and
 * reported in one event with files and bytes; complete files in ready/ stay for the uploader.
 */
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pino, type Logger } from 'pino';
import t from 'tap';
import { Spool } from '../../src/ingest/spool.js';

/** A logger whose JSON lines land in `lines`. */
function capture(lines: Array<Record<string, unknown>>): Logger {
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      lines.push(JSON.parse(chunk.toString('utf8')) as Record<string, unknown>);
      cb();
    },
  });
  return pino({ level: 'info' }, sink);
}

t.test('partial files removed with one event; ready/*.dcm kept', async (t) => {
  const dir = t.testdir();
  mkdirSync(join(dir, 'incoming'), { recursive: true });
  mkdirSync(join(dir, 'ready'), { recursive: true });
  writeFileSync(join(dir, 'incoming', 'a.part'), Buffer.alloc(1000));
  writeFileSync(join(dir, 'incoming', 'b.part'), Buffer.alloc(2000));
  writeFileSync(join(dir, 'ready', '1.2.3.part'), Buffer.alloc(500));
  writeFileSync(join(dir, 'ready', '1.2.4.dcm'), Buffer.alloc(300));
  const lines: Array<Record<string, unknown>> = [];
  const spool = new Spool(dir, 1 << 30, capture(lines));
  t.same(await spool.open(), ['1.2.4'], 'the complete file is counted for recovery');
  t.same(readdirSync(join(dir, 'incoming')), [], 'incoming/ emptied');
  t.notOk(existsSync(join(dir, 'ready', '1.2.3.part')), 'a .part in ready/ removed');
  t.ok(existsSync(join(dir, 'ready', '1.2.4.dcm')), 'the complete file kept');
  const events = lines.filter((l) => l.event === 'spool.incoming_cleared');
  t.equal(events.length, 1, 'one event');
  t.match(events[0], { files: 3, bytes: 3500 });

  const quiet: Array<Record<string, unknown>> = [];
  const again = new Spool(dir, 1 << 30, capture(quiet));
  await again.open();
  t.same(quiet, [], 'nothing to remove: no event');
});
