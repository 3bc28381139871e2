import t from 'tap';
import {
  CommandField,
  encodeCommand,
  encodeResponse,
  isPending,
  parseCommand,
  type DimseCommand,
} from '../../src/dimse/command.js';

function el(element: number, value: Buffer): Buffer {
  const h = Buffer.alloc(8);
  h.writeUInt16LE(0, 0);
  h.writeUInt16LE(element, 2);
  h.writeUInt32LE(value.length, 4);
  return Buffer.concat([h, value]);
}
const us = (n: number): Buffer => {
  const b = Buffer.alloc(2);
  b.writeUInt16LE(n);
  return b;
};

const storeRq = Buffer.concat([
  el(0x0002, Buffer.from('1.2.840.10008.5.1.4.1.1.2\0')),
  el(0x0100, us(CommandField.CStoreRq)),
  el(0x0110, us(7)),
  el(0x0700, us(0)),
  el(0x0800, us(0x0000)),
  el(0x1000, Buffer.from('1.2.3.4 ')),
  el(0x1030, Buffer.from('MOVESCU ')),
  el(0x1031, us(42)),
]);

t.test('parses a C-STORE-RQ command set', async (t) => {
  const c = parseCommand(storeRq);
  t.same(c, {
    commandField: CommandField.CStoreRq,
    messageId: 7,
    affectedSopClassUid: '1.2.840.10008.5.1.4.1.1.2',
    affectedSopInstanceUid: '1.2.3.4',
    priority: 0,
    hasDataset: true,
    moveOriginatorAeTitle: 'MOVESCU',
    moveOriginatorMessageId: 42,
  });
});

t.test('refuses malformed command sets', async (t) => {
  t.throws(() => parseCommand(storeRq.subarray(0, storeRq.length - 3)), /runs past|truncated/);
  t.throws(
    () => parseCommand(Buffer.concat([storeRq, Buffer.from([8, 0, 0x18, 0, 0, 0, 0, 0])])),
    /outside group 0000/,
  );
  t.throws(() => parseCommand(el(0x0110, us(1))), /lacks CommandField/);
  t.throws(
    () => parseCommand(Buffer.concat([el(0x0100, Buffer.from([1])), el(0x0800, us(1))])),
    /not a US/,
  );
  for (let i = 1; i < storeRq.length; i++) {
    const cut = storeRq.subarray(0, i);
    try {
      parseCommand(cut);
    } catch {
      continue;
    }
    // A prefix that parses must end on an element boundary and still hold the mandatory elements.
    t.ok(cut.length >= 32, `prefix ${i} parsed`);
  }
});

t.test('encodes a C-STORE-RSP that parses back, with a correct group length', async (t) => {
  const rsp = encodeResponse({
    commandField: CommandField.CStoreRsp,
    messageIdBeingRespondedTo: 7,
    affectedSopClassUid: '1.2.840.10008.5.1.4.1.1.2',
    affectedSopInstanceUid: '1.2.3',
    status: 0xa700,
    errorComment: 'spool full',
  });
  t.equal(rsp.readUInt32LE(8), rsp.length - 12, 'group length');
  const back = parseCommand(rsp);
  t.equal(back.commandField, CommandField.CStoreRsp);
  t.equal(back.messageIdBeingRespondedTo, 7);
  t.equal(back.status, 0xa700);
  t.equal(back.affectedSopInstanceUid, '1.2.3');
  t.equal(back.hasDataset, false);
  t.equal(rsp.length % 2, 0, 'even length');
});

t.test('the C-STORE-RSP bytes are those the acceptor has always sent', async (t) => {
  const rsp = encodeResponse({
    commandField: CommandField.CStoreRsp,
    messageIdBeingRespondedTo: 7,
    affectedSopClassUid: '1.2.3',
    affectedSopInstanceUid: '1.2',
    status: 0,
  });
  const body = Buffer.concat([
    el(0x0002, Buffer.from('1.2.3\0')),
    el(0x0100, us(0x8001)),
    el(0x0120, us(7)),
    el(0x0800, us(0x0101)),
    el(0x0900, us(0)),
    el(0x1000, Buffer.from('1.2\0')),
  ]);
  const gl = Buffer.alloc(12);
  gl.writeUInt32LE(4, 4);
  gl.writeUInt32LE(body.length, 8);
  t.same(rsp, Buffer.concat([gl, body]));
});

t.test('requests and responses of every service round-trip, in tag order', async (t) => {
  const cases: DimseCommand[] = [
    {
      commandField: CommandField.CEchoRq,
      messageId: 1,
      affectedSopClassUid: '1.2.840.10008.1.1',
      hasDataset: false,
    },
    {
      commandField: CommandField.CFindRq,
      messageId: 2,
      affectedSopClassUid: '1.2.840.10008.5.1.4.1.2.2.1',
      priority: 0,
      hasDataset: true,
    },
    {
      commandField: CommandField.CFindRsp,
      messageIdBeingRespondedTo: 2,
      affectedSopClassUid: '1.2.840.10008.5.1.4.1.2.2.1',
      status: 0xff00,
      hasDataset: true,
    },
    {
      commandField: CommandField.CMoveRq,
      messageId: 3,
      affectedSopClassUid: '1.2.840.10008.5.1.4.1.2.2.2',
      priority: 1,
      moveDestination: 'GATEWAY',
      hasDataset: true,
    },
    {
      commandField: CommandField.CMoveRsp,
      messageIdBeingRespondedTo: 3,
      status: 0xff00,
      remaining: 10,
      completed: 5,
      failed: 1,
      warning: 2,
      hasDataset: false,
    },
    {
      commandField: CommandField.CGetRq,
      messageId: 4,
      affectedSopClassUid: '1.2.840.10008.5.1.4.1.2.2.3',
      priority: 2,
      hasDataset: true,
    },
    {
      commandField: CommandField.NActionRq,
      messageId: 5,
      requestedSopClassUid: '1.2.840.10008.1.20.1',
      requestedSopInstanceUid: '1.2.840.10008.1.20.1.1',
      actionTypeId: 1,
      hasDataset: true,
    },
    {
      commandField: CommandField.NEventReportRq,
      messageId: 6,
      affectedSopClassUid: '1.2.840.10008.1.20.1',
      affectedSopInstanceUid: '1.2.840.10008.1.20.1.1',
      eventTypeId: 2,
      hasDataset: true,
    },
    { commandField: CommandField.CCancelRq, messageIdBeingRespondedTo: 3, hasDataset: false },
    {
      commandField: CommandField.CStoreRq,
      messageId: 7,
      affectedSopClassUid: '1.2',
      affectedSopInstanceUid: '1.2.3',
      priority: 0,
      moveOriginatorAeTitle: 'PACS',
      moveOriginatorMessageId: 3,
      hasDataset: true,
    },
  ];
  for (const c of cases) {
    const bytes = encodeCommand(c);
    t.same(parseCommand(bytes), c, `0x${c.commandField.toString(16)}`);
    t.equal(bytes.readUInt32LE(8), bytes.length - 12, 'group length');
    const tags: number[] = [];
    for (let p = 12; p < bytes.length; p += 8 + bytes.readUInt32LE(p + 4))
      tags.push(bytes.readUInt16LE(p + 2));
    t.same(
      tags,
      [...tags].sort((a, b) => a - b),
      'ascending tags (PS3.5 7.1)',
    );
  }
  t.ok(isPending(0xff00) && isPending(0xff01) && !isPending(0) && !isPending(undefined));
});
