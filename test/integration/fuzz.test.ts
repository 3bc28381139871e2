/**
 * Protocol fuzzing: > 1,000 malformed inputs, mutated (seeded PRNG, so a failure repeats)
 * from a real storescu capture and a real generated instance, sent over 16 connections at
 * once. For every input the gateway answers as PS3.8 says (A-ASSOCIATE-RJ or A-ABORT for
 * protocol errors, a failure status for broken data sets, or it closes) and keeps running.
 * Afterwards no index row, object or staging file exists for an instance that was not
 * answered 0000, and a normal storescu of a fresh study still stores every object exactly.
 */
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { parseAssociateRq } from '../../src/dimse/acse.js';
import { parseCommand } from '../../src/dimse/command.js';
import { parsePDataTf, PduFramer, type Pdu } from '../../src/dimse/pdu.js';
import { RequestorAssociation } from '../../src/scu/association.js';
import { AssociationAbortedError } from '../../src/scu/errors.js';
import type { FsStore } from '../../src/store/fs-store.js';
import { instanceKey } from '../../src/store/keys.js';
import { storescu } from '../helpers/dcmtk.js';
import { startTestGateway } from '../helpers/gateway.js';
import { generateStudy } from '../helpers/gen-study.js';
import { startTestPostgres } from '../helpers/pg.js';
import { makeCases, Rng, type FuzzCase, type FuzzMaterial } from '../helpers/fuzz-cases.js';
import { RawScu } from '../helpers/raw-scu.js';
import { store } from '../helpers/scu.js';
import { checkStored, datasetOf, query, until } from '../helpers/verify.js';

const SEED = Number(process.env.GW_FUZZ_SEED ?? 20_250_601);
const PARALLEL = 16;
const CT = '1.2.840.10008.5.1.4.1.1.2';

const pgsrv = await startTestPostgres();
t.teardown(() => pgsrv.stop());
const gw = await startTestGateway({
  databaseUrl: pgsrv.connectionString,
  // Short timeouts: an input that leaves the gateway waiting for bytes ends in 0.5 s.
  dicom: {
    idleTimeoutSeconds: 0.5,
    maxPduLength: 16384,
    maxAssociationsPerAe: 64,
    maxPendingConnectionsPerAddress: PARALLEL,
  },
});
t.teardown(() => gw.close());
const work = await mkdtemp(join(tmpdir(), 'gw-fuzz-'));
t.teardown(() => rm(work, { recursive: true, force: true }));

// ------------------------------------------------------------------ real material
/** Records what storescu sends through a proxy to the gateway: the client side of the exchange. */
async function capture(dir: string): Promise<Buffer> {
  const recorded: Buffer[] = [];
  const proxy = net.createServer((client) => {
    const upstream = net.connect(gw.port, '127.0.0.1');
    client.on('data', (d: Buffer) => {
      recorded.push(d);
      upstream.write(d);
    });
    upstream.pipe(client);
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
    client.on('error', () => upstream.destroy());
    upstream.on('error', () => client.destroy());
  });
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  const port = (proxy.address() as net.AddressInfo).port;
  const r = await storescu({
    host: '127.0.0.1',
    port,
    callingAet: 'FUZZ',
    calledAet: 'DICOMGW',
    files: [dir],
  });
  await new Promise<void>((resolve) => proxy.close(() => resolve()));
  if (r.statuses.join() !== '0,0') throw new Error(`capture failed: ${r.stderr}`);
  return Buffer.concat(recorded);
}

const seedStudy = await generateStudy(join(work, 'capture'), {
  instances: 2,
  rows: 16,
  cols: 16,
  seed: 91,
});
const captured = await capture(join(work, 'capture'));
const capturedPdus = new PduFramer({ maxPDataLength: 1 << 24, maxOtherLength: 1 << 20 }).push(
  captured,
);
const rq = capturedPdus[0]!.raw;
const ctId = parseAssociateRq(rq).contexts.find((c) => c.abstractSyntaxUid === CT)!.id;
/** SOP Instance UIDs answered 0000: only these may have a row or an object afterwards. */
const answered = new Set(seedStudy.files.map((f) => f.sopInstanceUid));

const material: FuzzMaterial = {
  rq,
  captured,
  ctId,
  dataset: datasetOf(await readFile(seedStudy.files[0]!.path)),
  uid: seedStudy.files[0]!.sopInstanceUid,
};

// ------------------------------------------------------------------ running
interface Outcome {
  kind: string;
  /** PDU types received, in order, e.g. "2447". */
  types: string;
  /** C-STORE-RSP statuses received. */
  statuses: number[];
  stuck: boolean;
}

/** Collects what the gateway sends until it closes the connection; the client never closes first. */
async function runRaw(c: FuzzCase, index: number): Promise<Outcome> {
  const scu = await RawScu.connect('127.0.0.1', gw.port);
  const pdus: Pdu[] = [];
  const statuses: number[] = [];
  // Sent in up to 4 writes split at random points: the gateway must not care where.
  const split = new Rng(SEED + index);
  const cuts = [
    0,
    ...Array.from({ length: split.int(4) }, () => split.int(c.bytes!.length)).sort((a, b) => a - b),
    c.bytes!.length,
  ];
  for (let k = 1; k < cuts.length; k++) scu.write(c.bytes!.subarray(cuts[k - 1], cuts[k]));
  let stuck = false;
  try {
    for (;;) {
      const pdu = await scu.next(10_000);
      if (!pdu) break;
      pdus.push(pdu);
      if (pdu.type === 0x04) statuses.push(...note(pdu));
    }
  } catch {
    stuck = true; // the gateway neither answered nor closed in 10 s
  } finally {
    scu.destroy();
  }
  return { kind: c.kind, types: pdus.map((p) => p.type).join(''), statuses, stuck };
}

/** A broken data set sent by the real requestor: it does not look inside data sets. */
async function runStore(c: FuzzCase): Promise<Outcome> {
  let types = '';
  let stuck = false;
  const statuses: number[] = [];
  let assoc: RequestorAssociation | undefined;
  try {
    assoc = await RequestorAssociation.open({
      host: '127.0.0.1',
      port: gw.port,
      callingAeTitle: 'FUZZ',
      calledAeTitle: 'DICOMGW',
      contexts: [{ abstractSyntaxUid: CT, transferSyntaxUids: ['1.2.840.10008.1.2.1'] }],
      timeouts: { connectMs: 10_000, associateMs: 10_000, responseMs: 10_000, releaseMs: 10_000 },
    });
    types = '2';
    try {
      const status = await store(assoc, CT, c.dataset!.uid, c.dataset!.bytes);
      if (status === 0) answered.add(c.dataset!.uid);
      if (status !== undefined) statuses.push(status);
      types += '4';
      await assoc.release();
      types += '6';
    } catch (err) {
      if (!(err instanceof AssociationAbortedError)) throw err;
      if (err.abort) types += '7'; // else the gateway closed without a PDU
    }
  } catch {
    stuck = true;
  } finally {
    assoc?.abort();
  }
  return { kind: c.kind, types, statuses, stuck };
}

/** Records a C-STORE-RSP 0000; returns the C-STORE-RSP status it carries, if any. */
function note(pdu: Pdu): number[] {
  const rsp = parseCommand(Buffer.concat(parsePDataTf(pdu.raw).map((p) => p.value)));
  if (rsp.commandField !== 0x8001 || rsp.status === undefined) return [];
  if (rsp.status === 0 && rsp.affectedSopInstanceUid) answered.add(rsp.affectedSopInstanceUid);
  return [rsp.status];
}

t.test(`fuzz: seed ${SEED}`, async (t) => {
  const cases = makeCases(material, new Rng(SEED));
  t.ok(cases.length >= 1000, `${cases.length} inputs`);
  const outcomes: Outcome[] = [];
  const started = Date.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: PARALLEL }, async () => {
      while (next < cases.length) {
        const i = next++;
        const c = cases[i]!;
        outcomes.push(await (c.dataset ? runStore(c) : runRaw(c, i)));
      }
    }),
  );
  const seconds = (Date.now() - started) / 1000;
  t.comment(`${cases.length} inputs in ${seconds.toFixed(1)} s over ${PARALLEL} connections`);
  t.ok(seconds < 60, `bounded in time (${seconds.toFixed(1)} s)`);

  t.same(
    outcomes.filter((o) => o.stuck).map((o) => o.kind),
    [],
    'the gateway always answered or closed',
  );
  // PS3.8 9.2: nothing after RJ, RP or A-ABORT; P-DATA only inside an accepted association.
  const legal = /^(|3|7|24*[67]?)$/;
  t.same(
    outcomes.filter((o) => !legal.test(o.types)),
    [],
    'every answer sequence is legal',
  );
  const byKind = new Map<string, Map<string, number>>();
  for (const o of outcomes) {
    const m = byKind.get(o.kind) ?? new Map<string, number>();
    const end =
      o.types === ''
        ? 'closed'
        : ({ '3': 'RJ', '6': 'RP', '7': 'ABORT' }[o.types.at(-1)!] ?? 'open');
    const statuses = o.statuses.map((x) => `status ${x.toString(16).padStart(4, '0')}`);
    for (const label of [end, ...statuses]) m.set(label, (m.get(label) ?? 0) + 1);
    byKind.set(o.kind, m);
  }
  for (const [kind, m] of byKind)
    t.comment(`${kind}: ${[...m].map(([k, v]) => `${k} ${v}`).join(', ')}`);
  const mustAbort = new Set(cases.filter((c) => c.mustAbort).map((c) => c.kind));
  for (const kind of mustAbort) {
    const ends = [...(byKind.get(kind)?.keys() ?? [])].filter((k) => !k.startsWith('status'));
    t.same(ends, ['ABORT'], `${kind}: always A-ABORT`);
  }

  // Every association has ended and its work is done: nothing in flight, nothing staged.
  await until(async () => gw.gw.scp.activeAssociations === 0, 10_000, 'associations to close');
  const staging = (gw.gw.store as FsStore).stagingDir();
  await until(
    async () => (await readdir(staging).catch(() => [])).length === 0,
    10_000,
    'empty staging',
  );
  const rows = await query<{ uid: string }>(
    pgsrv.connectionString,
    'SELECT sop_instance_uid AS uid FROM instances',
  );
  t.same(
    rows.map((r) => r.uid).filter((u) => !answered.has(u)),
    [],
    'no row for an instance not answered 0000',
  );
  const keys: string[] = [];
  for await (const o of gw.gw.store.list('')) keys.push(o.key);
  const strays = keys.filter((k) => !answered.has(k.replace(/^.*\//, '').replace(/\.dcm$/, '')));
  t.same(strays, [], 'no object for an instance not answered 0000');
  t.comment(
    `${answered.size} instances answered 0000, ${rows.length} rows, ${keys.length} objects`,
  );
  const errors = gw.logs
    .filter((l) => l.level === 'error' || l.level === 'fatal' || l.code === 'GW_ERR_INTERNAL')
    .map((l) => `${String(l.event)} ${String(l.code)}: ${String(l.err ?? l.msg)}`);
  t.same([...new Set(errors)], [], 'no error-level log line, no internal error');
});

t.test('afterwards a normal storescu stores a study exactly', async (t) => {
  const study = await generateStudy(join(work, 'after'), {
    series: 2,
    instances: 4,
    rows: 32,
    cols: 32,
    seed: 92,
  });
  const r = await storescu({
    host: '127.0.0.1',
    port: gw.port,
    callingAet: 'AFTER',
    calledAet: 'DICOMGW',
    files: [join(work, 'after')],
  });
  t.same(
    r.statuses,
    study.files.map(() => 0),
    'all 0000',
  );
  for (const f of study.files) {
    const c = await checkStored(
      gw.gw.store,
      instanceKey('', f.studyUid, f.seriesUid, f.sopInstanceUid),
      f.path,
    );
    t.ok(c.datasetEqual && c.shaMetadataOk, `exact: ${f.sopInstanceUid}`);
  }
});
