/**
 * The header reader's work on deflated data sets (PS3.5 A.5) is linear in the bytes
 * received: each compressed byte is inflated once, inflation stops with the header, and a
 * header larger than the bound is refused. Counted, not timed.
 */
import zlib from 'node:zlib';
import t from 'tap';
import { extractAttributes, LAST_INDEXED_TAG } from '../../src/dicom/attributes.js';
import { DatasetReader } from '../../src/dicom/header-reader.js';
import { toDimseStatus } from '../../src/errors.js';
import { blobDataset, DEFLATED_TS, explicitLe } from '../helpers/datasets.js';

function chunks(buf: Buffer, size: number): Buffer[] {
  return Array.from({ length: Math.ceil(buf.length / size) }, (_, i) =>
    buf.subarray(i * size, (i + 1) * size),
  );
}

t.test('4 MiB in 512-byte chunks: every compressed byte is inflated once', async (t) => {
  const ds = blobDataset({ sopInstanceUid: '1.2.3.4', blobBytes: 4 << 20, fill: 'random' });
  const r = new DatasetReader({ transferSyntaxUid: DEFLATED_TS, lastTag: LAST_INDEXED_TAG });
  const parts = chunks(ds.deflated, 512);
  t.ok(parts.length > 8000, `${parts.length} chunks`);
  for (const c of parts) r.push(c);
  await r.end();
  const work = r.inflateWork;
  // The old reader re-inflated the whole prefix per chunk: ~parts.length/2 times the input.
  t.ok(work.input <= ds.deflated.length, `${work.input} compressed bytes inflated`);
  t.ok(work.output <= ds.plain.length, `${work.output} inflated bytes parsed`);
  t.ok(work.output > 4 << 20, 'the blob before the UIDs was inflated to reach them');
  t.match(extractAttributes(r), {
    sopInstanceUid: '1.2.3.4',
    studyInstanceUid: '1.2.3.4.1',
    seriesInstanceUid: '1.2.3.4.2',
    patientId: 'BLOB-1',
    rows: 512,
  });
});

t.test('inflation stops once the header attributes are collected', async (t) => {
  // A deflated Encapsulated PDF: the document (0042,0011) follows every indexed attribute.
  const plain = Buffer.concat([
    explicitLe(0x00080016, 'UI', '1.2.840.10008.5.1.4.1.1.104.1'),
    explicitLe(0x00080018, 'UI', '1.2.3.5'),
    explicitLe(0x0020000d, 'UI', '1.2.3.5.1'),
    explicitLe(0x0020000e, 'UI', '1.2.3.5.2'),
    explicitLe(0x00420011, 'OB', zlib.deflateRawSync(Buffer.alloc(1))), // any bytes
    explicitLe(0x00420012, 'LO', 'application/pdf'),
    explicitLe(0x00431001, 'OB', Buffer.alloc(8 << 20, 7)),
  ]);
  const deflated = zlib.deflateRawSync(plain);
  const r = new DatasetReader({ transferSyntaxUid: DEFLATED_TS, lastTag: LAST_INDEXED_TAG });
  for (const c of chunks(deflated, 512)) r.push(c);
  await r.end();
  t.ok(r.headerComplete);
  t.ok(r.inflateWork.output < 1 << 20, `stopped after ${r.inflateWork.output} inflated bytes`);
  t.notOk(r.elements().has(0x00420012), 'nothing collected past the last indexed tag');
  t.equal(extractAttributes(r).sopInstanceUid, '1.2.3.5');
});

t.test('a header past maxHeaderBytes is refused, inflated or compressed', async (t) => {
  // Zeros: a few KiB of deflate that inflate to 9 MiB before the UIDs (a bomb).
  const bomb = blobDataset({ sopInstanceUid: '1.2.3.6', blobBytes: 9 << 20, fill: 'zeros' });
  t.ok(bomb.deflated.length < 64 << 10);
  const r = new DatasetReader({ transferSyntaxUid: DEFLATED_TS, lastTag: LAST_INDEXED_TAG });
  for (const c of chunks(bomb.deflated, 512)) r.push(c);
  const err = await r.end().then(
    () => undefined,
    (e: unknown) => e,
  );
  t.match(err, { code: 'GW_ERR_DATASET_HEADER_TOO_LARGE', message: /8388608 inflated bytes/ });
  t.equal(toDimseStatus(err), 0xc000, 'PS3.4 B.2.3: C000 cannot understand');
  t.ok(r.inflateWork.output <= (8 << 20) + (64 << 10), 'no more than the bound (+1 zlib chunk)');

  // Incompressible: the compressed bound is reached first; zlib is given no more than that.
  const big = blobDataset({ sopInstanceUid: '1.2.3.7', blobBytes: 300_000, fill: 'random' });
  const small = new DatasetReader({ transferSyntaxUid: DEFLATED_TS, maxHeaderBytes: 200_000 });
  for (const c of chunks(big.deflated, 16_384)) small.push(c);
  t.equal(small.inflateWork.input, 200_000);
  await t.rejects(small.end(), {
    code: 'GW_ERR_DATASET_HEADER_TOO_LARGE',
    message: /within 200000 compressed bytes/,
  });

  // A header that completes within the bound is read even if more input arrived before zlib
  // produced it (zlib runs on the thread pool and may lag behind).
  const late = Buffer.concat([
    zlib.deflateRawSync(
      Buffer.concat([explicitLe(0x00080018, 'UI', '1.2.3.9'), explicitLe(0x00080060, 'CS', 'OT')]),
      {
        finishFlush: zlib.constants.Z_FULL_FLUSH,
      },
    ),
    big.deflated, // not a continuation: never inflated, since the header completes first
  ]);
  const lagging = new DatasetReader({
    transferSyntaxUid: DEFLATED_TS,
    lastTag: 0x00080018,
    maxHeaderBytes: 1000,
  });
  for (const c of chunks(late, 16_384)) lagging.push(c);
  await lagging.end();
  t.ok(lagging.headerComplete);
  t.equal(lagging.elements().get(0x00080018)?.value.toString('latin1'), '1.2.3.9\0');

  // Under the bound, the same shape reads.
  const fits = new DatasetReader({ transferSyntaxUid: DEFLATED_TS, maxHeaderBytes: 400_000 });
  for (const c of chunks(big.deflated, 16_384)) fits.push(c);
  await fits.end();
  t.equal(extractAttributes(fits).seriesInstanceUid, '1.2.3.7.2');
});

t.test('close() frees a reader that will not be ended', async (t) => {
  const ds = blobDataset({ sopInstanceUid: '1.2.3.8', blobBytes: 1 << 20, fill: 'random' });
  const r = new DatasetReader({ transferSyntaxUid: DEFLATED_TS });
  r.push(ds.deflated.subarray(0, 100_000));
  r.close();
  r.push(ds.deflated.subarray(100_000)); // ignored, does not throw
  t.ok(r.inflateWork.input <= 100_000);
});
