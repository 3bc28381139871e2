import t from 'tap';
import YAML from 'yaml';
import { parseConfig } from '../../src/config.js';
import { isGatewayError } from '../../src/errors.js';
import { openDestinations } from '../../src/notify/open-destinations.js';
import { MemoryStore } from '../../src/store/memory-store.js';

const S3 = { type: 's3', bucket: 'dicom', endpoint: 'http://127.0.0.1:7480' };

function configError(raw: unknown): string {
  try {
    parseConfig(raw);
  } catch (err) {
    if (isGatewayError(err, 'GW_ERR_CONFIG')) return err.message;
    throw err;
  }
  throw new Error('expected a config error');
}

t.test('the exact shape of issue 15 validates (on an s3 store)', async (t) => {
  const raw = YAML.parse(`
store:
  type: s3
  bucket: dicom
notify:
  destinations:
    - name: cloud
      type: orthanc-pull
      url: http://127.0.0.1:8042
`) as unknown;
  const cfg = parseConfig(raw);
  t.same(cfg.notify.destinations, [
    {
      name: 'cloud',
      type: 'orthanc-pull',
      url: 'http://127.0.0.1:8042',
      timeoutSeconds: 30,
      events: ['instance.stored', 'instance.replaced'],
    },
  ]);
  t.equal(cfg.notify.stableAfterSeconds, 60);
  t.equal(cfg.notify.archive, undefined);
  t.equal(cfg.notify.maxAttempts, 10);
  t.equal(cfg.notify.batchSize, 100);
});

t.test('type defaults to orthanc-pull: fine on an s3 store, an error on an fs store', async (t) => {
  const dest = { name: 'cloud', url: 'http://127.0.0.1:8042' };
  const cfg = parseConfig({ store: S3, notify: { destinations: [dest] } });
  t.equal(cfg.notify.destinations[0]?.type, 'orthanc-pull');
  t.match(
    configError({ notify: { destinations: [dest] } }),
    /notify\.destinations\.0\.type.*orthanc-pull \(the default type\) needs an s3 store/,
  );
});

t.test('study.stable: webhooks only; the archive needs an s3 store and its own name', async (t) => {
  const hook = { name: 'hook', type: 'webhook', url: 'http://127.0.0.1:9/e' };
  const cfg = parseConfig({
    store: S3,
    notify: {
      destinations: [{ ...hook, events: ['instance.stored', 'study.stable'] }],
      stableAfterSeconds: 2,
      archive: { bucket: 'studies', prefix: 'zips' },
    },
  });
  t.same(cfg.notify.destinations[0]?.events, ['instance.stored', 'study.stable']);
  t.same(cfg.notify.archive, { bucket: 'studies', prefix: 'zips', name: 'archive' });
  t.match(
    configError({
      store: S3,
      notify: { destinations: [{ name: 'c', url: 'http://x:1', events: ['study.stable'] }] },
    }),
    /notify\.destinations\.0\.events.*orthanc-pull takes instance events only/,
  );
  t.match(
    configError({ store: S3, notify: { destinations: [{ ...hook, events: [] }] } }),
    /notify\.destinations\.0\.events/,
  );
  t.match(configError({ notify: { archive: {} } }), /notify\.archive.*needs an s3 store/);
  t.match(
    configError({
      store: S3,
      notify: { destinations: [{ ...hook, name: 'archive' }], archive: {} },
    }),
    /"archive" is used twice/,
  );
});

t.test('orthanc-pull on an fs store is an error naming the key', async (t) => {
  const msg = configError({
    notify: { destinations: [{ name: 'cloud', type: 'orthanc-pull', url: 'http://o:8042' }] },
  });
  t.match(
    msg,
    /notify\.destinations\.0\.type: orthanc-pull (\(the default type\) )?needs an s3 store/,
  );
  t.doesNotThrow(() =>
    parseConfig({
      notify: { destinations: [{ name: 'cloud', type: 'orthanc-push', url: 'http://o:8042' }] },
    }),
  );
});

t.test('names are unique; unknown keys, bad urls and bad env names are errors', async (t) => {
  const d = { type: 'orthanc-pull', url: 'http://o:8042' };
  t.match(
    configError({
      store: S3,
      notify: {
        destinations: [
          { ...d, name: 'a' },
          { ...d, name: 'a' },
        ],
      },
    }),
    /notify\.destinations\.1\.name: destination name "a" is used twice/,
  );
  t.match(
    configError({ store: S3, notify: { destinations: [{ ...d, name: 'a', password: 'x' }] } }),
    /notify\.destinations\.0: Unrecognized key: "password"/,
  );
  t.match(
    configError({ store: S3, notify: { destinations: [{ ...d, name: 'a', url: 'nope' }] } }),
    /notify\.destinations\.0\.url/,
  );
  t.match(
    configError({
      store: S3,
      notify: { destinations: [{ ...d, name: 'a', passwordEnv: 'not a name' }] },
    }),
    /notify\.destinations\.0\.passwordEnv: an environment variable name/,
  );
  t.match(
    configError({ notify: { destinations: [{ name: 'a', type: 'smtp', url: 'http://x' }] } }),
    /notify\.destinations\.0\.type/,
  );
  t.match(
    configError({ notify: { backoff: { initialSeconds: 10, maxSeconds: 5 } } }),
    /notify\.backoff\.maxSeconds: must be at least backoff\.initialSeconds/,
  );
});

t.test('secrets come from the environment and appear in no error', async (t) => {
  const cfg = parseConfig({
    store: S3,
    notify: {
      destinations: [
        {
          name: 'cloud',
          type: 'orthanc-pull',
          url: 'http://o:8042',
          username: 'gateway',
          passwordEnv: 'CLOUD_ORTHANC_PASSWORD',
        },
      ],
    },
  });
  const store = new MemoryStore();
  const storeFor = (): MemoryStore => store;
  t.throws(() => openDestinations(cfg.notify, storeFor, {}), {
    code: 'GW_ERR_CONFIG',
    message: /cloud: environment variable CLOUD_ORTHANC_PASSWORD is not set/,
  });
  const opened = openDestinations(cfg.notify, storeFor, { CLOUD_ORTHANC_PASSWORD: 's3cr3t-pw' });
  t.equal(opened.length, 1);
  t.notMatch(JSON.stringify(cfg), /s3cr3t-pw/, 'the secret is not in the configuration');
  await Promise.all(opened.map((d) => d.close()));
});
