/**
 * A YdbIndex from the `index` configuration (type ydb): the driver's connection string, its
 * credentials (ydb-auth.ts), discovery, and the table directory.
 */
import { Driver } from '@ydbjs/core';
import type { Logger } from 'pino';
import type { InstanceIndex } from './instance-index.js';
import { chooseYdbAuth, credentialsProvider } from './ydb-auth.js';
import type { YdbIndexConfig } from './ydb-config.js';
import { YdbIndex } from './ydb-index.js';

/** grpc[s]://host:port/database: no secret in it (credentials travel apart). */
export function ydbConnectionString(cfg: Pick<YdbIndexConfig, 'endpoint' | 'database'>): string {
  return `${cfg.endpoint}${cfg.database}`;
}

export async function openYdbIndex(
  cfg: YdbIndexConfig,
  logger?: Logger,
  env: NodeJS.ProcessEnv = process.env,
): Promise<InstanceIndex> {
  const credentials = await credentialsProvider(chooseYdbAuth(cfg.auth, env));
  const cs = ydbConnectionString(cfg);
  return new YdbIndex({
    driver: () =>
      new Driver(cs, {
        credentialsProvider: credentials,
        'ydb.sdk.application': 'dicom-gateway',
        'ydb.sdk.enable_discovery': cfg.discovery,
        'ydb.sdk.ready_timeout_ms': cfg.timeoutSeconds * 1000,
        'ydb.sdk.discovery_timeout_ms': cfg.timeoutSeconds * 1000,
      }),
    directory: cfg.directory,
    timeoutMs: cfg.timeoutSeconds * 1000,
    logger,
  });
}
