/**
 * Who may associate, and the limits on what an association may do, seen from the wire:
 *  - dicom.peers (AE title + source addresses, IPv4-mapped IPv6 included) and
 *    dicom.allowedCallingAeTitles: A-ASSOCIATE-RJ permanent, service-user, reason 3; a wrong
 *    called AE title: reason 7 (PS3.8 9.3.4, Table 9-21);
 *  - association limits: transient RJ, presentation-service-provider, local-limit-exceeded;
 *  - ARTIM and idle timeouts (PS3.8 9.1.5), PDU size (PS3.8 D.1), context count and IDs
 *    (PS3.8 9.3.2.2), command set size, unexpected PDUs (PS3.8 9.2 state table).
 */
import { readFile, rm, mkdtemp } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import type { ProposedContextRq } from '../../src/dimse/acse.js';
import { encodePDataTf } from '../../src/dimse/pdu.js';
import { echoscu } from '../helpers/dcmtk.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { generateStudy } from '../helpers/gen-study.js';
import { startTestPostgres } from '../helpers/pg.js';
import { storePdus } from '../helpers/fuzz-cases.js';
import { rawAssociateRq, RawScu, RELEASE_RQ, storeCommand } from '../helpers/raw-scu.js';
import { echo, tryAssociate, type Outcome } from '../helpers/scu.js';
import { datasetOf, until } from '../helpers/verify.js';

const CT = '1.2.840.10008.5.1.4.1.1.2';
const ELE = '1.2.840.10008.1.2.1';
const VERIFICATION = '1.2.840.10008.1.1';
const contexts: ProposedContextRq[] = [
  { id: 1, abstractSyntaxUid: CT, transferSyntaxUids: [ELE] },
  { id: 3, abstractSyntaxUid: VERIFICATION, transferSyntaxUids: ['1.2.840.10008.1.2'] },
];

/** The real requestor, proposing `contexts`, as `calling` from `host`. */
function associate(
  t: Test,
  port: number,
  calling: string,
  called = 'DICOMGW',
  host = '127.0.0.1',
): Promise<Outcome> {
  return tryAssociate(t, { host, port, callingAeTitle: calling, calledAeTitle: called, contexts });
}

async function released(o: Outcome): Promise<void> {
  if (o.kind === 'accepted') await o.assoc.release();
}

const pgsrv = await startTestPostgres();
t.teardown(() => pgsrv.stop());
const work = await mkdtemp(join(tmpdir(), 'gw-access-'));
t.teardown(() => rm(work, { recursive: true, force: true }));
const study = await generateStudy(join(work, 'study'), {
  instances: 1,
  rows: 16,
  cols: 16,
  seed: 5,
});
const file = study.files[0]!;
const dataset = datasetOf(await readFile(file.path));

/** A raw SCU destroyed when test `tt` ends; waits until no association of earlier tests is open. */
async function connect(tt: Test, port: number, host = '127.0.0.1'): Promise<RawScu> {
  const scu = await RawScu.connect(host, port);
  tt.teardown(() => scu.destroy());
  return scu;
}

/** Earlier tests' associations are uncounted once their sockets closed on the gateway side. */
async function noAssociations(g: TestGateway): Promise<void> {
  await until(async () => g.gw.scp.activeAssociations === 0, 5_000, 'associations to close');
}

t.test('dicom.peers: AE titles, each from its addresses', async (t) => {
  // Listening on :: (dual stack): an IPv4 client is seen as ::ffff:127.0.0.1.
  const gw = await startTestGateway({
    databaseUrl: pgsrv.connectionString,
    dicom: {
      host: '::',
      peers: [
        { aeTitle: 'CT1', addresses: ['127.0.0.0/8'] },
        { aeTitle: 'FARAWAY', addresses: ['10.0.0.0/8', 'fd00::/8'] },
        { aeTitle: 'ANYWHERE', addresses: [] },
      ],
    },
  });
  t.teardown(() => gw.close());
  const ok = await associate(t, gw.port, 'CT1');
  t.equal(ok.kind, 'accepted', 'CT1 from 127.0.0.1 (seen as ::ffff:127.0.0.1) matches 127.0.0.0/8');
  await released(ok);
  const v6 = await associate(t, gw.port, 'CT1', 'DICOMGW', '::1');
  t.match(v6, { kind: 'rejected', result: 1, source: 1, reason: 3 }, 'CT1 from ::1 is not 127/8');
  const anywhere = await associate(t, gw.port, 'ANYWHERE', 'DICOMGW', '::1');
  t.equal(anywhere.kind, 'accepted', 'a peer without addresses may come from anywhere');
  await released(anywhere);
  const unknown = await associate(t, gw.port, 'MR1');
  t.match(unknown, { kind: 'rejected', result: 1, source: 1, reason: 3 }, 'unknown calling AE');
  const far = await associate(t, gw.port, 'FARAWAY');
  t.match(far, { kind: 'rejected', result: 1, source: 1, reason: 3 }, 'known AE, wrong address');
  const called = await associate(t, gw.port, 'CT1', 'NOTUS');
  t.match(called, { kind: 'rejected', result: 1, source: 1, reason: 7 }, 'wrong called AE');
  const whys = gw.logs.filter((l) => l.event === 'association.rejected').map((l) => l.why);
  t.match(whys, [/from address ::1/, /not a configured peer/, /FARAWAY.*127\.0\.0\.1/, /NOTUS/]);

  const echo = await echoscu({
    host: '127.0.0.1',
    port: gw.port,
    callingAet: 'CT1',
    calledAet: 'DICOMGW',
  });
  t.equal(echo.code, 0, 'echoscu as CT1');
  const refused = await echoscu({
    host: '127.0.0.1',
    port: gw.port,
    callingAet: 'X',
    calledAet: 'DICOMGW',
  });
  t.not(refused.code, 0, 'echoscu as an unknown AE is refused');
  t.match(refused.stderr + refused.stdout, /Calling AE Title Not Recognized/i);
});

t.test('dicom.allowedCallingAeTitles still works alone', async (t) => {
  const gw = await startTestGateway({
    databaseUrl: pgsrv.connectionString,
    dicom: { allowedCallingAeTitles: ['PACS'] },
  });
  t.teardown(() => gw.close());
  const pacs = await associate(t, gw.port, 'PACS');
  t.equal(pacs.kind, 'accepted');
  await released(pacs);
  t.match(await associate(t, gw.port, 'CT1'), { kind: 'rejected', reason: 3 });
});

// One gateway for the limits: small numbers so they are reached quickly.
const gw = await startTestGateway({
  databaseUrl: pgsrv.connectionString,
  dicom: {
    maxAssociations: 3,
    maxAssociationsPerAe: 2,
    idleTimeoutSeconds: 1,
    maxPduLength: 4096,
  },
});
t.teardown(() => gw.close());

t.test(
  'ARTIM: a connection that sends nothing, or trickles, is closed (PS3.8 9.1.5)',
  async (t) => {
    const silent = await connect(t, gw.port);
    const started = Date.now();
    await silent.waitClosed(5_000);
    const ms = Date.now() - started;
    t.ok(ms >= 900 && ms < 3_000, `closed after ${ms} ms (idleTimeoutSeconds: 1)`);
    t.equal(await silent.next(100), undefined, 'no PDU: AA-2 closes the transport only');

    const trickle = await connect(t, gw.port);
    const rq = rawAssociateRq('SLOW', 'DICOMGW', contexts);
    let sent = 0;
    // The stimulus, not a synchronisation: one byte every 200 ms, never a whole RQ in time.
    const timer = setInterval(() => trickle.write(rq.subarray(sent, ++sent)), 200);
    t.teardown(() => clearInterval(timer));
    const t0 = Date.now();
    await trickle.waitClosed(5_000);
    clearInterval(timer);
    t.ok(Date.now() - t0 < 2_000, 'trickling bytes does not extend ARTIM');
  },
);

t.test('idle established association: A-ABORT after the idle timeout', async (t) => {
  const idle = await associate(t, gw.port, 'IDLE');
  if (idle.kind !== 'accepted') throw new Error(`IDLE: ${idle.kind}`);
  t.equal(await echo(idle.assoc), 0, 'echo resets the idle timer');
  const end = await idle.assoc.ended(5_000);
  t.match(end, { code: 'GW_ERR_ASSOCIATION_ABORTED', abort: { source: 2, reason: 0 } }, 'A-ABORT');
});

t.test('association limits: transient reject, local-limit-exceeded (PS3.8 9.3.4)', async (t) => {
  await noAssociations(gw);
  const open: Outcome[] = [];
  for (const ae of ['A1', 'A1', 'A2']) {
    const o = await associate(t, gw.port, ae);
    t.equal(o.kind, 'accepted', `${ae} accepted`);
    open.push(o);
  }
  const limitRj = { kind: 'rejected', result: 2, source: 3, reason: 2 };
  t.match(await associate(t, gw.port, 'A3'), limitRj, 'max 3');
  await released(open.pop()!);
  t.match(await associate(t, gw.port, 'A1'), limitRj, 'A1: 2');
  // The released association is uncounted once its socket closed: poll for the slot.
  await until(
    async () => (await associate(t, gw.port, 'A3')).kind === 'accepted',
    5_000,
    'a free association slot',
  );
  for (const o of open) await released(o);
  t.ok(
    gw.logs.some(
      (l) => l.event === 'association.rejected' && /maxAssociationsPerAe/.test(String(l.why)),
    ),
  );
});

t.test('A-ASSOCIATE-RQ checks (PS3.8 9.3.2, 9.3.4)', async (t) => {
  await noAssociations(gw);
  const many = Array.from({ length: 129 }, (_, i) => ({
    id: (2 * i + 1) & 0xff,
    abstractSyntaxUid: CT,
    transferSyntaxUids: [ELE],
  }));
  const tooMany = await (await connect(t, gw.port)).associate('MANY', 'DICOMGW', many);
  t.match(tooMany, { kind: 'aborted', source: 0 }, '129 contexts: A-ABORT (AA-1)');
  const max = await (await connect(t, gw.port)).associate('MAX', 'DICOMGW', many.slice(0, 128));
  t.equal(max.kind === 'accepted' && max.contexts.size, 128, '128 contexts: accepted');
  const even = await (
    await connect(t, gw.port)
  ).associate('EVEN', 'DICOMGW', [{ ...contexts[0]!, id: 2 }]);
  t.match(even, { kind: 'aborted' }, 'even context ID');
  const desc = await connect(t, gw.port);
  const ac = await desc.associate('DESC', 'DICOMGW', [contexts[1]!, contexts[0]!]);
  t.ok(ac.kind === 'accepted' && ac.contexts.get(1)?.result === 0, 'IDs 3, 1 answered as 3, 1');
  desc.write(Buffer.concat(storePdus(1, file.sopInstanceUid, dataset)));
  t.equal((await desc.readResponse()).status, 0, 'store on context 1');
  desc.write(RELEASE_RQ);
  t.equal((await desc.next())?.type, 6, 'A-RELEASE-RP');

  const version = rawAssociateRq('V2', 'DICOMGW', contexts);
  version.writeUInt16BE(2, 6);
  t.match(await (await connect(t, gw.port)).associateRaw(version), {
    kind: 'rejected',
    result: 1,
    source: 2,
    reason: 2,
  });
  const appCtx = rawAssociateRq('AC', 'DICOMGW', contexts);
  appCtx.write('9', 78 + 20); // last digit of 1.2.840.10008.3.1.1.1
  t.match(await (await connect(t, gw.port)).associateRaw(appCtx), {
    kind: 'rejected',
    source: 1,
    reason: 2,
  });
});

t.test('PDU and message limits: A-ABORT, the gateway stays up', async (t) => {
  await noAssociations(gw);
  const big = await connect(t, gw.port);
  await big.associate('BIG', 'DICOMGW', contexts);
  big.write(encodePDataTf(1, false, false, Buffer.alloc(4096)));
  const abort = await big.next();
  t.same([abort?.type, abort?.raw[8], abort?.raw[9]], [7, 2, 6], 'P-DATA over maxPduLength');

  const header = await connect(t, gw.port);
  await header.associate('HDR', 'DICOMGW', contexts);
  header.write(Buffer.from([4, 0, 0xff, 0xff, 0xff, 0xff]));
  t.equal((await header.next())?.type, 7, '4 GiB PDU refused from its header alone');

  const cmd = await connect(t, gw.port);
  await cmd.associate('CMD', 'DICOMGW', contexts);
  for (let i = 0; i < 20; i++) cmd.write(encodePDataTf(1, true, false, Buffer.alloc(4000)));
  t.equal((await cmd.next())?.type, 7, 'command set over 64 KiB');

  const order = await connect(t, gw.port);
  await order.associate('ORDER', 'DICOMGW', contexts);
  order.write(
    Buffer.concat([
      encodePDataTf(1, true, true, storeCommand(1, CT, file.sopInstanceUid)),
      encodePDataTf(1, false, true, dataset),
      Buffer.from([0xff, 0, 0, 0, 0, 0]),
    ]),
  );
  t.equal((await order.readResponse()).status, 0, 'a whole C-STORE before garbage is answered');
  t.equal((await order.next())?.type, 7, 'then A-ABORT for the garbage');

  const second = await connect(t, gw.port);
  await second.associate('TWICE', 'DICOMGW', contexts);
  second.write(rawAssociateRq('TWICE', 'DICOMGW', contexts));
  const again = await second.next();
  t.same([again?.type, again?.raw[8], again?.raw[9]], [7, 2, 2], 'second RQ: unexpected PDU');

  const early = await connect(t, gw.port);
  early.write(encodePDataTf(1, true, true, storeCommand(1, CT, '1.2.3')));
  const first = await early.next();
  t.same([first?.type, first?.raw[8]], [7, 0], 'P-DATA before A-ASSOCIATE-RQ: AA-1');
  early.write(RELEASE_RQ);

  const alive = await echoscu({
    host: '127.0.0.1',
    port: gw.port,
    callingAet: 'AFTER',
    calledAet: 'DICOMGW',
  });
  t.equal(alive.code, 0, 'still serving');
  // Connections over twice maxAssociations are closed at once (a bound on sockets).
  const sockets = await Promise.all(
    Array.from(
      { length: 7 },
      () =>
        new Promise<net.Socket>((resolve) => {
          const s = net.connect(gw.port, '127.0.0.1', () => resolve(s));
          s.on('error', () => {});
        }),
    ),
  );
  t.teardown(() => sockets.forEach((s) => s.destroy()));
  await until(
    async () => gw.logs.some((l) => l.event === 'connection.refused'),
    5_000,
    'a connection over the cap to be refused',
  );
});
