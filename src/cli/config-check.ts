/**
 * `dicom-gateway config check`: the configuration is loaded and validated before this runs (an
 * invalid one exits 2 naming the key); this prints the result with secrets masked.
 */
import type { Config } from '../config.js';
import { ExitCode } from './exit-codes.js';

const SECRET_KEYS = new Set(['secretAccessKey', 'token']);

export function redactConfig(cfg: Config): unknown {
  return JSON.parse(
    JSON.stringify(cfg, (key: string, value: unknown) => {
      if (typeof value !== 'string') return value;
      if (SECRET_KEYS.has(key)) return '***';
      if (key === 'url') return value.replace(/\/\/([^:/@]+):[^@]*@/, '//$1:***@');
      return value;
    }),
  );
}

export function configCheckCommand(
  cfg: Config,
  out: NodeJS.WritableStream = process.stdout,
): number {
  out.write(`configuration is valid\n${JSON.stringify(redactConfig(cfg), null, 2)}\n`);
  return ExitCode.Ok;
}
