/** The `reconcile` block and notify.stableRequireComplete: defaults, and errors naming the key. */
import t from 'tap';
import { parseConfig } from '../../src/config.js';
import { isGatewayError } from '../../src/errors.js';

const PACS = { aeTitle: 'PACS', host: '10.0.0.5', port: 104 };
const SENDER = { aeTitle: 'CT1', addresses: ['10.0.0.9'] };

function configError(raw: unknown): string {
  try {
    parseConfig(raw);
  } catch (err) {
    if (isGatewayError(err, 'GW_ERR_CONFIG')) return err.message;
    throw err;
  }
  throw new Error('expected a config error');
}

t.test('off by default, every default spelled out', async (t) => {
  t.same(parseConfig({}).reconcile, {
    enabled: false,
    intervalMinutes: 60,
    windowDays: 7,
    deep: false,
    firstRunAfterSeconds: 60,
    timeoutSeconds: 30,
    maxResults: 1000,
  });
  t.equal(parseConfig({}).notify.stableRequireComplete, undefined);
});

t.test('enabled against a callable peer validates', async (t) => {
  const cfg = parseConfig({
    dicom: { peers: [PACS, SENDER] },
    reconcile: { enabled: true, source: 'PACS', intervalMinutes: 15, windowDays: 30, deep: true },
    notify: { stableRequireComplete: { source: 'PACS' } },
  });
  t.match(cfg.reconcile, { enabled: true, source: 'PACS', intervalMinutes: 15, windowDays: 30 });
  t.same(cfg.notify.stableRequireComplete, {
    source: 'PACS',
    recheckSeconds: 60,
    timeoutSeconds: 30,
  });
});

t.test('a source set while disabled is not checked', async (t) => {
  t.equal(parseConfig({ reconcile: { source: 'NOSUCH' } }).reconcile.enabled, false);
});

t.test('errors name reconcile.source', async (t) => {
  t.match(
    configError({ reconcile: { enabled: true } }),
    /reconcile\.source: required when reconcile\.enabled/,
  );
  t.match(
    configError({ dicom: { peers: [PACS] }, reconcile: { enabled: true, source: 'OTHER' } }),
    /reconcile\.source: no peer OTHER in dicom\.peers/,
  );
  t.match(
    configError({ dicom: { peers: [SENDER] }, reconcile: { enabled: true, source: 'CT1' } }),
    /reconcile\.source: peer CT1 in dicom\.peers has no host and port/,
  );
});

t.test('errors name notify.stableRequireComplete.source', async (t) => {
  t.match(
    configError({
      dicom: { peers: [SENDER] },
      notify: { stableRequireComplete: { source: 'CT1' } },
    }),
    /notify\.stableRequireComplete\.source: peer CT1 in dicom\.peers has no host and port/,
  );
  t.match(
    configError({ notify: { stableRequireComplete: {} } }),
    /notify\.stableRequireComplete\.source/,
  );
});

t.test('ranges and unknown keys', async (t) => {
  const peers = { dicom: { peers: [PACS] } };
  const bad = (reconcile: Record<string, unknown>): string =>
    configError({ ...peers, reconcile: { enabled: true, source: 'PACS', ...reconcile } });
  t.match(bad({ intervalMinutes: 0 }), /reconcile\.intervalMinutes/);
  t.match(bad({ windowDays: 0 }), /reconcile\.windowDays/);
  t.match(bad({ windowDays: 1.5 }), /reconcile\.windowDays/);
  t.match(bad({ firstRunAfterSeconds: -1 }), /reconcile\.firstRunAfterSeconds/);
  t.match(bad({ every: 5 }), /reconcile: Unrecognized key/);
});
