#!/usr/bin/env node
import { Command } from 'commander';
import { loadConfig, type Config } from './config.js';
import { isGatewayError } from './errors.js';
import { openIndex, startGateway } from './gateway.js';
import { createLogger } from './log.js';

/**
 * dicom-gateway CLI. Exit codes: 0 ok, 1 runtime failure, 2 bad configuration or usage.
 */
const EXIT_RUNTIME = 1;
const EXIT_CONFIG = 2;

function configFrom(opts: { config?: string }): Config {
  return loadConfig(opts.config ?? process.env.DICOM_GATEWAY_CONFIG);
}

async function serve(opts: { config?: string }): Promise<void> {
  const cfg = configFrom(opts);
  const log = createLogger(cfg.log);
  const gw = await startGateway(cfg, log);
  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) {
      // A second signal: leave now. Nothing unacknowledged is lost: senders resend.
      log.warn({ event: 'gateway.exit_now', signal }, 'second signal; exiting at once');
      process.exit(EXIT_RUNTIME);
    }
    stopping = true;
    log.info(
      { event: 'gateway.stopping', signal },
      'stopping: no new associations, finishing open ones',
    );
    gw.close().then(
      () => {
        log.info({ event: 'gateway.stopped', ...gw.ingest.stats }, 'stopped');
        process.exit(0);
      },
      (err: unknown) => {
        log.error({ event: 'gateway.stop_failed', err: String(err) }, 'stop failed');
        process.exit(EXIT_RUNTIME);
      },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

async function migrate(opts: { config?: string }): Promise<void> {
  const cfg = configFrom(opts);
  const log = createLogger(cfg.log);
  const { index, stop } = await openIndex(cfg, log);
  try {
    await index.migrate();
    log.info({ event: 'index.migrated' }, 'migrations applied');
  } finally {
    await index.close();
    await stop();
  }
}

function configCheck(opts: { config?: string }): void {
  const cfg = configFrom(opts);
  process.stdout.write(`configuration is valid\n${JSON.stringify(redact(cfg), null, 2)}\n`);
}

function redact(cfg: Config): unknown {
  return JSON.parse(
    JSON.stringify(cfg, (key: string, value: unknown) => {
      if (typeof value !== 'string') return value;
      if (key === 'secretAccessKey') return '***';
      if (key === 'url') return value.replace(/\/\/([^:/@]+):[^@]*@/, '//$1:***@');
      return value;
    }),
  );
}

const program = new Command()
  .name('dicom-gateway')
  .description('DICOM C-STORE gateway to S3-compatible storage with a PostgreSQL index')
  .option('-c, --config <file>', 'YAML or JSON configuration file (or DICOM_GATEWAY_CONFIG)');

program
  .command('serve', { isDefault: true })
  .description('receive instances (C-STORE, C-ECHO) and store them')
  .action(() => serve(program.opts()));
program
  .command('migrate')
  .description('apply index database migrations and exit')
  .action(() => migrate(program.opts()));
program
  .command('config')
  .description('configuration tools')
  .command('check')
  .description('validate the configuration and print it with secrets masked')
  .action(() => configCheck(program.opts()));

program.parseAsync(process.argv).catch((err: unknown) => {
  if (isGatewayError(err, 'GW_ERR_CONFIG')) {
    process.stderr.write(`dicom-gateway: ${err.message}\n`);
    process.exit(EXIT_CONFIG);
  }
  process.stderr.write(
    `dicom-gateway: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
  );
  process.exit(EXIT_RUNTIME);
});
