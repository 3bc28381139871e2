import t from 'tap';
import { decodeIdentifier, encodeIdentifier, textOf } from '../../src/dicom/identifier.js';
import { CommandField } from '../../src/dimse/command.js';
import { isGatewayError } from '../../src/errors.js';
import { decodeMatch, FindCollector, findStatusKind } from '../../src/scu/find.js';
import { MoveCollector, moveStatusKind } from '../../src/scu/move.js';
import type { DimseResponse } from '../../src/scu/options.js';
import { queryElements } from '../../src/scu/query-keys.js';

const study = (uid: string, n?: number) =>
  queryElements('STUDY', {
    StudyInstanceUID: uid,
    StudyDate: '20240105',
    ...(n !== undefined ? { NumberOfStudyRelatedInstances: String(n) } : {}),
  });

function findRsp(status: number, dataset?: Buffer): DimseResponse {
  return {
    command: { commandField: CommandField.CFindRsp, status, hasDataset: !!dataset },
    dataset,
  };
}

t.test('identifier: encode then decode, both VR encodings, padding removed', async (t) => {
  for (const explicit of [true, false]) {
    const buf = encodeIdentifier(study('1.2.3', 7), explicit);
    t.equal(buf.length % 2, 0);
    const m = decodeMatch(buf, explicit);
    t.same(m, {
      QueryRetrieveLevel: 'STUDY',
      StudyInstanceUID: '1.2.3',
      StudyDate: '20240105',
      NumberOfStudyRelatedInstances: '7',
    });
    const els = decodeIdentifier(buf, explicit);
    t.same(
      [...els.keys()],
      [...els.keys()].sort((a, b) => a - b),
      'tag order',
    );
  }
  // dcmqrscp pads values with spaces on both sides of what it stores
  t.equal(textOf(Buffer.from(' CT \0')), 'CT');
});

t.test('identifier: sequences are skipped, truncation is an error', async (t) => {
  // (0008,1110) SQ undefined length with one item of undefined length holding a UI
  const seq = Buffer.concat([
    Buffer.from([0x08, 0x00, 0x10, 0x11]),
    Buffer.from('SQ\0\0'),
    Buffer.from([0xff, 0xff, 0xff, 0xff]),
    Buffer.from([0xfe, 0xff, 0x00, 0xe0, 0xff, 0xff, 0xff, 0xff]),
    encodeIdentifier([{ tag: 0x00081150, vr: 'UI', value: '9.9' }], true),
    Buffer.from([0xfe, 0xff, 0x0d, 0xe0, 0, 0, 0, 0]),
    Buffer.from([0xfe, 0xff, 0xdd, 0xe0, 0, 0, 0, 0]),
  ]);
  const buf = Buffer.concat([
    encodeIdentifier([{ tag: 0x00080052, vr: 'CS', value: 'STUDY' }], true),
    seq,
    encodeIdentifier([{ tag: 0x0020000d, vr: 'UI', value: '1.2' }], true),
  ]);
  const m = decodeMatch(buf, true);
  t.same(m, { QueryRetrieveLevel: 'STUDY', StudyInstanceUID: '1.2' });
  for (const cut of [3, 10, buf.length - 3, buf.length - seq.length / 2]) {
    const err = (() => {
      try {
        decodeIdentifier(buf.subarray(0, Math.floor(cut)), true);
      } catch (e) {
        return e;
      }
    })();
    t.ok(isGatewayError(err, 'GW_ERR_PROTOCOL'), `cut at ${cut}`);
  }
});

t.test('FindCollector: pending responses with identifiers, then success', async (t) => {
  const c = new FindCollector(true);
  t.equal(c.push(findRsp(0xff00, encodeIdentifier(study('1.1', 3), true))), 'continue');
  t.equal(c.push(findRsp(0xff01, encodeIdentifier(study('1.2'), true))), 'continue');
  t.equal(c.push(findRsp(0x0000)), 'done');
  t.same(
    c.matches.map((m) => [m.StudyInstanceUID, m.NumberOfStudyRelatedInstances]),
    [
      ['1.1', '3'],
      ['1.2', undefined],
    ],
  );
  t.equal(c.capped, false);
});

t.test('FindCollector: the cap asks once for a cancel, drains, ends on FE00', async (t) => {
  const c = new FindCollector(false, 2);
  const id = (u: string) => findRsp(0xff00, encodeIdentifier(study(u), false));
  t.equal(c.push(id('1')), 'continue');
  t.equal(c.push(id('2')), 'cancel');
  t.equal(c.push(id('3')), 'continue', 'a response in flight before the cancel is dropped');
  t.equal(c.push(findRsp(0xfe00)), 'done');
  t.equal(c.matches.length, 2);
  t.equal(c.capped, true);
  t.equal(findStatusKind(c.final!.command.status!), 'cancel');
});

t.test('FindCollector: failure statuses and a pending response without identifier', async (t) => {
  for (const s of [0xa700, 0xa900, 0xc000, 0xc311]) {
    const c = new FindCollector(true);
    t.equal(c.push(findRsp(s)), 'done');
    t.equal(findStatusKind(s), 'failure', s.toString(16));
  }
  const c = new FindCollector(true);
  t.throws(() => c.push(findRsp(0xff00)), /without an identifier/);
});

t.test('MoveCollector: counts from pending and final, failed list, status kinds', async (t) => {
  const c = new MoveCollector(true);
  const rsp = (status: number, n: Partial<Record<string, number>>, dataset?: Buffer) => ({
    command: { commandField: CommandField.CMoveRsp, status, hasDataset: !!dataset, ...n },
    dataset,
  });
  t.same(c.push(rsp(0xff00, { remaining: 2, completed: 1, failed: 0, warning: 0 })), {
    remaining: 2,
    completed: 1,
    failed: 0,
    warning: 0,
  });
  const failed = encodeIdentifier([{ tag: 0x00080058, vr: 'UI', value: '1.2.3\\1.2.4' }], true);
  c.push(rsp(0xb000, { completed: 1, failed: 2, warning: 0 }, failed));
  t.same(c.progress, { remaining: 0, completed: 1, failed: 2, warning: 0 });
  t.same(c.failedInstances(), ['1.2.3', '1.2.4']);
  t.equal(c.pending, 1);
  t.equal(moveStatusKind(0xb000), 'warning');
  t.equal(moveStatusKind(0xa801), 'failure');
  t.equal(moveStatusKind(0xfe00), 'cancel');
  t.equal(moveStatusKind(0), 'success');
});
