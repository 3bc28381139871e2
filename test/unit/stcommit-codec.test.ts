import t from 'tap';
import {
  encodeAssociateAc,
  encodeAssociateRq,
  parseAssociateAc,
  parseAssociateRq,
} from '../../src/dimse/acse.js';
import { CommandField, encodeCommand, parseCommand } from '../../src/dimse/command.js';
import { answerRoleSelections, negotiate } from '../../src/scp/negotiation.js';
import { EXPLICIT_VR_LE, IMPLICIT_VR_LE } from '../../src/dicom/uids.js';
import {
  CommitmentDatasetError,
  decodeCommitmentReport,
  decodeCommitmentRequest,
  encodeCommitmentReport,
  encodeCommitmentRequest,
  FailureReason,
} from '../../src/stcommit/commitment-dataset.js';
import {
  STORAGE_COMMITMENT_SOP_CLASS,
  STORAGE_COMMITMENT_SOP_INSTANCE,
} from '../../src/stcommit/sop.js';

const CT = '1.2.840.10008.5.1.4.1.1.2';
const refs = [
  { sopClassUid: CT, sopInstanceUid: '1.2.3.4.5' },
  { sopClassUid: CT, sopInstanceUid: '1.2.3.4.66' },
];

t.test('N-ACTION-RQ / N-EVENT-REPORT-RQ command fields round-trip', async (t) => {
  const action = {
    commandField: CommandField.NActionRq,
    hasDataset: true,
    messageId: 9,
    requestedSopClassUid: STORAGE_COMMITMENT_SOP_CLASS,
    requestedSopInstanceUid: STORAGE_COMMITMENT_SOP_INSTANCE,
    actionTypeId: 1,
  };
  t.same(parseCommand(encodeCommand(action)), action);
  const report = {
    commandField: CommandField.NEventReportRq,
    hasDataset: true,
    messageId: 3,
    affectedSopClassUid: STORAGE_COMMITMENT_SOP_CLASS,
    affectedSopInstanceUid: STORAGE_COMMITMENT_SOP_INSTANCE,
    eventTypeId: 2,
  };
  t.same(parseCommand(encodeCommand(report)), report);
  const rsp = {
    commandField: CommandField.NActionRsp,
    hasDataset: false,
    messageIdBeingRespondedTo: 9,
    affectedSopClassUid: STORAGE_COMMITMENT_SOP_CLASS,
    affectedSopInstanceUid: STORAGE_COMMITMENT_SOP_INSTANCE,
    actionTypeId: 1,
    status: 0,
  };
  t.same(parseCommand(encodeCommand(rsp)), rsp);
});

for (const ts of [IMPLICIT_VR_LE, EXPLICIT_VR_LE]) {
  t.test(`request data set round-trips in ${ts}`, async (t) => {
    const buf = encodeCommitmentRequest({ transactionUid: '2.25.123', references: refs }, ts);
    t.same(decodeCommitmentRequest(buf, ts), { transactionUid: '2.25.123', references: refs });
  });
  t.test(`report data set round-trips in ${ts}`, async (t) => {
    const r = {
      transactionUid: '2.25.1',
      committed: [refs[0]!],
      failed: [{ ...refs[1]!, failureReason: FailureReason.NoSuchObjectInstance }],
    };
    t.same(decodeCommitmentReport(encodeCommitmentReport(r, ts), ts), r);
    const allOk = { transactionUid: '2.25.1', committed: refs, failed: [] };
    t.same(decodeCommitmentReport(encodeCommitmentReport(allOk, ts), ts), allOk);
  });
}

t.test('undefined-length sequences and items (as DCMTK may send) decode', async (t) => {
  // Implicit VR LE by hand: (0008,1195) then (0008,1199) of undefined length with one
  // undefined-length item, and an unrelated element the decoder skips.
  const el = (g: number, e: number, v: Buffer): Buffer => {
    const h = Buffer.alloc(8);
    h.writeUInt16LE(g, 0);
    h.writeUInt16LE(e, 2);
    h.writeUInt32LE(v.length, 4);
    return Buffer.concat([h, v]);
  };
  const marker = (e: number, len: number): Buffer => {
    const h = Buffer.alloc(8);
    h.writeUInt16LE(0xfffe, 0);
    h.writeUInt16LE(e, 2);
    h.writeUInt32LE(len, 4);
    return h;
  };
  const buf = Buffer.concat([
    el(0x0008, 0x0054, Buffer.from('MOD1')),
    el(0x0008, 0x1195, Buffer.from('2.25.7\0')),
    marker(0x1199, 0xffffffff).fill(0, 0, 0), // replaced below
  ]);
  const seqHead = Buffer.alloc(8);
  seqHead.writeUInt16LE(0x0008, 0);
  seqHead.writeUInt16LE(0x1199, 2);
  seqHead.writeUInt32LE(0xffffffff, 4);
  const full = Buffer.concat([
    buf.subarray(0, buf.length - 8),
    seqHead,
    marker(0xe000, 0xffffffff),
    el(0x0008, 0x1150, Buffer.from(CT)),
    el(0x0008, 0x1155, Buffer.from('1.2.3\0')),
    marker(0xe00d, 0),
    marker(0xe0dd, 0),
  ]);
  t.same(decodeCommitmentRequest(full, IMPLICIT_VR_LE), {
    transactionUid: '2.25.7',
    references: [{ sopClassUid: CT, sopInstanceUid: '1.2.3' }],
  });
});

t.test('absent parts decode as absent; broken data sets throw', async (t) => {
  t.same(decodeCommitmentRequest(Buffer.alloc(0), EXPLICIT_VR_LE), {
    transactionUid: undefined,
    references: undefined,
  });
  const good = encodeCommitmentRequest(
    { transactionUid: '2.25.9', references: refs },
    EXPLICIT_VR_LE,
  );
  // Every truncation of a valid data set is either refused or decodes to fewer parts, never throws
  // something else or loops.
  for (let n = 1; n < good.length; n++) {
    try {
      decodeCommitmentRequest(good.subarray(0, n), EXPLICIT_VR_LE);
    } catch (err) {
      if (!(err instanceof CommitmentDatasetError)) t.fail(`cut at ${n}: ${String(err)}`);
    }
  }
  t.throws(() => decodeCommitmentRequest(good.subarray(0, good.length - 3), EXPLICIT_VR_LE), {
    name: 'CommitmentDatasetError',
  });
});

t.test('SCP/SCU role selection sub-items round-trip in the RQ and AC', async (t) => {
  const roleSelections = [
    { sopClassUid: STORAGE_COMMITMENT_SOP_CLASS, scu: false, scp: true },
    { sopClassUid: '1.2.840.10008.5.1.4.1.1.2', scu: true, scp: false },
  ];
  const rq = encodeAssociateRq({
    callingAeTitle: 'GW',
    calledAeTitle: 'MOD',
    contexts: [
      {
        id: 1,
        abstractSyntaxUid: STORAGE_COMMITMENT_SOP_CLASS,
        transferSyntaxUids: [EXPLICIT_VR_LE],
      },
    ],
    maxPduLength: 16384,
    implementationClassUid: '1.2.3',
    roleSelections,
  });
  t.same(parseAssociateRq(rq).roleSelections, roleSelections);
  const ac = encodeAssociateAc({
    echo: parseAssociateRq(rq).echo,
    contexts: [{ id: 1, result: 0, transferSyntaxUid: EXPLICIT_VR_LE }],
    maxPduLength: 16384,
    implementationClassUid: '1.2.3',
    implementationVersionName: 'X',
    roleSelections: roleSelections.slice(0, 1),
  });
  t.same(parseAssociateAc(ac).roleSelections, roleSelections.slice(0, 1));
  const plain = encodeAssociateRq({
    callingAeTitle: 'GW',
    calledAeTitle: 'MOD',
    contexts: [
      { id: 1, abstractSyntaxUid: '1.2.840.10008.1.1', transferSyntaxUids: [IMPLICIT_VR_LE] },
    ],
    maxPduLength: 0,
    implementationClassUid: '1.2.3',
  });
  t.equal(parseAssociateRq(plain).roleSelections, undefined, 'absent when not proposed');
});

t.test(
  'negotiation: Storage Commitment only when enabled, only LE transfer syntaxes',
  async (t) => {
    const policy = {
      aeTitle: 'DICOMGW',
      aliases: [],
      allowedCallingAeTitles: [],
      acceptUnknownSopClasses: false,
    };
    const contexts = [
      {
        id: 1,
        abstractSyntaxUid: STORAGE_COMMITMENT_SOP_CLASS,
        transferSyntaxUids: [IMPLICIT_VR_LE, EXPLICIT_VR_LE],
      },
      {
        id: 3,
        abstractSyntaxUid: STORAGE_COMMITMENT_SOP_CLASS,
        transferSyntaxUids: ['1.2.840.10008.1.2.2'],
      },
    ];
    const off = negotiate('MOD', 'DICOMGW', contexts, policy);
    t.match(off, {
      accept: true,
      contexts: [
        { id: 1, result: 3 },
        { id: 3, result: 3 },
      ],
    });
    const on = negotiate('MOD', 'DICOMGW', contexts, { ...policy, storageCommitment: true });
    t.match(on, {
      accept: true,
      contexts: [
        { id: 1, result: 0, transferSyntaxUid: EXPLICIT_VR_LE },
        { id: 3, result: 4 },
      ],
    });
    t.same(
      answerRoleSelections(
        [
          { sopClassUid: STORAGE_COMMITMENT_SOP_CLASS, scu: true, scp: true },
          { sopClassUid: '1.2.840.10008.5.1.4.1.2.2.3', scu: false, scp: true },
        ],
        new Set([STORAGE_COMMITMENT_SOP_CLASS]),
      ),
      [{ sopClassUid: STORAGE_COMMITMENT_SOP_CLASS, scu: true, scp: false }],
      'answered for accepted classes only, SCP role refused',
    );
  },
);
