/**
 * The Storage Commitment SCP on the wire, with the project's own codecs as the requester
 * (test/helpers/raw-scu.ts): role selection answered in the A-ASSOCIATE-AC, malformed N-ACTION
 * requests refused with their PS3.7 status, and a report sent on the requester's own association
 * when it is still open (fs store: the instances are final at once).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { encodeAssociateRq, parseAssociateAc } from '../../src/dimse/acse.js';
import {
  CommandField,
  encodeCommand,
  parseCommand,
  type DimseCommand,
} from '../../src/dimse/command.js';
import { fragmentPData, parsePDataTf, PduType } from '../../src/dimse/pdu.js';
import { EXPLICIT_VR_LE } from '../../src/dicom/uids.js';
import {
  decodeCommitmentReport,
  encodeCommitmentRequest,
  type SopReference,
} from '../../src/stcommit/commitment-dataset.js';
import {
  STORAGE_COMMITMENT_SOP_CLASS as SC,
  STORAGE_COMMITMENT_SOP_INSTANCE as SC_INSTANCE,
} from '../../src/stcommit/sop.js';
import { storescu } from '../helpers/dcmtk.js';
import { startTestGateway } from '../helpers/gateway.js';
import { generateStudy } from '../helpers/gen-study.js';
import { startTestPostgres } from '../helpers/pg.js';
import { RawScu, RELEASE_RQ } from '../helpers/raw-scu.js';
import { query } from '../helpers/verify.js';

const pgsrv = await startTestPostgres();
t.teardown(() => pgsrv.stop());
const gw = await startTestGateway({
  databaseUrl: pgsrv.connectionString,
  extra: { storageCommitment: { enabled: true, unknownGraceSeconds: 0, recheckSeconds: 0.2 } },
});
t.teardown(() => gw.close());
const work = await mkdtemp(join(tmpdir(), 'gw-stcommit-scp-'));
t.teardown(() => rm(work, { recursive: true, force: true }));

const study = await generateStudy(join(work, 'study'), {
  series: 1,
  instances: 3,
  rows: 16,
  cols: 16,
  seed: 5,
});
const sent = await storescu({
  host: '127.0.0.1',
  port: gw.port,
  callingAet: 'MODALITY',
  calledAet: 'DICOMGW',
  files: [join(work, 'study')],
});
if (sent.code !== 0) throw new Error('storescu failed');
const refs: SopReference[] = study.files.map((f) => ({
  sopClassUid: f.sopClassUid,
  sopInstanceUid: f.sopInstanceUid,
}));

/** Associates proposing Storage Commitment with DCMTK's usual SCU+SCP role selection. */
async function associate(t: Test): Promise<RawScu> {
  const scu = await RawScu.connect('127.0.0.1', gw.port);
  t.teardown(() => scu.destroy());
  scu.write(
    encodeAssociateRq({
      callingAeTitle: 'MODALITY',
      calledAeTitle: 'DICOMGW',
      contexts: [{ id: 1, abstractSyntaxUid: SC, transferSyntaxUids: [EXPLICIT_VR_LE] }],
      maxPduLength: 16384,
      implementationClassUid: '1.2.3.4',
      roleSelections: [{ sopClassUid: SC, scu: true, scp: true }],
    }),
  );
  const ac = await scu.next();
  t.equal(ac?.type, PduType.AssociateAc, 'accepted');
  const parsed = parseAssociateAc(ac!.raw);
  t.match(parsed.contexts, [{ id: 1, result: 0, transferSyntaxUid: EXPLICIT_VR_LE }]);
  t.same(
    parsed.roleSelections,
    [{ sopClassUid: SC, scu: true, scp: false }],
    'SCU role accepted, SCP refused',
  );
  return scu;
}

function nAction(
  scu: RawScu,
  messageId: number,
  dataset: Buffer,
  fields: Partial<DimseCommand> = {},
): void {
  const command = encodeCommand({
    commandField: CommandField.NActionRq,
    messageId,
    requestedSopClassUid: SC,
    requestedSopInstanceUid: SC_INSTANCE,
    actionTypeId: 1,
    hasDataset: true,
    ...fields,
  });
  for (const p of fragmentPData(1, true, command, 16000)) scu.write(p);
  for (const p of fragmentPData(1, false, dataset, 16000)) scu.write(p);
}

/** The next whole message: its command and data set (if any). */
async function readMessage(scu: RawScu): Promise<{ command: DimseCommand; dataset?: Buffer }> {
  const cmd: Buffer[] = [];
  const data: Buffer[] = [];
  let command: DimseCommand | undefined;
  for (;;) {
    const pdu = await scu.next();
    if (!pdu || pdu.type !== PduType.PDataTf) throw new Error(`expected P-DATA, got ${pdu?.type}`);
    for (const pdv of parsePDataTf(pdu.raw)) {
      if (pdv.isCommand) {
        cmd.push(pdv.value);
        if (pdv.isLast) {
          command = parseCommand(Buffer.concat(cmd));
          if (!command.hasDataset) return { command };
        }
      } else {
        data.push(pdv.value);
        if (pdv.isLast) return { command: command!, dataset: Buffer.concat(data) };
      }
    }
  }
}

const ds = (transactionUid: string, references: SopReference[]): Buffer =>
  encodeCommitmentRequest({ transactionUid, references }, EXPLICIT_VR_LE);

t.test('malformed N-ACTION requests get their failure status, nothing recorded', async (t) => {
  const scu = await associate(t);
  const cases: Array<[string, Buffer, Partial<DimseCommand>, number]> = [
    ['empty Referenced SOP Sequence', ds('2.25.71', []), {}, 0x0115],
    ['no Transaction UID', ds('', refs), {}, 0x0115],
    [
      'bad Referenced SOP Instance UID',
      ds('2.25.72', [{ sopClassUid: refs[0]!.sopClassUid, sopInstanceUid: '1.2.x' }]),
      {},
      0x0115,
    ],
    ['unknown Action Type', ds('2.25.73', refs), { actionTypeId: 7 }, 0x0123],
    ['other SOP instance', ds('2.25.74', refs), { requestedSopInstanceUid: '1.2.3' }, 0x0112],
  ];
  let id = 1;
  for (const [what, dataset, fields, status] of cases) {
    nAction(scu, id, dataset, fields);
    const rsp = await readMessage(scu);
    t.equal(rsp.command.commandField, CommandField.NActionRsp, what);
    t.equal(rsp.command.messageIdBeingRespondedTo, id++);
    t.equal(rsp.command.status, status, `${what}: 0x${status.toString(16)}`);
  }
  const rows = await query(pgsrv.connectionString, 'SELECT 1 FROM commitment_transactions');
  t.equal(rows.length, 0, 'no transaction recorded');
  scu.write(RELEASE_RQ);
  t.equal((await scu.next())?.type, PduType.ReleaseRp);
});

t.test('the report comes on the same association while it is open', async (t) => {
  const scu = await associate(t);
  const missing = {
    sopClassUid: refs[0]!.sopClassUid,
    sopInstanceUid: '1.2.826.0.1.3680043.2.1143.1.2',
  };
  nAction(scu, 9, ds('2.25.80', [...refs, missing]));
  const rsp = await readMessage(scu);
  t.match(rsp.command, {
    commandField: CommandField.NActionRsp,
    messageIdBeingRespondedTo: 9,
    status: 0,
    affectedSopClassUid: SC,
    affectedSopInstanceUid: SC_INSTANCE,
    actionTypeId: 1,
  });
  const report = await readMessage(scu);
  t.match(report.command, {
    commandField: CommandField.NEventReportRq,
    affectedSopClassUid: SC,
    affectedSopInstanceUid: SC_INSTANCE,
    eventTypeId: 2,
  });
  const body = decodeCommitmentReport(report.dataset!, EXPLICIT_VR_LE);
  t.equal(body.transactionUid, '2.25.80');
  t.same(
    body.committed.map((r) => r.sopInstanceUid).sort(),
    refs.map((r) => r.sopInstanceUid).sort(),
  );
  t.same(body.failed, [{ ...missing, failureReason: 0x0112 }]);
  for (const p of fragmentPData(
    1,
    true,
    encodeCommand({
      commandField: CommandField.NEventReportRsp,
      messageIdBeingRespondedTo: report.command.messageId!,
      affectedSopClassUid: SC,
      affectedSopInstanceUid: SC_INSTANCE,
      eventTypeId: 2,
      status: 0,
      hasDataset: false,
    }),
    16000,
  ))
    scu.write(p);
  const deadline = Date.now() + 10_000;
  let rows: Array<{ state: string }> = [];
  while (Date.now() < deadline) {
    rows = await query(
      pgsrv.connectionString,
      "SELECT state FROM commitment_transactions WHERE transaction_uid = '2.25.80'",
    );
    if (rows[0]?.state === 'reported') break;
    await new Promise((r) => setTimeout(r, 50));
  }
  t.same(rows, [{ state: 'reported' }]);
  t.ok(
    gw.logs.some((l) => l.event === 'commitment.reported' && l.via === 'same-association'),
    'logged as sent on the same association',
  );
  scu.write(RELEASE_RQ);
  t.equal((await scu.next())?.type, PduType.ReleaseRp);
});
