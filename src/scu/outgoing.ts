import type { Readable } from 'node:stream';
import { encodePDataTf, fragmentPData } from '../dimse/pdu.js';

/**
 * The P-DATA-TF PDUs of a data set to send (PS3.8 9.3.5, Annex E), from a Buffer or a
 * stream, each PDV at most `maxValue` bytes. Lazy: the caller writes each PDU (waiting for
 * the socket to drain) before the next chunk of the stream is read, so backpressure runs
 * from the socket back to the source.
 */
export async function* datasetPdus(
  pcId: number,
  ds: Buffer | Readable,
  maxValue: number,
): AsyncGenerator<Buffer, void, undefined> {
  if (Buffer.isBuffer(ds)) {
    yield* fragmentPData(pcId, false, ds, maxValue);
    return;
  }
  // The last fragment must say so (bit 1): hold back up to one PDV's worth until the next
  // chunk, or the end of the stream, tells whether more follow.
  let held: Buffer[] = [];
  let size = 0;
  for await (const chunk of ds as AsyncIterable<Buffer | string>) {
    const b = typeof chunk === 'string' ? Buffer.from(chunk, 'latin1') : chunk;
    held.push(b);
    size += b.length;
    if (size <= maxValue) continue;
    const all = Buffer.concat(held, size);
    let off = 0;
    for (; size - off > maxValue; off += maxValue) {
      yield encodePDataTf(pcId, false, false, all.subarray(off, off + maxValue));
    }
    held = [all.subarray(off)];
    size -= off;
  }
  yield encodePDataTf(pcId, false, true, Buffer.concat(held, size));
}
