// Typed wrappers around the DCMTK command-line tools used as real DICOM peers in tests.
//
// Every process gets TCP_NODELAY=1: Debian's DCMTK leaves Nagle's algorithm on otherwise and
// each C-STORE then waits for a delayed ACK (~40 ms on loopback, ~37x slower overall). Every
// run has a deadline after which the process is killed, and output is captured, not inherited.
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { stat } from 'node:fs/promises';
import { freePort, waitForListen } from './net.js';

export interface RunResult {
  /** Exit code; null when killed (timeout or signal). */
  code: number | null;
  signal: NodeJS.Signals | null;
  timedOut: boolean;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  timeoutMs?: number;
  env?: NodeJS.ProcessEnv;
}

export const DCMTK_ENV = { TCP_NODELAY: '1' } as const;

/** Spawn a DCMTK tool with TCP_NODELAY=1, capture stdout/stderr, kill it at the deadline. */
export function runDcmtk(tool: string, args: string[], o: RunOptions = {}): Promise<RunResult> {
  const timeoutMs = o.timeoutMs ?? 60_000;
  return new Promise((resolve, reject) => {
    const child = spawn(tool, args, {
      env: { ...process.env, ...o.env, ...DCMTK_ENV },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    child.stdout.setEncoding('utf8').on('data', (s: string) => (stdout += s));
    child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.once('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      const hint =
        err.code === 'ENOENT' ? ' (install dcmtk: bash scripts/ensure-system-deps.sh)' : '';
      reject(new Error(`${tool}: ${err.message}${hint}`));
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, timedOut, stdout, stderr });
    });
  });
}

export interface Peer {
  host: string;
  port: number;
  callingAet: string;
  calledAet: string;
}

export interface EchoOptions extends Peer {
  extraArgs?: string[];
  timeoutMs?: number;
}

/** C-ECHO; code 0 means the association and the echo succeeded. */
export function echoscu(o: EchoOptions): Promise<RunResult> {
  const args = ['-aet', o.callingAet, '-aec', o.calledAet, ...(o.extraArgs ?? [])];
  return runDcmtk('echoscu', [...args, o.host, String(o.port)], {
    timeoutMs: o.timeoutMs ?? 30_000,
  });
}

export interface StoreOptions extends Peer {
  /** Files and/or directories; any directory switches on +sd +r (scan, recursive). */
  files: string[];
  /** E.g. ['-xd'] keep deflate on the wire, ['-R', '-xv'], ['-nh'], ['+tls', key, cert]. */
  extraArgs?: string[];
  timeoutMs?: number;
}

export interface StoreResponse {
  /** The file storescu was sending when the response arrived. */
  file: string;
  /** DIMSE status, e.g. 0x0000, 0xb000, 0xa700. */
  status: number;
  text: string;
}

export interface StoreResult extends RunResult {
  /** One C-STORE response status per file that got a response, in sending order. */
  statuses: number[];
  responses: StoreResponse[];
}

// storescu -v logs "Received Store Response (<DU_cstoreStatusString>)": the text loses the low
// byte of failure codes, so the wrapper runs -d, which logs "DIMSE Status : 0xa700: ...".
// The -v texts below are the fallback when extraArgs lower the log level again to -v.
const VERBOSE_STATUS: Record<string, number> = {
  Success: 0x0000,
  'Warning: CoercionOfDataElements': 0xb000,
  'Warning: ElementsDiscarded': 0xb006,
  'Warning: DataSetDoesNotMatchSOPClass': 0xb007,
  'Refused: OutOfResources': 0xa700,
  'Error: DataSetDoesNotMatchSOPClass': 0xa900,
  'Error: CannotUnderstand': 0xc000,
};

/** Parse storescu -d (exact) or -v (approximate for failures) output into per-file statuses. */
export function parseStoreResponses(log: string): StoreResponse[] {
  const out: StoreResponse[] = [];
  let file = '';
  for (const line of log.split('\n')) {
    const sending = /^I: Sending file: (.*)$/.exec(line);
    if (sending) {
      file = sending[1]!;
      continue;
    }
    const dbg = /^D: DIMSE Status\s+: 0x([0-9a-fA-F]{4})(?:: (.*))?$/.exec(line);
    if (dbg) {
      out.push({ file, status: parseInt(dbg[1]!, 16), text: dbg[2] ?? '' });
      continue;
    }
    const verbose = /^I: Received Store Response \((.*)\)$/.exec(line);
    if (verbose) {
      const text = verbose[1]!;
      const unknown = /^Unknown Status: 0x([0-9a-fA-F]+)$/.exec(text);
      const status = unknown ? parseInt(unknown[1]!, 16) : VERBOSE_STATUS[text];
      if (status !== undefined) out.push({ file, status, text });
    }
  }
  return out;
}

async function isDirectory(p: string): Promise<boolean> {
  return (await stat(p)).isDirectory();
}

/** C-STORE the files (directories recursively) in one association. */
export async function storescu(o: StoreOptions): Promise<StoreResult> {
  const anyDir = (await Promise.all(o.files.map(isDirectory))).some(Boolean);
  const args = [
    '-d',
    '-aet',
    o.callingAet,
    '-aec',
    o.calledAet,
    ...(anyDir ? ['+sd', '+r'] : []),
    ...(o.extraArgs ?? []),
    o.host,
    String(o.port),
    ...o.files,
  ];
  const r = await runDcmtk('storescu', args, { timeoutMs: o.timeoutMs ?? 120_000 });
  const responses = parseStoreResponses(`${r.stderr}\n${r.stdout}`);
  return { ...r, responses, statuses: responses.map((x) => x.status) };
}

export interface StorescpOptions {
  /** 0 or absent: pick a free port. */
  port?: number;
  aet: string;
  outDir: string;
  /** Default ['+xa'] (accept every transfer syntax, incl. deflate); e.g. ['+xa', '+B', '--fork']. */
  extraArgs?: string[];
  startTimeoutMs?: number;
}

export interface Storescp {
  port: number;
  pid: number;
  /** Output so far (storescp logs to stderr; add -v to extraArgs for per-store lines). */
  output(): string;
  /** SIGTERM, then SIGKILL after timeoutMs; resolves when the process has exited. */
  stop(timeoutMs?: number): Promise<void>;
}

function exited(child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null;
}

/** Start DCMTK storescp as a reference receiver and wait until it listens. */
export async function startStorescp(o: StorescpOptions): Promise<Storescp> {
  // A port from freePort() can be taken by someone else before storescp binds it: retry.
  for (let attempt = 1; ; attempt++) {
    const port = o.port || (await freePort());
    const args = ['-aet', o.aet, '-od', o.outDir, ...(o.extraArgs ?? ['+xa']), String(port)];
    const child = spawn('storescp', args, {
      env: { ...process.env, ...DCMTK_ENV },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let log = '';
    let spawnError: Error | undefined;
    child.stdout!.setEncoding('utf8').on('data', (s: string) => (log += s));
    child.stderr!.setEncoding('utf8').on('data', (s: string) => (log += s));
    child.once('error', (err) => (spawnError = err));
    const closed = new Promise<void>((resolve) => child.once('close', () => resolve()));
    const stop = async (timeoutMs = 5_000): Promise<void> => {
      if (exited(child)) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
      await closed;
      clearTimeout(timer);
    };
    try {
      await waitForListen({
        port,
        pid: child.pid,
        timeoutMs: o.startTimeoutMs ?? 10_000,
        abort: () =>
          spawnError
            ? `storescp: ${spawnError.message}`
            : exited(child)
              ? `storescp exited (${child.exitCode ?? child.signalCode}): ${log.trim()}`
              : undefined,
      });
    } catch (err) {
      await stop();
      if (attempt < 3 && !o.port && !spawnError) continue;
      throw err;
    }
    return { port, pid: child.pid!, output: () => log, stop };
  }
}

/** dcmdump's text for a file (extraArgs e.g. ['+P', '0010,0010']); throws with stderr on failure. */
export async function dcmdump(file: string, extraArgs: string[] = []): Promise<string> {
  const r = await runDcmtk('dcmdump', [...extraArgs, file], { timeoutMs: 30_000 });
  if (r.code !== 0) {
    throw new Error(
      `dcmdump ${file} failed (${r.timedOut ? 'timeout' : r.code}): ${r.stderr.trim()}`,
    );
  }
  return r.stdout;
}
