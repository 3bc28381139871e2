import { Writable } from 'node:stream';
import t from 'tap';
import { redactConfig } from '../../src/cli/config-check.js';
import { parseConfig } from '../../src/config.js';
import { createLogger } from '../../src/log.js';
import { isSecretName, maskConfig, maskUrl } from '../../src/secrets.js';

t.test('maskUrl: the password, wherever the URL puts it', async (t) => {
  // The WHATWG parser ends the user info at the last `@`: all of `t@tPass` is the password.
  t.equal(maskUrl('postgres://u:t@tPass@host/db'), 'postgres://u:***@host/db');
  t.equal(maskUrl('postgresql://gw:hunter2@db:5432/gw'), 'postgresql://gw:***@db:5432/gw');
  t.equal(
    maskUrl('postgres://u@host/db?sslmode=require&password=p%40ss&application_name=gw'),
    'postgres://u@host/db?sslmode=require&password=***&application_name=gw',
  );
  t.equal(
    maskUrl('postgres://u:a@b@h/db?sslpassword=x&sslkey=/etc/gw/client.key'),
    'postgres://u:***@h/db?sslpassword=***&sslkey=%2Fetc%2Fgw%2Fclient.key',
    'key material is named by a path, which is not a secret',
  );
  t.equal(
    maskUrl('https://AKIA123:wJalr%2Fsecret@s3.example.net:9000'),
    'https://AKIA123:***@s3.example.net:9000/', // http(s): WHATWG adds the path
  );
  t.equal(
    maskUrl(
      'https://b.s3.example.net/k?X-Amz-Credential=AKIA%2F1&X-Amz-Signature=abc&X-Amz-Security-Token=tok',
    ),
    'https://b.s3.example.net/k?X-Amz-Credential=AKIA%2F1&X-Amz-Signature=***&X-Amz-Security-Token=***',
  );
  // Nothing to mask: returned as given, not re-serialised.
  t.equal(maskUrl('http://127.0.0.1:7480'), 'http://127.0.0.1:7480');
  t.equal(maskUrl('postgres://u@h/db?a=b c'), 'postgres://u@h/db?a=b c');
});

t.test('maskUrl: libpq keyword/value strings', async (t) => {
  t.equal(
    maskUrl("host=db user=gw password='s p@ce' dbname=gw"),
    'host=db user=gw password=*** dbname=gw',
  );
  t.equal(maskUrl('host=db password=x@y sslkey=/k'), 'host=db password=*** sslkey=/k');
  t.equal(maskUrl('not a url'), 'not a url');
});

t.test('isSecretName', async (t) => {
  for (const n of [
    'password',
    'PASSWORD',
    'passwd',
    'pwd',
    'pass',
    'sslpassword',
    'secret',
    'client_secret',
    'secretAccessKey',
    'token',
    'access_token',
    'X-Amz-Security-Token',
    'api_key',
    'apiKey',
    'X-Amz-Signature',
    'sig',
  ]) {
    t.ok(isSecretName(n), n);
  }
  for (const n of [
    'user',
    'sslkey',
    'sslcert',
    'sslrootcert',
    'sslmode',
    'accessKeyId',
    'X-Amz-Credential',
    'application_name',
    'url',
    'endpoint',
    'host',
  ]) {
    t.notOk(isSecretName(n), n);
  }
});

t.test('config check masks every secret of the configuration', async (t) => {
  const cfg = parseConfig({
    index: { type: 'postgres', url: 'postgres://gw:hun@ter2@db/gw?password=qp%40ss' },
    store: {
      type: 's3',
      bucket: 'bkt',
      endpoint: 'https://ep:endpoint-pw@s3.example.net',
      accessKeyId: 'AKIAKEYID',
      secretAccessKey: 'shh-secret',
    },
    admin: { token: 'a-long-admin-token-value' },
  });
  const text = JSON.stringify(redactConfig(cfg));
  t.notMatch(text, /hun|ter2|qp|shh-secret|endpoint-pw|a-long-admin-token-value/);
  t.match(text, /postgres:\/\/gw:\*\*\*@db\/gw\?password=\*\*\*/);
  t.match(text, /https:\/\/ep:\*\*\*@s3\.example\.net/);
  t.match(text, /AKIAKEYID/, 'the access key ID is an identifier, shown');
  t.same(maskConfig({ a: [{ token: 't' }], n: 1 }), { a: [{ token: '***' }], n: 1 });
});

t.test('the logger masks secret fields, PHI setting or not', async (t) => {
  for (const phi of [false, true]) {
    let out = '';
    const sink = new Writable({
      write(chunk: Buffer, _enc, cb) {
        out += chunk.toString('utf8');
        cb();
      },
    });
    const log = createLogger({ level: 'info', phi }, sink);
    const fields = {
      password: 'pw1',
      s3: { secretAccessKey: 'sk1', token: 'tk1' },
      patientName: 'Doe',
      attributes: { patientId: 'PID-7', modality: 'CT' },
      list: [{ patientName: 'In an array' }],
    };
    log.info(fields);
    t.notMatch(out, /pw1|sk1|tk1/, `phi: ${phi}`);
    t.match(out, /"password":"\*\*\*"/);
    t.match(out, phi ? /"patientName":"Doe"/ : /"patientName":"\[redacted\]"/);
    t.match(out, phi ? /"patientId":"PID-7"/ : /"attributes":\{"patientId":"\[redacted\]"/);
    t.match(out, /"modality":"CT"/, 'the other fields of a redacted object are kept');
    t.match(out, /In an array/, 'arrays are not looked into (as pino redact paths `*.x`)');
    t.equal(fields.password, 'pw1', "the caller's object is not changed");
    t.equal(fields.attributes.patientId, 'PID-7', 'nor the objects inside it');
    out = '';
    log.warn({ err: Object.assign(new Error('refused'), { token: 'tk2' }) }, 'an error');
    t.notMatch(out, /tk2/, `a secret on an error is masked, phi: ${phi}`);
    t.match(out, /"message":"refused"/, 'the error keeps its message');
    t.match(out, /"stack":"Error: refused/, 'and its stack');
    out = '';
    const frozen = Object.freeze({ endpoint: 'https://s3', secretAccessKey: 'sk3' });
    const withGetter = Object.defineProperty({}, 'password', {
      get: () => 'pw4',
      enumerable: true,
    });
    log.info({ store: frozen, db: withGetter }, 'frozen and accessor fields');
    t.notMatch(out, /sk3|pw4/, `a frozen object and a getter are masked too, phi: ${phi}`);
    t.match(out, /"endpoint":"https:\/\/s3"/, 'the rest of the frozen object is kept');
    out = '';
    log.child({ authorization: 'Basic x1', patientId: 'P-1' }).info('child');
    t.notMatch(out, /x1/, `child bindings masked too, phi: ${phi}`);
    t.match(out, phi ? /"patientId":"P-1"/ : /"patientId":"\[redacted\]"/);
  }
});
