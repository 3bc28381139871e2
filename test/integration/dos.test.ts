/**
 * Denial of service by holding resources (issue: hardening, items 2-4). Each attack runs
 * against a gateway process with small limits while another, legitimate association does
 * C-ECHOs; the test asserts what that association experiences, and that the attack is cut
 * off. The gateway runs as its own process so that its memory (VmRSS) is measured alone.
 *
 * Before the fix: responses were buffered without limit for a peer that does not read;
 * 2 x maxAssociations idle connections locked every new connection out until ARTIM (the idle
 * timeout); one byte now and then kept an association alive; one AE title could take every
 * association slot.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { startGatewayProcess } from '../helpers/gateway-process.js';
import { freePort } from '../helpers/net.js';
import { startTestPostgres } from '../helpers/pg.js';
import { echoCommand, echoPdu, RawScu } from '../helpers/raw-scu.js';
import { echo, tryAssociate } from '../helpers/scu.js';
import { makeTestCerts } from '../helpers/tls-certs.js';

const VERIFICATION = '1.2.840.10008.1.1';
const EXPLICIT_LE = '1.2.840.10008.1.2.1';
const MIB = 1024 * 1024;
const PDU = 64 * 1024;
const IDLE_S = 2;

const pgsrv = await startTestPostgres();
t.teardown(() => pgsrv.stop());
const certs = await makeTestCerts();
t.teardown(() => certs.remove());
const tlsPort = await freePort();
const work = await mkdtemp(join(tmpdir(), 'gw-dos-'));
t.teardown(() => rm(work, { recursive: true, force: true }));
const gw = await startGatewayProcess(
  {
    dicom: {
      aeTitle: 'DICOMGW',
      host: '127.0.0.1',
      port: 0,
      maxPduLength: PDU,
      maxAssociations: 4,
      // Equal to maxAssociations: the gateway still leaves a slot to the other AE titles.
      maxAssociationsPerAe: 4,
      idleTimeoutSeconds: IDLE_S,
      // Longer than the test: idle connections are held, not timed out, during it.
      associationRequestTimeoutSeconds: 60,
      maxPendingConnections: 6,
      maxPendingConnectionsPerAddress: 3,
      // Below the responses to one full PDU of C-ECHO-RQs (~1.4 x its size).
      maxUnsentBytes: PDU,
      // A TLS listener that asks for no client certificate: its connections count the same.
      tls: { port: tlsPort, certFile: certs.server.cert, keyFile: certs.server.key },
    },
    index: { type: 'postgres', url: pgsrv.connectionString },
    store: { type: 'fs', root: join(work, 'objects') },
    admin: { enabled: false },
    log: { level: 'info' },
  },
  join(work, 'config.json'),
);
t.teardown(() => {
  gw.child.kill('SIGKILL');
});

const contexts = [{ id: 1, abstractSyntaxUid: VERIFICATION, transferSyntaxUids: [EXPLICIT_LE] }];

/** A legitimate association's C-ECHO from AE `LEGIT`: its status and duration. */
async function legitEcho(tt: Test): Promise<{ status?: number; ms: number }> {
  const t0 = performance.now();
  const o = await tryAssociate(tt, {
    port: gw.port,
    callingAeTitle: 'LEGIT',
    calledAeTitle: 'DICOMGW',
    contexts: [{ abstractSyntaxUid: VERIFICATION, transferSyntaxUids: [EXPLICIT_LE] }],
  });
  if (o.kind !== 'accepted') return { ms: performance.now() - t0 };
  const status = await echo(o.assoc);
  await o.assoc.release();
  return { status, ms: performance.now() - t0 };
}

async function associated(calling: string): Promise<RawScu> {
  const scu = await RawScu.connect('127.0.0.1', gw.port);
  const a = await scu.associate(calling, 'DICOMGW', contexts);
  if (a.kind !== 'accepted') throw new Error(`${calling}: ${a.kind}`);
  return scu;
}

/** Resident set size of the gateway process in bytes (/proc/PID/status). */
async function gatewayRss(): Promise<number> {
  const status = await readFile(`/proc/${gw.child.pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? NaN) * 1024;
}

t.test('a peer that does not read its responses is cut off, memory bounded', async (t) => {
  // Warmed up first: the code paths of an association are loaded before the baseline.
  t.equal((await legitEcho(t)).status, 0, 'a legitimate C-ECHO before');
  const rss0 = await gatewayRss();
  const attacker = await associated('FLOOD');
  t.teardown(() => attacker.destroy());
  attacker.socket.pause(); // never reads a response
  const pdu = echoPdu(Math.floor((PDU - 6) / (echoCommand(1).length + 6)));
  // 12 MiB of requests (~17 MiB of responses), written at once.
  for (let i = 0; i < (12 * MIB) / PDU; i++) attacker.write(pdu);
  let peak = rss0;
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      peak = Math.max(peak, await gatewayRss());
      await new Promise((r) => setTimeout(r, 50)); // a sampling period, not a synchronisation
    }
  })();
  const during = await legitEcho(t);
  t.equal(during.status, 0, `a legitimate C-ECHO meanwhile (${Math.round(during.ms)} ms)`);
  t.ok(during.ms < 3_000, 'answered promptly');
  // The gateway's side: the attacker's paused socket may not see a FIN it never reads to.
  const deadline = Date.now() + 15_000;
  const ended = (): Array<Record<string, unknown>> =>
    gw.events().filter((e) => e.calling === 'FLOOD');
  while (!ended().some((e) => e.event === 'association.closed') && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 100)); // polling with a deadline
  }
  sampling = false;
  await sampler;
  // Held by backpressure then aborted by the idle timer, or aborted at once when one PDU's
  // responses pass the bound: which one depends on how much the kernel buffers took.
  const why = ended().find(
    (e) =>
      e.event === 'association.output_overflow' ||
      (e.event === 'association.timeout' && Number(e.unsentBytes) > 0),
  );
  t.ok(why, `aborted for its unread responses (${String(why?.event)})`);
  t.ok(
    ended().some((e) => e.event === 'association.closed'),
    'closed within 15 s',
  );
  t.ok(peak - rss0 < 96 * MIB, `RSS grew by ${Math.round((peak - rss0) / MIB)} MiB`);
});

t.test('idle connections do not lock out associating peers', async (t) => {
  // From another loopback address: the per-address limit applies to the attacker only. Half
  // to the TLS port, never starting the handshake.
  const idle = await Promise.all(
    Array.from(
      { length: 10 },
      (_, i) =>
        new Promise<net.Socket>((resolve) => {
          const port = i % 2 === 0 ? gw.port : tlsPort;
          const s = net.connect({ host: '127.0.0.1', port, localAddress: '127.0.0.2' });
          s.on('error', () => {});
          s.once('connect', () => resolve(s));
          s.once('close', () => resolve(s));
        }),
    ),
  );
  t.teardown(() => idle.forEach((s) => s.destroy()));
  const r = await legitEcho(t);
  t.equal(r.status, 0, `a legitimate C-ECHO while 10 connections idle (${Math.round(r.ms)} ms)`);
  t.ok(
    gw.events().some((e) => e.event === 'connection.refused' && /127\.0\.0\.2/.test(String(e.why))),
    'the idle connections over the per-address limit were closed',
  );
});

t.test('a trickle does not hold associations; one AE cannot take every slot', async (t) => {
  const attackers = [await associated('TRICKLE'), await associated('TRICKLE')];
  attackers.push(await associated('TRICKLE'));
  t.teardown(() => attackers.forEach((a) => a.destroy()));
  const fourth = await RawScu.connect('127.0.0.1', gw.port);
  t.teardown(() => fourth.destroy());
  t.match(
    await fourth.associate('TRICKLE', 'DICOMGW', contexts),
    { kind: 'rejected', reason: 2 },
    'the last slot is not given to the same AE title',
  );
  const during = await legitEcho(t);
  t.equal(during.status, 0, 'another AE title still associates');
  // The stimulus, not a synchronisation: one byte of a C-ECHO PDU every 300 ms.
  const bytes = echoPdu(1);
  let sent = 0;
  const timer = setInterval(() => {
    for (const a of attackers) if (!a.closed) a.write(bytes.subarray(sent, sent + 1));
    sent = (sent + 1) % (bytes.length - 1); // never a whole PDU
  }, 300);
  t.teardown(() => clearInterval(timer));
  const t0 = Date.now();
  await Promise.all(attackers.map((a) => a.waitClosed((IDLE_S + 6) * 1000)));
  t.ok(Date.now() - t0 >= IDLE_S * 1000 - 200, 'aborted after the idle timeout, not before');
});
