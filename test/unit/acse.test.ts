import t, { type Test } from 'tap';
import {
  encodeAssociateAc,
  encodeAssociateRj,
  encodeAssociateRq as encodeRq,
  MAX_PRESENTATION_CONTEXTS,
  parseAssociateAc,
  parseAssociateRj,
  parseAssociateRq,
} from '../../src/dimse/acse.js';
import {
  AbortReason,
  encodeReleaseRp,
  encodeReleaseRq,
  PduFramer,
  UpperLayerError,
} from '../../src/dimse/pdu.js';

interface Pc {
  id: number;
  abstractSyntax: string;
  transferSyntaxes: string[];
}

function encodeAssociateRq(
  calling: string,
  called: string,
  contexts: Pc[],
  maxPdu = 16384,
): Buffer {
  return encodeRq({
    callingAeTitle: calling,
    calledAeTitle: called,
    contexts: contexts.map((c) => ({
      id: c.id,
      abstractSyntaxUid: c.abstractSyntax,
      transferSyntaxUids: c.transferSyntaxes,
    })),
    maxPduLength: maxPdu,
    implementationClassUid: '1.2.3.4.5.6.7',
  });
}

const CT = '1.2.840.10008.5.1.4.1.1.2';
const ELE = '1.2.840.10008.1.2.1';
const ILE = '1.2.840.10008.1.2';

const rq = encodeAssociateRq(
  'MODALITY',
  'DICOMGW',
  [
    { id: 3, abstractSyntax: CT, transferSyntaxes: [ELE, ILE] },
    { id: 1, abstractSyntax: '1.2.840.10008.1.1', transferSyntaxes: [ILE] },
  ],
  32768,
);

t.test('decodes an A-ASSOCIATE-RQ, contexts in the order and with the IDs proposed', async (t) => {
  const r = parseAssociateRq(rq);
  t.equal(r.callingAeTitle, 'MODALITY');
  t.equal(r.calledAeTitle, 'DICOMGW');
  t.equal(r.protocolVersion, 1);
  t.equal(r.applicationContextName, '1.2.840.10008.3.1.1.1');
  t.equal(r.maxPduLength, 32768);
  t.equal(r.implementationClassUid, '1.2.3.4.5.6.7');
  // dcmjs-dimse 0.3.3 renumbered context 1 to 5 here (descending IDs): PS3.8 allows any order.
  t.same(r.contexts, [
    { id: 3, abstractSyntaxUid: CT, transferSyntaxUids: [ELE, ILE] },
    { id: 1, abstractSyntaxUid: '1.2.840.10008.1.1', transferSyntaxUids: [ILE] },
  ]);
  t.equal(r.echo.length, 64);
});

t.test('unknown item types are skipped (PS3.8 9.3.1)', async (t) => {
  const extra = Buffer.from([0x7a, 0, 0, 2, 0xab, 0xcd]);
  const withExtra = Buffer.concat([rq, extra]);
  withExtra.writeUInt32BE(withExtra.length - 6, 2);
  t.equal(parseAssociateRq(withExtra).contexts.length, 2);
});

function invalid(t: Test, raw: Buffer, pattern: RegExp, what: string): void {
  try {
    parseAssociateRq(raw);
    t.fail(`${what}: accepted`);
  } catch (err) {
    t.ok(err instanceof UpperLayerError, `${what}: UpperLayerError`);
    t.match((err as Error).message, pattern, what);
    t.equal((err as UpperLayerError).abortReason, AbortReason.InvalidPduParameter);
  }
}

t.test('refuses what PS3.8 9.3.2 does not allow', async (t) => {
  const pc = (id: number): { id: number; abstractSyntax: string; transferSyntaxes: string[] } => ({
    id,
    abstractSyntax: CT,
    transferSyntaxes: [ELE],
  });
  invalid(t, encodeAssociateRq('A', 'B', [pc(1), pc(1)]), /proposed twice/, 'duplicate ID');
  invalid(t, encodeAssociateRq('A', 'B', [pc(2)]), /not an odd number/, 'even ID');
  invalid(t, encodeAssociateRq('A', 'B', []), /without a presentation context/, 'no context');
  const many = Array.from({ length: MAX_PRESENTATION_CONTEXTS + 1 }, (_, i) => pc(2 * i + 1));
  // 129 odd IDs cannot exist in one byte: the 129th is 257 & 0xff = 1, a duplicate.
  invalid(t, encodeAssociateRq('A', 'B', many), /proposed twice|more than 128/, '129 contexts');
  t.equal(
    parseAssociateRq(encodeAssociateRq('A', 'B', many.slice(0, 128))).contexts.length,
    128,
    '128 contexts, IDs 1..255, are fine',
  );
  const short = Buffer.from(rq.subarray(0, 60));
  short.writeUInt32BE(54, 2);
  invalid(t, short, /shorter than its fixed fields/, 'fixed part truncated');
  const longItem = Buffer.from(rq);
  longItem.writeUInt16BE(0xfff0, 76); // application context item length
  invalid(t, longItem, /runs past its end/, 'item length past the PDU');
});

/** Every truncation and every single-byte change of `pdu` either decodes or is an UpperLayerError. */
function robust(t: Test, pdu: Buffer, parse: (raw: Buffer) => unknown): void {
  let refused = 0;
  for (let cut = 6; cut < pdu.length; cut++) {
    const b = Buffer.from(pdu.subarray(0, cut));
    b.writeUInt32BE(cut - 6, 2);
    try {
      parse(b);
    } catch (err) {
      if (!(err instanceof UpperLayerError)) t.fail(`cut ${cut}: ${String(err)}`);
      refused++;
    }
  }
  t.ok(refused > 0, `${refused} truncations refused`);
  for (let pos = 6; pos < pdu.length; pos++) {
    for (const v of [0x00, 0xff, pdu[pos]! ^ 0x01]) {
      const b = Buffer.from(pdu);
      b[pos] = v;
      try {
        parse(b);
      } catch (err) {
        if (!(err instanceof UpperLayerError)) t.fail(`byte ${pos}=${v}: ${String(err)}`);
      }
    }
  }
}

t.test(
  'A-ASSOCIATE-RQ: every truncation and single-byte change fails cleanly or decodes',
  async (t) => robust(t, rq, parseAssociateRq),
);

t.test(
  'A-ASSOCIATE-AC: echoes the RQ fields, one item per context, our user information',
  async (t) => {
    const r = parseAssociateRq(rq);
    const ac = encodeAssociateAc({
      echo: r.echo,
      contexts: [
        { id: 3, result: 0, transferSyntaxUid: ELE },
        { id: 1, result: 3 },
      ],
      maxPduLength: 262144,
      implementationClassUid: '2.25.1',
      implementationVersionName: 'GW_1',
    });
    const [pdu] = new PduFramer({ maxPDataLength: 1 << 20, maxOtherLength: 1 << 20 }).push(ac);
    t.equal(pdu!.type, 0x02);
    t.equal(ac.readUInt16BE(6), 1, 'protocol version');
    t.same(ac.subarray(10, 74), rq.subarray(10, 74), 'AE titles and reserved field echoed');
    const text = ac.toString('latin1');
    t.ok(text.includes('1.2.840.10008.3.1.1.1'), 'application context');
    t.ok(text.includes('2.25.1') && text.includes('GW_1'), 'implementation class and version');
    const first = ac.indexOf(Buffer.from([0x21, 0]));
    t.same([...ac.subarray(first + 4, first + 8)], [3, 0, 0, 0], 'context 3 accepted');
    t.equal(ac.indexOf(Buffer.from([0x53, 0])), -1, 'no asynchronous operations item');
    t.same([...encodeAssociateRj(2, 3, 2)], [3, 0, 0, 0, 0, 4, 0, 2, 3, 2]);
    t.same([...encodeReleaseRp()], [6, 0, 0, 0, 0, 4, 0, 0, 0, 0]);
    t.same([...encodeReleaseRq()], [5, 0, 0, 0, 0, 4, 0, 0, 0, 0]);
  },
);

const ac = encodeAssociateAc({
  echo: parseAssociateRq(rq).echo,
  contexts: [
    { id: 3, result: 0, transferSyntaxUid: ELE },
    { id: 1, result: 3 },
  ],
  maxPduLength: 262144,
  implementationClassUid: '2.25.1',
  implementationVersionName: 'GW_1',
});

t.test('A-ASSOCIATE-AC parses back to what was encoded (requestor side)', async (t) => {
  t.same(parseAssociateAc(ac), {
    protocolVersion: 1,
    applicationContextName: '1.2.840.10008.3.1.1.1',
    contexts: [
      { id: 3, result: 0, transferSyntaxUid: ELE },
      { id: 1, result: 3 },
    ],
    maxPduLength: 262144,
    implementationClassUid: '2.25.1',
    implementationVersionName: 'GW_1',
  });
  t.same(parseAssociateRj(encodeAssociateRj(1, 1, 7)), { result: 1, source: 1, reason: 7 });
  t.throws(() => parseAssociateRj(ac), UpperLayerError);
  t.throws(() => parseAssociateAc(rq), /not an A-ASSOCIATE-AC/);
});

t.test('A-ASSOCIATE-RQ encodes what the acceptor decodes', async (t) => {
  const r = parseAssociateRq(
    encodeRq({
      callingAeTitle: 'SCU',
      calledAeTitle: 'PACS',
      contexts: [{ id: 1, abstractSyntaxUid: CT, transferSyntaxUids: [ELE, ILE] }],
      maxPduLength: 0,
      implementationClassUid: '2.25.9',
      implementationVersionName: 'V1',
    }),
  );
  t.match(r, {
    callingAeTitle: 'SCU',
    calledAeTitle: 'PACS',
    protocolVersion: 1,
    maxPduLength: 0,
    implementationClassUid: '2.25.9',
    implementationVersionName: 'V1',
  });
  t.same(r.contexts, [{ id: 1, abstractSyntaxUid: CT, transferSyntaxUids: [ELE, ILE] }]);
});

t.test('RQ, AC and RJ framed at every split, and byte by byte', async (t) => {
  const stream = Buffer.concat([rq, ac, encodeAssociateRj(2, 3, 1)]);
  const limits = { maxPDataLength: 1 << 20, maxOtherLength: 1 << 20 };
  for (let cut = 0; cut <= stream.length; cut++) {
    const f = new PduFramer(limits);
    const pdus = [...f.push(stream.subarray(0, cut)), ...f.push(stream.subarray(cut))];
    if (pdus.length !== 3) t.fail(`cut ${cut}: ${pdus.length} PDUs`);
    t.same(parseAssociateAc(pdus[1]!.raw).contexts.length, 2);
  }
  const f = new PduFramer(limits);
  const bytes = [...stream].flatMap((b) => f.push(Buffer.from([b])));
  t.equal(parseAssociateRq(bytes[0]!.raw).callingAeTitle, 'MODALITY');
  t.equal(parseAssociateRj(bytes[2]!.raw).reason, 1);
});

t.test(
  'A-ASSOCIATE-AC: every truncation and single-byte change fails cleanly or decodes',
  async (t) => robust(t, ac, parseAssociateAc),
);
