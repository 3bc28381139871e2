import { Readable } from 'node:stream';
import t from 'tap';
import { ContextResult } from '../../src/dimse/acse.js';
import { CommandField } from '../../src/dimse/command.js';
import { parsePDataTf } from '../../src/dimse/pdu.js';
import { acceptedContexts, proposeContexts } from '../../src/scu/contexts.js';
import { datasetPdus } from '../../src/scu/outgoing.js';
import { ResponseCollector } from '../../src/scu/response-collector.js';
import { Waiter } from '../../src/scu/waiter.js';
import { isGatewayError } from '../../src/errors.js';

const value = Buffer.from(Array.from({ length: 5000 }, (_, i) => (i * 7) & 0xff));

async function collect(it: AsyncIterable<Buffer>): Promise<Buffer[]> {
  const out: Buffer[] = [];
  for await (const b of it) out.push(b);
  return out;
}

t.test('datasetPdus: a stream cut anywhere gives the same PDVs as the Buffer', async (t) => {
  const whole = (await collect(datasetPdus(3, value, 1000))).flatMap((p) => parsePDataTf(p));
  for (const size of [1, 7, 999, 1000, 1001, 2500, 5000, 6000]) {
    const chunks: Buffer[] = [];
    for (let off = 0; off < value.length; off += size) chunks.push(value.subarray(off, off + size));
    const pdvs = (await collect(datasetPdus(3, Readable.from(chunks), 1000))).flatMap((p) =>
      parsePDataTf(p),
    );
    t.same(
      pdvs.map((p) => [p.value.length, p.isLast, p.isCommand]),
      whole.map((p) => [p.value.length, p.isLast, p.isCommand]),
      `chunks of ${size}`,
    );
    t.same(Buffer.concat(pdvs.map((p) => p.value)), value);
  }
  const empty = await collect(datasetPdus(3, Readable.from([]), 1000));
  t.same(parsePDataTf(empty[0]!)[0]!.isLast, true, 'an empty stream still ends the data set');
});

t.test('datasetPdus reads the stream only as fast as PDUs are taken (backpressure)', async (t) => {
  let pulled = 0;
  const source = Readable.from(
    (function* () {
      for (let i = 0; i < 100; i++) {
        pulled++;
        yield Buffer.alloc(1000);
      }
    })(),
    { highWaterMark: 1 },
  );
  const it = datasetPdus(1, source, 1000)[Symbol.asyncIterator]();
  await it.next();
  t.ok(pulled < 10, `${pulled} chunks read for the first PDU`);
  await it.return?.();
});

t.test('contexts: odd IDs in order; only what was proposed counts as accepted', async (t) => {
  const proposed = proposeContexts([
    { abstractSyntaxUid: '1.2.1', transferSyntaxUids: ['1.2.840.10008.1.2.1'] },
    { abstractSyntaxUid: '1.2.2', transferSyntaxUids: ['1.2.840.10008.1.2'] },
    { abstractSyntaxUid: '1.2.3', transferSyntaxUids: ['1.2.840.10008.1.2'] },
  ]);
  t.same(
    proposed.map((p) => p.id),
    [1, 3, 5],
  );
  const accepted = acceptedContexts(proposed, {
    protocolVersion: 1,
    applicationContextName: '1.2.840.10008.3.1.1.1',
    maxPduLength: 0,
    contexts: [
      { id: 1, result: ContextResult.Accept, transferSyntaxUid: '1.2.840.10008.1.2.1' },
      { id: 3, result: ContextResult.Accept, transferSyntaxUid: '1.2.840.10008.1.2.2' },
      { id: 5, result: ContextResult.AbstractSyntaxNotSupported },
      { id: 7, result: ContextResult.Accept, transferSyntaxUid: '1.2.840.10008.1.2' },
    ],
  });
  t.same(
    [...accepted.values()],
    [{ id: 1, abstractSyntaxUid: '1.2.1', transferSyntaxUid: '1.2.840.10008.1.2.1' }],
  );
  t.throws(() => proposeContexts([]), RangeError);
});

t.test('ResponseCollector joins a response data set and bounds it', async (t) => {
  const c = new ResponseCollector(10);
  const command = {
    commandField: CommandField.CFindRsp,
    messageIdBeingRespondedTo: 1,
    status: 0xff00,
    hasDataset: true,
  };
  t.equal(c.push({ kind: 'command', pcId: 1, command }), undefined);
  t.equal(c.push({ kind: 'data', pcId: 1, fragment: Buffer.from('abc'), last: false }), undefined);
  t.same(c.push({ kind: 'data', pcId: 1, fragment: Buffer.from('de'), last: true }), {
    command,
    dataset: Buffer.from('abcde'),
  });
  const final = { ...command, status: 0, hasDataset: false };
  t.same(c.push({ kind: 'command', pcId: 1, command: final }), { command: final });
  c.push({ kind: 'command', pcId: 1, command });
  t.throws(
    () => c.push({ kind: 'data', pcId: 1, fragment: Buffer.alloc(11), last: true }),
    /larger than 10 bytes/,
  );
  t.throws(
    () => c.push({ kind: 'command', pcId: 1, command: { ...command, commandField: 0x0001 } }),
    /unexpected DIMSE request/,
  );
});

t.test('Waiter: value, failure, deadline', async (t) => {
  const w = new Waiter();
  const box: { v?: number } = {};
  const got = w.until(() => box.v, 1_000, 'a value');
  box.v = 3;
  w.notify();
  t.equal(await got, 3);
  const late = w.until(() => undefined, 20, 'nothing');
  const err = await late.catch((e: unknown) => e);
  t.ok(isGatewayError(err, 'GW_ERR_TIMEOUT'), 'GW_ERR_TIMEOUT');
  const failing = w.until(() => undefined, 1_000, 'never');
  w.fail(new Error('gone'));
  await t.rejects(failing, /gone/);
  t.equal(await w.until(() => 'kept', 10, 'value first'), 'kept', 'a value wins over a failure');
});
