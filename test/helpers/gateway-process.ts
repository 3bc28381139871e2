/**
 * The gateway as a child process (`dicom-gateway serve --config FILE`), for what an in-process
 * gateway cannot show: SIGKILL at any moment, SIGTERM handling, the real CLI.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

export interface GatewayProcess {
  child: ChildProcess;
  port: number;
  /** Everything the process wrote (JSON log lines and anything else). */
  output(): string;
  /** Parsed JSON log lines so far. */
  events(): Array<Record<string, unknown>>;
  /** Resolves with the exit code (or signal name) once the process has exited. */
  exited: Promise<number | string>;
}

/** Command line that runs src/main.ts with the TypeScript loader tap ships (no build step). */
export function cliArgs(args: string[]): {
  command: string;
  argv: string[];
  env: NodeJS.ProcessEnv;
} {
  return {
    command: process.execPath,
    argv: ['--import=@tapjs/typescript/import', join(ROOT, 'src', 'main.ts'), ...args],
    env: { ...process.env, TS_NODE_TRANSPILE_ONLY: '1', NODE_NO_WARNINGS: '1' },
  };
}

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Variables the configuration reads (src/config.ts applyEnv): none may leak in from outside. */
const CONFIG_ENV = /^(DICOM_|DATABASE_URL$|S3_|AWS_|ADMIN_|LOG_LEVEL$|LOG_FORMAT$)/;

/** Runs one CLI command to its end (killed after `timeoutMs`), without the caller's config env. */
export function runCli(args: string[], timeoutMs = 60_000): Promise<CliResult> {
  const { command, argv, env } = cliArgs(args);
  const clean = Object.fromEntries(Object.entries(env).filter(([k]) => !CONFIG_ENV.test(k)));
  return new Promise((resolve, reject) => {
    const child = spawn(command, argv, { env: clean, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (s: string) => (stdout += s));
    child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('error', reject);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** The JSON log lines of a text (pino output mixed with anything else), parsed. */
export function parseJsonLines(text: string): Array<Record<string, unknown>> {
  return text
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .flatMap((l) => {
      try {
        return [JSON.parse(l) as Record<string, unknown>];
      } catch {
        return [];
      }
    });
}

export async function startGatewayProcess(
  config: Record<string, unknown>,
  configPath: string,
  timeoutMs = 60_000,
): Promise<GatewayProcess> {
  await writeFile(configPath, JSON.stringify(config, null, 2));
  const { command, argv, env } = cliArgs(['--config', configPath, 'serve']);
  const child = spawn(command, argv, { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.setEncoding('utf8').on('data', (s: string) => (out += s));
  child.stderr!.setEncoding('utf8').on('data', (s: string) => (out += s));
  const exited = new Promise<number | string>((resolve) =>
    child.once('exit', (code, signal) => resolve(code ?? signal ?? -1)),
  );
  const events = (): Array<Record<string, unknown>> => parseJsonLines(out);
  const deadline = Date.now() + timeoutMs;
  let gone = false;
  void exited.then(() => (gone = true));
  for (;;) {
    const started = events().find((e) => e.event === 'gateway.started');
    if (started) {
      return { child, port: Number(started.port), output: () => out, events, exited };
    }
    if (gone) throw new Error(`gateway exited before starting:\n${out.slice(-3000)}`);
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`gateway did not start within ${timeoutMs} ms:\n${out.slice(-3000)}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}
