import t from 'tap';
import { applyEnv, loadConfig, parseConfig } from '../../src/config.js';
import { isGatewayError } from '../../src/errors.js';

t.test('defaults: the embedded gateway', async (t) => {
  const cfg = parseConfig({});
  t.equal(cfg.dicom.aeTitle, 'DICOMGW');
  t.equal(cfg.dicom.port, 11112);
  t.equal(cfg.store.type, 'fs');
  t.equal(cfg.index.type, 'embedded');
  t.ok(Object.isFrozen(cfg) && Object.isFrozen(cfg.dicom), 'frozen');
});

t.test('errors name the key and what was expected', async (t) => {
  try {
    parseConfig({ dicom: { port: 70000, aeTitle: 'WAY_TOO_LONG_AE_TITLE' }, nope: 1 });
    t.fail('should throw');
  } catch (err) {
    t.ok(isGatewayError(err, 'GW_ERR_CONFIG'));
    const msg = (err as Error).message;
    t.match(msg, /dicom\.port: .*65535/);
    t.match(msg, /dicom\.aeTitle: /);
    t.match(msg, /nope/);
  }
});

t.test('environment overrides', async (t) => {
  const raw = applyEnv(
    { index: { type: 'postgres', url: 'postgres://file', poolSize: 33 } },
    {
      DATABASE_URL: 'postgres://env',
      S3_BUCKET: 'bucket',
      S3_ENDPOINT: 'http://127.0.0.1:9000',
      DICOM_PORT: '104',
    },
  );
  const cfg = parseConfig(raw);
  t.same(
    cfg.index,
    { type: 'postgres', url: 'postgres://env', poolSize: 33 },
    'DATABASE_URL keeps poolSize',
  );
  t.equal(cfg.store.type, 's3');
  t.equal(cfg.dicom.port, 104);
  t.throws(() => loadConfig(undefined, { DICOM_PORT: 'abc' }), /DICOM_PORT: expected a number/);
  t.throws(() => loadConfig('/nonexistent.yaml', {}), /cannot read config file/);
});

t.test('S3 settings from the environment: one parser', async (t) => {
  const s3 = (env: NodeJS.ProcessEnv, file: Record<string, unknown> = {}) => {
    const cfg = parseConfig(applyEnv(file, env));
    if (cfg.store.type !== 's3') throw new Error('not s3');
    return cfg.store;
  };
  t.match(
    s3({
      S3_ENDPOINT: 'http://x:9000',
      S3_BUCKET: 'bucket',
      AWS_REGION: 'eu-1',
      S3_PREFIX: 'site-1',
      AWS_ACCESS_KEY_ID: 'AKID',
      AWS_SECRET_ACCESS_KEY: 'secret',
    }),
    {
      endpoint: 'http://x:9000',
      bucket: 'bucket',
      region: 'eu-1',
      prefix: 'site-1',
      accessKeyId: 'AKID',
      secretAccessKey: 'secret',
    },
  );
  t.match(
    s3({ S3_BUCKET: 'bucket', S3_REGION: 's3-wins', AWS_REGION: 'aws', S3_ACCESS_KEY_ID: 'S3' }),
    { region: 's3-wins', accessKeyId: 'S3' },
    'S3_ wins over AWS_',
  );
  t.equal(s3({ S3_BUCKET: 'bkt' }).forcePathStyle, undefined, 'unset: the gateway decides');
  const fileS3 = { store: { type: 's3', bucket: 'from-file', forcePathStyle: true } };
  t.equal(s3({}, fileS3).bucket, 'from-file', 'the file alone selects s3 too');
  t.equal(s3({ S3_FORCE_PATH_STYLE: '' }, fileS3).forcePathStyle, true, 'empty = unset');

  for (const v of ['true', 'TRUE', '1', 'yes', 'On', ' on ']) {
    t.equal(s3({ S3_BUCKET: 'bkt', S3_FORCE_PATH_STYLE: v }).forcePathStyle, true, `"${v}"`);
  }
  for (const v of ['false', 'False', '0', 'no', 'OFF']) {
    t.equal(s3({ S3_BUCKET: 'bkt', S3_FORCE_PATH_STYLE: v }).forcePathStyle, false, `"${v}"`);
  }
  for (const v of ['maybe', '2', 'y', 'tru']) {
    t.throws(
      () => applyEnv({}, { S3_BUCKET: 'bkt', S3_FORCE_PATH_STYLE: v }),
      { code: 'GW_ERR_CONFIG', message: /S3_FORCE_PATH_STYLE/ },
      `"${v}" is an error naming the variable`,
    );
  }
});

t.test('AE titles and UIDs follow src/dicom', async (t) => {
  const dicom = (d: Record<string, unknown>) => () => parseConfig({ dicom: d });
  t.doesNotThrow(dicom({ aeTitle: 'X'.repeat(16), aliases: ['PACS 2'] }));
  for (const ae of ['X'.repeat(17), 'A\\B', 'A\tB', '    ', '']) {
    t.throws(dicom({ aeTitle: ae }), { code: 'GW_ERR_CONFIG' }, JSON.stringify(ae));
  }
  try {
    dicom({ aeTitle: 'X'.repeat(17) })();
  } catch (err) {
    t.notMatch((err as Error).message, /only spaces/, 'a long title is not said to be blank');
  }
  t.throws(dicom({ aeTitle: '   ' }), { message: /only spaces/ });
  t.doesNotThrow(dicom({ implementationClassUid: '1.2.3.0.10' }));
  for (const uid of ['1.2.03', '1..2', '1.2.', '1.' + '2'.repeat(63)]) {
    t.throws(dicom({ implementationClassUid: uid }), { code: 'GW_ERR_CONFIG' }, uid);
  }
});

t.test('callable peers: host and port together, one association by default', async (t) => {
  const cfg = parseConfig({
    dicom: {
      peers: [
        { aeTitle: 'PACS', addresses: ['10.0.0.0/8'], host: '10.0.0.5', port: 104 },
        { aeTitle: 'CT1' },
      ],
    },
  });
  t.equal(cfg.dicom.peers[0]!.host, '10.0.0.5');
  t.equal(cfg.dicom.peers[0]!.maxAssociations, 1);
  t.equal(cfg.dicom.peers[1]!.host, undefined, 'a peer without host is only an allow-list entry');
  t.throws(
    () => parseConfig({ dicom: { peers: [{ aeTitle: 'PACS', host: '10.0.0.5' }] } }),
    /dicom\.peers\.0\.port: a callable peer needs both host and port/,
  );
});
