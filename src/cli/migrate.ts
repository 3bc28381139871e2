/** `dicom-gateway migrate`: apply the index migrations and exit (a deploy step before `serve`). */
import type { Logger } from 'pino';
import type { Config } from '../config.js';
import { openIndex } from '../gateway.js';
import { ExitCode } from './exit-codes.js';

export async function migrateCommand(cfg: Config, log: Logger): Promise<number> {
  const { index, stop } = await openIndex(cfg, log);
  try {
    await index.migrate();
    log.info({ event: 'index.migrated' }, 'migrations applied');
    return ExitCode.Ok;
  } finally {
    await index.close();
    await stop();
  }
}
