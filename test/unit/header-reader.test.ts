import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import zlib from 'node:zlib';
import t from 'tap';

type Tap = Pick<typeof t, 'same' | 'equal' | 'ok' | 'fail' | 'match'>;
import { isGatewayError } from '../../src/errors.js';
import { readPart10Header } from '../../src/dicom/file-meta.js';
import { DatasetReader, formatTag, LONG_VRS } from '../../src/dicom/header-reader.js';

// ---- hand encoding (PS3.5 7.1) --------------------------------------------

interface Syntax {
  uid: string;
  explicit: boolean;
  le: boolean;
}
const IMPLICIT_LE: Syntax = { uid: '1.2.840.10008.1.2', explicit: false, le: true };
const EXPLICIT_LE: Syntax = { uid: '1.2.840.10008.1.2.1', explicit: true, le: true };
const EXPLICIT_BE: Syntax = { uid: '1.2.840.10008.1.2.2', explicit: true, le: false };
const JPEG_BASELINE: Syntax = { uid: '1.2.840.10008.1.2.4.50', explicit: true, le: true };
const UNDEFINED = 0xffffffff;

function u16(sx: Syntax, n: number): Buffer {
  const b = Buffer.alloc(2);
  if (sx.le) b.writeUInt16LE(n);
  else b.writeUInt16BE(n);
  return b;
}
function u32(sx: Syntax, n: number): Buffer {
  const b = Buffer.alloc(4);
  if (sx.le) b.writeUInt32LE(n);
  else b.writeUInt32BE(n);
  return b;
}
function tagBytes(sx: Syntax, tag: number): Buffer {
  return Buffer.concat([u16(sx, tag >>> 16), u16(sx, tag & 0xffff)]);
}
function header(sx: Syntax, tag: number, vr: string, length: number): Buffer {
  if (!sx.explicit) return Buffer.concat([tagBytes(sx, tag), u32(sx, length)]);
  if (LONG_VRS.has(vr)) {
    return Buffer.concat([tagBytes(sx, tag), Buffer.from(vr + '\0\0', 'latin1'), u32(sx, length)]);
  }
  return Buffer.concat([tagBytes(sx, tag), Buffer.from(vr, 'latin1'), u16(sx, length)]);
}
function text(s: string, vr: string): Buffer {
  const b = Buffer.from(s, 'latin1');
  if (b.length % 2 === 0) return b;
  return Buffer.concat([b, Buffer.from(vr === 'UI' ? '\0' : ' ', 'latin1')]);
}
function el(sx: Syntax, tag: number, vr: string, value: Buffer | string): Buffer {
  const v = typeof value === 'string' ? text(value, vr) : value;
  return Buffer.concat([header(sx, tag, vr, v.length), v]);
}
function itemTag(sx: Syntax, tag: number, length: number): Buffer {
  return Buffer.concat([tagBytes(sx, tag), u32(sx, length)]);
}
const item = (sx: Syntax, content: Buffer): Buffer =>
  Buffer.concat([itemTag(sx, 0xfffee000, content.length), content]);
const itemUndef = (sx: Syntax, content: Buffer): Buffer =>
  Buffer.concat([itemTag(sx, 0xfffee000, UNDEFINED), content, itemTag(sx, 0xfffee00d, 0)]);
const seqUndef = (sx: Syntax, tag: number, vr: string, items: Buffer[]): Buffer =>
  Buffer.concat([header(sx, tag, vr, UNDEFINED), ...items, itemTag(sx, 0xfffee0dd, 0)]);

/** One top-level element and what the reader should collect from it. */
interface Part {
  bytes: Buffer;
  expect?: { tag: number; vr: string; value: Buffer };
}
function collected(
  sx: Syntax,
  tag: number,
  vr: string,
  value: Buffer | string,
  implicitVr = vr,
): Part {
  const bytes = el(sx, tag, vr, value);
  const v = typeof value === 'string' ? text(value, vr) : value;
  return { bytes, expect: { tag, vr: sx.explicit ? vr : implicitVr, value: v } };
}

/** A data set with nested undefined-length sequences, UN, odd lengths, pixel data and padding. */
function sample(sx: Syntax): Part[] {
  const imp = IMPLICIT_LE;
  const nested = seqUndef(sx, 0x0040a730, 'SQ', [itemUndef(sx, el(sx, 0x0040a040, 'CS', 'TEXT'))]);
  const parts: Part[] = [
    collected(sx, 0x00080005, 'CS', 'ISO_IR 100'),
    collected(sx, 0x00080016, 'UI', '1.2.840.10008.5.1.4.1.1.4'),
    collected(sx, 0x00080018, 'UI', '1.2.3.4.5.6'),
    collected(sx, 0x00080060, 'CS', 'MR'),
    {
      bytes: seqUndef(sx, 0x00081111, 'SQ', [
        itemUndef(sx, Buffer.concat([el(sx, 0x00081150, 'UI', '1.2.3'), nested])),
        item(sx, el(sx, 0x00081155, 'UI', '1.2.3.4')),
        itemUndef(sx, Buffer.alloc(0)),
      ]),
    },
    collected(sx, 0x00090010, 'LO', 'ACME', 'UN'),
  ];
  if (sx.explicit) {
    // PS3.5 6.2.2: UN of undefined length holds Implicit VR LE items, whatever the
    // transfer syntax; only the UN header is in the data set's own encoding.
    const content = Buffer.concat([
      el(imp, 0x00091002, 'UN', 'x'),
      seqUndef(imp, 0x00091003, 'SQ', []),
    ]);
    const items = Buffer.concat([
      itemUndef(imp, content),
      item(imp, el(imp, 0x00091004, 'UN', 'yy')),
    ]);
    parts.push({
      bytes: Buffer.concat([
        header(sx, 0x00091001, 'UN', UNDEFINED),
        items,
        itemTag(imp, 0xfffee0dd, 0),
      ]),
    });
  }
  parts.push(
    collected(sx, 0x00100010, 'PN', 'Doe^John'),
    // An odd length, as real files have.
    collected(sx, 0x00100021, 'LO', Buffer.from('ABC')),
    collected(sx, 0x0020000d, 'UI', '1.2.3.4.7'),
    collected(sx, 0x0020000e, 'UI', '1.2.3.4.8'),
    collected(sx, 0x00200013, 'IS', '7'),
    collected(sx, 0x00280010, 'US', u16(sx, 512)),
    collected(sx, 0x00280011, 'US', u16(sx, 256)),
    // A defined-length sequence is skipped by its length.
    sx.explicit
      ? { bytes: el(sx, 0x00400275, 'SQ', item(sx, el(sx, 0x00400007, 'LO', 'step'))) }
      : collected(sx, 0x00400275, 'SQ', item(sx, el(sx, 0x00400007, 'LO', 'step')), 'UN'),
  );
  if (sx === JPEG_BASELINE) {
    // PS3.5 A.4: Basic Offset Table item, then one item per fragment.
    const frags = [
      item(sx, Buffer.alloc(0)),
      item(sx, Buffer.from('frag1!')),
      item(sx, Buffer.alloc(9, 7)),
    ];
    parts.push({ bytes: seqUndef(sx, 0x7fe00010, 'OB', frags) });
  } else {
    parts.push({ bytes: el(sx, 0x7fe00010, 'OW', Buffer.alloc(32, 1)) });
  }
  parts.push({ bytes: el(sx, 0xfffcfffc, 'OB', Buffer.alloc(4)) });
  return parts;
}

const SYNTAXES = [IMPLICIT_LE, EXPLICIT_LE, EXPLICIT_BE, JPEG_BASELINE];

// ---- feeding helpers ------------------------------------------------------

type Outcome = { ok: true; elements: string } | { ok: false; code: string; message: string };

function show(r: DatasetReader): string {
  return [...r.elements()]
    .map(([tag, e]) => `${formatTag(tag)} ${e.vr} ${e.value.toString('hex')}`)
    .join('\n');
}

async function run(
  ts: string,
  chunks: Buffer[],
  opts: { maxValueBytes?: number; maxCollectBytes?: number; maxHeaderBytes?: number } = {},
): Promise<Outcome> {
  const r = new DatasetReader({ transferSyntaxUid: ts, ...opts });
  try {
    // Copies, overwritten after each push: the reader must not keep slices of chunks.
    for (const c of chunks) {
      const copy = Buffer.from(c);
      r.push(copy);
      copy.fill(0xee);
    }
    await r.end();
    return { ok: true, elements: show(r) };
  } catch (err) {
    if (!isGatewayError(err)) throw err;
    return { ok: false, code: err.code, message: err.message };
  }
}

function splits(buf: Buffer): Array<[string, Buffer[]]> {
  const out: Array<[string, Buffer[]]> = [];
  for (let k = 1; k < buf.length; k++)
    out.push([`split at ${k}`, [buf.subarray(0, k), buf.subarray(k)]]);
  out.push(['one byte at a time', [...buf].map((b) => Buffer.from([b]))]);
  return out;
}

/** Feeds `buf` whole, split at every byte, and byte by byte: all outcomes must equal. */
async function sameEverywhere(t: Tap, ts: string, buf: Buffer): Promise<Outcome> {
  const whole = await run(ts, [buf]);
  let bad = 0;
  for (const [name, chunks] of splits(buf)) {
    const o = await run(ts, chunks);
    if (JSON.stringify(o) !== JSON.stringify(whole) && bad++ < 3) t.same(o, whole, name);
  }
  t.equal(bad, 0, 'every chunking gives the same outcome');
  return whole;
}

// ---- tests ----------------------------------------------------------------

for (const sx of SYNTAXES) {
  t.test(`collects top-level elements before Pixel Data (${sx.uid})`, async (t) => {
    const parts = sample(sx);
    const buf = Buffer.concat(parts.map((p) => p.bytes));
    const r = new DatasetReader({ transferSyntaxUid: sx.uid });
    t.equal(r.littleEndian, sx.le);
    r.push(buf);
    t.ok(r.headerComplete, 'Pixel Data was reached');
    await r.end();
    t.equal(r.bytesSeen, buf.length);
    const expected = parts.flatMap((p) => (p.expect ? [p.expect] : []));
    t.same(
      [...r.elements()].map(([tag, e]) => ({ tag, vr: e.vr, value: e.value })),
      expected,
    );
    const o = await sameEverywhere(t, sx.uid, buf);
    t.ok(o.ok);
  });

  t.test(`every cut off inside an element is truncation (${sx.uid})`, async (t) => {
    const parts = sample(sx);
    const buf = Buffer.concat(parts.map((p) => p.bytes));
    const boundaries = new Set<number>([0]);
    let at = 0;
    for (const p of parts) boundaries.add((at += p.bytes.length));
    let wrong = 0;
    for (let n = 0; n < buf.length; n++) {
      const prefix = buf.subarray(0, n);
      const whole = await run(sx.uid, [prefix]);
      const bytewise = await run(
        sx.uid,
        [...prefix].map((b) => Buffer.from([b])),
      );
      const expectOk = boundaries.has(n);
      const good =
        JSON.stringify(whole) === JSON.stringify(bytewise) &&
        (expectOk ? whole.ok : !whole.ok && whole.code === 'GW_ERR_DATASET_TRUNCATED');
      if (!good && wrong++ < 5) t.fail(`prefix of ${n} bytes`, { whole, bytewise, expectOk });
    }
    t.equal(wrong, 0, `all ${buf.length} prefixes`);
  });
}

t.test('headerComplete turns true at the Pixel Data header, not before', async (t) => {
  const parts = sample(EXPLICIT_LE);
  const pixelIndex = parts.length - 2;
  const before = Buffer.concat(parts.slice(0, pixelIndex).map((p) => p.bytes));
  const r = new DatasetReader({ transferSyntaxUid: EXPLICIT_LE.uid });
  r.push(before);
  const pixel = (parts[pixelIndex] as Part).bytes;
  r.push(pixel.subarray(0, 11));
  t.notOk(r.headerComplete);
  r.push(pixel.subarray(11, 12));
  t.ok(r.headerComplete);
});

t.test('values over maxValueBytes and past maxCollectBytes are skipped', async (t) => {
  const sx = EXPLICIT_LE;
  const buf = Buffer.concat([
    el(sx, 0x00080018, 'UI', '1.2.3'),
    el(sx, 0x00081030, 'LO', 'x'.repeat(40)),
    el(sx, 0x0008103e, 'LO', 'y'.repeat(20)),
    el(sx, 0x00100010, 'PN', 'z'.repeat(10)),
  ]);
  const tags = (o: Outcome): string =>
    o.ok
      ? o.elements
          .split('\n')
          .map((l) => l.slice(0, 11))
          .join(' ')
      : o.message;
  t.equal(
    tags(await run(sx.uid, [buf], { maxValueBytes: 30 })),
    '(0008,0018) (0008,103E) (0010,0010)',
  );
  // 6 + 40 bytes fit in 50; then neither 20 nor 10 more do.
  t.equal(tags(await run(sx.uid, [buf], { maxCollectBytes: 50 })), '(0008,0018) (0008,1030)');
});

t.test(
  'malformed structure: precise errors, the same for every chunking, repeated on push',
  async (t) => {
    const sx = EXPLICIT_LE;
    const uid = el(sx, 0x00080018, 'UI', '1.2.3');
    const cases: Array<[string, Buffer, RegExp]> = [
      [
        'bad VR',
        Buffer.concat([uid, Buffer.from([0x10, 0, 0x10, 0, 0x50, 0x6e, 2, 0, 0x41, 0x42])]),
        /invalid VR 0x506e for \(0010,0010\) at byte offset 14/,
      ],
      [
        'item at top level',
        Buffer.concat([uid, itemTag(sx, 0xfffee000, 0)]),
        /unexpected \(FFFE,E000\) in the top-level data set at byte offset 14/,
      ],
      [
        'element inside a sequence',
        Buffer.concat([header(sx, 0x00081111, 'SQ', UNDEFINED), uid]),
        /expected an item in \(0008,1111\), found \(0008,0018\) at byte offset 12/,
      ],
      [
        'sequence delimiter inside an item',
        Buffer.concat([
          header(sx, 0x00081111, 'SQ', UNDEFINED),
          itemTag(sx, 0xfffee000, UNDEFINED),
          itemTag(sx, 0xfffee0dd, 0),
        ]),
        /unexpected \(FFFE,E0DD\) in item \(0008,1111\) at byte offset 20/,
      ],
      [
        'delimiter with a length',
        Buffer.concat([header(sx, 0x00081111, 'SQ', UNDEFINED), itemTag(sx, 0xfffee0dd, 4)]),
        /\(FFFE,E0DD\) with non-zero length 4 at byte offset 12/,
      ],
      [
        'undefined length LO',
        Buffer.concat([uid, header(sx, 0x00100010, 'UT', UNDEFINED)]),
        /undefined length for \(0010,0010\) with VR UT at byte offset 14/,
      ],
      [
        'fragment of undefined length',
        Buffer.concat([
          header(sx, 0x7fe00010, 'OB', UNDEFINED),
          itemTag(sx, 0xfffee000, UNDEFINED),
        ]),
        /pixel data fragment of undefined length in \(7FE0,0010\) at byte offset 12/,
      ],
      [
        'nesting too deep',
        Buffer.concat(
          Array.from({ length: 130 }, () =>
            Buffer.concat([
              header(sx, 0x00081111, 'SQ', UNDEFINED),
              itemTag(sx, 0xfffee000, UNDEFINED),
            ]),
          ),
        ),
        /nested deeper than 128 levels/,
      ],
    ];
    for (const [name, buf, re] of cases) {
      const o = await sameEverywhere(t, sx.uid, buf);
      t.ok(!o.ok && o.code === 'GW_ERR_DATASET_MALFORMED' && re.test(o.message), name, { o });
    }
    const r = new DatasetReader({ transferSyntaxUid: sx.uid });
    t.throws(() => r.push(cases[0]![1]), { code: 'GW_ERR_DATASET_MALFORMED' });
    t.throws(() => r.push(uid), { code: 'GW_ERR_DATASET_MALFORMED', message: /invalid VR/ });
    await t.rejects(r.end(), { code: 'GW_ERR_DATASET_MALFORMED' });
  },
);

t.test('truncation messages say where', async (t) => {
  const sx = EXPLICIT_LE;
  const seq = seqUndef(sx, 0x00081111, 'SQ', [itemUndef(sx, el(sx, 0x00081150, 'UI', '1.2'))]);
  const value = el(sx, 0x00100010, 'PN', 'Doe^John');
  const cut = async (b: Buffer, n: number): Promise<string> => {
    const o = await run(sx.uid, [b.subarray(0, n)]);
    return o.ok ? 'ok' : `${o.code}: ${o.message}`;
  };
  t.match(
    await cut(value, 5),
    /TRUNCATED: data set ends inside an element header at byte offset 0/,
  );
  t.match(
    await cut(value, 10),
    /inside the value of \(0010,0010\) started at byte offset 0 \(6 of 8 bytes missing\)/,
  );
  t.match(
    await cut(seq, 12),
    /inside the undefined-length sequence \(0008,1111\) started at byte offset 0/,
  );
  t.match(
    await cut(seq, 32),
    /inside an undefined-length item of the sequence \(0008,1111\) started at byte offset 12/,
  );
  const pixel = seqUndef(sx, 0x7fe00010, 'OB', [
    item(sx, Buffer.alloc(0)),
    item(sx, Buffer.alloc(8)),
  ]);
  t.match(
    await cut(pixel, 28),
    /inside a pixel data fragment of \(7FE0,0010\) started at byte offset 20/,
  );
  t.match(await cut(pixel, pixel.length - 8), /inside the encapsulated pixel data \(7FE0,0010\)/);
});

t.test('deflated explicit VR little endian', async (t) => {
  const plain = Buffer.concat(sample(EXPLICIT_LE).map((p) => p.bytes));
  const deflated = zlib.deflateRawSync(plain);
  const ts = '1.2.840.10008.1.2.1.99';
  const expected = await run(EXPLICIT_LE.uid, [plain]);
  const o = await sameEverywhere(t, ts, deflated);
  t.same(o, expected, 'the same elements as the plain data set');
  const r = new DatasetReader({ transferSyntaxUid: ts });
  t.ok(r.deflated && r.explicitVr && r.littleEndian);
  r.push(deflated);
  t.equal(r.bytesSeen, deflated.length);
  await r.end();
  t.ok(r.headerComplete);

  // Cut before the head is complete: truncation; after: not validated.
  const head = zlib.deflateRawSync(plain.subarray(0, 40));
  t.match(await run(ts, [head.subarray(0, head.length - 3)]), {
    ok: false,
    code: 'GW_ERR_DATASET_TRUNCATED',
  });
  // Flushed but never finished: the inflated bytes end on an element boundary,
  // yet the deflate stream has no final block.
  const unfinished = zlib.deflateRawSync(plain.subarray(0, 18), {
    finishFlush: zlib.constants.Z_SYNC_FLUSH,
  });
  t.match(await run(ts, [unfinished]), {
    ok: false,
    code: 'GW_ERR_DATASET_TRUNCATED',
    message: /deflated stream \(it has no final block\)/,
  });
  // Complete deflate stream of a data set without Pixel Data: read to the end.
  t.match(await run(ts, [zlib.deflateRawSync(plain.subarray(0, 18))]), { ok: true });
  t.match(await run(ts, [deflated.subarray(0, deflated.length - 4)]), { ok: true });
  t.match(await run(ts, [Buffer.from([0xff, 0xff, 0xff, 0xff])]), {
    ok: false,
    code: 'GW_ERR_DATASET_MALFORMED',
  });
  t.match(await run(ts, []), { ok: false, code: 'GW_ERR_DATASET_TRUNCATED' });
  // JPIP Referenced Deflate (PS3.5 A.7) is deflated too.
  t.same(await run('1.2.840.10008.1.2.4.95', [deflated]), expected);
});

t.test('deflated: a header followed by a huge blank image is still read', async (t) => {
  const sx = EXPLICIT_LE;
  const head = Buffer.concat([
    el(sx, 0x00080018, 'UI', '1.2.3'),
    header(sx, 0x7fe00010, 'OW', 40 << 20),
  ]);
  const deflated = zlib.deflateRawSync(Buffer.concat([head, Buffer.alloc(40 << 20)]));
  t.ok(deflated.length < 100_000, `compressed to ${deflated.length} bytes`);
  const o = await run('1.2.840.10008.1.2.1.99', [deflated]);
  t.match(o, { ok: true, elements: /^\(0008,0018\) UI/ });
});

// ---- real files -----------------------------------------------------------

const PYDICOM = '/usr/lib/python3/dist-packages/pydicom/data';
/** Files whose data set the reader must refuse, and why. */
const EXPECTED_FAILURES: Record<string, string> = {
  'MR_truncated.dcm': 'GW_ERR_DATASET_TRUNCATED', // Pixel Data cut short
  'rtplan_truncated.dcm': 'GW_ERR_DATASET_TRUNCATED', // cut inside (300A,00B0)
  // File Meta says JPEG Baseline (explicit VR) but the data set is implicit VR.
  'SC_rgb_jpeg.dcm': 'GW_ERR_DATASET_MALFORMED',
};

function walk(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    return statSync(p).isDirectory() ? walk(p) : [p];
  });
}

const haveDcmdump = existsSync('/usr/bin/dcmdump');

t.test(
  'pydicom test files',
  { skip: existsSync(PYDICOM) ? false : `${PYDICOM} is absent` },
  async (t) => {
    const files = [...walk(join(PYDICOM, 'test_files')), ...walk(join(PYDICOM, 'charset_files'))];
    let read = 0;
    for (const file of files) {
      const name = file.slice(file.lastIndexOf('/') + 1);
      let meta;
      try {
        meta = readPart10Header(readFileSync(file));
      } catch {
        continue; // not Part-10 (no preamble/File Meta): file-meta.test.ts lists these
      }
      const ds = readFileSync(file).subarray(meta.datasetOffset);
      const ts = meta.transferSyntaxUid;
      const whole = await run(ts, [ds]);
      const chunks13 = Array.from({ length: Math.ceil(ds.length / 13) }, (_, i) =>
        ds.subarray(i * 13, i * 13 + 13),
      );
      t.same(await run(ts, chunks13), whole, `${name}: 13-byte chunks`);
      const expected = EXPECTED_FAILURES[name];
      if (expected) {
        t.match(whole, { ok: false, code: expected }, `${name} is refused`);
        continue;
      }
      t.ok(whole.ok, `${name} reads`, { whole });
      read++;
      if (!whole.ok || ts === '1.2.840.10008.1.2.1.99') continue;
      t.match(
        await run(ts, [ds.subarray(0, ds.length - 1)]),
        { ok: false, code: 'GW_ERR_DATASET_TRUNCATED' },
        `${name} less one byte`,
      );
      if (haveDcmdump) compareWithDcmdump(t, file, name, ts, whole.elements);
    }
    t.ok(read > 100, `${read} files read`);
  },
);

/** The top-level tags before Pixel Data must be those DCMTK sees (SQ aside). */
function compareWithDcmdump(
  t: Tap,
  file: string,
  name: string,
  ts: string,
  elements: string,
): void {
  let dump: string;
  try {
    dump = execFileSync('/usr/bin/dcmdump', ['-q', '+L', file], {
      encoding: 'latin1',
      maxBuffer: 1 << 26,
    });
  } catch {
    return;
  }
  const top = dump.split('\n').filter((l) => /^\([0-9a-f]{4},[0-9a-f]{4}\) /.test(l));
  const tagsOf = (lines: string[]): string[] =>
    lines
      .map((l) => l.slice(0, 11).toUpperCase())
      .filter((tag) => !tag.startsWith('(0002') && tag < '(7FE0,0010)');
  const theirs = tagsOf(top.filter((l) => l.slice(12, 14) !== 'SQ'));
  const theirSequences = tagsOf(top.filter((l) => l.slice(12, 14) === 'SQ'));
  const ours = elements === '' ? [] : elements.split('\n').map((l) => l.slice(0, 11));
  // Implicit VR (or UN): a defined-length sequence is not known to be one, so it is collected.
  const collectedSequences = ours.filter((x) => theirSequences.includes(x));
  if (collectedSequences.length > 0)
    t.equal(ts, IMPLICIT_LE.uid, `${name}: sequences collected only in implicit VR`);
  const expectedSet = ours.filter((x) => !collectedSequences.includes(x));
  t.same(expectedSet.sort(), theirs.sort(), `${name}: same top-level elements as dcmdump`);
}
