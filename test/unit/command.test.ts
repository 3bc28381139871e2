import t from 'tap';
import { CommandField, encodeResponse, parseCommand } from '../../src/scp/command.js';

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
    messageIdBeingRespondedTo: undefined,
    affectedSopClassUid: '1.2.840.10008.5.1.4.1.1.2',
    affectedSopInstanceUid: '1.2.3.4',
    priority: 0,
    hasDataset: true,
    status: undefined,
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
