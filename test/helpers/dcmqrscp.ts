/**
 * DCMTK dcmqrscp as a small Q/R source (C-STORE into it, C-FIND, C-MOVE out of it) for tests.
 * It returns no NumberOfStudyRelatedInstances and pads values with spaces: the sources a backfill
 * must cope with. Default fork mode (its -s single-process mode crashes after one association);
 * it runs in its own process group, so stop() ends the forked children too.
 */
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DCMTK_ENV } from './dcmtk.js';
import { freePort, waitForListen } from './net.js';

export interface Dcmqrscp {
  port: number;
  aeTitle: string;
  output(): string;
  /** SIGKILL to it and every association it forked: the source dies mid-operation. */
  kill(): void;
  stop(): Promise<void>;
}

export interface DcmqrscpOptions {
  aeTitle: string;
  /** Move destinations: name -> [AE title, host, port] (dcmqrscp refuses any other). */
  hosts: Record<string, [string, string, number]>;
  /** Its MaxAssociations (concurrent associations it serves). */
  maxAssociations?: number;
  /** Studies its storage area keeps (dcmqrscp deletes the oldest beyond it); default 200. */
  maxStudies?: number;
  /** More dcmqrscp options (e.g. ['-d'] to see why it refuses something in output()). */
  extraArgs?: string[];
}

export async function startDcmqrscp(o: DcmqrscpOptions): Promise<Dcmqrscp> {
  const dir = await mkdtemp(join(tmpdir(), 'dcmqrscp-'));
  const store = join(dir, o.aeTitle);
  await mkdir(store);
  const port = await freePort();
  const hosts = Object.entries(o.hosts).map(([n, [ae, h, p]]) => `${n} = (${ae}, ${h}, ${p})`);
  const cfg = [
    `NetworkTCPPort = ${port}`,
    'MaxPDUSize = 16384',
    `MaxAssociations = ${o.maxAssociations ?? 16}`,
    'HostTable BEGIN',
    ...hosts,
    'HostTable END',
    'VendorTable BEGIN',
    'VendorTable END',
    'AETable BEGIN',
    `${o.aeTitle} ${store} RW (${o.maxStudies ?? 200}, 1024mb) ANY`,
    'AETable END',
  ].join('\n');
  const cfgPath = join(dir, 'dcmqrscp.cfg');
  await writeFile(cfgPath, cfg + '\n');
  const child = spawn('dcmqrscp', ['-c', cfgPath, ...(o.extraArgs ?? [])], {
    env: { ...process.env, ...DCMTK_ENV },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  let log = '';
  child.stdout.setEncoding('utf8').on('data', (s: string) => (log += s));
  child.stderr.setEncoding('utf8').on('data', (s: string) => (log += s));
  const closed = new Promise<void>((resolve) => child.once('close', () => resolve()));
  let stopped = false;
  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    try {
      process.kill(-child.pid!, 'SIGTERM');
      const timer = setTimeout(() => process.kill(-child.pid!, 'SIGKILL'), 5_000);
      await closed;
      clearTimeout(timer);
    } catch {
      // already gone
    }
    await rm(dir, { recursive: true, force: true });
  };
  try {
    await waitForListen({
      port,
      pid: child.pid,
      abort: () => (child.exitCode !== null ? `dcmqrscp exited: ${log}` : undefined),
    });
  } catch (err) {
    await stop();
    throw err;
  }
  const kill = (): void => {
    try {
      process.kill(-child.pid!, 'SIGKILL');
    } catch {
      // already gone
    }
  };
  return { port, aeTitle: o.aeTitle, output: () => log, kill, stop };
}
