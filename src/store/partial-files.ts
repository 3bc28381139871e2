import { lstat, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';

export interface Removed {
  files: number;
  bytes: number;
}

/**
 * Removes what a stop (SIGKILL, power loss) left where files are only ever partial or
 * temporary: the fs store's staging directory, the spool's incoming/ (and `*.part` names in
 * ready/, `only`). Nothing there was acknowledged (an acknowledged file has its final name),
 * so it all goes, at start, before anything is received. See logRemoved.
 */
export async function removePartialFiles(
  dir: string,
  only: (name: string) => boolean = () => true,
): Promise<Removed> {
  let files = 0;
  let bytes = 0;
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { files, bytes };
    throw err;
  }
  for (const name of names) {
    if (!only(name)) continue;
    const path = join(dir, name);
    const st = await lstat(path).catch(() => undefined);
    if (!st) continue;
    await rm(path, { recursive: true, force: true });
    files++;
    bytes += st.isFile() ? st.size : 0;
  }
  return { files, bytes };
}

/** One structured event for a cleanup at start, when it removed anything. */
export function logRemoved(log: Logger, event: string, dir: string, r: Removed): void {
  if (r.files === 0) return;
  log.warn(
    { event, dir, files: r.files, bytes: r.bytes },
    `removed ${r.files} partial files (${r.bytes} bytes) left by a stop; they were never acknowledged`,
  );
}
