#!/usr/bin/env node
/**
 * dicom-gateway CLI: `serve` (default), `migrate`, `config check`, `status`, `verify`,
 * `notify retry`, `route test`, `backfill`.
 * Each command lives in src/cli/; this file parses the command line, loads the configuration
 * once and maps failures to exit codes (src/cli/exit-codes.ts, also in every --help).
 * Commands are imported when they run: `config check` or `--help` need not load the AWS SDK,
 * PostgreSQL and DICOM stacks.
 */
import { Command, CommanderError, Option } from 'commander';
import type { Logger } from 'pino';
import { ExitCode, EXIT_CODES_HELP } from './cli/exit-codes.js';
import { parseConcurrency, parseDicomDate, parseUid } from './cli/options.js';
import type { RouteTestOptions } from './cli/route-test.js';
import type { BackfillCliOptions } from './cli/backfill.js';
import { parseIsoDate, parseModality, parsePositiveInt } from './cli/backfill-options.js';
import { loadConfig, type Config } from './config.js';
import { isGatewayError } from './errors.js';
import { createLogger, logDestination } from './log.js';

function configOf(cmd: Command): Config {
  const { config } = cmd.optsWithGlobals<{ config?: string }>();
  return loadConfig(config ?? process.env.DICOM_GATEWAY_CONFIG);
}

/** Tools keep stdout for their output; their log lines go to stderr. */
function toolLogger(cfg: Config): Logger {
  return createLogger(cfg.log, logDestination(cfg.log.format, 2));
}

/** Sets the exit code without process.exit(), so stdout is flushed when piped. */
function finish(code: number): void {
  process.exitCode = code;
}

const program = new Command()
  .name('dicom-gateway')
  .description('DICOM C-STORE gateway to S3-compatible storage with a PostgreSQL index')
  .option('-c, --config <file>', 'YAML or JSON configuration file (or DICOM_GATEWAY_CONFIG)')
  .addHelpText('after', EXIT_CODES_HELP)
  // Usage errors throw instead of exiting with commander's 1: they are ours to map to 2.
  // Set before the subcommands are added, which inherit it.
  .exitOverride();

program
  .command('serve', { isDefault: true })
  .description('receive instances (C-STORE, C-ECHO) and store them')
  .addHelpText('after', EXIT_CODES_HELP)
  .action(async (_opts, cmd: Command) => {
    const cfg = configOf(cmd);
    const { serveCommand } = await import('./cli/serve.js');
    const { config } = cmd.optsWithGlobals<{ config?: string }>();
    await serveCommand(
      cfg,
      createLogger(cfg.log, logDestination(cfg.log.format, 1)),
      config ?? process.env.DICOM_GATEWAY_CONFIG,
    );
  });

program
  .command('migrate')
  .description('apply index database migrations and exit')
  .addHelpText('after', EXIT_CODES_HELP)
  .action(async (_opts, cmd: Command) => {
    const cfg = configOf(cmd);
    const { migrateCommand } = await import('./cli/migrate.js');
    finish(await migrateCommand(cfg, toolLogger(cfg)));
  });

program
  .command('config')
  .description('configuration tools')
  .command('check')
  .description('validate the configuration and print it with secrets masked')
  .addHelpText('after', EXIT_CODES_HELP)
  .action(async (_opts, cmd: Command) => {
    const cfg = configOf(cmd);
    const { configCheckCommand } = await import('./cli/config-check.js');
    finish(configCheckCommand(cfg));
  });

program
  .command('status')
  .description(
    'summary of the index: studies, series, instances, backlog, last study per calling AE ' +
      '(reads the index database; the gateway need not run)',
  )
  .option('--json', 'print JSON instead of a table')
  .option(
    '--study <uid>',
    'is this study complete against its source? (lists what is missing)',
    parseUid,
  )
  .option(
    '--source <ae>',
    'with --study: the callable peer to compare with (default: the only one)',
  )
  .addHelpText('after', EXIT_CODES_HELP)
  .action(async (opts: { json?: boolean; study?: string; source?: string }, cmd: Command) => {
    const cfg = configOf(cmd);
    if (opts.study !== undefined) {
      const { studyStatusCommand } = await import('./cli/study-status.js');
      finish(await studyStatusCommand(cfg, { ...opts, study: opts.study }, toolLogger(cfg)));
      return;
    }
    const { statusCommand } = await import('./cli/status.js');
    finish(await statusCommand(cfg, opts, toolLogger(cfg)));
  });

program
  .command('verify')
  .description(
    're-read indexed objects from the store and compare size and sha256 with the index; ' +
      'prints one line per missing or differing object, then a summary',
  )
  .option('--study <uid>', 'only this study (Study Instance UID)', parseUid)
  .option(
    '--from <YYYYMMDD>',
    'only studies with a Study Date on or after this day',
    parseDicomDate,
  )
  .option('--to <YYYYMMDD>', 'only studies with a Study Date on or before this day', parseDicomDate)
  .addOption(
    new Option('--concurrency <n>', 'objects read at once (1-64)')
      .argParser(parseConcurrency)
      .default(4),
  )
  .option('--json', 'print the summary and the problems as one JSON document')
  .addHelpText('after', EXIT_CODES_HELP)
  .action(
    async (
      opts: { study?: string; from?: string; to?: string; concurrency: number; json?: boolean },
      cmd: Command,
    ) => {
      const cfg = configOf(cmd);
      const io = { out: process.stdout, err: process.stderr, tty: process.stderr.isTTY === true };
      const { verifyCommand } = await import('./cli/verify.js');
      finish(await verifyCommand(cfg, opts, toolLogger(cfg), io));
    },
  );

program
  .command('notify')
  .description('notify destinations tools')
  .command('retry')
  .description(
    're-queue dead notify deliveries (attempts reset); the running gateway delivers them ' +
      'within notify.pollSeconds',
  )
  .option('--destination <name>', 'only this destination (default: all)')
  .addHelpText('after', EXIT_CODES_HELP)
  .action(async (opts: { destination?: string }, cmd: Command) => {
    const cfg = configOf(cmd);
    const { notifyRetryCommand } = await import('./cli/notify-retry.js');
    finish(await notifyRetryCommand(cfg, opts, toolLogger(cfg)));
  });

program
  .command('route')
  .description('routing rules tools')
  .command('test')
  .description('show which routing rule each file matches, why, and what would happen')
  .argument('<file...>', 'DICOM Part-10 files')
  .option('--calling-ae <ae>', "calling AE title (default: the file's Source AE Title)")
  .option('--called-ae <ae>', 'called AE title (default: dicom.aeTitle)')
  .option('--address <ip>', "the sender's IP address (default: none)")
  .option('--rules <file>', "YAML or JSON rules file (default: the configuration's routing)")
  .option('--json', 'print one JSON object per file')
  .addHelpText('after', EXIT_CODES_HELP)
  .action(async (files: string[], opts: RouteTestOptions, cmd: Command) => {
    const cfg = configOf(cmd);
    const { routeTestCommand } = await import('./cli/route-test.js');
    finish(await routeTestCommand(cfg, files, opts, { out: process.stdout, err: process.stderr }));
  });

program
  .command('backfill')
  .description(
    'make the index complete against a callable peer (dicom.peers with host and port): ' +
      'C-FIND what it holds, C-MOVE what is missing to the running serve; resumable',
  )
  .requiredOption('--source <ae>', 'the peer to backfill from (its AE title)')
  .option('--from <YYYY-MM-DD>', 'first Study Date', parseIsoDate)
  .option('--to <YYYY-MM-DD>', 'last Study Date', parseIsoDate)
  .option('--days <n>', 'the last n days, today included', parsePositiveInt(36_500))
  .option('--modality <code>', 'only studies with this modality', parseModality)
  .option('--study <uid>', 'only this study', parseUid)
  .option('--dry-run', 'report what is missing; move nothing, record nothing')
  .option('--deep', 'compare instance UIDs even when the study-level counts agree')
  .option('--json', 'print the report as JSON')
  .addOption(
    new Option('--max-results <n>', 'split a date window at this many studies')
      .argParser(parsePositiveInt(1_000_000))
      .default(1000),
  )
  .addOption(
    new Option('--timeout <s>', 'seconds for connections and each C-FIND')
      .argParser(parsePositiveInt(3600))
      .default(30),
  )
  .addHelpText('after', EXIT_CODES_HELP)
  .action(async (opts: BackfillCliOptions, cmd: Command) => {
    const cfg = configOf(cmd);
    const { backfillCommand } = await import('./cli/backfill.js');
    // First Ctrl-C: cancel the moves in flight and record the run as interrupted; second: exit.
    const ac = new AbortController();
    process.once('SIGINT', () => {
      ac.abort();
      process.once('SIGINT', () => process.exit(130));
    });
    process.once('SIGTERM', () => ac.abort());
    const io = { out: process.stdout, err: process.stderr, tty: process.stderr.isTTY === true };
    // Should a wait ever be left without anything to wake it, Node exits on an empty event
    // loop: with 1, not with a 0 that would say every study is complete.
    finish(ExitCode.Runtime);
    finish(await backfillCommand(cfg, opts, toolLogger(cfg), { ...io, signal: ac.signal }));
  });

program.parseAsync(process.argv).catch((err: unknown) => {
  if (err instanceof CommanderError) {
    // commander printed the message (or the help) already; --help and --version are exit 0.
    process.exit(err.exitCode === 0 ? ExitCode.Ok : ExitCode.Config);
  }
  if (isGatewayError(err)) {
    // An expected failure, in its own words (they name the cause): no stack trace.
    process.stderr.write(`dicom-gateway: ${err.message}\n`);
    process.exit(err.code === 'GW_ERR_CONFIG' ? ExitCode.Config : ExitCode.Runtime);
  }
  process.stderr.write(
    `dicom-gateway: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
  );
  process.exit(ExitCode.Runtime);
});
