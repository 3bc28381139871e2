import { randomUUID } from 'node:crypto';
import { mkdir, readdir, realpath, rename, rm, stat, unlink } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { GatewayError } from '../errors.js';
import { DirectorySyncs, fsyncPath } from '../store/fs-durable.js';

/**
 * The local spool: Part-10 files that are indexed as 'pending-upload' and wait for the
 * uploader. `incoming/` holds files still being received (never acknowledged: cleared at
 * start); `ready/<SOPInstanceUID>.dcm` holds files that are fsynced and renamed into place
 * before their index row commits, so an acknowledged instance is always either in the
 * bucket or here.
 */
export interface SpoolStats {
  files: number;
  bytes: number;
  /** Age in seconds of the oldest file waiting, 0 when empty. */
  oldestAgeSeconds: number;
}

export class Spool {
  readonly incomingDir: string;
  readonly readyDir: string;
  /** Identifies this spool in the index (host + real path), see instances.pending_owner. */
  owner = '';
  private readonly entries = new Map<string, { size: number; since: number }>();
  private bytes = 0;
  /** fsyncs of ready/ shared by associations admitting files at the same time. */
  private readonly dirSyncs = new DirectorySyncs();

  constructor(
    readonly dir: string,
    readonly maxBytes: number,
    private readonly log: Logger,
  ) {
    this.incomingDir = join(dir, 'incoming');
    this.readyDir = join(dir, 'ready');
  }

  /** Creates the directories, drops what a crash left in incoming/, and counts ready/. */
  async open(): Promise<string[]> {
    await mkdir(this.incomingDir, { recursive: true });
    await mkdir(this.readyDir, { recursive: true });
    this.owner = `${hostname()}:${await realpath(this.dir)}`;
    const leftovers = await readdir(this.incomingDir);
    for (const name of leftovers) await rm(join(this.incomingDir, name), { force: true });
    if (leftovers.length > 0) {
      this.log.warn(
        { event: 'spool.incoming_cleared', files: leftovers.length },
        'removed partly received files left by a stop (they were never acknowledged)',
      );
    }
    const uids: string[] = [];
    for (const name of await readdir(this.readyDir)) {
      if (!name.endsWith('.dcm')) continue;
      const uid = name.slice(0, -4);
      const st = await stat(join(this.readyDir, name));
      this.entries.set(uid, { size: st.size, since: st.mtimeMs });
      this.bytes += st.size;
      uids.push(uid);
    }
    return uids;
  }

  /** Bytes waiting in ready/ (cheap: the uploader asks on every scheduling decision). */
  get backlogBytes(): number {
    return this.bytes;
  }

  stats(): SpoolStats {
    let oldest = Infinity;
    for (const e of this.entries.values()) oldest = Math.min(oldest, e.since);
    return {
      files: this.entries.size,
      bytes: this.bytes,
      oldestAgeSeconds: this.entries.size ? Math.max(0, (Date.now() - oldest) / 1000) : 0,
    };
  }

  /** A fresh path in incoming/ for a file being received. */
  incomingPath(): string {
    return join(this.incomingDir, `${randomUUID()}.part`);
  }

  pathFor(sopInstanceUid: string): string {
    return join(this.readyDir, `${sopInstanceUid}.dcm`);
  }

  has(sopInstanceUid: string): boolean {
    return this.entries.has(sopInstanceUid);
  }

  /** Refuses early (before a byte is stored) when the spool is already full. */
  checkRoom(size = 0): void {
    if (this.bytes + size > this.maxBytes) {
      throw new GatewayError(
        'GW_ERR_SPOOL_FULL',
        `spool full: ${this.bytes} of ${this.maxBytes} bytes used, ${this.entries.size} files waiting for upload`,
      );
    }
  }

  /**
   * Makes a received file durable in ready/: fsync the file (unless `synced`: the writer did
   * it on its own descriptor), rename it into place, fsync the directory (the rename is only
   * durable once the directory is; concurrent admits share that fsync). Throws
   * GW_ERR_SPOOL_FULL.
   */
  async admit(path: string, sopInstanceUid: string, size: number, synced = false): Promise<void> {
    this.checkRoom(size);
    const target = this.pathFor(sopInstanceUid);
    if (!synced) await fsyncPath(path);
    await rename(path, target);
    await this.dirSyncs.sync(this.readyDir);
    const previous = this.entries.get(sopInstanceUid);
    if (previous) this.bytes -= previous.size;
    this.entries.set(sopInstanceUid, { size, since: Date.now() });
    this.bytes += size;
  }

  /** The file reached the bucket (or was never acknowledged): drop it. */
  async remove(sopInstanceUid: string): Promise<void> {
    await unlink(this.pathFor(sopInstanceUid)).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'ENOENT') throw err;
    });
    const e = this.entries.get(sopInstanceUid);
    if (e) {
      this.bytes -= e.size;
      this.entries.delete(sopInstanceUid);
    }
  }
}

/**
 * The spool's backlog read from its directory alone (the `status` command, the admin /status):
 * no Spool instance, nothing changed. A missing directory is an empty spool.
 */
export async function readSpoolStats(dir: string): Promise<SpoolStats> {
  const ready = join(dir, 'ready');
  let names: string[];
  try {
    names = await readdir(ready);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT')
      return { files: 0, bytes: 0, oldestAgeSeconds: 0 };
    throw err;
  }
  let files = 0;
  let bytes = 0;
  let oldest = Infinity;
  for (const name of names) {
    if (!name.endsWith('.dcm')) continue;
    const st = await stat(join(ready, name)).catch(() => undefined);
    if (!st) continue; // uploaded meanwhile
    files++;
    bytes += st.size;
    oldest = Math.min(oldest, st.mtimeMs);
  }
  return { files, bytes, oldestAgeSeconds: files ? Math.max(0, (Date.now() - oldest) / 1000) : 0 };
}
