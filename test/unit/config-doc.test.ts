import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import YAML from 'yaml';
import {
  configPaths,
  configRows,
  DESCRIPTIONS,
  DOC_PATH,
  ENV_VARS,
  renderConfigDoc,
  ROOT,
} from '../../scripts/gen-config-doc.js';
import { applyEnv, parseConfig } from '../../src/config.js';

const EXAMPLES_DIR = join(ROOT, 'deploy', 'config');
const CONFIG_SOURCE = readFileSync(join(ROOT, 'src', 'config.ts'), 'utf8');

/** Every `env.NAME` that src/config.ts reads. */
function envNamesReadByConfig(): string[] {
  return [...new Set([...CONFIG_SOURCE.matchAll(/\benv\.([A-Z][A-Z0-9_]*)/g)].map((m) => m[1]!))];
}

/** A plausible value for each variable, to apply an example's documented environment. */
const SAMPLE_ENV: Record<string, string> = {
  DICOM_AE_TITLE: 'SAMPLE_AE',
  DICOM_HOST: '0.0.0.0',
  DICOM_PORT: '11112',
  LOG_LEVEL: 'debug',
  ADMIN_TOKEN: 'sample-admin-token-0123456789',
  ADMIN_PORT: '8080',
  DATABASE_URL: 'postgres://dicomgw:secret@db.example:5432/dicomgw',
  S3_ENDPOINT: 'http://s3.example:9000',
  S3_BUCKET: 'sample-bucket',
  S3_REGION: 'ru-central1',
  AWS_REGION: 'eu-west-1',
  S3_PREFIX: 'site-1',
  S3_ACCESS_KEY_ID: 'SAMPLEKEYID',
  AWS_ACCESS_KEY_ID: 'SAMPLEKEYID',
  S3_SECRET_ACCESS_KEY: 'sample-secret',
  AWS_SECRET_ACCESS_KEY: 'sample-secret',
  S3_FORCE_PATH_STYLE: 'true',
  PGPASSWORD: 'secret',
};

t.test('docs/configuration.md is what scripts/gen-config-doc.ts generates', async (t) => {
  const committed = readFileSync(DOC_PATH, 'utf8');
  const generated = await renderConfigDoc();
  // On failure: TS_NODE_TRANSPILE_ONLY=1 node --import=@tapjs/typescript/import scripts/gen-config-doc.ts
  t.ok(committed === generated, 'docs/configuration.md is up to date (regenerate it)');
});

t.test('every schema key has a description, and no description is stale', async (t) => {
  const rows = configRows();
  t.ok(rows.length > 40, `walked ${rows.length} rows`);
  for (const r of rows) {
    t.ok(r.description && r.description.length > 10, `${r.path} has a description`);
  }
  const paths = new Set(configPaths(rows));
  const sections = new Set(rows.map((r) => r.section));
  for (const key of Object.keys(DESCRIPTIONS)) {
    t.ok(paths.has(key) || sections.has(key), `DESCRIPTIONS["${key}"] is a schema key`);
  }
  for (const s of sections) t.ok(DESCRIPTIONS[s], `section ${s} has a description`);
});

t.test('the walk finds the keys of nested objects, lists and union variants', async (t) => {
  const rows = configRows();
  const byPath = (p: string) => rows.filter((r) => r.path === p);
  t.equal(byPath('dicom.port')[0]?.default, '`11112`');
  t.equal(byPath('dicom.port')[0]?.allowed, '0 – 65535');
  t.equal(byPath('dicom.peers[].aeTitle')[0]?.default, 'required');
  t.equal(byPath('dicom.tls.minVersion')[0]?.allowed, '`TLSv1.2` \\| `TLSv1.3`');
  t.equal(byPath('store.bucket')[0]?.variant, 's3');
  t.equal(byPath('store.bucket')[0]?.default, 'required');
  t.same(
    byPath('store.prefix').map((r) => r.variant),
    ['fs', 's3'],
    'a key of both variants is documented in both',
  );
  t.equal(byPath('store.spool.maxBytes')[0]?.default, '`21474836480` (20 GiB)');
  t.equal(byPath('index.url')[0]?.variant, 'postgres');
  t.equal(byPath('index.type')[0]?.default, '`embedded`');
});

t.test('every environment variable src/config.ts reads is documented', async (t) => {
  const doc = readFileSync(DOC_PATH, 'utf8');
  const listed = new Set(ENV_VARS.flatMap((e) => e.names));
  const read = envNamesReadByConfig();
  t.ok(read.length >= 15, `found ${read.length} env.X reads in src/config.ts`);
  for (const name of read) {
    t.ok(listed.has(name), `${name} is in ENV_VARS`);
    t.ok(doc.includes(`\`${name}\``), `${name} is in docs/configuration.md`);
  }
  const paths = new Set(configPaths());
  for (const e of ENV_VARS) {
    const source = readFileSync(join(ROOT, e.source ?? 'src/config.ts'), 'utf8');
    for (const name of e.names)
      t.ok(source.includes(name), `${name} is read by ${e.source ?? 'src/config.ts'}`);
    if (e.sets) t.ok(paths.has(e.sets), `${e.names[0]} sets ${e.sets}, a schema key`);
  }
});

const examples = readdirSync(EXAMPLES_DIR).filter((f) => /\.(ya?ml|json)$/.test(f));

t.test('every example config in deploy/config is valid', async (t) => {
  t.ok(examples.length >= 3, `examples: ${examples.join(', ')}`);
  for (const file of examples) {
    const text = readFileSync(join(EXAMPLES_DIR, file), 'utf8');
    const raw = (file.endsWith('.json') ? JSON.parse(text) : YAML.parse(text)) as Record<
      string,
      unknown
    >;
    // The loader does not expand ${VAR}: a placeholder would reach the gateway verbatim.
    t.notMatch(JSON.stringify(raw), /\$\{/, `${file} has no \${...} placeholders in values`);
    t.doesNotThrow(() => parseConfig(raw, file), `${file} parses on its own`);

    // The environment its header comment tells the operator to set, with sample values.
    const named = [...text.matchAll(/^#.*$/gm)]
      .flatMap((m) => [...m[0].matchAll(/\b[A-Z][A-Z0-9]*_[A-Z0-9_]+\b|\bPGPASSWORD\b/g)])
      .map((m) => m[0])
      .filter((n) => n !== 'CLUSTER_ID');
    const env: Record<string, string> = {};
    for (const name of named) {
      t.ok(name in SAMPLE_ENV, `${file}: ${name} is a variable the gateway or pg reads`);
      env[name] = SAMPLE_ENV[name] ?? '';
    }
    t.doesNotThrow(
      () => parseConfig(applyEnv(raw, env), `${file} + ${Object.keys(env).join(', ')}`),
      `${file} is valid with its environment applied`,
    );
  }
});

t.test('embedded.yaml spells out exactly the defaults', async (t) => {
  const raw = YAML.parse(readFileSync(join(EXAMPLES_DIR, 'embedded.yaml'), 'utf8')) as unknown;
  t.same(parseConfig(raw), parseConfig({}));
  // Spelled out: every key with a default appears in the file (tls has none, it is optional).
  const flat = new Set<string>();
  const visit = (v: unknown, path: string): void => {
    if (v && typeof v === 'object' && !Array.isArray(v)) {
      for (const [k, c] of Object.entries(v)) visit(c, path ? `${path}.${k}` : k);
    } else flat.add(path);
  };
  visit(raw, '');
  visit(parseConfig({}), 'defaults:');
  for (const p of [...flat].filter((x) => x.startsWith('defaults:'))) {
    t.ok(flat.has(p.slice('defaults:'.length + 1)), `${p.slice(10)} is in embedded.yaml`);
  }
});

t.test('the on-prem and Yandex examples use what they claim', async (t) => {
  const load = (f: string) =>
    parseConfig(YAML.parse(readFileSync(join(EXAMPLES_DIR, f), 'utf8')) as unknown, f);
  const onPrem = load('on-prem-minio-postgres.yaml');
  t.equal(onPrem.store.type, 's3');
  t.equal(onPrem.index.type, 'postgres');
  t.ok(onPrem.store.type === 's3' && onPrem.store.ack === 'spooled', 'ack spooled');
  t.ok(
    onPrem.dicom.peers.some((p) => p.addresses.some((a) => a.includes('/'))),
    'peers with CIDR ranges',
  );
  const yc = load('yandex-cloud.yaml');
  t.ok(yc.store.type === 's3' && yc.store.endpoint === 'https://storage.yandexcloud.net');
  t.ok(yc.store.type === 's3' && yc.store.region === 'ru-central1');
  t.ok(yc.index.type === 'postgres' && /[?&]sslmode=verify-full(&|$)/.test(yc.index.url));
});
