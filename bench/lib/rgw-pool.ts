// Ceph RGW for the bench (test/helpers/rgw.ts: single node, memstore OSD on loopback). The OSD
// keeps object data in RAM (~2x the bytes), so the pool starts a fresh cluster once the current one
// holds more than `capBytes`. Every run gets a bucket of its own. With `wan`, the endpoint handed
// out is a delay proxy in front of RGW (delay-proxy.ts, in a child process).
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { S3Target } from '../../test/helpers/gateway.js';
import { createBucket, startRgw, type Rgw } from '../../test/helpers/rgw.js';
import { waitFor } from './util.js';

export type { S3Target } from '../../test/helpers/gateway.js';

interface Current {
  rgw: Rgw;
  used: number;
  proxy?: { port: number; child: ChildProcess };
}

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));

export class RgwPool {
  private cur: Current | undefined;
  private buckets = 0;
  restarts = 0;

  constructor(
    private readonly capBytes: number,
    private readonly delayMs: number,
  ) {}

  /** A fresh bucket on a cluster with room for `bytes` more; through the delay proxy when `wan`. */
  async bucket(bytes: number, wan: boolean): Promise<S3Target> {
    if (!this.cur || this.cur.used + bytes > this.capBytes) await this.restart();
    const cur = this.cur!;
    cur.used += bytes;
    const bucket = `bench-${++this.buckets}-${Date.now().toString(36)}`;
    await createBucket(cur.rgw, bucket);
    let endpoint = cur.rgw.endpoint;
    if (wan) {
      const proxy = (cur.proxy ??= await startProxyChild(cur.rgw.endpoint, this.delayMs));
      endpoint = `http://127.0.0.1:${proxy.port}`;
    }
    const { accessKeyId, secretAccessKey, region } = cur.rgw;
    return { endpoint, accessKeyId, secretAccessKey, region, bucket };
  }

  /** Forces a fresh cluster for the next bucket (e.g. before the 1 GB instance). */
  async restart(): Promise<void> {
    await this.stop();
    this.cur = { rgw: await startRgw(), used: 0 };
    this.restarts++;
  }

  async stop(): Promise<void> {
    const cur = this.cur;
    this.cur = undefined;
    if (!cur) return;
    if (cur.proxy) {
      const child = cur.proxy.child;
      const gone = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await gone;
    }
    await cur.rgw.stop();
  }
}

async function startProxyChild(
  endpoint: string,
  delayMs: number,
): Promise<NonNullable<Current['proxy']>> {
  const target = new URL(endpoint);
  const child = spawn(
    process.execPath,
    [
      '--import=@tapjs/typescript/import',
      join(ROOT, 'bench', 'lib', 'delay-proxy-cli.ts'),
      `${target.hostname}:${target.port}`,
      String(delayMs),
    ],
    {
      cwd: ROOT,
      env: { ...process.env, TS_NODE_TRANSPILE_ONLY: '1', NODE_NO_WARNINGS: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  process.once('exit', () => child.kill('SIGKILL'));
  let out = '';
  child.stdout!.setEncoding('utf8').on('data', (s: string) => (out += s));
  child.stderr!.setEncoding('utf8').on('data', (s: string) => (out += s));
  let port = 0;
  await waitFor(
    () => {
      if (child.exitCode !== null) throw new Error(`delay proxy exited: ${out}`);
      const m = /\{"port":(\d+)\}/.exec(out);
      if (m) port = Number(m[1]);
      return port > 0;
    },
    20_000,
    'the delay proxy to listen',
  );
  return { port, child };
}
