/**
 * Reads a zip with readers other than ours: Python's zipfile (names, sizes, CRC check, sha256
 * of each entry) and Info-ZIP's `unzip -t`. Used by the zip writer's and the archive's tests.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

const PY = `
import hashlib, json, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z:
    bad = z.testzip()
    out = {"bad": bad, "entries": [
        {"name": i.filename, "size": i.file_size, "compressType": i.compress_type,
         "sha256": hashlib.sha256(z.read(i.filename)).hexdigest()} for i in z.infolist()]}
print(json.dumps(out))
`;

export interface ZipListing {
  /** The first entry whose CRC does not match (Python's testzip), or null. */
  bad: string | null;
  entries: Array<{ name: string; size: number; compressType: number; sha256: string }>;
}

export async function readZip(path: string): Promise<ZipListing> {
  const { stdout } = await run('/usr/bin/python3', ['-c', PY, path], {
    maxBuffer: 64 * 1024 * 1024,
  });
  return JSON.parse(stdout) as ZipListing;
}

/** `unzip -t`: Info-ZIP's own test of every entry; throws when it finds an error. */
export async function unzipTest(path: string): Promise<string> {
  const { stdout } = await run('unzip', ['-t', path]);
  return stdout;
}
