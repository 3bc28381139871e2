/**
 * No configured secret appears in anything the gateway prints (issue: hardening, item 9).
 * A full run of the real process against a real PostgreSQL and a real RGW: start, a stored
 * instance, a refused one, the admin /status endpoint, SIGTERM; then `config check` (from the
 * file, and from the environment) and `status`. Every byte of their output is scanned for
 * every secret: the database password with an unencoded `@`, a `?password=` query parameter,
 * credentials in the S3 endpoint URL, the S3 secret key and the admin token.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { minimalDataset, SECONDARY_CAPTURE } from '../helpers/datasets.js';
import { cliArgs, startGatewayProcess } from '../helpers/gateway-process.js';
import { startTestPostgres } from '../helpers/pg.js';
import { openScu, store } from '../helpers/scu.js';
import { createBucket, startRgw } from '../helpers/rgw.js';
import { query, until } from '../helpers/verify.js';

/** In the URL's user info, unencoded: the WHATWG parser splits at the last `@`. */
const USERINFO_PASSWORD = 'Us3rPart@Tail9Secret';
/** The role's real password, as `?password=` (node-postgres prefers it to the user info). */
const QUERY_PASSWORD = 'Qu3ryPart@Qtail7Secret';
const ENDPOINT_PASSWORD = 'EndpointPw-5ecret';
const ADMIN_TOKEN = 'AdminTok3n-very-secret-value';

const pgsrv = await startTestPostgres();
t.teardown(() => pgsrv.stop());
const rgw = await startRgw();
t.teardown(() => rgw.stop());
await createBucket(rgw, 'secrets');
const work = await mkdtemp(join(tmpdir(), 'gw-secrets-'));
t.teardown(() => rm(work, { recursive: true, force: true }));

await query(
  pgsrv.connectionString,
  `CREATE ROLE gwsecret LOGIN SUPERUSER PASSWORD '${QUERY_PASSWORD}'`,
);
const pgUrl = new URL(pgsrv.connectionString);
const databaseUrl =
  `postgres://gwsecret:${USERINFO_PASSWORD}@127.0.0.1:${pgsrv.port}${pgUrl.pathname}` +
  `?password=${encodeURIComponent(QUERY_PASSWORD)}&application_name=gw`;
const endpoint = new URL(rgw.endpoint);
endpoint.username = 'epuser';
endpoint.password = ENDPOINT_PASSWORD;

const secrets = [
  USERINFO_PASSWORD,
  QUERY_PASSWORD,
  ENDPOINT_PASSWORD,
  rgw.secretAccessKey,
  ADMIN_TOKEN,
];
/** Each secret as written, URL-encoded, and each part around an `@` (a half-masked URL). */
const needles = [
  ...new Set(
    secrets.flatMap((s) => [s, encodeURIComponent(s), ...s.split('@').filter((p) => p !== s)]),
  ),
];

const config = {
  dicom: { aeTitle: 'DICOMGW', host: '127.0.0.1', port: 0 },
  index: { type: 'postgres', url: databaseUrl },
  store: {
    type: 's3',
    endpoint: endpoint.toString(),
    region: rgw.region,
    bucket: 'secrets',
    accessKeyId: rgw.accessKeyId,
    secretAccessKey: rgw.secretAccessKey,
    spool: { dir: join(work, 'spool') },
  },
  admin: { enabled: true, host: '127.0.0.1', port: 0, token: ADMIN_TOKEN },
  log: { level: 'debug' },
};
const configPath = join(work, 'config.json');

/** Variables the configuration reads (src/config.ts applyEnv): none may leak in from outside. */
const CONFIG_ENV = /^(DICOM_|DATABASE_URL$|S3_|AWS_|ADMIN_|LOG_LEVEL$)/;

function cli(args: string[], extraEnv: Record<string, string> = {}): Promise<string> {
  const { command, argv, env } = cliArgs(args);
  const clean = Object.fromEntries(Object.entries(env).filter(([k]) => !CONFIG_ENV.test(k)));
  return new Promise((resolve, reject) => {
    const child = spawn(command, argv, {
      env: { ...clean, ...extraEnv },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (s: string) => (out += s));
    child.stderr.setEncoding('utf8').on('data', (s: string) => (out += s));
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.once('error', reject);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve(`${out}\n[exit ${String(code)}]`);
    });
  });
}

function scan(t: Test, name: string, text: string): void {
  const found = needles.filter((n) => text.includes(n));
  t.same(found, [], `${name}: no secret in ${text.length} characters of output`);
}

t.test('a full run prints no secret', async (t) => {
  const gw = await startGatewayProcess(config, configPath);
  t.teardown(() => {
    gw.child.kill('SIGKILL');
  });
  const scu = await openScu(t, {
    port: gw.port,
    callingAeTitle: 'SECRETS',
    calledAeTitle: 'DICOMGW',
    contexts: [
      { abstractSyntaxUid: SECONDARY_CAPTURE, transferSyntaxUids: ['1.2.840.10008.1.2.1'] },
    ],
  });
  const uid = '1.2.826.0.1.3680043.10.1.91';
  t.equal(await store(scu, SECONDARY_CAPTURE, uid, minimalDataset(uid)), 0, 'stored');
  const cut = minimalDataset(`${uid}.5`);
  const refused = await store(scu, SECONDARY_CAPTURE, `${uid}.5`, cut.subarray(0, -3));
  t.equal(refused, 0xc000, 'a truncated data set is refused (an error is logged)');
  await scu.release();
  await until(
    async () => {
      const rows = await query<{ state: string }>(
        pgsrv.connectionString,
        'SELECT state FROM instances WHERE sop_instance_uid = $1',
        [uid],
      );
      return rows[0]?.state === 'stored';
    },
    30_000,
    'the upload to RGW',
  );
  // The admin /status endpoint describes the store too.
  const admin = gw.events().find((e) => e.event === 'admin.started');
  const res = await fetch(`http://127.0.0.1:${String(admin?.port)}/status`, {
    headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
    signal: AbortSignal.timeout(10_000),
  });
  const adminStatus = await res.text();
  t.equal(res.status, 200);
  t.match(adminStatus, /epuser:\*\*\*@/, 'admin /status shows the masked endpoint');
  scan(t, 'admin /status', adminStatus);
  gw.child.kill('SIGTERM');
  t.equal(await gw.exited, 0, 'exit 0 after SIGTERM');
  const served = gw.output();
  t.match(served, /"event":"gateway.started"/);
  t.match(served, /"event":"instance.failed"/);
  t.match(served, /"event":"gateway.stopped"/);
  t.match(served, /gwsecret:\*\*\*@127\.0\.0\.1/, 'the database URL is shown, masked');
  t.match(served, /epuser:\*\*\*@127\.0\.0\.1/, 'the S3 endpoint is shown, masked');
  scan(t, 'serve', served);

  const checked = await cli(['--config', configPath, 'config', 'check']);
  t.match(checked, /password=\*\*\*/);
  scan(t, 'config check', checked);
  const fromEnv = await cli(['config', 'check'], {
    DATABASE_URL: databaseUrl,
    S3_ENDPOINT: endpoint.toString(),
    S3_BUCKET: 'secrets',
    S3_SECRET_ACCESS_KEY: rgw.secretAccessKey,
    ADMIN_TOKEN,
  });
  t.match(fromEnv, /configuration is valid/);
  scan(t, 'config check (environment)', fromEnv);
  const status = await cli(['--config', configPath, 'status']);
  t.match(status, /epuser:\*\*\*@/, 'status shows the masked endpoint');
  scan(t, 'status', status);
  const statusJson = await cli(['--config', configPath, 'status', '--json']);
  scan(t, 'status --json', statusJson);
});
