/**
 * `index.type: ydb`: validation names the missing key; credentials from config or environment;
 * the service-account key's JWT (PS256) and its exchange for an IAM token (against a fetch
 * stand-in: no network here).
 */
import { createVerify, constants, generateKeyPairSync } from 'node:crypto';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { parseConfig } from '../../src/config.js';
import { isGatewayError } from '../../src/errors.js';
import {
  chooseYdbAuth,
  IAM_TOKEN_URL,
  readServiceAccountKey,
  serviceAccountJwt,
  ServiceAccountKeyProvider,
} from '../../src/index/ydb-auth.js';
import { ydbConnectionString } from '../../src/index/ydb-open.js';

const configError = (raw: unknown): string => {
  try {
    parseConfig(raw);
  } catch (err) {
    t.ok(isGatewayError(err, 'GW_ERR_CONFIG'));
    return (err as Error).message;
  }
  return '';
};

t.test('a valid ydb index, with defaults', async (t) => {
  const cfg = parseConfig({
    index: { type: 'ydb', endpoint: 'grpc://localhost:2136', database: '/local' },
  });
  t.match(cfg.index, { type: 'ydb', timeoutSeconds: 10, discovery: true });
  if (cfg.index.type === 'ydb')
    t.equal(ydbConnectionString(cfg.index), 'grpc://localhost:2136/local');
});

t.test('validation names the missing or bad key', async (t) => {
  t.match(configError({ index: { type: 'ydb', database: '/local' } }), /index\.endpoint: /);
  t.match(configError({ index: { type: 'ydb', endpoint: 'grpc://h:2136' } }), /index\.database: /);
  t.match(
    configError({ index: { type: 'ydb', endpoint: 'http://h:2136/x', database: '/local' } }),
    /index\.endpoint: grpc:\/\/host:port/,
  );
  t.match(
    configError({
      index: {
        type: 'ydb',
        endpoint: 'grpc://h:2136',
        database: '/l',
        auth: { token: 'a', metadata: true },
      },
    }),
    /index\.auth: give one of/,
  );
  t.match(
    configError({ index: { type: 'ydb', endpoint: 'grpc://h:2136', database: '/l', url: 'x' } }),
    /url/,
    'unknown keys are refused',
  );
});

t.test('credentials: config first, then the YDB_* environment, else anonymous', async (t) => {
  t.same(chooseYdbAuth({ token: 't1' }), { kind: 'token', token: 't1', from: 'index.auth.token' });
  t.same(chooseYdbAuth({ tokenEnv: 'MY_TOKEN' }, { MY_TOKEN: 't2' }), {
    kind: 'token',
    token: 't2',
    from: 'MY_TOKEN',
  });
  t.throws(() => chooseYdbAuth({ tokenEnv: 'MY_TOKEN' }, {}), { code: 'GW_ERR_CONFIG' });
  t.same(chooseYdbAuth({ metadata: true }, {}), { kind: 'metadata' });
  t.same(chooseYdbAuth(undefined, { YDB_ACCESS_TOKEN_CREDENTIALS: 'e' }), {
    kind: 'token',
    token: 'e',
    from: 'YDB_ACCESS_TOKEN_CREDENTIALS',
  });
  t.same(chooseYdbAuth(undefined, { YDB_SERVICE_ACCOUNT_KEY_FILE_CREDENTIALS: '/k.json' }), {
    kind: 'serviceAccountKey',
    file: '/k.json',
  });
  t.same(chooseYdbAuth(undefined, { YDB_METADATA_CREDENTIALS: '1' }), { kind: 'metadata' });
  t.same(chooseYdbAuth(undefined, {}), { kind: 'anonymous' });
});

t.test('service account key: a PS256 JWT for IAM, exchanged for a cached IAM token', async (t) => {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const dir = await mkdtemp(join(tmpdir(), 'ydb-key-'));
  const file = join(dir, 'key.json');
  const pem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  await writeFile(
    file,
    JSON.stringify({ id: 'kid1', service_account_id: 'sa1', private_key: pem }),
  );
  const key = await readServiceAccountKey(file);
  const jwt = serviceAccountJwt(key, Date.parse('2024-01-01T00:00:00Z'));
  const [h, b, sig] = jwt.split('.');
  t.same(JSON.parse(Buffer.from(h!, 'base64url').toString()), {
    typ: 'JWT',
    alg: 'PS256',
    kid: 'kid1',
  });
  t.match(JSON.parse(Buffer.from(b!, 'base64url').toString()), {
    aud: IAM_TOKEN_URL,
    iss: 'sa1',
    iat: 1704067200,
    exp: 1704070800,
  });
  const ok = createVerify('RSA-SHA256').update(`${h}.${b}`).verify(
    {
      key: publicKey,
      padding: constants.RSA_PKCS1_PSS_PADDING,
      saltLength: constants.RSA_PSS_SALTLEN_DIGEST,
    },
    Buffer.from(sig!, 'base64url'),
  );
  t.ok(ok, 'signature verifies with the public key');

  let calls = 0;
  const fakeFetch = (async (url: string, init: { body: string }) => {
    calls++;
    t.equal(url, IAM_TOKEN_URL);
    t.match(JSON.parse(init.body), { jwt: /^ey/ });
    return new Response(
      JSON.stringify({
        iamToken: 'iam-1',
        expiresAt: new Date(Date.now() + 12 * 3600e3).toISOString(),
      }),
    );
  }) as unknown as typeof fetch;
  const p = new ServiceAccountKeyProvider(key, fakeFetch);
  t.equal(await p.getToken(), 'iam-1');
  t.equal(await p.getToken(), 'iam-1');
  t.equal(calls, 1, 'cached until an hour before it expires');

  await writeFile(file, '{"id": "x"}');
  await t.rejects(readServiceAccountKey(file), {
    code: 'GW_ERR_CONFIG',
    message: /service_account_id/,
  });
});
