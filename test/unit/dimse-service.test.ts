import pino from 'pino';
import t, { type Test } from 'tap';
import { GatewayError } from '../../src/errors.js';
import { parseCommand } from '../../src/dimse/command.js';
import { DimseService, MAX_COMMAND_BYTES } from '../../src/scp/dimse-service.js';
import { AbortReason, encodePDataTf, parsePDataTf, UpperLayerError } from '../../src/dimse/pdu.js';
import type { InstanceSink, StoreHandler } from '../../src/scp/store-handler.js';
import { echoCommand, storeCommand } from '../helpers/raw-scu.js';

const CT = '1.2.840.10008.5.1.4.1.1.2';
const ELE = '1.2.840.10008.1.2.1';

interface Harness {
  svc: DimseService;
  sent: Buffer[];
  sinks: Array<{ bytes: Buffer[]; finished: boolean; aborted: boolean }>;
  statuses: () => Array<number | undefined>;
}

function harness(refuse?: GatewayError): Harness {
  const sent: Buffer[] = [];
  const sinks: Harness['sinks'] = [];
  const handler: StoreHandler = {
    begin(): InstanceSink {
      if (refuse) throw refuse;
      const s = { bytes: [] as Buffer[], finished: false, aborted: false };
      sinks.push(s);
      return {
        write: (c) => {
          s.bytes.push(Buffer.from(c));
          return undefined;
        },
        finish: async () => {
          s.finished = true;
          return { status: 0 };
        },
        abort: async () => {
          s.aborted = true;
        },
      };
    },
  };
  const svc = new DimseService({
    info: {
      id: '1',
      callingAeTitle: 'A',
      calledAeTitle: 'B',
      remoteAddress: '127.0.0.1',
      remotePort: 1,
      tls: false,
    },
    contexts: new Map([
      [1, { abstractSyntaxUid: CT, transferSyntaxUid: ELE }],
      [3, { abstractSyntaxUid: '1.2.840.10008.1.1', transferSyntaxUid: ELE }],
    ]),
    handler,
    log: pino({ level: 'silent' }),
    send: (b) => sent.push(b),
  });
  const statuses = (): Array<number | undefined> =>
    sent.map((b) => parseCommand(parsePDataTf(b)[0]!.value).status);
  return { svc, sent, sinks, statuses };
}

/** One P-DATA-TF PDU holding several PDVs. */
function pdata(...pdvs: Array<[number, boolean, boolean, Buffer]>): Buffer {
  const parts = pdvs.map(([pc, cmd, last, v]) => encodePDataTf(pc, cmd, last, v).subarray(6));
  const body = Buffer.concat(parts);
  const head = Buffer.from([4, 0, 0, 0, 0, 0]);
  head.writeUInt32BE(body.length, 2);
  return Buffer.concat([head, body]);
}

async function refused(t: Test, p: Promise<void>, pattern: RegExp, reason?: number): Promise<void> {
  try {
    await p;
    t.fail(`accepted, expected ${String(pattern)}`);
  } catch (err) {
    t.ok(err instanceof UpperLayerError, 'UpperLayerError');
    t.match((err as Error).message, pattern);
    if (reason !== undefined) t.equal((err as UpperLayerError).abortReason, reason);
  }
}

t.test('C-STORE: command in fragments, data set streamed, answered after finish', async (t) => {
  const h = harness();
  const cmd = storeCommand(7, CT, '1.2.3');
  await h.svc.onPData(pdata([1, true, false, cmd.subarray(0, 10)]));
  await h.svc.onPData(
    pdata([1, true, true, cmd.subarray(10)], [1, false, false, Buffer.from('ab')]),
  );
  t.equal(h.sent.length, 0, 'no answer before the last fragment');
  await h.svc.onPData(pdata([1, false, true, Buffer.from('cd')]));
  t.same(h.sinks[0]!.bytes.map(String), ['ab', 'cd']);
  t.ok(h.sinks[0]!.finished);
  t.same(h.statuses(), [0]);
  t.equal(h.svc.stored, 1);
  await h.svc.onPData(pdata([3, true, true, echoCommand(8)]));
  t.same(h.statuses(), [0, 0], 'C-ECHO answered');
});

t.test('refused before the data set: answered after it, with the mapped status', async (t) => {
  const h = harness(new GatewayError('GW_ERR_SPOOL_FULL', 'full'));
  await h.svc.onPData(
    pdata([1, true, true, storeCommand(1, CT, '1.2.3')], [1, false, true, Buffer.from('xy')]),
  );
  t.same(h.statuses(), [0xa700]);
  const wrongClass = harness();
  await wrongClass.svc.onPData(
    pdata([3, true, true, storeCommand(1, CT, '1.2.4')], [3, false, true, Buffer.from('xy')]),
  );
  t.same(wrongClass.statuses(), [0x0122], 'SOP class on a context negotiated for another');
});

t.test('protocol violations are UpperLayerErrors', async (t) => {
  const cmd = storeCommand(1, CT, '1.2.3');
  await refused(
    t,
    harness().svc.onPData(pdata([5, true, true, cmd])),
    /not accepted/,
    AbortReason.InvalidPduParameter,
  );
  const mid = harness();
  await mid.svc.onPData(pdata([1, true, true, cmd], [1, false, false, Buffer.from('ab')]));
  await refused(t, mid.svc.onPData(pdata([1, true, true, cmd])), /while a data set/);
  await mid.svc.dispose('test');
  t.ok(mid.sinks[0]!.aborted, 'dispose() aborts the instance being received');
  t.notOk(mid.sinks[0]!.finished);
  await refused(
    t,
    harness().svc.onPData(pdata([1, true, false, cmd.subarray(0, 8)], [3, true, true, cmd])),
    /began on 1/,
  );
  await refused(
    t,
    harness().svc.onPData(pdata([1, true, false, cmd.subarray(0, 8)], [1, false, true, cmd])),
    /before the command set was complete/,
  );
  await refused(t, harness().svc.onPData(pdata([1, false, true, cmd])), /without a matching/);
  const big = Buffer.alloc(MAX_COMMAND_BYTES / 2);
  const h = harness();
  await h.svc.onPData(pdata([1, true, false, big]));
  await refused(t, h.svc.onPData(pdata([1, true, false, big], [1, true, false, big])), /larger/);
  const bad = Buffer.from(cmd);
  bad.writeUInt16LE(0x0008, 12); // second element's group
  await refused(t, harness().svc.onPData(pdata([1, true, true, bad])), /outside group 0000/);
  const noData = Buffer.from(cmd);
  const dataSetType = noData.indexOf(Buffer.from([0, 0, 0, 8, 2, 0, 0, 0])); // (0000,0800)
  noData.writeUInt16LE(0x0101, dataSetType + 8); // "no data set"
  await refused(t, harness().svc.onPData(pdata([1, true, true, noData])), /without a data set/);
});
