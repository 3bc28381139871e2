import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';

/**
 * MD5 (base64, as Content-MD5), sha256 (hex) and size of a file, or of its first `length`
 * bytes, in one read.
 */
export async function fileDigests(
  path: string,
  length?: number,
): Promise<{ md5: string; sha256: string; size: number }> {
  const md5 = createHash('md5');
  const sha256 = createHash('sha256');
  let size = 0;
  for await (const chunk of createReadStream(path, {
    highWaterMark: 1024 * 1024,
    ...(length === undefined ? {} : { end: length - 1 }),
  })) {
    md5.update(chunk as Buffer);
    sha256.update(chunk as Buffer);
    size += (chunk as Buffer).length;
  }
  return { md5: md5.digest('base64'), sha256: sha256.digest('hex'), size };
}
