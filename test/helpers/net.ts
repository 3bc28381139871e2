// Small TCP helpers for tests: pick a free port and wait until a child process listens on it.
import { readFile, readdir, readlink } from 'node:fs/promises';
import { connect, createServer } from 'node:net';
import { setTimeout as delay } from 'node:timers/promises';

/**
 * A port that was free a moment ago. Another process can still take it before the caller
 * binds it, so callers that spawn a server should retry on a bind failure.
 */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  const srv = createServer();
  await new Promise<void>((resolve, reject) => {
    srv.once('error', reject);
    srv.listen({ port: 0, host, exclusive: true }, resolve);
  });
  const addr = srv.address();
  await new Promise<void>((resolve) => srv.close(() => resolve()));
  if (addr === null || typeof addr === 'string') throw new Error('freePort: no TCP address');
  return addr.port;
}

/**
 * A TCP port on `host` that refuses connections and that no test is given by a port-0 bind: one
 * below the kernel's ephemeral range, where every such bind lands, checked to refuse now. A port
 * from freePort() is no such port: its number goes back to the ephemeral pool, and another
 * process (an SCP of a test file running in parallel) can listen on it seconds later.
 */
export async function closedPort(host = '127.0.0.1'): Promise<number> {
  const range = await readFile('/proc/sys/net/ipv4/ip_local_port_range', 'latin1').catch(() => '');
  const low = Number(range.trim().split(/\s+/)[0]) || 32768;
  // A random start: test files running side by side do not all probe the same ports.
  for (let port = low - 1 - Math.floor(Math.random() * 1000); port > 1024; port--) {
    if ((await connectTo(host, port)) === 'ECONNREFUSED') return port;
  }
  throw new Error(`closedPort: no port below ${low} refuses connections`);
}

/** Inodes of sockets in LISTEN state on `port` (Linux /proc; undefined elsewhere). */
async function listeningInodes(port: number): Promise<Set<string> | undefined> {
  const inodes = new Set<string>();
  let readAny = false;
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text: string;
    try {
      text = await readFile(file, 'latin1');
    } catch {
      continue;
    }
    readAny = true;
    for (const line of text.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      // f[1] = local address "HEXIP:HEXPORT", f[3] = state (0A = LISTEN), f[9] = inode
      if (f.length > 9 && f[3] === '0A' && parseInt(f[1]!.split(':')[1]!, 16) === port) {
        inodes.add(f[9]!);
      }
    }
  }
  return readAny ? inodes : undefined;
}

async function pidOwnsSocket(pid: number, inodes: Set<string>): Promise<boolean> {
  let fds: string[];
  try {
    fds = await readdir(`/proc/${pid}/fd`);
  } catch {
    return false;
  }
  for (const fd of fds) {
    const target = await readlink(`/proc/${pid}/fd/${fd}`).catch(() => '');
    const m = /^socket:\[(\d+)\]$/.exec(target);
    if (m && inodes.has(m[1]!)) return true;
  }
  return false;
}

/** What a TCP connect to host:port ends with: 'connected', or the error's code. */
function connectTo(host: string, port: number): Promise<string> {
  return new Promise((resolve) => {
    const s = connect({ host, port });
    s.once('connect', () => {
      s.destroy();
      resolve('connected');
    });
    s.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
  });
}

export interface WaitForListenOptions {
  port: number;
  /** When given (Linux), the listening socket must belong to this process: not just anyone's. */
  pid?: number;
  host?: string;
  timeoutMs?: number;
  /** Stop early when this returns a reason (e.g. the child exited). */
  abort?: () => string | undefined;
}

/**
 * Polls until the port is in LISTEN state, with a deadline. On Linux this reads /proc instead of
 * connecting, so the server does not log a broken association for every probe.
 */
export async function waitForListen(o: WaitForListenOptions): Promise<void> {
  const deadline = Date.now() + (o.timeoutMs ?? 10_000);
  for (let attempt = 0; ; attempt++) {
    const why = o.abort?.();
    if (why) throw new Error(`port ${o.port}: ${why}`);
    const inodes = await listeningInodes(o.port);
    const up =
      inodes === undefined
        ? (await connectTo(o.host ?? '127.0.0.1', o.port)) === 'connected'
        : inodes.size > 0 && (o.pid === undefined || (await pidOwnsSocket(o.pid, inodes)));
    if (up) return;
    if (Date.now() >= deadline) {
      throw new Error(`port ${o.port}: nothing listening after ${o.timeoutMs ?? 10_000} ms`);
    }
    // Back off from 10 ms to 100 ms between polls; the deadline above bounds the wait.
    await delay(Math.min(100, 10 * (attempt + 1)));
  }
}
