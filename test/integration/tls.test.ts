/**
 * DICOM TLS (PS3.15 B.1): a second listener with the same association handling. DCMTK's
 * echoscu/storescu with +tls against certificates made by openssl at test time: echo and
 * store work with a client certificate from the CA; a self-signed or missing client
 * certificate is refused when client certificates are required; a plain-TCP client cannot
 * use the TLS port; unreadable or unusable files are GW_ERR_CONFIG at start.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import t from 'tap';
import { isGatewayError } from '../../src/errors.js';
import { instanceKey } from '../../src/store/keys.js';
import { echoscu, storescu } from '../helpers/dcmtk.js';
import { startTestGateway } from '../helpers/gateway.js';
import { generateStudy } from '../helpers/gen-study.js';
import { startTestPostgres } from '../helpers/pg.js';
import { makeTestCerts, type KeyPair } from '../helpers/tls-certs.js';
import { checkStored, query } from '../helpers/verify.js';

const pgsrv = await startTestPostgres();
t.teardown(() => pgsrv.stop());
const certs = await makeTestCerts();
t.teardown(() => certs.remove());
const work = await mkdtemp(join(tmpdir(), 'gw-tls-test-'));
t.teardown(() => rm(work, { recursive: true, force: true }));

const tlsConfig = (extra: Record<string, unknown> = {}): Record<string, unknown> => ({
  port: 0,
  certFile: certs.server.cert,
  keyFile: certs.server.key,
  caFile: certs.ca,
  requireClientCert: true,
  ...extra,
});
/** DCMTK's TLS client options: our key pair (or none, anonymous) and the CA that signs the server. */
const tlsArgs = (pair?: KeyPair): string[] => [
  ...(pair ? ['+tls', pair.key, pair.cert] : ['+tla']),
  ...['+cf', certs.ca],
];

const gw = await startTestGateway({
  databaseUrl: pgsrv.connectionString,
  dicom: { tls: tlsConfig() },
});
t.teardown(() => gw.close());
const tlsPort = gw.gw.tlsPort!;
const peer = { host: '127.0.0.1', callingAet: 'MODALITY', calledAet: 'DICOMGW' };

t.test('echo and store over TLS with a client certificate from the CA', async (t) => {
  t.ok(tlsPort > 0 && tlsPort !== gw.port, `TLS listener on its own port ${tlsPort}`);
  const echo = await echoscu({ ...peer, port: tlsPort, extraArgs: tlsArgs(certs.client) });
  t.equal(echo.code, 0, `echoscu +tls: ${echo.stderr.trim()}`);

  const study = await generateStudy(join(work, 'tls'), {
    series: 1,
    instances: 4,
    rows: 32,
    cols: 32,
    seed: 71,
  });
  const r = await storescu({
    ...peer,
    port: tlsPort,
    files: [join(work, 'tls')],
    extraArgs: tlsArgs(certs.client),
  });
  t.same(r.statuses, [0, 0, 0, 0], 'all stored over TLS');
  if (r.statuses.length !== 4) t.comment(r.stderr.slice(-2000));
  for (const f of study.files) {
    const key = instanceKey('', f.studyUid, f.seriesUid, f.sopInstanceUid);
    const c = await checkStored(gw.gw.store, key, f.path);
    t.ok(c.datasetEqual && c.shaMetadataOk, `object exact: ${f.sopInstanceUid}`);
  }
  const rows = await query<{ n: string }>(
    pgsrv.connectionString,
    `SELECT count(*) AS n FROM instances WHERE sop_instance_uid = ANY($1)`,
    [study.files.map((f) => f.sopInstanceUid)],
  );
  t.equal(Number(rows[0]!.n), 4, 'indexed');
  const accepted = gw.logs.filter((l) => l.event === 'association.accepted' && l.tls === true);
  t.ok(accepted.length >= 2, 'associations logged as TLS');
  t.ok(
    accepted.every((l) => l.tlsPeer === 'MODALITY'),
    'the client certificate subject is logged',
  );
});

t.test('the plain port keeps working beside the TLS one', async (t) => {
  const r = await echoscu({ ...peer, port: gw.port });
  t.equal(r.code, 0);
});

t.test('a self-signed or missing client certificate is refused', async (t) => {
  const before = gw.logs.filter((l) => l.event === 'association.tls_refused').length;
  const stranger = await echoscu({ ...peer, port: tlsPort, extraArgs: tlsArgs(certs.stranger) });
  t.not(stranger.code, 0, 'self-signed client certificate: echo fails');
  const anonymous = await echoscu({ ...peer, port: tlsPort, extraArgs: tlsArgs() });
  t.not(anonymous.code, 0, 'no client certificate: echo fails');
  const refused = gw.logs.filter((l) => l.event === 'association.tls_refused').length - before;
  t.ok(refused >= 2, `handshakes refused and logged (${refused})`);
});

t.test('a plain-TCP client cannot use the TLS port, nor a TLS client the plain one', async (t) => {
  const plain = await echoscu({ ...peer, port: tlsPort, timeoutMs: 20_000 });
  t.not(plain.code, 0, 'plain echoscu against the TLS port fails');
  t.notOk(plain.timedOut, 'and fails promptly');
  const wrong = await echoscu({ ...peer, port: gw.port, extraArgs: tlsArgs(certs.client) });
  t.not(wrong.code, 0, 'echoscu +tls against the plain port fails');
});

t.test('optional client certificates: none is fine, an untrusted one is not', async (t) => {
  const g = await startTestGateway({
    databaseUrl: pgsrv.connectionString,
    dicom: { tls: tlsConfig({ requireClientCert: false, minVersion: 'TLSv1.3' }) },
  });
  t.teardown(() => g.close());
  const port = g.gw.tlsPort!;
  t.equal((await echoscu({ ...peer, port, extraArgs: tlsArgs() })).code, 0, 'anonymous client');
  t.equal(
    (await echoscu({ ...peer, port, extraArgs: tlsArgs(certs.client) })).code,
    0,
    'CA-signed',
  );
  const stranger = await echoscu({ ...peer, port, extraArgs: tlsArgs(certs.stranger) });
  t.not(stranger.code, 0, 'a presented certificate that does not verify is refused');
  // minVersion TLSv1.3: a TLS 1.2 client does not get through the handshake.
  const err = await new Promise<Error | undefined>((resolve) => {
    const opts: tls.ConnectionOptions = {
      ...{ host: '127.0.0.1', port, rejectUnauthorized: false, maxVersion: 'TLSv1.2' },
    };
    const s = tls.connect(opts, () => {
      s.destroy();
      resolve(undefined);
    });
    s.once('error', resolve);
  });
  t.match(err?.message, /protocol version/, 'TLS 1.2 refused');
});

t.test('unreadable or unusable files are GW_ERR_CONFIG naming the key', async (t) => {
  const garbage = join(work, 'garbage.pem');
  await writeFile(garbage, 'not a certificate\n');
  const cases: Array<[Record<string, unknown>, RegExp]> = [
    // [what is changed in the good configuration, what the error must say]
    [{ certFile: join(work, 'missing.pem') }, /dicom\.tls\.certFile: cannot read .*missing\.pem/],
    [{ keyFile: join(work, 'missing.key') }, /dicom\.tls\.keyFile: cannot read/],
    [{ caFile: join(work, 'missing-ca.pem') }, /dicom\.tls\.caFile: cannot read/],
    [{ certFile: garbage }, /dicom\.tls: /],
    [{ keyFile: certs.stranger.key }, /dicom\.tls: .*(mismatch|key)/i],
    [{ caFile: undefined }, /dicom\.tls\.requireClientCert: needs dicom\.tls\.caFile/], // no CA
  ];
  for (const [extra, pattern] of cases) {
    const dir = await mkdtemp(join(work, 'cfg-'));
    try {
      const g = await startTestGateway({
        databaseUrl: pgsrv.connectionString,
        dicom: { tls: tlsConfig(extra) },
        dir,
      });
      await g.close();
      t.fail(`started with ${JSON.stringify(extra)}`);
    } catch (err) {
      t.ok(isGatewayError(err, 'GW_ERR_CONFIG'), `GW_ERR_CONFIG for ${JSON.stringify(extra)}`);
      t.match((err as Error).message, pattern);
    }
  }
});
