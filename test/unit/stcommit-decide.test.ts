import t from 'tap';
import { CommandField } from '../../src/dimse/command.js';
import { EXPLICIT_VR_LE, IMPLICIT_VR_LE } from '../../src/dicom/uids.js';
import { checkCommitmentRequest, NActionStatus } from '../../src/stcommit/check-request.js';
import { encodeCommitmentRequest, FailureReason } from '../../src/stcommit/commitment-dataset.js';
import {
  decideInstance,
  decideTransaction,
  type DecisionContext,
  type IndexedInstance,
} from '../../src/stcommit/decide.js';
import {
  STORAGE_COMMITMENT_SOP_CLASS,
  STORAGE_COMMITMENT_SOP_INSTANCE,
} from '../../src/stcommit/sop.js';

const CT = '1.2.840.10008.5.1.4.1.1.2';
const MR = '1.2.840.10008.5.1.4.1.1.4';
const ref = { sopClassUid: CT, sopInstanceUid: '1.2.3' };
const young: DecisionContext = { ageMs: 0, unknownGraceMs: 5000, pastDeadline: false };
const old: DecisionContext = { ageMs: 10_000, unknownGraceMs: 5000, pastDeadline: false };
const late: DecisionContext = { ageMs: 10_000, unknownGraceMs: 5000, pastDeadline: true };
const stored: IndexedInstance = { sopClassUid: CT, state: 'stored' };
const spooled: IndexedInstance = { sopClassUid: CT, state: 'pending-upload' };

t.test('decision table, one instance', async (t) => {
  const rows: Array<[IndexedInstance | undefined, DecisionContext, unknown]> = [
    [stored, young, { kind: 'committed' }],
    [stored, late, { kind: 'committed' }],
    [{ ...stored, sopClassUid: MR }, young, { kind: 'failed', reason: 0x0119 }],
    [{ ...spooled, sopClassUid: MR }, young, { kind: 'failed', reason: 0x0119 }],
    [spooled, young, { kind: 'pending', why: 'uploading' }],
    [spooled, old, { kind: 'pending', why: 'uploading' }],
    [spooled, late, { kind: 'failed', reason: 0x0110 }],
    [undefined, young, { kind: 'pending', why: 'not-yet-received' }],
    [undefined, old, { kind: 'failed', reason: 0x0112 }],
    [undefined, { ...young, pastDeadline: true }, { kind: 'failed', reason: 0x0112 }],
  ];
  for (const [found, ctx, want] of rows) {
    t.same(decideInstance(ref, found, ctx), want, JSON.stringify([found, ctx]));
  }
});

t.test('a transaction reports only once nothing is pending', async (t) => {
  const refs = [
    ref,
    { sopClassUid: CT, sopInstanceUid: '1.2.4' },
    { sopClassUid: CT, sopInstanceUid: '9.9' },
  ];
  const found = new Map([
    ['1.2.3', stored],
    ['1.2.4', spooled],
  ]);
  t.same(decideTransaction(refs, found, old), { kind: 'pending', pending: 1 });
  found.set('1.2.4', stored);
  t.same(decideTransaction(refs, found, old), {
    kind: 'report',
    committed: refs.slice(0, 2),
    failed: [{ ...refs[2]!, failureReason: FailureReason.NoSuchObjectInstance }],
  });
  t.same(decideTransaction(refs.slice(0, 2), found, young), {
    kind: 'report',
    committed: refs.slice(0, 2),
    failed: [],
  });
});

t.test('N-ACTION-RQ checks', async (t) => {
  const command = {
    commandField: CommandField.NActionRq,
    hasDataset: true,
    messageId: 1,
    requestedSopClassUid: STORAGE_COMMITMENT_SOP_CLASS,
    requestedSopInstanceUid: STORAGE_COMMITMENT_SOP_INSTANCE,
    actionTypeId: 1,
  };
  const ds = (transactionUid: string, references = [ref]): Buffer =>
    encodeCommitmentRequest({ transactionUid, references }, EXPLICIT_VR_LE);
  t.same(checkCommitmentRequest(command, ds('2.25.1'), EXPLICIT_VR_LE), {
    ok: true,
    transactionUid: '2.25.1',
    references: [ref],
  });
  const status = (c: typeof command, d: Buffer, ts = EXPLICIT_VR_LE): number | undefined => {
    const r = checkCommitmentRequest(c, d, ts);
    return r.ok ? undefined : r.status;
  };
  t.equal(
    status({ ...command, requestedSopClassUid: CT }, ds('2.25.1')),
    NActionStatus.NoSuchSopClass,
  );
  t.equal(status({ ...command, requestedSopInstanceUid: 'x.y' }, ds('2.25.1')), 0x0117);
  t.equal(status({ ...command, requestedSopInstanceUid: '1.2.3' }, ds('2.25.1')), 0x0112);
  t.equal(status({ ...command, actionTypeId: 2 }, ds('2.25.1')), NActionStatus.NoSuchAction);
  t.equal(status({ ...command, hasDataset: false }, Buffer.alloc(0)), 0x0115);
  t.equal(status(command, ds('')), 0x0115, 'no Transaction UID');
  t.equal(status(command, ds('2.25.abc')), 0x0115, 'bad Transaction UID');
  t.equal(status(command, ds('2.25.1', [])), 0x0115, 'empty sequence');
  t.equal(status(command, ds('2.25.1', [{ sopClassUid: CT, sopInstanceUid: '1..2' }])), 0x0115);
  t.equal(status(command, ds('2.25.1').subarray(0, 20)), 0x0115, 'truncated');
  // Implicit VR bytes read as explicit are garbage: refused, not thrown.
  const implicit = encodeCommitmentRequest(
    { transactionUid: '2.25.1', references: [ref] },
    IMPLICIT_VR_LE,
  );
  t.equal(status(command, implicit, IMPLICIT_VR_LE), undefined);
});
