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
