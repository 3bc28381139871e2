/**
 * A throw-away embedded PostgreSQL for tests: its own temp dir and port, deleted by stop().
 * stopServer()/start() stop and start the same server (same data, same port) to test outages.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { startEmbeddedPostgres } from '../../src/index/embedded-pg.js';

export interface TestPostgres {
  connectionString: string;
  port: number;
  dataDir: string;
  /** Stops the server, keeping its data. */
  stopServer(): Promise<void>;
  /** Starts it again after stopServer(). */
  start(): Promise<void>;
  restart(): Promise<void>;
  /** Stops the server and deletes its data; safe to call twice. */
  stop(): Promise<void>;
}

export async function startTestPostgres(opts: { logger?: Logger } = {}): Promise<TestPostgres> {
  const root = await mkdtemp(join(tmpdir(), 'dicom-gw-pg-'));
  try {
    const pg = await startEmbeddedPostgres({
      dataDir: join(root, 'pg'),
      port: 0,
      persistent: false,
      logger: opts.logger,
    });
    let removed = false;
    return {
      connectionString: pg.connectionString,
      port: pg.port,
      dataDir: pg.dataDir,
      stopServer: () => pg.stop(),
      start: () => pg.start(),
      restart: async () => {
        await pg.stop();
        await pg.start();
      },
      stop: async () => {
        if (removed) return;
        removed = true;
        try {
          await pg.stop();
        } finally {
          await rm(root, { recursive: true, force: true });
        }
      },
    };
  } catch (err) {
    await rm(root, { recursive: true, force: true });
    throw err;
  }
}
