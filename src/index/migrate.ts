/**
 * Applies the numbered SQL files in ./migrations (NNN_name.sql), each in its own transaction,
 * recorded in `schema_migrations`. Several gateway processes may start at once against one
 * database: a transaction-scoped advisory lock makes them take turns, and whoever comes second
 * finds the work done.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type pg from 'pg';
import type { Logger } from 'pino';

export interface Migration {
  version: number;
  name: string;
  sql: string;
  checksum: string;
}

export interface MigrateOptions {
  /** Defaults to the migrations directory beside this module (src/ or dist/). */
  dir?: string;
  logger?: Logger;
  /** Bounds both the wait for the lock and each migration; default 10 min (a migration may be slow). */
  timeoutMs?: number;
}

/** Arbitrary but fixed: 'dcmgwmig' as bytes. Every process must use the same key. */
const LOCK_KEY = '7233745717639866727';
const FILE_NAME = /^(\d{3})_([a-z0-9][a-z0-9_-]*)\.sql$/;

/**
 * Resolved from this module's URL, so it works from src/ (tests run the TypeScript directly) and
 * from dist/ (the build copies the .sql files: scripts/copy-migrations.mjs).
 */
export function defaultMigrationsDir(): string {
  return fileURLToPath(new URL('./migrations/', import.meta.url));
}

export async function loadMigrations(dir = defaultMigrationsDir()): Promise<Migration[]> {
  const migrations: Migration[] = [];
  for (const file of (await fs.readdir(dir)).sort()) {
    if (!file.endsWith('.sql')) continue;
    const m = FILE_NAME.exec(file);
    if (!m) throw new Error(`migration file name ${file} is not NNN_name.sql`);
    const sql = await fs.readFile(path.join(dir, file), 'utf8');
    const checksum = createHash('sha256').update(sql).digest('hex');
    migrations.push({ version: Number(m[1]), name: m[2] ?? '', sql, checksum });
  }
  for (let i = 1; i < migrations.length; i++) {
    if (migrations[i]?.version === migrations[i - 1]?.version) {
      throw new Error(`two migrations numbered ${migrations[i]?.version} in ${dir}`);
    }
  }
  if (migrations.length === 0) throw new Error(`no migrations in ${dir}`);
  return migrations;
}

/** Applies what is pending; returns the versions this call applied. */
export async function migrate(pool: pg.Pool, opts: MigrateOptions = {}): Promise<number[]> {
  const migrations = await loadMigrations(opts.dir);
  const log = opts.logger;
  const timeoutMs = opts.timeoutMs ?? 600_000;
  const applied: number[] = [];
  const client = await pool.connect();
  // A checked-out client has no error listener: without one, a dying connection crashes the process.
  let clientError: Error | undefined;
  const onError = (err: Error): void => {
    clientError = err;
  };
  client.on('error', onError);
  // The pool's client-side query_timeout suits index calls, not a long migration or lock wait.
  const q = <R extends pg.QueryResultRow>(text: string, values?: unknown[]) =>
    client.query<R>({ text, values, query_timeout: timeoutMs + 5_000 } as pg.QueryConfig);
  try {
    for (;;) {
      await q('BEGIN');
      try {
        await q(
          "SELECT set_config('lock_timeout', $1, true), set_config('statement_timeout', $1, true)",
          [`${timeoutMs}ms`],
        );
        await q('SELECT pg_advisory_xact_lock($1::bigint)', [LOCK_KEY]);
        await q(`CREATE TABLE IF NOT EXISTS schema_migrations (
          version integer PRIMARY KEY,
          name text NOT NULL,
          checksum text NOT NULL,
          applied_at timestamptz NOT NULL DEFAULT now())`);
        const { rows } = await q<{ version: number; checksum: string }>(
          'SELECT version, checksum FROM schema_migrations',
        );
        const done = new Map(rows.map((r) => [r.version, r.checksum]));
        if (applied.length === 0) warnAboutDrift(migrations, done, log);
        const next = migrations.find((m) => !done.has(m.version));
        if (!next) {
          await q('COMMIT');
          break;
        }
        await q(next.sql);
        await q('INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)', [
          next.version,
          next.name,
          next.checksum,
        ]);
        await q('COMMIT');
        applied.push(next.version);
        log?.info({ version: next.version, name: next.name }, 'applied migration');
      } catch (err) {
        clientError ??= await q('ROLLBACK').then(
          () => undefined,
          (e: Error) => e,
        );
        throw err;
      }
    }
  } finally {
    client.removeListener('error', onError);
    // A broken connection must not go back to the pool.
    client.release(clientError);
  }
  return applied;
}

/** An edited migration, or a database from a newer build: worth a warning, not a refusal to start. */
function warnAboutDrift(
  migrations: Migration[],
  done: Map<number, string>,
  log: Logger | undefined,
): void {
  for (const m of migrations) {
    const checksum = done.get(m.version);
    if (checksum !== undefined && checksum !== m.checksum) {
      log?.warn({ version: m.version, name: m.name }, 'applied migration differs from its file');
    }
  }
  const newest = migrations[migrations.length - 1]?.version ?? 0;
  const unknown = [...done.keys()].filter((v) => v > newest);
  if (unknown.length) log?.warn({ versions: unknown }, 'database has migrations this build lacks');
}
