/**
 * `dicom-gateway status`: the index summary and the last study per calling AE, read from the
 * index database with the configuration alone (no running gateway needed). Same fields as the
 * admin /status endpoint, without the live `gateway` part.
 */
import { resolve } from 'node:path';
import type { Logger } from 'pino';
import { buildStatusReport } from '../admin/status-report.js';
import type { Config } from '../config.js';
import { connectIndex } from '../index/open.js';
import { maskUrl } from '../secrets.js';
import { namedStores, spoolDirOf, type StoreConfig } from '../store/store-config.js';
import { ExitCode } from './exit-codes.js';
import { formatStatus } from './status-table.js';

/** Where objects go, from the configuration (no store is opened for a status). */
export function describeConfiguredStore(cfg: Config): string {
  const stores = namedStores(cfg);
  if (stores.size === 1) return describeStore(cfg.store);
  return [...stores].map(([name, s]) => `${name}: ${describeStore(s)}`).join('; ');
}

function describeStore(s: StoreConfig): string {
  if (s.type === 'fs') return resolve(s.root);
  const prefix = s.prefix ? `/${s.prefix}` : '';
  return `s3://${s.bucket}${prefix}${s.endpoint ? ` at ${maskUrl(s.endpoint)}` : ''}`;
}

export async function statusCommand(
  cfg: Config,
  opts: { json?: boolean },
  log: Logger,
  out: NodeJS.WritableStream = process.stdout,
): Promise<number> {
  const { index, close } = await connectIndex(cfg, log, { existingOnly: true });
  try {
    const report = await buildStatusReport({
      index,
      dicom: { aeTitle: cfg.dicom.aeTitle, host: cfg.dicom.host, port: cfg.dicom.port },
      store: describeConfiguredStore(cfg),
      spoolDir: spoolDirOf(cfg.store),
      reconcileSource: cfg.reconcile.enabled ? cfg.reconcile.source : undefined,
    });
    out.write(opts.json ? JSON.stringify(report, null, 2) + '\n' : formatStatus(report));
    return ExitCode.Ok;
  } finally {
    await close();
  }
}
