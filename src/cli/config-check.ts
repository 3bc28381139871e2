/**
 * `dicom-gateway config check`: the configuration is loaded and validated before this runs (an
 * invalid one exits 2 naming the key); this prints the result with secrets masked.
 */
import type { Config } from '../config.js';
import { maskConfig } from '../secrets.js';
import { ExitCode } from './exit-codes.js';

/** The configuration with secrets masked (src/secrets.ts). */
export function redactConfig(cfg: Config): unknown {
  return maskConfig(cfg);
}

export function configCheckCommand(
  cfg: Config,
  out: NodeJS.WritableStream = process.stdout,
): number {
  out.write(`configuration is valid\n${JSON.stringify(redactConfig(cfg), null, 2)}\n`);
  return ExitCode.Ok;
}
