/**
 * `dicom-gateway serve` (the default command): run the gateway until SIGTERM/SIGINT, then
 * stop taking associations, let open ones finish, close the store and the index. SIGHUP
 * reloads the routing rules.
 */
import type { Logger } from 'pino';
import type { Config } from '../config.js';
import { startGateway } from '../gateway.js';
import { ExitCode } from './exit-codes.js';

export async function serveCommand(cfg: Config, log: Logger, configFile?: string): Promise<void> {
  const gw = await startGateway(cfg, log, { file: configFile });
  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) {
      // A second signal: leave now. Nothing unacknowledged is lost: senders resend.
      log.warn({ event: 'gateway.exit_now', signal }, 'second signal; exiting at once');
      process.exit(ExitCode.Runtime);
    }
    stopping = true;
    log.info(
      { event: 'gateway.stopping', signal },
      'stopping: no new associations, finishing open ones',
    );
    gw.close().then(
      () => {
        log.info({ event: 'gateway.stopped', ...gw.ingest.stats }, 'stopped');
        process.exit(ExitCode.Ok);
      },
      (err: unknown) => {
        log.error({ event: 'gateway.stop_failed', err: String(err) }, 'stop failed');
        process.exit(ExitCode.Runtime);
      },
    );
  };
  // SIGHUP: the routing rules are read again from the file (docs/routing.md).
  process.on('SIGHUP', () => {
    if (!stopping) gw.reloadRouting();
  });
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}
