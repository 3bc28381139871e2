/**
 * Opening the index a configuration names: the only place outside src/index/ code needs. With
 * `index.type: embedded` it knows the embedded server's files: PostgreSQL allows one postmaster
 * per data directory, so a command run beside a running gateway (status, verify) uses that
 * gateway's server (port from postmaster.pid, password from the file beside the directory)
 * rather than starting a second one.
 */
import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { Logger } from 'pino';
import type { Config } from '../config.js';
import { GatewayError } from '../errors.js';
import { exists, isAlive } from './embedded-pg-host.js';
import { EmbeddedPgSupervisor, type SupervisorHealth } from './embedded-pg-supervisor.js';
import { EMBEDDED_DATABASE, startEmbeddedPostgres } from './embedded-pg.js';
import type { InstanceIndex } from './instance-index.js';
import { PgIndex, type PgIndexOptions } from './pg-index.js';
import { openYdbIndex, ydbConnectionString } from './ydb-open.js';

export type { PgIndexOptions } from './pg-index.js';

export interface OpenedIndex {
  index: InstanceIndex;
  /** Its connection string (the embedded server's too): secret-bearing, redact before printing. */
  url: string;
  /** Where it came from, for messages. */
  source: 'postgres' | 'embedded-started' | 'embedded-running' | 'ydb';
  /** Closes the index, then stops the embedded server if this call started it. */
  close(): Promise<void>;
  /** The supervisor restarting the embedded server this call started (see its health()). */
  supervisor?: { health(): SupervisorHealth };
}

export interface ConnectOptions {
  /**
   * For the read-only commands: never create an embedded cluster (a directory without one is
   * GW_ERR_CONFIG), and use the server of a gateway already running on it. Without it (serve,
   * migrate) the embedded server is started, and its cluster created on first use.
   */
  existingOnly?: boolean;
}

/** The InstanceIndex on PostgreSQL at `opts.connectionString`. */
export function pgIndex(opts: PgIndexOptions): InstanceIndex {
  return new PgIndex(opts);
}

export async function connectIndex(
  cfg: Config,
  log: Logger,
  opts: ConnectOptions = {},
): Promise<OpenedIndex> {
  const ix = cfg.index;
  const logger = log.child({ component: 'index' });
  if (ix.type === 'postgres') {
    const index = pgIndex({ connectionString: ix.url, poolSize: ix.poolSize, logger });
    return { index, url: ix.url, source: 'postgres', close: () => index.close() };
  }
  if (ix.type === 'ydb') {
    const index = await openYdbIndex(ix, logger);
    return { index, url: ydbConnectionString(ix), source: 'ydb', close: () => index.close() };
  }
  const dataDir = resolve(ix.dataDir);
  if (opts.existingOnly) {
    if (!(await exists(join(dataDir, 'PG_VERSION')))) {
      throw new GatewayError(
        'GW_ERR_CONFIG',
        `no embedded index in ${dataDir} (index.dataDir): the gateway has not run with this configuration yet`,
      );
    }
    const url = await runningEmbeddedUrl(dataDir);
    if (url) {
      const index = pgIndex({ connectionString: url, poolSize: 2, logger });
      return { index, url, source: 'embedded-running', close: () => index.close() };
    }
  }
  const server = await startEmbeddedPostgres({
    dataDir,
    port: ix.port,
    persistent: true,
    logger: log,
  });
  // Restarts the server when it exits on its own (kill -9, OOM killer); stop() ends both.
  const supervisor = new EmbeddedPgSupervisor(
    server,
    { maxAttempts: ix.restart.maxAttempts, maxDelayMs: ix.restart.maxDelaySeconds * 1000 },
    log.child({ component: 'embedded-pg' }),
  );
  const index = pgIndex({ connectionString: server.connectionString, logger });
  return {
    index,
    url: server.connectionString,
    source: 'embedded-started',
    supervisor,
    close: async () => {
      try {
        await index.close();
      } finally {
        await supervisor.stop();
      }
    },
  };
}

/** The connection string of a server running on `dataDir`, or undefined when none runs. */
async function runningEmbeddedUrl(dataDir: string): Promise<string | undefined> {
  const running = parsePostmasterPid(
    await readFile(join(dataDir, 'postmaster.pid'), 'utf8').catch(() => ''),
  );
  if (!running || !isAlive(running.pid)) return undefined;
  const password = (await readFile(`${dataDir}.password`, 'utf8')).trim();
  // The superuser embedded-pg.ts creates; loopback only (listen_addresses=127.0.0.1).
  return `postgresql://postgres:${encodeURIComponent(password)}@127.0.0.1:${running.port}/${EMBEDDED_DATABASE}`;
}

/**
 * postmaster.pid, as PostgreSQL writes it (src/include/utils/pidfile.h): line 1 the pid,
 * line 4 the port. undefined when the text is not such a file.
 */
export function parsePostmasterPid(text: string): { pid: number; port: number } | undefined {
  const lines = text.split('\n');
  const pid = Number(lines[0]?.trim());
  const port = Number(lines[3]?.trim());
  if (!Number.isInteger(pid) || pid <= 0 || !Number.isInteger(port) || port <= 0 || port > 65535) {
    return undefined;
  }
  return { pid, port };
}
