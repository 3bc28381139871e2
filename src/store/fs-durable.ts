/**
 * Crash-safe file-system steps for FsStore: every name it publishes points at data that
 * is already on disk, and the name itself is on disk before the next step relies on it.
 */
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { link, mkdir, open, rename, unlink } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { GatewayError, isGatewayError } from '../errors.js';
import { SharedFlush } from '../shared-flush.js';

/**
 * Writes a small file under its final name all at once: `tmp` is written and fsynced, then
 * renamed over `target` ('replace') or linked to it ('create', which fails on an existing
 * file: returns false then); then the directory is fsynced, so the name is on disk before
 * whatever the caller does next (FsStore: link the data after its sidecar).
 */
export async function writeFileAtomic(
  tmp: string,
  target: string,
  data: string,
  mode: 'replace' | 'create',
  syncDir: (dir: string) => Promise<void> = fsyncPath,
): Promise<boolean> {
  try {
    await writeSynced(tmp, data);
    if (mode === 'replace') {
      await rename(tmp, target);
    } else {
      try {
        await link(tmp, target);
      } catch (err) {
        if (errno(err) === 'EEXIST') return false;
        throw err;
      }
    }
    await syncDir(path.dirname(target));
    return true;
  } finally {
    await unlink(tmp).catch(() => undefined);
  }
}

/** mkdir -p, then fsync the parent of every directory it created so they survive a crash. */
export async function mkdirDurable(dir: string): Promise<void> {
  const first = await mkdir(dir, { recursive: true });
  if (first === undefined) return;
  const created: string[] = [];
  for (let d = dir; d.length >= first.length; d = path.dirname(d)) created.push(d);
  for (const d of created.reverse()) await fsyncPath(path.dirname(d));
}

/** Writes a body to a new file, with the size and digests putFile wants. */
export async function writeHashed(
  body: Readable | Buffer,
  p: string,
): Promise<{ size: number; sha256: string; md5: string }> {
  const sha = createHash('sha256');
  const md5 = createHash('md5');
  let size = 0;
  await pipeline(
    Buffer.isBuffer(body) ? Readable.from([body]) : body,
    async function* (chunks: AsyncIterable<Buffer>) {
      for await (const c of chunks) {
        sha.update(c);
        md5.update(c);
        size += c.length;
        yield c;
      }
    },
    createWriteStream(p, { flags: 'wx' }),
  );
  return { size, sha256: sha.digest('hex'), md5: md5.digest('base64') };
}

/** Creates `p` (must not exist) with `data`, on disk when this resolves. */
export async function writeSynced(p: string, data: string): Promise<void> {
  const fh = await open(p, 'wx');
  try {
    await fh.writeFile(data);
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** fsync of a file or a directory (opened read-only: Linux allows fsync on that). */
export async function fsyncPath(p: string): Promise<void> {
  const fh = await open(p, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/**
 * Directory fsyncs shared by concurrent callers (a SharedFlush per directory): a caller waits
 * for an fsync of its directory that began after it asked, which covers every rename or link
 * it made before asking. Four associations renaming into one directory at once pay for one or
 * two fsyncs instead of four.
 */
export class DirectorySyncs {
  private readonly dirs = new Map<string, SharedFlush>();

  constructor(private readonly fsync: (dir: string) => Promise<void> = fsyncPath) {}

  sync(dir: string): Promise<void> {
    let d = this.dirs.get(dir);
    if (!d) this.dirs.set(dir, (d = new SharedFlush(() => this.fsync(dir))));
    const flush = d;
    return flush.sync().finally(() => {
      if (!flush.busy && this.dirs.get(dir) === flush) this.dirs.delete(dir);
    });
  }
}

export function errno(err: unknown): string | undefined {
  return typeof err === 'object' && err !== null && 'code' in err
    ? String((err as { code: unknown }).code)
    : undefined;
}

/** File-system failures as gateway errors; GatewayErrors pass through unchanged. */
export function fsError(what: string, err: unknown): GatewayError {
  if (isGatewayError(err)) return err;
  const code = errno(err);
  // a key that is a directory here, or under a file: the layout itself conflicts
  if (code === 'EISDIR' || code === 'ENOTDIR' || code === 'EEXIST') {
    return new GatewayError('GW_ERR_STORE_CONFLICT', `${what}: ${code}`, { cause: err });
  }
  // ENOSPC, EIO, EROFS, EACCES, EMFILE...: the store cannot take data now
  return new GatewayError('GW_ERR_STORE_UNAVAILABLE', `${what}: ${code ?? String(err)}`, {
    cause: err,
  });
}

export async function fsCall<T>(what: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw fsError(what, err);
  }
}
