/** `dicom-gateway migrate`: apply the index migrations and exit (a deploy step before `serve`). */
import type { Logger } from 'pino';
import type { Config } from '../config.js';
import { connectIndex } from '../index/open.js';
import { ExitCode } from './exit-codes.js';

export async function migrateCommand(cfg: Config, log: Logger): Promise<number> {
  const { index, close } = await connectIndex(cfg, log);
  try {
    await index.migrate();
    log.info({ event: 'index.migrated' }, 'migrations applied');
    return ExitCode.Ok;
  } finally {
    await close();
  }
}
