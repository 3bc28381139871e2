import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import t from 'tap';
import { ZipWriter } from '../../src/notify/zip-writer.js';
import { readZip, unzipTest } from '../helpers/zip-read.js';

const dir = await mkdtemp(join(tmpdir(), 'zip-test-'));
t.teardown(() => rm(dir, { recursive: true, force: true }));

const files = [
  { name: 'series/1.2.3/instances/1.2.3.4.dcm', data: randomBytes(70_001) },
  { name: 'series/1.2.3/instances/empty.dcm', data: Buffer.alloc(0) },
  { name: 'series/9/instances/naïve-ü.dcm', data: randomBytes(5) },
];
const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

/** The bytes the writer frames, the data streamed between them in small chunks. */
function zipOf(force64: boolean, entries = files): Buffer {
  const z = new ZipWriter(force64);
  const out: Buffer[] = [];
  for (const f of entries) {
    out.push(z.begin({ name: f.name, size: f.data.length, modified: new Date() }));
    let crc = 0;
    for (let i = 0; i < f.data.length; i += 4096) {
      const chunk = f.data.subarray(i, i + 4096);
      crc = crc32(chunk, crc);
      out.push(chunk);
    }
    out.push(z.end(crc, f.data.length));
  }
  out.push(z.finish());
  const zip = Buffer.concat(out);
  t.equal(z.length, zip.length, 'length counts every byte');
  return zip;
}

for (const force64 of [false, true]) {
  t.test(`Python's zipfile and unzip read it, byte for byte (zip64: ${force64})`, async (t) => {
    const path = join(dir, `a-${force64}.zip`);
    await writeFile(path, zipOf(force64));
    const z = await readZip(path);
    t.equal(z.bad, null, 'every CRC matches');
    t.same(
      z.entries.map((e) => [e.name, e.size, e.compressType, e.sha256]),
      files.map((f) => [f.name, f.data.length, 0, sha(f.data)]),
      'the same entries, stored, the same bytes',
    );
    t.match(await unzipTest(path), /No errors detected/);
  });
}

t.test('an empty archive is a valid zip', async (t) => {
  const path = join(dir, 'empty.zip');
  await writeFile(path, zipOf(false, []));
  t.same((await readZip(path)).entries, []);
});

t.test('misuse is refused', async (t) => {
  const z = new ZipWriter();
  t.throws(() => z.end(0, 0), /without begin/);
  z.begin({ name: 'a', size: 3, modified: new Date() });
  t.throws(() => z.begin({ name: 'b', size: 1, modified: new Date() }), /previous entry/);
  t.throws(() => z.end(0, 2), /2 bytes, 3 announced/);
  t.throws(() => z.finish(), /inside an entry/);
});
