/**
 * A user-space TCP proxy on loopback that adds a fixed one-way delay to every byte, in both
 * directions, preserving order: a simulation of WAN *latency* (round trip = 2 × delay) between the
 * gateway and its S3 endpoint, without touching the network stack (no `tc netem` on `lo`, which
 * would delay the DICOM traffic too). It does not simulate bandwidth, loss, or TCP's congestion
 * window over a long path: the proxy buffers whatever the sender writes.
 *
 * Connection set-up costs 1.5 round trips on a real path (SYN, SYN-ACK, then the first data
 * segment): bytes from a new client are not forwarded before 3 × delay after the accept.
 */
import net from 'node:net';
import { performance } from 'node:perf_hooks';

export interface DelayProxy {
  port: number;
  close(): Promise<void>;
}

/** Pause the reading side when this many bytes wait in one direction (bounded memory). */
const HIGH_WATER = 32 * 1024 * 1024;

export async function startDelayProxy(o: {
  targetHost: string;
  targetPort: number;
  delayMs: number;
  listenHost?: string;
}): Promise<DelayProxy> {
  const sockets = new Set<net.Socket>();
  // Half-open allowed: a FIN travels with the same delay as the bytes before it, and the other
  // direction keeps flowing until its own FIN.
  const server = net.createServer({ allowHalfOpen: true }, (client) => {
    const acceptedAt = performance.now();
    const upstream = net.connect({ host: o.targetHost, port: o.targetPort, allowHalfOpen: true });
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.setNoDelay(true);
      s.once('close', () => sockets.delete(s));
      // Either side failing ends both: the client sees a reset, as across a real network.
      s.once('error', () => {
        client.destroy();
        upstream.destroy();
      });
    }
    relay(client, upstream, o.delayMs, acceptedAt + 3 * o.delayMs);
    relay(upstream, client, o.delayMs, 0);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: o.listenHost ?? '127.0.0.1', port: 0 }, resolve);
  });
  const addr = server.address();
  if (addr === null || typeof addr === 'string') throw new Error('delay proxy: no TCP address');
  return {
    port: addr.port,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

interface Item {
  at: number;
  chunk?: Buffer;
  end?: boolean;
}

/** Forwards src to dst, each chunk `delayMs` after it arrived (and never before `notBefore`). */
function relay(src: net.Socket, dst: net.Socket, delayMs: number, notBefore: number): void {
  const queue: Item[] = [];
  let queuedBytes = 0;
  let timer: NodeJS.Timeout | undefined;
  let blocked = false; // dst's buffer is full: wait for 'drain'

  const schedule = (): void => {
    if (timer || blocked || queue.length === 0) return;
    const wait = Math.max(0, queue[0]!.at - performance.now());
    timer = setTimeout(flush, wait);
  };
  const flush = (): void => {
    timer = undefined;
    const now = performance.now();
    // Chunks due within the next half millisecond go now: timers are not finer than 1 ms.
    while (queue.length > 0 && queue[0]!.at <= now + 0.5) {
      const item = queue.shift()!;
      if (item.end) {
        dst.end();
        return;
      }
      queuedBytes -= item.chunk!.length;
      if (queuedBytes < HIGH_WATER / 2 && src.isPaused()) src.resume();
      if (!dst.write(item.chunk!)) {
        blocked = true;
        dst.once('drain', () => {
          blocked = false;
          schedule();
        });
        return;
      }
    }
    schedule();
  };
  src.on('data', (chunk: Buffer) => {
    queue.push({ at: Math.max(performance.now() + delayMs, notBefore), chunk });
    queuedBytes += chunk.length;
    if (queuedBytes > HIGH_WATER) src.pause();
    schedule();
  });
  src.on('end', () => {
    queue.push({ at: Math.max(performance.now() + delayMs, notBefore), end: true });
    schedule();
  });
  src.on('close', () => {
    if (queue.length === 0 && timer === undefined) dst.end();
  });
}
