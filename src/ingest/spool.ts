import {
  copyFile,
  mkdir,
  open,
  readdir,
  realpath,
  rename,
  stat,
  unlink,
  type FileHandle,
} from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { GatewayError } from '../errors.js';
import { SharedFlush } from '../shared-flush.js';
import { fsyncPath } from '../store/fs-durable.js';
import { logRemoved, removePartialFiles } from '../store/partial-files.js';
import { readTrailer, type SpoolRecord } from './spool-record.js';

export interface SpoolStats {
  files: number;
  bytes: number;
  /** Age in seconds of the oldest file waiting, 0 when empty. */
  oldestAgeSeconds: number;
}

/**
 * The local spool: Part-10 files that are indexed as 'pending-upload' and wait for the
 * uploader. `ready/<SOPInstanceUID>.dcm` holds the files. Each carries its spool record after
 * its Part-10 bytes (a trailer, see spool-record.ts): the index row as written at receipt, with
 * the Part-10 size and sha256. One is acknowledged only once it is fsynced there (record
 * included) and its index row is committed; that commit does not wait for the database's
 * flush, and the record restores a row a database crash took back (Uploader.recover). So an
 * acknowledged instance is always either in the bucket or here, described well enough to
 * index it again. A file in ready/ with neither a row nor a whole record was never acknowledged
 * (a receipt cut short, or a crash before the answer) and is dropped at start. The uploader
 * cuts the record off (once the row is flushed) before the file goes to the store.
 *
 * Most instances are received in place: when no other association is receiving the UID and
 * its file is not already here, the writer creates `ready/<uid>.dcm` itself (the C-STORE
 * request names the UID) and fsyncs the directory while the data set is still arriving, so
 * the answer waits for the file's own fsync only, not for a rename and a directory fsync
 * after it. Otherwise the file is received in `incoming/` (cleared at start) and renamed into
 * place (`admit`) once no in-place receipt of that UID is under way.
 */
export class Spool {
  readonly incomingDir: string;
  readonly readyDir: string;
  /** Identifies this spool in the index (host + real path), see instances.pending_owner. */
  owner = '';
  private readonly entries = new Map<string, { size: number; since: number }>();
  /** UIDs being received: how many writers, and the in-place claim if one has it. */
  private readonly receiving = new Map<
    string,
    { writers: number; claimEnded?: Promise<void>; endClaim: () => void }
  >();
  private bytes = 0;
  /** ready/, open from open() to close(): its fsync is then one call, not open + fsync + close. */
  private readyHandle: FileHandle | undefined;
  /** fsyncs of ready/ shared by associations admitting files at the same time. */
  private readonly readySyncs = new SharedFlush(() =>
    this.readyHandle ? this.readyHandle.sync() : fsyncPath(this.readyDir),
  );

  constructor(
    readonly dir: string,
    readonly maxBytes: number,
    private readonly log: Logger,
  ) {
    this.incomingDir = join(dir, 'incoming');
    this.readyDir = join(dir, 'ready');
  }

  /**
   * Creates the directories, drops what a crash left in incoming/ (and any `*.part` in ready/),
   * and counts ready/. Complete files in ready/ stay: the uploader's recovery decides on them.
   */
  async open(): Promise<string[]> {
    await mkdir(this.incomingDir, { recursive: true });
    await mkdir(this.readyDir, { recursive: true });
    this.owner = `${hostname()}:${await realpath(this.dir)}`;
    this.readyHandle ??= await open(this.readyDir, 'r');
    const incoming = await removePartialFiles(this.incomingDir);
    const parts = await removePartialFiles(this.readyDir, (name) => name.endsWith('.part'));
    logRemoved(this.log, 'spool.incoming_cleared', this.dir, {
      files: incoming.files + parts.files,
      bytes: incoming.bytes + parts.bytes,
    });
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

  /** Closes what open() opened (after the uploader stopped). */
  async close(): Promise<void> {
    const h = this.readyHandle;
    this.readyHandle = undefined;
    await h?.close();
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

  /**
   * A writer begins receiving this UID. It receives in place (the claimed `ready/<uid>.dcm` is
   * returned) when no other writer is receiving the UID, its file is not already here, and it
   * is a plain UID (PS3.5 9.1: digits and dots, at most 64), else in incoming/ (undefined).
   * Every call is paired with `endReceiving`.
   */
  beginReceiving(sopInstanceUid: string): string | undefined {
    const r = this.receiving.get(sopInstanceUid);
    if (r) {
      r.writers++;
      return undefined;
    }
    const inPlace = UID.test(sopInstanceUid) && !this.entries.has(sopInstanceUid);
    let end = (): void => undefined;
    const claimEnded = inPlace ? new Promise<void>((resolve) => (end = resolve)) : undefined;
    this.receiving.set(sopInstanceUid, { writers: 1, claimEnded, endClaim: end });
    return inPlace ? this.pathFor(sopInstanceUid) : undefined;
  }

  /** The writer is done; `inPlace`: it was the one given the claim. */
  endReceiving(sopInstanceUid: string, inPlace: boolean): void {
    const r = this.receiving.get(sopInstanceUid);
    if (!r) return;
    if (inPlace) r.endClaim();
    if (--r.writers === 0) this.receiving.delete(sopInstanceUid);
  }

  /**
   * Resolves once no writer receives this UID in place (undefined: none does now). A writer
   * in incoming/ waits for it before its commit (and so before taking the UID's commit lock,
   * which the claim holder needs to end its claim): renaming over a file still being received
   * would put a partial file under an acknowledged name. No new claim starts while it waits
   * (beginReceiving). The wait is bounded by the writer (SameUidWait).
   */
  claimEnded(sopInstanceUid: string): Promise<void> | undefined {
    return this.receiving.get(sopInstanceUid)?.claimEnded;
  }

  /**
   * fsync of ready/, shared by everyone who asks while one runs. A writer receiving in place
   * calls it once its file exists, so the new name is durable before the answer.
   */
  syncReadyDir(): Promise<void> {
    return this.readySyncs.sync();
  }

  pathFor(sopInstanceUid: string): string {
    return join(this.readyDir, `${sopInstanceUid}.dcm`);
  }

  /** The spool record in the trailer of the UID's file; undefined when it has none (whole). */
  readRecord(sopInstanceUid: string): Promise<SpoolRecord | undefined> {
    return readTrailer(this.pathFor(sopInstanceUid), sopInstanceUid);
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
   * durable once the directory is; concurrent admits share that fsync). A file received in
   * place (`path` is its claimed ready/ path) only needs `dirSynced`, the directory fsync the
   * writer started when it created the file. Throws GW_ERR_SPOOL_FULL.
   */
  async admit(
    path: string,
    sopInstanceUid: string,
    size: number,
    synced = false,
    dirSynced?: Promise<void>,
  ): Promise<void> {
    this.checkRoom(size);
    const target = this.pathFor(sopInstanceUid);
    if (!synced) await fsyncPath(path);
    if (path === target) {
      await (dirSynced ?? this.syncReadyDir());
    } else {
      await renameOrCopy(path, target);
      await this.syncReadyDir();
    }
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
 * A file received elsewhere (another store's spool or staging directory, when routing chose
 * this store) may sit on another file system: then it is copied and fsynced, then removed.
 */
async function renameOrCopy(path: string, target: string): Promise<void> {
  try {
    await rename(path, target);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EXDEV') throw err;
    await copyFile(path, target);
    await fsyncPath(target);
    await unlink(path);
  }
}

/** PS3.5 9.1: a UID is digits and dots, at most 64 characters; safe as a file name. */
const UID = /^[0-9.]{1,64}$/;

/**
 * The spool's backlog read from its directory alone (the `status` command, the admin /status):
 * no Spool instance, nothing changed. A missing directory is an empty spool. Files being
 * received in place count too.
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
