/**
 * The index database for the read-only commands (`status`, `verify`), which need a connection
 * string, not a PgIndex. With `index.type: embedded` the gateway may be running on the data
 * directory already: PostgreSQL allows one postmaster per directory, so then its server is used
 * (port from postmaster.pid, password from the file beside the directory); otherwise the cluster
 * is started for the command and stopped after. A directory that holds no cluster is an error:
 * a status command must not create one.
 */
import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { Logger } from 'pino';
import type { Config } from '../config.js';
import { GatewayError } from '../errors.js';
import { exists, isAlive } from '../index/embedded-pg-host.js';
import { EMBEDDED_DATABASE } from '../index/embedded-pg.js';
import { openIndex } from '../gateway.js';

export interface IndexConnection {
  url: string;
  /** Where it came from, for messages. */
  source: 'postgres' | 'embedded-running' | 'embedded-started';
  close(): Promise<void>;
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

export async function connectIndex(cfg: Config, log: Logger): Promise<IndexConnection> {
  const ix = cfg.index;
  if (ix.type === 'postgres') {
    return { url: ix.url, source: 'postgres', close: async () => {} };
  }
  const dataDir = resolve(ix.dataDir);
  const initialised = await exists(join(dataDir, 'PG_VERSION'));
  if (!initialised) {
    throw new GatewayError(
      'GW_ERR_CONFIG',
      `no embedded index in ${dataDir} (index.dataDir): the gateway has not run with this configuration yet`,
    );
  }
  const running = parsePostmasterPid(
    await readFile(join(dataDir, 'postmaster.pid'), 'utf8').catch(() => ''),
  );
  if (running && isAlive(running.pid)) {
    const password = (await readFile(`${dataDir}.password`, 'utf8')).trim();
    // The superuser embedded-pg.ts creates; loopback only (listen_addresses=127.0.0.1).
    const url = `postgresql://postgres:${encodeURIComponent(password)}@127.0.0.1:${running.port}/${EMBEDDED_DATABASE}`;
    return { url, source: 'embedded-running', close: async () => {} };
  }
  const { index, url, stop } = await openIndex(cfg, log);
  return {
    url,
    source: 'embedded-started',
    close: async () => {
      await index.close();
      await stop();
    },
  };
}
