/**
 * FsStore: objects as plain files under a root directory, the embedded default.
 *
 * Layout: `<root>/<key>` holds the Part-10 bytes unchanged; `<root>/<key>.meta.json` holds
 * size, sha256, md5 and user metadata (a sidecar, because xattrs are not kept by every file
 * system, backup tool or `cp`, and a sidecar can be read with any tool). `<root>/.staging`
 * is where ingest stages incoming files, and `<root>/.spool` the default spool of `ack:
 * spooled`: on the same file system, so publishing an object is a link or rename, never a
 * copy.
 *
 * Durability: data and sidecar are fsynced before they get their final names, and the
 * directories are fsynced after, so a published object survives a crash. The sidecar is
 * named first, and put resolves only after a directory fsync that covers both names: an
 * object put has returned for never exists without its metadata. A crash before that fsync
 * may leave either name without the other; an orphan sidecar is ignored by list, and a file
 * without sidecar has no sha256, so the next create-only put of that key replaces both.
 *
 * One process per root: same-key puts are serialized inside this process, and ifAbsent
 * publishes with link() (never replaces), but two processes racing on one key within
 * microseconds could still leave the loser's sidecar next to the winner's data.
 */
import { randomUUID } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import type { Stats } from 'node:fs';
import { copyFile, link, lstat, open, readdir, rename, unlink } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import type { Logger } from 'pino';
import { GatewayError } from '../errors.js';
import {
  DirectorySyncs,
  errno,
  fsCall,
  fsError,
  fsyncPath,
  mkdirDurable,
  writeFileAtomic,
  writeHashed,
  writeSynced,
} from './fs-durable.js';
import { assertValidKey, assertValidListPrefix, normalizeMetadata } from './keys.js';
import { infoOf, META_SUFFIX, readSidecar, statSource, type Sidecar } from './fs-sidecar.js';
import { logRemoved, removePartialFiles } from './partial-files.js';
import type { ObjectInfo, ObjectStore, PutFileOptions, PutResult } from './object-store.js';
import { FS_SPOOL } from './store-config.js';

/** Directory under root where files are staged; never a key. */
export const STAGING = '.staging';
/** Top-level names under root that belong to the store itself (staging, spool), not to keys. */
const RESERVED = new Set([STAGING, FS_SPOOL]);
/** Suffix of the metadata file next to each object; no key may end with it. */
export { META_SUFFIX } from './fs-sidecar.js';

export interface FsStoreOptions {
  root: string;
}

export class FsStore implements ObjectStore {
  readonly kind = 'fs';
  readonly root: string;
  private stagingReady = false;
  private rootDev: number | undefined;
  /** Tail of the chain of operations per key: same-key puts run one after the other. */
  private readonly keyLocks = new Map<string, Promise<unknown>>();
  /** Directory fsyncs shared by concurrent puts into one series directory. */
  private readonly dirSyncs = new DirectorySyncs();

  constructor(opts: FsStoreOptions) {
    this.root = path.resolve(opts.root);
  }

  describe(): string {
    return this.root;
  }

  /**
   * Directory in which ingest receives files for this store: on the same file system as the
   * objects, so `putFile` is a link, not a copy.
   */
  stagingDir(): string {
    const dir = path.join(this.root, STAGING);
    if (!this.stagingReady) {
      mkdirSync(dir, { recursive: true });
      this.stagingReady = true;
    }
    return dir;
  }

  /**
   * At start, before anything is received: removes what a stop left in the staging directory
   * (files cut short mid-receive, temporary copies and sidecars). Nothing there was ever
   * acknowledged: a stored object has its final name under the root.
   */
  async clearStaging(log: Logger): Promise<void> {
    const dir = path.join(this.root, STAGING);
    logRemoved(log, 'store.staging_cleared', dir, await removePartialFiles(dir));
  }

  async putFile(key: string, src: string, opts: PutFileOptions): Promise<PutResult> {
    const finalPath = this.objectPath(key);
    const sidecar: Sidecar = {
      v: 1,
      size: opts.size,
      sha256: opts.sha256,
      md5: opts.md5,
      // sha256 last: the caller's metadata cannot override the digest
      metadata: { ...normalizeMetadata(opts.metadata), sha256: opts.sha256 },
    };
    return this.withKeyLock(key, () =>
      fsCall(`put ${key}`, async () => {
        const st = await statSource(src);
        if (st.size !== opts.size) {
          throw new GatewayError(
            'GW_ERR_STORE_INTEGRITY',
            `${src} has ${st.size} bytes, expected ${opts.size}`,
          );
        }
        if (opts.ifAbsent) {
          const existing = await this.head(key);
          if (existing) return { created: false, info: existing };
        }
        // A source on another file system cannot be linked or renamed: copy it into staging.
        this.rootDev ??= (await lstat(this.stagingDir())).dev;
        const staged = st.dev === this.rootDev ? src : this.stagingPath('copy');
        try {
          if (staged !== src) await copyFile(src, staged);
          // The data's fsync (the caller's, or ours) runs while the sidecar is written and
          // fsynced; publish() waits for it before the data gets its name.
          const dataSynced = opts.synced && staged === src ? opts.synced : fsyncPath(staged);
          dataSynced.catch(() => undefined); // awaited in publish(), unless it returns early
          const existing = await this.publish(
            key,
            finalPath,
            staged,
            sidecar,
            opts.ifAbsent,
            dataSynced,
          );
          if (existing) return { created: false, info: existing };
        } finally {
          if (staged !== src) await unlink(staged).catch(() => undefined);
        }
        return { created: true, info: infoOf(key, sidecar, st.mtime) };
      }),
    );
  }

  async put(
    key: string,
    body: Readable | Buffer,
    opts: { metadata?: Record<string, string>; contentType?: string },
  ): Promise<ObjectInfo> {
    this.objectPath(key); // refuse a bad key before reading the body
    const metadata = { ...opts.metadata };
    if (opts.contentType) metadata['content-type'] = opts.contentType;
    const tmp = this.stagingPath('put');
    try {
      const digests = await fsCall(`put ${key}`, () => writeHashed(body, tmp));
      const r = await this.putFile(key, tmp, { ...digests, metadata, ifAbsent: false });
      return r.info;
    } finally {
      await unlink(tmp).catch(() => undefined);
    }
  }

  /**
   * Gives a staged, fsynced file its final name, sidecar first. ifAbsent: link, so an
   * existing object is never replaced; returns that object's info when there is one.
   */
  private async publish(
    key: string,
    finalPath: string,
    staged: string,
    sidecar: Sidecar,
    ifAbsent: boolean,
    dataSynced: Promise<void>,
  ): Promise<ObjectInfo | undefined> {
    const dir = path.dirname(finalPath);
    await mkdirDurable(dir);
    if (!ifAbsent) {
      await this.writeAtomic(finalPath + META_SUFFIX, JSON.stringify(sidecar), 'replace');
      await dataSynced;
      await rename(staged, finalPath);
      await this.dirSyncs.sync(dir);
      return undefined;
    }
    // A sidecar there already belongs to an object another process has just stored (keep
    // both), or is an orphan from a crash or a put still under way elsewhere (replaced).
    // Its name is made durable by the one directory fsync after the data's link below: a
    // second fsync of the same directory per instance would buy nothing (see the header).
    const placed = await this.writeAtomic(
      finalPath + META_SUFFIX,
      JSON.stringify(sidecar),
      'create',
      false,
    );
    if (!placed) {
      const existing = await this.head(key);
      if (existing) return existing;
      await this.writeAtomic(finalPath + META_SUFFIX, JSON.stringify(sidecar), 'replace');
    }
    try {
      await dataSynced;
      await link(staged, finalPath);
    } catch (err) {
      if (errno(err) !== 'EEXIST') throw err;
      // Another process won between the sidecar and the data: its sidecar may now be ours.
      const existing = await this.head(key);
      if (existing) return existing;
      throw err;
    }
    await unlink(staged);
    await this.dirSyncs.sync(dir);
    return undefined;
  }

  async get(key: string): Promise<Readable> {
    const p = this.objectPath(key);
    return fsCall(`get ${key}`, async () => {
      // Open first so a missing key fails here, not later inside the stream.
      const fh = await open(p, 'r').catch((err: unknown) => {
        if (errno(err) === 'ENOENT' || errno(err) === 'EISDIR') {
          throw new GatewayError('GW_ERR_STORE_INTEGRITY', `no object under ${key}`, {
            cause: err,
          });
        }
        throw err;
      });
      return fh.createReadStream();
    });
  }

  async head(key: string): Promise<ObjectInfo | undefined> {
    const p = this.objectPath(key);
    return fsCall(`head ${key}`, async () => {
      let st: Stats;
      try {
        st = await lstat(p);
      } catch (err) {
        if (errno(err) === 'ENOENT' || errno(err) === 'ENOTDIR') return undefined;
        throw err;
      }
      if (!st.isFile()) return undefined;
      const sidecar = await readSidecar(p + META_SUFFIX);
      if (!sidecar) return { key, size: st.size, lastModified: st.mtime, metadata: {} };
      if (sidecar.size !== st.size) {
        throw new GatewayError(
          'GW_ERR_STORE_INTEGRITY',
          `${key}: file has ${st.size} bytes, its metadata says ${sidecar.size}`,
        );
      }
      return infoOf(key, sidecar, st.mtime);
    });
  }

  /**
   * S3 semantics: every key that starts with `prefix` (a string prefix, not only whole
   * segments). Order is the directory walk's, not sorted by key. Entries carry key, size
   * and lastModified; metadata is empty (as from S3's listing): head() has the rest.
   * Symlinks are not followed, so a link planted under root cannot list files outside it.
   */
  async *list(prefix: string): AsyncIterable<ObjectInfo> {
    assertValidListPrefix(prefix);
    const cut = prefix.lastIndexOf('/');
    const baseKey = cut < 0 ? '' : prefix.slice(0, cut);
    if (RESERVED.has(baseKey.split('/')[0]!)) return;
    const stack: string[] = [baseKey];
    while (stack.length > 0) {
      const dirKey = stack.pop() as string;
      const dirPath = dirKey === '' ? this.root : path.join(this.root, dirKey);
      let entries;
      try {
        entries = await readdir(dirPath, { withFileTypes: true });
      } catch (err) {
        if (errno(err) === 'ENOENT' || errno(err) === 'ENOTDIR') continue;
        throw fsError(`list ${prefix}`, err);
      }
      entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
      const subdirs: string[] = [];
      for (const e of entries) {
        const k = dirKey === '' ? e.name : `${dirKey}/${e.name}`;
        if (dirKey === '' && RESERVED.has(e.name)) continue;
        if (e.isDirectory()) {
          // descend only where keys can still match the prefix
          if (k.startsWith(prefix) || prefix.startsWith(`${k}/`)) subdirs.push(k);
        } else if (e.isFile() && !e.name.endsWith(META_SUFFIX) && k.startsWith(prefix)) {
          let st: Stats;
          try {
            st = await lstat(path.join(this.root, k));
          } catch (err) {
            if (errno(err) === 'ENOENT') continue; // deleted meanwhile
            throw fsError(`list ${prefix}`, err);
          }
          yield { key: k, size: st.size, lastModified: st.mtime, metadata: {} };
        }
      }
      stack.push(...subdirs.reverse());
    }
  }

  async delete(key: string): Promise<void> {
    const p = this.objectPath(key);
    await this.withKeyLock(key, () =>
      fsCall(`delete ${key}`, async () => {
        // data first: an object never exists without its sidecar
        for (const f of [p, p + META_SUFFIX]) {
          await unlink(f).catch((err: unknown) => {
            if (errno(err) !== 'ENOENT' && errno(err) !== 'ENOTDIR') throw err;
          });
        }
        // Empty directories are left behind: removing them would race with a put of a
        // sibling key that has just created them.
      }),
    );
  }

  async ping(): Promise<void> {
    let probe: string | undefined;
    try {
      probe = this.stagingPath('ping');
      await writeSynced(probe, 'ping');
    } catch (err) {
      // whatever the reason, the store cannot take objects now
      throw new GatewayError('GW_ERR_STORE_UNAVAILABLE', `${this.root} is not writable`, {
        cause: err,
      });
    } finally {
      if (probe) await unlink(probe).catch(() => undefined);
    }
  }

  async close(): Promise<void> {
    // nothing held open between calls
  }

  /** The file for a key; throws unless it lies inside root and outside the store's own names. */
  private objectPath(key: string): string {
    assertValidKey(key);
    const segments = key.split('/');
    if (RESERVED.has(segments[0]!) || key.endsWith(META_SUFFIX)) {
      throw new GatewayError('GW_ERR_INTERNAL', `key ${JSON.stringify(key)} is reserved`);
    }
    const p = path.join(this.root, ...segments);
    // assertValidKey already rules out '..'; this is the belt to its braces.
    if (!p.startsWith(this.root + path.sep)) {
      throw new GatewayError('GW_ERR_INTERNAL', `key ${JSON.stringify(key)} escapes the root`);
    }
    return p;
  }

  private stagingPath(tag: string): string {
    return path.join(this.stagingDir(), `${tag}-${randomUUID()}.tmp`);
  }

  /**
   * The sidecar write: see writeFileAtomic. `syncDir` false: the caller fsyncs the directory
   * itself before it reports the put done.
   */
  private writeAtomic(
    target: string,
    data: string,
    mode: 'replace' | 'create',
    syncDir = true,
  ): Promise<boolean> {
    return writeFileAtomic(this.stagingPath('meta'), target, data, mode, (dir) =>
      syncDir ? this.dirSyncs.sync(dir) : Promise.resolve(),
    );
  }

  private async withKeyLock<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.keyLocks.get(key) ?? Promise.resolve();
    const run = prev.then(fn, fn);
    const tail = run.catch(() => undefined);
    this.keyLocks.set(key, tail);
    try {
      return await run;
    } finally {
      if (this.keyLocks.get(key) === tail) this.keyLocks.delete(key);
    }
  }
}
