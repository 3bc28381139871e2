/**
 * The spool record as a spool file's trailer: read back only when it is whole and consistent
 * with the file (a receipt cut short, a file without one, or another UID's has none).
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { encodeTrailer, readTrailer } from '../../src/ingest/spool-record.js';
import { testSpoolRecord } from '../helpers/spool-records.js';

const uid = '1.2.826.0.1.5.1';
const part10 = Buffer.from('DICM'.padEnd(1000, '#'));
const record = testSpoolRecord(uid, part10);
const trailer = encodeTrailer(record);

t.test('a whole trailer reads back as the record', async (t) => {
  const p = join(t.testdir(), 'a.dcm');
  writeFileSync(p, Buffer.concat([part10, trailer]));
  const got = await readTrailer(p, uid);
  t.same(got?.rec.sha256, record.rec.sha256);
  t.equal(got?.rec.size, part10.length);
  t.ok(got?.rec.receivedAt instanceof Date, 'receivedAt is a Date again');
  t.same(got?.rec.attributes, record.rec.attributes);
});

t.test('no record in anything else', async (t) => {
  const dir = t.testdir();
  const cases: Array<[string, Buffer, string?]> = [
    ['a file without a trailer', part10],
    ['an empty file', Buffer.alloc(0)],
    ['a trailer cut short', Buffer.concat([part10, trailer.subarray(0, trailer.length - 3)])],
    ['a Part-10 part cut short', Buffer.concat([part10.subarray(0, 900), trailer])],
    ['a flipped byte in the record', flip(Buffer.concat([part10, trailer]), part10.length + 5)],
    ['another UID asked for', Buffer.concat([part10, trailer]), '1.2.826.0.1.5.2'],
  ];
  for (const [name, bytes, asked] of cases) {
    const p = join(dir, `${cases.findIndex((c) => c[0] === name)}.dcm`);
    writeFileSync(p, bytes);
    t.equal(await readTrailer(p, asked ?? uid), undefined, name);
  }
  t.equal(await readTrailer(join(dir, 'missing.dcm'), uid), undefined, 'a missing file');
});

function flip(b: Buffer, at: number): Buffer {
  b[at] = b[at]! ^ 0x01;
  return b;
}
