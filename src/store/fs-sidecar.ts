/**
 * The sidecar of an FsStore object (`<key>.meta.json`: size, digests, user metadata) and the
 * small file reads FsStore does around it.
 */
import type { Stats } from 'node:fs';
import { lstat, readFile } from 'node:fs/promises';
import { GatewayError } from '../errors.js';
import { errno } from './fs-durable.js';
import type { ObjectInfo } from './object-store.js';

/** Suffix of the metadata file next to each object; no key may end with it. */
export const META_SUFFIX = '.meta.json';

export interface Sidecar {
  v: 1;
  size: number;
  sha256?: string;
  /** base64, as PutFileOptions.md5 */
  md5?: string;
  metadata: Record<string, string>;
}

export function infoOf(key: string, s: Sidecar, lastModified: Date): ObjectInfo {
  return {
    key,
    size: s.size,
    sha256: s.sha256,
    etag: s.md5 ? Buffer.from(s.md5, 'base64').toString('hex') : undefined,
    lastModified,
    metadata: { ...s.metadata },
  };
}

export async function statSource(src: string): Promise<Stats> {
  try {
    const st = await lstat(src);
    if (!st.isFile()) throw new Error('not a regular file');
    return st;
  } catch (err) {
    throw new GatewayError('GW_ERR_INTERNAL', `cannot use ${src} as upload source`, {
      cause: err,
    });
  }
}

export async function readSidecar(p: string): Promise<Sidecar | undefined> {
  let text: string;
  try {
    text = await readFile(p, 'utf8');
  } catch (err) {
    // A file without sidecar was put there by hand or by something else; still an object.
    if (errno(err) === 'ENOENT') return undefined;
    throw err;
  }
  try {
    const s = JSON.parse(text) as Sidecar;
    if (s.v !== 1 || typeof s.size !== 'number' || typeof s.metadata !== 'object') {
      throw new Error('unexpected shape');
    }
    return s;
  } catch (err) {
    throw new GatewayError('GW_ERR_STORE_INTEGRITY', `unreadable metadata file ${p}`, {
      cause: err,
    });
  }
}
