/**
 * The requestor (src/scu) against real peers: DCMTK storescp (C-ECHO, C-STORE from a
 * Buffer and from a stream, fragmented to a small peer max PDU; an A-ASSOCIATE-RJ; an
 * A-ABORT), the gateway itself (C-ECHO, C-STORE answered 0000 with the bytes stored, RJ
 * for a wrong called AE title; storescp accepts any called AE title), an
 * in-process acceptor built on src/dimse that answers C-FIND with Pending responses, and
 * a peer that accepts the connection and never answers (ARTIM timeout).
 */
import { mkdir, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import t, { type Test } from 'tap';
import { EXPLICIT_VR_LE, IMPLICIT_VR_LE, VERIFICATION_SOP_CLASS } from '../../src/dicom/uids.js';
import { encodeAssociateAc, parseAssociateRq } from '../../src/dimse/acse.js';
import { CommandField, encodeCommand } from '../../src/dimse/command.js';
import { MessageAssembler } from '../../src/dimse/message-assembler.js';
import {
  encodePDataTf,
  encodeReleaseRp,
  parsePDataTf,
  PduFramer,
  PduType,
} from '../../src/dimse/pdu.js';
import { isGatewayError } from '../../src/errors.js';
import { RequestorAssociation } from '../../src/scu/association.js';
import { AssociationAbortedError, AssociationRejectedError } from '../../src/scu/errors.js';
import { instanceKey } from '../../src/store/keys.js';
import { startStorescp } from '../helpers/dcmtk.js';
import { startTestGateway } from '../helpers/gateway.js';
import { generateStudy } from '../helpers/gen-study.js';
import { startTestPostgres } from '../helpers/pg.js';
import { echo, openScu, store, tryAssociate } from '../helpers/scu.js';
import { checkStored, datasetOf, until } from '../helpers/verify.js';

const CT = '1.2.840.10008.5.1.4.1.1.2';
const FIND = '1.2.840.10008.5.1.4.1.2.2.1';
const contexts = [
  { abstractSyntaxUid: CT, transferSyntaxUids: [EXPLICIT_VR_LE] },
  { abstractSyntaxUid: VERIFICATION_SOP_CLASS, transferSyntaxUids: [IMPLICIT_VR_LE] },
];

const work = await mkdtemp(join(tmpdir(), 'gw-scu-'));
t.teardown(() => rm(work, { recursive: true, force: true }));
const study = await generateStudy(join(work, 'study'), {
  instances: 2,
  rows: 64,
  cols: 64,
  seed: 17,
});
const [first, second] = study.files as [(typeof study.files)[0], (typeof study.files)[0]];
const ds1 = datasetOf(await readFile(first.path));
const ds2 = datasetOf(await readFile(second.path));

/** A stream of `b` in chunks of odd, varying sizes. */
function chunked(b: Buffer): Readable {
  const parts: Buffer[] = [];
  for (let off = 0, n = 1; off < b.length; off += n, n = (n * 7 + 3) % 9000) {
    parts.push(b.subarray(off, off + n));
  }
  return Readable.from(parts);
}

t.test('DCMTK storescp: C-ECHO, C-STORE from a Buffer and a stream, release', async (t) => {
  const out = join(work, 'storescp');
  await mkdir(out);
  // -pdu 4096: every data set goes out in many PDVs of at most 4090 bytes.
  const scp = await startStorescp({
    aet: 'STORESCP',
    outDir: out,
    extraArgs: ['+xa', '-pdu', '4096'],
  });
  t.teardown(() => scp.stop());
  const assoc = await openScu(t, {
    port: scp.port,
    callingAeTitle: 'GWSCU',
    calledAeTitle: 'STORESCP',
    contexts,
  });
  t.equal(assoc.accepted.size, 2, 'both contexts accepted');
  t.equal(await echo(assoc), 0, 'C-ECHO 0000');
  t.equal(await store(assoc, CT, first.sopInstanceUid, ds1), 0, 'C-STORE from a Buffer: 0000');
  t.equal(await store(assoc, CT, second.sopInstanceUid, chunked(ds2)), 0, 'from a stream: 0000');
  await assoc.release();
  const files = await readdir(out);
  t.equal(files.length, 2, 'two files written');
  for (const [f, ds] of [
    [first, ds1],
    [second, ds2],
  ] as const) {
    const name = files.find((n) => n.endsWith(f.sopInstanceUid))!;
    t.ok(datasetOf(await readFile(join(out, name))).equals(ds), `${name}: the same data set`);
  }
});

t.test('DCMTK storescp: A-ASSOCIATE-RJ and A-ABORT reach the caller', async (t) => {
  const out = join(work, 'refuse');
  await mkdir(out);
  const refusing = await startStorescp({ aet: 'STORESCP', outDir: out, extraArgs: ['--refuse'] });
  t.teardown(() => refusing.stop());
  const rj = await tryAssociate(t, {
    port: refusing.port,
    callingAeTitle: 'GWSCU',
    calledAeTitle: 'STORESCP',
    contexts,
  });
  t.match(rj, { kind: 'rejected', result: 1, source: 1 }, 'storescp --refuse: RJ');

  const aborting = await startStorescp({
    aet: 'STORESCP',
    outDir: out,
    extraArgs: ['+xa', '--abort-after'],
  });
  t.teardown(() => aborting.stop());
  const assoc = await openScu(t, {
    port: aborting.port,
    callingAeTitle: 'GWSCU',
    calledAeTitle: 'STORESCP',
    contexts,
  });
  const err = await store(assoc, CT, first.sopInstanceUid, ds1).catch((e: unknown) => e);
  t.ok(err instanceof AssociationAbortedError, 'storescp --abort-after: AssociationAbortedError');
  t.match(err, { code: 'GW_ERR_ASSOCIATION_ABORTED', abort: { source: 0 } });
  await t.rejects(echo(assoc), { code: 'GW_ERR_ASSOCIATION_ABORTED' }, 'unusable afterwards');
});

t.test('a peer that accepts the connection and never answers: GW_ERR_TIMEOUT', async (t) => {
  const received: Buffer[] = [];
  const silent = net.createServer((s) => {
    s.on('data', (b: Buffer) => received.push(b));
    s.on('error', () => {});
  });
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
  t.teardown(() => silent.close());
  const port = (silent.address() as net.AddressInfo).port;
  const started = Date.now();
  const err = await RequestorAssociation.open({
    host: '127.0.0.1',
    port,
    callingAeTitle: 'GWSCU',
    calledAeTitle: 'SILENT',
    contexts,
    timeouts: { associateMs: 300, releaseMs: 300 },
  }).catch((e: unknown) => e);
  t.ok(isGatewayError(err, 'GW_ERR_TIMEOUT'), `GW_ERR_TIMEOUT: ${String(err)}`);
  t.ok(Date.now() - started < 3_000, 'after the associate timeout, not later');
  // PS3.8 Evt15 in Sta5 -> AA-1: an A-ABORT follows the RQ.
  await until(
    async () => {
      const pdus = new PduFramer({ maxPDataLength: 1 << 20, maxOtherLength: 1 << 20 }).push(
        Buffer.concat(received),
      );
      return pdus.map((p) => p.type).join() === `${PduType.AssociateRq},${PduType.Abort}`;
    },
    3_000,
    'RQ then A-ABORT at the silent peer',
  );
  const unreachable = await RequestorAssociation.open({
    host: '127.0.0.1',
    port: 1,
    callingAeTitle: 'GWSCU',
    calledAeTitle: 'NOONE',
    contexts,
  }).catch((e: unknown) => e);
  t.ok(isGatewayError(unreachable, 'GW_ERR_PEER_UNREACHABLE'), 'connection refused');
});

t.test('C-FIND: Pending responses with identifiers, then the final one', async (t) => {
  const port = await fakeFindScp(t, 3);
  const assoc = await openScu(t, {
    port,
    callingAeTitle: 'GWSCU',
    calledAeTitle: 'QR',
    contexts: [{ abstractSyntaxUid: FIND, transferSyntaxUids: [EXPLICIT_VR_LE] }],
  });
  const pc = assoc.contextFor(FIND)!;
  const seen: Array<{ status?: number; dataset?: string }> = [];
  const query = Buffer.from('query identifier');
  for await (const rsp of assoc.request(
    pc,
    { commandField: CommandField.CFindRq, affectedSopClassUid: FIND, priority: 0 },
    query,
  )) {
    seen.push({ status: rsp.command.status, dataset: rsp.dataset?.toString() });
  }
  t.same(seen, [
    { status: 0xff00, dataset: 'match 0 of query identifier' },
    { status: 0xff00, dataset: 'match 1 of query identifier' },
    { status: 0xff00, dataset: 'match 2 of query identifier' },
    { status: 0, dataset: undefined },
  ]);
  await assoc.release();
});

t.test('an out-of-place PDU from the acceptor: A-ABORT (AA-8), GW_ERR_PROTOCOL', async (t) => {
  const received: Buffer[] = [];
  const server = net.createServer((s) => {
    const framer = new PduFramer({ maxPDataLength: 1 << 20, maxOtherLength: 1 << 20 });
    let ac: Buffer | undefined;
    s.on('error', () => {});
    s.on('data', (chunk: Buffer) => {
      received.push(chunk);
      for (const pdu of framer.push(chunk)) {
        // The AC; then the same AC again in place of the C-ECHO-RSP.
        if (pdu.type === PduType.AssociateRq) ac = acceptAll(parseAssociateRq(pdu.raw));
        if (pdu.type === PduType.AssociateRq || pdu.type === PduType.PDataTf) s.write(ac!);
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => server.close());
  const port = (server.address() as net.AddressInfo).port;
  const assoc = await openScu(t, { port, callingAeTitle: 'GWSCU', calledAeTitle: 'ODD', contexts });
  const err = await echo(assoc).catch((e: unknown) => e);
  t.ok(isGatewayError(err, 'GW_ERR_PROTOCOL'), `GW_ERR_PROTOCOL: ${String(err)}`);
  await until(
    async () => {
      const pdus = new PduFramer({ maxPDataLength: 1 << 20, maxOtherLength: 1 << 20 }).push(
        Buffer.concat(received),
      );
      const last = pdus.at(-1);
      return last?.type === PduType.Abort && last.raw[8] === 2 && last.raw[9] === 2;
    },
    3_000,
    'A-ABORT, service-provider, unexpected PDU',
  );
});

/** An A-ASSOCIATE-AC accepting every proposed context with its first transfer syntax. */
function acceptAll(rq: ReturnType<typeof parseAssociateRq>): Buffer {
  return encodeAssociateAc({
    echo: rq.echo,
    contexts: rq.contexts.map((c) => ({
      id: c.id,
      result: 0,
      transferSyntaxUid: c.transferSyntaxUids[0],
    })),
    maxPduLength: 16384,
    implementationClassUid: '1.2.3',
    implementationVersionName: 'FAKE',
  });
}

/**
 * An acceptor in a few lines of src/dimse: accepts every context, answers each C-FIND-RQ
 * with `matches` Pending responses (each echoing the identifier) and a final 0000.
 */
async function fakeFindScp(t: Test, matches: number): Promise<number> {
  const server = net.createServer((s) => {
    const framer = new PduFramer({ maxPDataLength: 1 << 20, maxOtherLength: 1 << 20 });
    const assembler = new MessageAssembler({ isAccepted: () => true, maxCommandBytes: 1 << 16 });
    let pending: { pcId: number; messageId: number; identifier: Buffer[] } | undefined;
    s.on('error', () => {});
    s.on('data', (chunk: Buffer) => {
      for (const pdu of framer.push(chunk)) {
        if (pdu.type === PduType.AssociateRq) {
          s.write(acceptAll(parseAssociateRq(pdu.raw)));
        } else if (pdu.type === PduType.ReleaseRq) {
          s.end(encodeReleaseRp());
        } else if (pdu.type === PduType.PDataTf) {
          for (const pdv of parsePDataTf(pdu.raw)) {
            const part = assembler.push(pdv);
            if (part?.kind === 'command') {
              pending = { pcId: part.pcId, messageId: part.command.messageId!, identifier: [] };
            } else if (part?.kind === 'data') {
              pending!.identifier.push(part.fragment);
              if (part.last) answer(s, pending!, matches);
            }
          }
        }
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => server.close());
  return (server.address() as net.AddressInfo).port;
}

function answer(
  s: net.Socket,
  p: { pcId: number; messageId: number; identifier: Buffer[] },
  matches: number,
): void {
  const rsp = (status: number, hasDataset: boolean): Buffer =>
    encodeCommand({
      commandField: CommandField.CFindRsp,
      messageIdBeingRespondedTo: p.messageId,
      affectedSopClassUid: FIND,
      status,
      hasDataset,
    });
  for (let i = 0; i < matches; i++) {
    s.write(encodePDataTf(p.pcId, true, true, rsp(0xff00, true)));
    const id = Buffer.from(`match ${i} of ${Buffer.concat(p.identifier).toString()}`);
    // Split in two PDVs: the requestor must join them.
    s.write(encodePDataTf(p.pcId, false, false, id.subarray(0, 5)));
    s.write(encodePDataTf(p.pcId, false, true, id.subarray(5)));
  }
  s.write(encodePDataTf(p.pcId, true, true, rsp(0, false)));
}

t.test('the gateway: C-ECHO and C-STORE answered 0000, the bytes stored', async (t) => {
  const pgsrv = await startTestPostgres();
  t.teardown(() => pgsrv.stop());
  const gw = await startTestGateway({
    databaseUrl: pgsrv.connectionString,
    dicom: { maxPduLength: 4096 },
  });
  t.teardown(() => gw.close());
  const assoc = await openScu(t, {
    port: gw.port,
    callingAeTitle: 'GWSCU',
    calledAeTitle: 'DICOMGW',
    contexts,
  });
  t.equal(await echo(assoc), 0, 'C-ECHO 0000');
  t.equal(await store(assoc, CT, first.sopInstanceUid, chunked(ds1)), 0, 'C-STORE 0000');
  await assoc.release();
  const called = await RequestorAssociation.open({
    host: '127.0.0.1',
    port: gw.port,
    callingAeTitle: 'GWSCU',
    calledAeTitle: 'NOTUS',
    contexts,
  }).catch((e: unknown) => e);
  t.ok(called instanceof AssociationRejectedError, 'wrong called AE: AssociationRejectedError');
  t.match(called, {
    code: 'GW_ERR_ASSOCIATION_REJECTED',
    rejection: { result: 1, source: 1, reason: 7 },
  });
  const c = await checkStored(
    gw.gw.store,
    instanceKey('', first.studyUid, first.seriesUid, first.sopInstanceUid),
    first.path,
  );
  t.ok(c.datasetEqual && c.shaMetadataOk, 'the stored object holds the data set sent');
});
