/**
 * A throw-away Orthanc (Debian's /usr/sbin/Orthanc) for integration tests:
 *   const o = await startOrthanc({ config, env, auth }); t.teardown(() => o.stop());
 *
 * `config` is a whole Orthanc configuration (usually one of orthanc/*.json, loaded with
 * loadOrthancConfig so the shipped file is what runs); the helper only sets the ports and
 * the storage and index directories (`storageDir`, default a temp dir). Orthanc has no bind-address
 * option: it listens on every interface, on ports picked free a moment before; a start that
 * loses the race for a port is retried on new ports. Ready once GET /system answers 200
 * with `auth`. stop() sends SIGTERM, SIGKILL after a deadline, and deletes the temp dir.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { freePort } from './net.js';

export const ORTHANC_BIN = '/usr/sbin/Orthanc';
/** The repository's orthanc/ directory (configurations, plugin, Lua filter). */
export const ORTHANC_DIR = fileURLToPath(new URL('../../orthanc/', import.meta.url));

const START_TIMEOUT_MS = 30_000;
const STOP_TIMEOUT_MS = 10_000;
const START_ATTEMPTS = 3;

export type OrthancConfig = Record<string, unknown>;

export interface Credentials {
  user: string;
  password: string;
}

export interface OrthancOptions {
  config: OrthancConfig;
  /** Added to the test process's environment (Orthanc substitutes ${VAR} in its config). */
  env?: Record<string, string>;
  /** Used for the readiness check and by request(). */
  auth?: Credentials;
  /** StorageDirectory and IndexDirectory; give two Orthancs the same to share the files. */
  storageDir?: string;
}

export interface OrthancServer {
  url: string;
  httpPort: number;
  /** Its DICOM port (C-STORE, C-FIND, C-MOVE SCP). */
  dicomPort: number;
  dir: string;
  /** fetch() on `url + path` with the server's credentials unless init sets Authorization. */
  request(path: string, init?: RequestInit): Promise<Response>;
  /** Orthanc's log so far (stdout and stderr). */
  log(): Promise<string>;
  /** Stops Orthanc and deletes dir. Safe to call twice. */
  stop(): Promise<void>;
}

/**
 * A file of orthanc/ as an object, with every path under /etc/orthanc/ that names a file
 * shipped in orthanc/ or orthanc/plugin/ (e.g. the PythonScript) pointed at the repository's copy.
 */
export function loadOrthancConfig(name: string): OrthancConfig {
  const text = readFileSync(join(ORTHANC_DIR, name), 'utf8');
  return JSON.parse(text, (_key, value: unknown) => {
    if (typeof value !== 'string' || !value.startsWith('/etc/orthanc/')) return value;
    const base = value.slice('/etc/orthanc/'.length);
    const found = [join(ORTHANC_DIR, base), join(ORTHANC_DIR, 'plugin', base)].find((p) =>
      existsSync(p),
    );
    return found ?? value;
  }) as OrthancConfig;
}

export function basicAuth(c: Credentials): string {
  return `Basic ${Buffer.from(`${c.user}:${c.password}`).toString('base64')}`;
}

/** Orthancs not yet stopped: killed if the test process exits first. */
const live = new Set<ChildProcess>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => {
    for (const child of live) child.kill('SIGKILL');
  });
}

export async function startOrthanc(o: OrthancOptions): Promise<OrthancServer> {
  const dir = await mkdtemp(join(tmpdir(), 'dicom-gw-orthanc-'));
  installExitHook();
  try {
    for (let attempt = 1; ; attempt++) {
      try {
        return await startOnce(o, dir, attempt);
      } catch (err) {
        // Another process took a port between freePort() and Orthanc's bind: try new ports.
        const lost = err instanceof PortLost;
        if (!lost || attempt >= START_ATTEMPTS) throw err;
      }
    }
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
}

class PortLost extends Error {}

async function startOnce(o: OrthancOptions, dir: string, attempt: number): Promise<OrthancServer> {
  const httpPort = await freePort();
  const dicomPort = await freePort();
  const storage = o.storageDir ?? join(dir, 'storage');
  const config: OrthancConfig = {
    ...o.config,
    StorageDirectory: storage,
    IndexDirectory: storage,
    HttpPort: httpPort,
    DicomPort: dicomPort,
  };
  const configFile = join(dir, `orthanc-${attempt}.json`);
  const logFile = join(dir, `orthanc-${attempt}.log`);
  await writeFile(configFile, JSON.stringify(config, null, 2));
  const fd = openSync(logFile, 'w');
  const child = spawn(ORTHANC_BIN, [configFile], {
    // TCP_NODELAY: DCMTK inside Orthanc waits for delayed ACKs without it.
    // PYTHONDONTWRITEBYTECODE: no __pycache__ beside the plugin in the repository.
    env: { ...process.env, TCP_NODELAY: '1', PYTHONDONTWRITEBYTECODE: '1', ...o.env },
    stdio: ['ignore', fd, fd],
  });
  closeSync(fd);
  live.add(child);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let exitCode: number | null | undefined;
  child.once('exit', (code, signal) => {
    live.delete(child);
    exitCode = code ?? (signal ? -1 : null);
  });

  const url = `http://127.0.0.1:${httpPort}`;
  const headers = (init?: RequestInit): Headers => {
    const h = new Headers(init?.headers);
    if (o.auth && !h.has('authorization')) h.set('authorization', basicAuth(o.auth));
    return h;
  };
  let stopped = false;
  const server: OrthancServer = {
    url,
    httpPort,
    dicomPort,
    dir,
    request: (path, init) =>
      fetch(url + path, { ...init, headers: headers(init), signal: AbortSignal.timeout(30_000) }),
    log: () => readFile(logFile, 'utf8'),
    async stop() {
      if (stopped) return;
      stopped = true;
      try {
        if (exitCode === undefined) {
          child.kill('SIGTERM');
          const killed = await Promise.race([
            exited.then(() => false),
            delay(STOP_TIMEOUT_MS).then(() => true),
          ]);
          if (killed) {
            child.kill('SIGKILL');
            await exited;
          }
        }
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    },
  };

  const deadline = Date.now() + START_TIMEOUT_MS;
  for (;;) {
    if (exitCode !== undefined) {
      const log = await server.log().catch(() => '');
      const tail = log.split('\n').slice(-30).join('\n');
      // "The TCP port of the HTTP (DICOM) server is privileged or already in use"
      if (/already in use/i.test(log)) throw new PortLost(tail);
      throw new Error(`Orthanc exited with code ${exitCode} before answering:\n${tail}`);
    }
    if ((await statusOf(`${url}/system`, headers())) === 200) return server;
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      await exited;
      const tail = (await server.log().catch(() => '')).split('\n').slice(-30).join('\n');
      throw new Error(
        `Orthanc did not answer GET /system with 200 within ${START_TIMEOUT_MS} ms:\n${tail}`,
      );
    }
    await delay(100);
  }
}

/** The HTTP status of a GET, 0 when nothing answers within 2 s. */
async function statusOf(url: string, headers: Headers): Promise<number> {
  try {
    const res = await fetch(url, { headers, signal: AbortSignal.timeout(2_000) });
    await res.body?.cancel();
    return res.status;
  } catch {
    return 0;
  }
}
