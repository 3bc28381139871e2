/**
 * `dicom-gateway notify retry [--destination NAME]`: dead deliveries become due now, with
 * their attempts reset; a running gateway delivers them at its next claim (the index's
 * NOTIFY does not fire for this, so within notify.pollSeconds). Reads the index database alone.
 */
import type { Logger } from 'pino';
import type { Config } from '../config.js';
import { connectIndex } from '../index/open.js';
import { ExitCode } from './exit-codes.js';

export async function notifyRetryCommand(
  cfg: Config,
  opts: { destination?: string },
  log: Logger,
  out: NodeJS.WritableStream = process.stdout,
): Promise<number> {
  const { index, close } = await connectIndex(cfg, log, { existingOnly: true });
  try {
    const n = await index.requeueDead(opts.destination);
    const where = opts.destination ? ` for ${opts.destination}` : '';
    out.write(`${n} dead deliveries${where} re-queued\n`);
    log.info(
      { event: 'notify.requeued', destination: opts.destination, count: n },
      'dead deliveries re-queued',
    );
    return ExitCode.Ok;
  } finally {
    await close();
  }
}
