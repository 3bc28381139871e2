/**
 * A throw-away Ceph RGW (real S3) for integration tests, started by rgw-up.sh in a fresh
 * temp dir: `const rgw = await startRgw(); t.teardown(() => rgw.stop());`. ~2-3 s to start;
 * the OSD keeps object data in RAM (~2x the bytes stored), so start one per test file.
 *
 * pause()/resume() freeze and thaw the radosgw process (SIGSTOP/SIGCONT); mon and OSD keep
 * running, so the data is unchanged. While frozen the kernel still accepts TCP connections
 * into the listen backlog and buffers request bytes, so clients see what a hung server or a
 * black-holed network looks like: no error, no answer, until their own timeouts fire. That
 * is the harder case to get right (connection refused fails fast by itself). Requests sent
 * while frozen are processed after resume(), even if the client has given up on them.
 */
import { execFile, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';

const UP = fileURLToPath(new URL('./rgw-up.sh', import.meta.url));
const DOWN = fileURLToPath(new URL('./rgw-down.sh', import.meta.url));
/** Whole start-up, script included; rgw-up.sh's own waits end at 90 s. */
const START_TIMEOUT_MS = 120_000;
const STOP_TIMEOUT_MS = 30_000;

export interface S3Endpoint {
  endpoint: string;
  accessKeyId: string;
  secretAccessKey: string;
  region: string;
}

export interface Rgw extends S3Endpoint {
  /** The temp dir holding the cluster's state and logs (log/client.rgw.gw.log). */
  dir: string;
  /** Kills the daemons and deletes dir. Safe to call twice. */
  stop(): Promise<void>;
  /** Freezes radosgw (SIGSTOP): requests hang until resume(). */
  pause(): Promise<void>;
  /** Thaws radosgw (SIGCONT) and waits until it answers HTTP again. */
  resume(): Promise<void>;
}

/** Dirs of servers not yet stopped: killed synchronously if the test process exits first. */
const live = new Set<string>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  const killAll = (): void => {
    for (const dir of live) {
      spawnSync('bash', [DOWN, dir], { stdio: 'ignore', timeout: STOP_TIMEOUT_MS });
      live.delete(dir);
    }
  };
  process.once('exit', killAll);
  // The daemons run in their own sessions: a signal to the test process does not reach
  // them. Clean up, then let the signal do what it would have done.
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(sig, () => {
      killAll();
      process.kill(process.pid, sig);
    });
  }
}

export async function startRgw(): Promise<Rgw> {
  const dir = await mkdtemp(join(tmpdir(), 'dicom-gw-rgw-'));
  installExitHook();
  live.add(dir);
  let out: string;
  try {
    out = await run(UP, [dir], START_TIMEOUT_MS);
  } catch (err) {
    await stopDir(dir).catch(() => undefined);
    throw err;
  }
  const env = Object.fromEntries(
    out
      .trim()
      .split('\n')
      .map((line) => {
        const i = line.indexOf('=');
        return [line.slice(0, i), line.slice(i + 1)];
      }),
  ) as Record<string, string | undefined>;
  const { S3_ENDPOINT, S3_ACCESS_KEY_ID, S3_SECRET_ACCESS_KEY, S3_REGION } = env;
  if (!S3_ENDPOINT || !S3_ACCESS_KEY_ID || !S3_SECRET_ACCESS_KEY || !S3_REGION) {
    await stopDir(dir).catch(() => undefined);
    throw new Error(`rgw-up.sh printed no endpoint:\n${out}`);
  }
  let stopped = false;
  return {
    endpoint: S3_ENDPOINT,
    accessKeyId: S3_ACCESS_KEY_ID,
    secretAccessKey: S3_SECRET_ACCESS_KEY,
    region: S3_REGION,
    dir,
    async stop() {
      if (stopped) return;
      stopped = true;
      await stopDir(dir);
    },
    async pause() {
      const pid = await rgwPid(dir);
      process.kill(pid, 'SIGSTOP');
      await waitFor(() => procState(pid) === 'T', 5_000, 'radosgw to stop');
    },
    async resume() {
      const pid = await rgwPid(dir);
      process.kill(pid, 'SIGCONT');
      await waitFor(() => answers(S3_ENDPOINT), 15_000, 'radosgw to answer after SIGCONT');
    },
  };
}

/** Creates a bucket (no error if it exists already). */
export async function createBucket(cfg: S3Endpoint, name: string): Promise<void> {
  const client = new S3Client({
    endpoint: cfg.endpoint,
    region: cfg.region,
    forcePathStyle: true,
    credentials: { accessKeyId: cfg.accessKeyId, secretAccessKey: cfg.secretAccessKey },
    requestHandler: {
      requestTimeout: 15_000,
      connectionTimeout: 5_000,
      throwOnRequestTimeout: true,
    },
  });
  try {
    await client.send(new CreateBucketCommand({ Bucket: name }));
  } catch (err) {
    if ((err as { name?: string }).name !== 'BucketAlreadyOwnedByYou') throw err;
  } finally {
    client.destroy();
  }
}

async function stopDir(dir: string): Promise<void> {
  try {
    await run(DOWN, [dir], STOP_TIMEOUT_MS);
  } finally {
    live.delete(dir);
    await rm(dir, { recursive: true, force: true });
  }
}

function run(script: string, args: string[], timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(
      'bash',
      [script, ...args],
      { timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024 },
      (err, stdout, stderr) => {
        if (err) {
          const tail = stderr.split('\n').slice(-40).join('\n');
          reject(new Error(`${script} ${args.join(' ')} failed: ${err.message}\n${tail}`));
        } else {
          resolve(stdout);
        }
      },
    );
  });
}

/** The radosgw pid, checked to still be our daemon (pid reuse) before it gets a signal. */
async function rgwPid(dir: string): Promise<number> {
  const pid = Number((await readFile(join(dir, 'run', 'rgw.pid'), 'utf8')).trim());
  const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
  if (!cmd.some((a) => a.endsWith('radosgw')) || !cmd.includes(join(dir, 'ceph.conf'))) {
    throw new Error(`pid ${pid} is not the radosgw of ${dir}`);
  }
  return pid;
}

/** The state letter from /proc/PID/stat ('T' = stopped), '' when the process is gone. */
function procState(pid: number): string {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
  } catch {
    return '';
  }
}

/** Any HTTP answer within 1 s counts: the server is serving again. */
function answers(endpoint: string): Promise<boolean> {
  return new Promise((resolve) => {
    const req = http.get(endpoint, { timeout: 1_000, agent: false }, (res) => {
      res.resume();
      resolve(true);
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(false));
  });
}

async function waitFor(
  check: () => boolean | Promise<boolean>,
  timeoutMs: number,
  what: string,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
