/**
 * log.format: JSON lines unless a person reads them. `auto` looks at the output it writes to;
 * a terminal is given by util-linux `script`, which runs the program on a pseudo-terminal.
 */
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';

const LOG_TS = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'src', 'log.ts');

function program(format: string): string {
  return [
    `import { createLogger, logDestination } from ${JSON.stringify(LOG_TS)};`,
    `const log = createLogger({ level: 'info', phi: false }, logDestination(${JSON.stringify(format)}, 1));`,
    `log.info({ event: 'gateway.started', port: 11112 }, 'listening');`,
  ].join('\n');
}

function run(format: string, onTerminal: boolean): string {
  const node = [process.execPath, '--import=@tapjs/typescript/import', '--input-type=module'];
  const env = { ...process.env, TS_NODE_TRANSPILE_ONLY: '1', NODE_NO_WARNINGS: '1' };
  const r = onTerminal
    ? spawnSync(
        'script',
        ['-qec', [...node, '-e', program(format)].map(shellQuote).join(' '), '/dev/null'],
        { env, encoding: 'utf8' },
      )
    : spawnSync(node[0]!, [...node.slice(1), '-e', program(format)], { env, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`exit ${r.status}: ${r.stderr}`);
  return r.stdout;
}

const shellQuote = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;

t.test('auto: JSON lines into a pipe', async (t) => {
  const out = run('auto', false).trim();
  const line = JSON.parse(out) as Record<string, unknown>;
  t.match(line, { level: 'info', event: 'gateway.started', port: 11112, msg: 'listening' });
});

t.test('auto: readable lines on a terminal', async (t) => {
  // Colours removed: what is left is what a person reads.
  // eslint-disable-next-line no-control-regex
  const out = run('auto', true).replace(/\u001b\[[0-9;]*m/g, '');
  t.match(out, /^\[\d\d:\d\d:\d\d\.\d{3}\] INFO: gateway\.started listening \{"port":11112\}/m);
  t.notMatch(out, /"level"/, 'not JSON');
});

t.test('json and pretty are obeyed whatever the output is', async (t) => {
  t.doesNotThrow(() => JSON.parse(run('json', true).trim()), 'json on a terminal');
  t.match(
    run('pretty', false),
    /^\[[\d:.]+\] INFO: gateway\.started listening/m,
    'pretty into a pipe',
  );
  t.notOk(run('pretty', false).includes('\u001b['), 'no colours into a pipe');
});
