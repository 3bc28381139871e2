// One embedded PostgreSQL for the whole bench, as in production: persistent (fsync and full-page
// writes on). Every gateway run gets a database of its own (CREATE DATABASE), dropped after it.
import { join } from 'node:path';
import pg from 'pg';
import { startEmbeddedPostgres, type EmbeddedPostgres } from '../../src/index/embedded-pg.js';

export interface BenchPostgres {
  version: string;
  /** Creates an empty database and returns its connection string. */
  createDatabase(name: string): Promise<string>;
  dropDatabase(name: string): Promise<void>;
  stop(): Promise<void>;
}

export async function startBenchPostgres(root: string): Promise<BenchPostgres> {
  const server: EmbeddedPostgres = await startEmbeddedPostgres({
    dataDir: join(root, 'pg'),
    port: 0,
    persistent: true,
  });
  const admin = new pg.Client({ connectionString: server.connectionString });
  admin.on('error', () => undefined);
  await admin.connect();
  const { rows } = await admin.query<{ version: string }>('SELECT version()');
  const urlFor = (name: string): string => {
    const u = new URL(server.connectionString);
    u.pathname = `/${name}`;
    return u.toString();
  };
  return {
    version: rows[0]?.version ?? 'unknown',
    async createDatabase(name) {
      await admin.query(`DROP DATABASE IF EXISTS ${admin.escapeIdentifier(name)} WITH (FORCE)`);
      await admin.query(`CREATE DATABASE ${admin.escapeIdentifier(name)}`);
      return urlFor(name);
    },
    async dropDatabase(name) {
      await admin.query(`DROP DATABASE IF EXISTS ${admin.escapeIdentifier(name)} WITH (FORCE)`);
    },
    async stop() {
      await admin.end().catch(() => undefined);
      await server.stop();
    },
  };
}

/** A single connection to one database, for polling row counts. */
export async function connect(url: string): Promise<pg.Client> {
  const c = new pg.Client({ connectionString: url });
  c.on('error', () => undefined);
  await c.connect();
  return c;
}
