import t from 'tap';
import { isGatewayError } from '../../src/errors.js';
import {
  AbortReason,
  encodeAbort,
  encodePDataTf,
  encodeReleaseRp,
  encodeReleaseRq,
  fragmentPData,
  maxPdvValue,
  parseAbort,
  parsePDataTf,
  PduFramer,
  PduType,
  UpperLayerError,
} from '../../src/dimse/pdu.js';

const limits = { maxPDataLength: 1024, maxOtherLength: 1024 };

function pdu(type: number, body: Buffer): Buffer {
  const head = Buffer.alloc(6);
  head[0] = type;
  head.writeUInt32BE(body.length, 2);
  return Buffer.concat([head, body]);
}

const stream = Buffer.concat([
  pdu(PduType.AssociateRq, Buffer.alloc(68, 1)),
  encodePDataTf(1, true, true, Buffer.from('command')),
  encodePDataTf(1, false, false, Buffer.alloc(300, 7)),
  encodePDataTf(3, false, true, Buffer.alloc(5, 9)),
  pdu(PduType.ReleaseRq, Buffer.alloc(4)),
]);

function frameAll(chunks: Buffer[]): Buffer[] {
  const f = new PduFramer(limits);
  const out: Buffer[] = [];
  for (const c of chunks) out.push(...f.push(c).map((p) => Buffer.from(p.raw)));
  t.equal(f.pendingBytes, 0);
  return out;
}

t.test('frames the same PDUs whatever the split', async (t) => {
  const whole = frameAll([stream]);
  t.equal(whole.length, 5);
  t.same(
    whole.map((b) => b[0]),
    [1, 4, 4, 4, 5],
  );
  for (let i = 1; i < stream.length; i++) {
    const got = frameAll([stream.subarray(0, i), stream.subarray(i)]);
    if (!got.every((b, k) => b.equals(whole[k]!)) || got.length !== whole.length) {
      t.fail(`split at ${i} differs`);
      return;
    }
  }
  const bytewise = frameAll([...stream].map((b) => Buffer.from([b])));
  t.same(bytewise, whole, 'one byte at a time');
});

t.test('refuses unknown PDU types and oversized PDUs', async (t) => {
  t.throws(
    () => new PduFramer(limits).push(pdu(0x09, Buffer.alloc(2))),
    /unrecognized PDU type 0x09/,
  );
  t.throws(
    () => new PduFramer(limits).push(pdu(PduType.PDataTf, Buffer.alloc(2000))),
    /exceeds the limit of 1024/,
  );
  // Known only from the header: refused before the body arrives.
  const head = pdu(PduType.PDataTf, Buffer.alloc(0));
  head.writeUInt32BE(0xffffffff, 2);
  try {
    new PduFramer(limits).push(head);
    t.fail('should throw');
  } catch (err) {
    t.ok(isGatewayError(err, 'GW_ERR_PROTOCOL'));
  }
});

t.test('frame(): PDUs before a bad header are kept, the error comes after them', async (t) => {
  const f = new PduFramer(limits);
  const good = encodePDataTf(1, true, true, Buffer.from('cmd'));
  const r = f.frame(
    Buffer.concat([good, pdu(PduType.ReleaseRq, Buffer.alloc(4)), pdu(0xff, Buffer.alloc(4))]),
  );
  t.same(
    r.pdus.map((p) => p.type),
    [PduType.PDataTf, PduType.ReleaseRq],
  );
  t.ok(r.error instanceof UpperLayerError);
  t.equal(r.error?.abortReason, AbortReason.UnrecognizedPdu, 'PS3.8 Table 9-26: unrecognized PDU');
  t.equal(f.frame(good).error, r.error, 'and every later call returns it again');
  t.equal(f.pendingBytes, 0, 'nothing after the bad header is held');
  const big = new PduFramer(limits).frame(pdu(PduType.PDataTf, Buffer.alloc(1025)));
  t.equal(big.error?.abortReason, AbortReason.InvalidPduParameter, 'oversized: invalid parameter');
});

t.test('parses P-DATA-TF items and rejects bad lengths', async (t) => {
  const two = Buffer.concat([
    encodePDataTf(5, true, false, Buffer.from('ab')),
    encodePDataTf(5, false, true, Buffer.from('cde')),
  ]);
  // Merge into one PDU with two items.
  const items = Buffer.concat([two.subarray(6, 6 + 8), two.subarray(14 + 6)]);
  const merged = pdu(PduType.PDataTf, items);
  const pdvs = parsePDataTf(merged);
  t.equal(pdvs.length, 2);
  t.match(pdvs[0], { presentationContextId: 5, isCommand: true, isLast: false });
  t.equal(pdvs[0]!.value.toString(), 'ab');
  t.match(pdvs[1], { presentationContextId: 5, isCommand: false, isLast: true });
  t.equal(pdvs[1]!.value.toString(), 'cde');

  const bad = Buffer.from(merged);
  bad.writeUInt32BE(1000, 6);
  t.throws(() => parsePDataTf(bad), /PDV item length 1000/);
  t.throws(() => parsePDataTf(pdu(PduType.PDataTf, Buffer.alloc(0))), /without PDV items/);
  t.throws(() => parsePDataTf(pdu(PduType.PDataTf, Buffer.alloc(3))), /truncated/);
  const tiny = pdu(PduType.PDataTf, Buffer.from([0, 0, 0, 1, 1, 3]));
  t.throws(() => parsePDataTf(tiny), /PDV item length 1/);
});

t.test('A-ABORT encoding', async (t) => {
  t.same([...encodeAbort(2, 0)], [7, 0, 0, 0, 0, 4, 0, 0, 2, 0]);
});

t.test('fragmentPData: PDVs of at most the peer limit, one last fragment, any size', async (t) => {
  const value = Buffer.from(Array.from({ length: 1000 }, (_, i) => i & 0xff));
  for (let max = 1; max <= 1001; max += max < 20 ? 1 : 97) {
    const pdus = fragmentPData(5, false, value, max);
    const pdvs = pdus.flatMap((p) => parsePDataTf(p));
    t.equal(pdvs.length, Math.ceil(1000 / max), `max ${max}: PDV count`);
    if (pdvs.some((p) => p.value.length > max || p.presentationContextId !== 5 || p.isCommand)) {
      t.fail(`max ${max}: a PDV over the limit or on the wrong context`);
    }
    t.same(
      pdvs.map((p) => p.isLast),
      pdvs.map((_, i) => i === pdvs.length - 1),
      `max ${max}: only the last is last`,
    );
    t.same(Buffer.concat(pdvs.map((p) => p.value)), value);
    // PS3.8 D.1: the PDU length field never exceeds the peer's maximum (value + 6).
    t.ok(pdus.every((p) => p.readUInt32BE(2) <= max + 6));
  }
  const empty = fragmentPData(1, true, Buffer.alloc(0), 100);
  t.same(parsePDataTf(empty[0]!)[0], {
    presentationContextId: 1,
    isCommand: true,
    isLast: true,
    value: Buffer.alloc(0),
  });
  t.equal(
    fragmentPData(1, false, value, 300, false)
      .flatMap((p) => parsePDataTf(p))
      .at(-1)!.isLast,
    false,
  );
  t.equal(maxPdvValue(16384), 16378);
  t.equal(maxPdvValue(0), 64 * 1024 - 6, 'no limit: still bounded');
  t.equal(maxPdvValue(1 << 30), 64 * 1024 - 6);
  t.throws(() => maxPdvValue(6), UpperLayerError);
});

t.test('A-ABORT and A-RELEASE PDUs parse back at every split', async (t) => {
  const stream = Buffer.concat([encodeReleaseRq(), encodeReleaseRp(), encodeAbort(2, 6)]);
  for (let cut = 0; cut <= stream.length; cut++) {
    const f = new PduFramer(limits);
    const pdus = [...f.push(stream.subarray(0, cut)), ...f.push(stream.subarray(cut))];
    t.same(
      pdus.map((p) => p.type),
      [PduType.ReleaseRq, PduType.ReleaseRp, PduType.Abort],
    );
    t.same(parseAbort(pdus[2]!.raw), { source: 2, reason: 6 });
  }
  t.throws(() => parseAbort(encodeReleaseRq()), UpperLayerError);
});

t.test('P-DATA-TF as framed parts: the same PDVs at every split, values not copied', async (t) => {
  // Two PDVs in one PDU: a 2-byte command fragment and a 200-byte data fragment.
  const data = Buffer.from(Array.from({ length: 200 }, (_, i) => i & 0xff));
  const items = Buffer.concat([
    encodePDataTf(5, true, true, Buffer.from('ab')).subarray(6),
    encodePDataTf(7, false, true, data).subarray(6),
  ]);
  const whole = pdu(PduType.PDataTf, items);
  const expected = parsePDataTf(whole).map((p) => ({ ...p, value: Buffer.from(p.value) }));
  for (let i = 1; i < whole.length; i++) {
    for (const j of [i + 1, i + 7, whole.length - 1]) {
      if (j <= i || j >= whole.length) continue;
      const f = new PduFramer(limits);
      const framed = [
        ...f.push(whole.subarray(0, i)),
        ...f.push(whole.subarray(i, j)),
        ...f.push(whole.subarray(j)),
      ];
      const got = parsePDataTf(framed[0]!);
      if (framed.length !== 1 || JSON.stringify(got) !== JSON.stringify(expected)) {
        t.fail(`splits at ${i} and ${j} differ`);
        return;
      }
    }
  }
  // DCMTK's pattern: PDU and PDV headers (12 bytes) in one read, the value in the next.
  const f = new PduFramer(limits);
  const single = encodePDataTf(1, false, true, data);
  const valueChunk = Buffer.from(single.subarray(12));
  const [framed] = [...f.push(Buffer.from(single.subarray(0, 12))), ...f.push(valueChunk)];
  t.equal(framed!.parts.length, 2, 'the PDU keeps the two reads it arrived in');
  const [pdv] = parsePDataTf(framed!);
  t.ok(pdv!.value.equals(data), 'the value is the data');
  t.equal(pdv!.value.buffer, valueChunk.buffer, 'the value is a view into the read, not a copy');
  t.equal(pdv!.value.byteOffset, valueChunk.byteOffset);
});
