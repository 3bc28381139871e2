/**
 * compose.yaml, the Dockerfile and the files under deploy/ cannot be run here (no Docker
 * engine), so this parses them and checks that they agree with each other and with the code:
 * mounted files exist, ports and AE titles match the gateway's configuration, environment
 * variables are ones the gateway reads, the dashboard queries metrics that exist.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, posix } from 'node:path';
import { fileURLToPath } from 'node:url';
import t, { type Test } from 'tap';
import YAML from 'yaml';
import { Metrics } from '../../src/admin/metrics.js';
import { registerGatewayGauges, registerSpoolGauges } from '../../src/admin/start-admin.js';
import { applyEnv, parseConfig, type Config } from '../../src/config.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const read = (p: string): string => readFileSync(join(ROOT, p), 'utf8');

/**
 * The metric names the dashboard may query: what a gateway with every part (admin, outbox,
 * spool) registers in its prom-client registry. Nothing is read: the gauges are not collected.
 */
function registeredMetrics(): Set<string> {
  const metrics = new Metrics({ defaultMetrics: false });
  const unread = (): never => {
    throw new Error('not read');
  };
  registerGatewayGauges(metrics, {
    activeAssociations: unread,
    reports: { outboxPending: unread },
  });
  registerSpoolGauges(metrics, { stats: unread, heldFiles: unread });
  return new Set(metrics.registry.getMetricsAsArray().map((m) => m.name));
}
const KNOWN_METRICS = registeredMetrics();

interface Service {
  build?: string | { context?: string; dockerfile?: string };
  image?: string;
  command?: string[] | string;
  environment?: Record<string, string> | string[];
  volumes?: Array<string | { type?: string; source?: string; target?: string }>;
  configs?: Array<string | { source: string; target?: string }>;
  ports?: Array<string | number | { target: number; published?: string | number }>;
  depends_on?: string[] | Record<string, { condition?: string }>;
  healthcheck?: { test?: string[] | string };
  profiles?: string[];
}

interface Compose {
  services: Record<string, Service>;
  configs?: Record<string, { file?: string; content?: string; environment?: string }>;
  volumes?: Record<string, unknown>;
}

/**
 * Compose interpolation with no variables set, as `docker compose config` would do it:
 * `${VAR:-default}` and `${VAR-default}` give the default, `${VAR}` gives '', `$$` gives `$`.
 */
function interpolate(s: string, env: Record<string, string> = {}): string {
  return s.replace(
    /\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?)-([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)/g,
    (whole, name?: string, colon?: string, dflt?: string, bare?: string) => {
      if (whole === '$$') return '$';
      const key = name ?? bare!;
      const v = env[key];
      if (dflt === undefined) return v ?? '';
      // `:-` also replaces an empty value; `-` only an unset one.
      return (colon ? v : v !== undefined) ? (v ?? '') : dflt;
    },
  );
}

function environmentOf(svc: Service): Record<string, string> {
  const out: Record<string, string> = {};
  const env = svc.environment ?? {};
  const pairs: Array<[string, string]> = Array.isArray(env)
    ? env.map((kv) => {
        const i = kv.indexOf('=');
        return i < 0 ? [kv, ''] : [kv.slice(0, i), kv.slice(i + 1)];
      })
    : Object.entries(env).map(([k, v]) => [k, String(v ?? '')]);
  for (const [k, v] of pairs) out[k] = interpolate(v);
  return out;
}

interface Mount {
  source: string;
  target: string;
  bind: boolean;
}

function mountsOf(svc: Service): Mount[] {
  return (svc.volumes ?? []).map((v) => {
    if (typeof v === 'string') {
      const [source = '', target = ''] = interpolate(v).split(':');
      return { source, target, bind: source.startsWith('.') || source.startsWith('/') };
    }
    return { source: v.source ?? '', target: v.target ?? '', bind: v.type === 'bind' };
  });
}

/** Container ports a service publishes. */
function publishedPorts(svc: Service): number[] {
  return (svc.ports ?? []).map((p) => {
    if (typeof p === 'object') return Number(p.target);
    const last = String(p).split(':').pop()!;
    return Number(last.split('/')[0]);
  });
}

function dependsOn(svc: Service): Record<string, string | undefined> {
  const d = svc.depends_on ?? {};
  if (Array.isArray(d)) return Object.fromEntries(d.map((n) => [n, undefined]));
  return Object.fromEntries(Object.entries(d).map(([n, v]) => [n, v?.condition]));
}

function commandOf(svc: Service): string[] {
  const c = svc.command ?? [];
  return Array.isArray(c) ? c : c.split(/\s+/);
}

/** Every `env.NAME` that src/config.ts reads. */
function envNamesReadByConfig(): Set<string> {
  return new Set(
    [...read('src/config.ts').matchAll(/\benv\.([A-Z][A-Z0-9_]*)/g)].map((m) => m[1]!),
  );
}

const compose = YAML.parse(read('compose.yaml')) as Compose;
const gateway = compose.services.gateway!;
const gatewayEnv = environmentOf(gateway);

/** The file `--config` names, and the repository file mounted there. */
function gatewayConfigFile(): { inContainer: string; inRepo: string | undefined } {
  const cmd = commandOf(gateway);
  const i = cmd.findIndex((a) => a === '--config' || a === '-c');
  const inContainer = i >= 0 ? cmd[i + 1]! : '';
  const mount = mountsOf(gateway).find((m) => m.target === inContainer);
  return { inContainer, inRepo: mount?.source };
}

function gatewayConfig(): { raw: Record<string, unknown>; cfg: Config } {
  const { inRepo } = gatewayConfigFile();
  const raw = YAML.parse(read(inRepo!)) as Record<string, unknown>;
  return { raw, cfg: parseConfig(applyEnv(raw, gatewayEnv), 'gateway config + compose env') };
}

/** Port defaults of the schema: what the Dockerfile exposes. */
function schemaDefaultPorts(): { dicom: number; tls: number; admin: number } {
  const d = parseConfig({ dicom: { tls: { certFile: 'c', keyFile: 'k' } } });
  return { dicom: d.dicom.port, tls: d.dicom.tls!.port, admin: d.admin.port };
}

t.test(
  'interpolate() resolves compose variables like docker compose does with none set',
  async (t) => {
    t.equal(interpolate('a${X:-dflt}b'), 'adfltb');
    t.equal(interpolate('${X-dflt}'), 'dflt');
    t.equal(interpolate('${X}'), '');
    t.equal(interpolate('$$HOME'), '$HOME');
    t.equal(interpolate('${X:-d}', { X: 'set' }), 'set');
    t.equal(interpolate('${X:-d}', { X: '' }), 'd');
    t.equal(interpolate('${X-d}', { X: '' }), '');
  },
);

t.test('every file a service mounts exists in the repository', async (t) => {
  for (const [name, svc] of Object.entries(compose.services)) {
    for (const m of mountsOf(svc)) {
      if (m.bind) {
        t.ok(existsSync(join(ROOT, m.source)), `${name}: ${m.source} exists`);
      } else {
        t.ok(
          compose.volumes && m.source in compose.volumes,
          `${name}: volume ${m.source} declared`,
        );
      }
    }
    for (const c of svc.configs ?? []) {
      const source = typeof c === 'string' ? c : c.source;
      const def = compose.configs?.[source];
      t.ok(def, `${name}: config ${source} is declared`);
      if (def?.file) t.ok(existsSync(join(ROOT, def.file)), `${name}: ${def.file} exists`);
    }
    if (svc.build !== undefined) {
      const ctx = typeof svc.build === 'string' ? svc.build : (svc.build.context ?? '.');
      const file =
        typeof svc.build === 'string' ? 'Dockerfile' : (svc.build.dockerfile ?? 'Dockerfile');
      t.ok(existsSync(join(ROOT, ctx, file)), `${name}: build ${ctx}/${file} exists`);
    }
    for (const dep of Object.keys(dependsOn(svc))) {
      t.ok(dep in compose.services, `${name} depends on ${dep}, a service`);
    }
  }
});

t.test('depends_on waits for health where a service has a healthcheck', async (t) => {
  for (const [name, svc] of Object.entries(compose.services)) {
    for (const [dep, condition] of Object.entries(dependsOn(svc))) {
      const target = compose.services[dep];
      if (!target || svc.profiles) continue;
      const hasCheck = target.healthcheck !== undefined || target.build !== undefined; // Dockerfile HEALTHCHECK
      if (hasCheck) t.equal(condition, 'service_healthy', `${name} waits for ${dep} to be healthy`);
    }
  }
  t.equal(dependsOn(gateway)['minio-init'], 'service_completed_successfully');
  t.match(compose.services.postgres?.healthcheck?.test, /pg_isready/, 'postgres: pg_isready');
});

t.test('the gateway only gets environment variables that src/config.ts reads', async (t) => {
  const known = envNamesReadByConfig();
  t.ok(known.size >= 15, `src/config.ts reads ${known.size} variables`);
  // ... or that its config file names for a secret (passwordEnv, tokenEnv).
  for (const d of gatewayConfig().cfg.notify.destinations) {
    for (const v of Object.values(d))
      if (typeof v === 'string' && /^[A-Z_]+$/.test(v)) known.add(v);
  }
  for (const name of Object.keys(gatewayEnv)) t.ok(known.has(name), `${name} is read by applyEnv`);
  for (const name of ['DATABASE_URL', 'S3_ENDPOINT', 'S3_BUCKET', 'ADMIN_TOKEN']) {
    t.ok(gatewayEnv[name], `${name} is set`);
  }
});

t.test('the mounted gateway config is valid and matches the services around it', async (t) => {
  const { inContainer, inRepo } = gatewayConfigFile();
  t.ok(inContainer, 'the gateway is started with --config');
  t.equal(
    inRepo,
    './deploy/gateway/gateway.yaml',
    '--config names the mounted deploy/gateway/gateway.yaml',
  );
  const { raw, cfg } = gatewayConfig();
  t.doesNotThrow(() => parseConfig(raw, inRepo), 'valid without the compose environment too');

  t.equal(cfg.store.type, 's3');
  t.equal(cfg.index.type, 'postgres');
  if (cfg.store.type === 's3') {
    t.equal(new URL(cfg.store.endpoint!).hostname, 'minio');
    t.ok(cfg.store.accessKeyId && cfg.store.secretAccessKey, 'bucket credentials are set');
    const init = commandOf(compose.services['minio-init']!).join('\n');
    t.match(
      init,
      new RegExp(`mc mb [^\\n]*local/${cfg.store.bucket}\\b`),
      `minio-init creates ${cfg.store.bucket}`,
    );
    t.match(init, /mc mb [^\n]*local\/archive\b/, 'minio-init creates archive');
    const minioEnv = environmentOf(compose.services.minio!);
    t.equal(cfg.store.accessKeyId, minioEnv.MINIO_ROOT_USER, 'the gateway uses MinIO credentials');
    t.equal(cfg.store.secretAccessKey, minioEnv.MINIO_ROOT_PASSWORD);
  }
  if (cfg.index.type === 'postgres') {
    const url = new URL(cfg.index.url);
    t.equal(url.hostname, 'postgres');
    const pgEnv = environmentOf(compose.services.postgres!);
    t.equal(decodeURIComponent(url.username), pgEnv.POSTGRES_USER);
    t.equal(decodeURIComponent(url.password), pgEnv.POSTGRES_PASSWORD);
    t.equal(url.pathname.slice(1), pgEnv.POSTGRES_DB);
  }
  // Prometheus scrapes from another container: the admin listener must be reachable and guarded.
  t.not(cfg.admin.host, '127.0.0.1', 'admin listens beyond loopback');
  t.ok(cfg.admin.token, 'admin token set');
  // The spool must be on the persistent volume (relative paths resolve under the WORKDIR).
  const dataMount = mountsOf(gateway).find((m) => m.target === '/var/lib/dicom-gateway');
  t.ok(dataMount && !dataMount.bind, 'the data directory is a named volume');
  if (cfg.store.type === 's3') {
    const spool = posix.resolve('/var/lib/dicom-gateway', cfg.store.spool.dir);
    t.ok(spool.startsWith('/var/lib/dicom-gateway/'), `spool ${spool} is on the data volume`);
  }
});

t.test("the gateway's published ports are the ones it listens on", async (t) => {
  const { raw, cfg } = gatewayConfig();
  const listening = new Set([
    cfg.dicom.port,
    cfg.admin.port,
    ...(cfg.dicom.tls ? [cfg.dicom.tls.port] : []),
  ]);
  const published = publishedPorts(gateway);
  t.ok(published.includes(cfg.dicom.port), `DICOM port ${cfg.dicom.port} is published`);
  t.ok(published.includes(cfg.admin.port), `admin port ${cfg.admin.port} is published`);
  for (const p of published)
    t.ok(listening.has(p), `published ${p} is a port the gateway listens on`);
  // Ports not set in the mounted file are the schema's defaults.
  const defaults = schemaDefaultPorts();
  const fileDicom = (raw.dicom as { port?: number } | undefined)?.port;
  const fileAdmin = (raw.admin as { port?: number } | undefined)?.port;
  t.equal(cfg.dicom.port, fileDicom ?? defaults.dicom);
  t.equal(cfg.admin.port, fileAdmin ?? defaults.admin);
});

t.test("the local Orthanc's modality entry points at the gateway", async (t) => {
  const { cfg } = gatewayConfig();
  const orthanc = compose.services['local-orthanc']!;
  const mounts = mountsOf(orthanc);
  const jsonMount = mounts.find((m) => m.target === '/etc/orthanc/orthanc.json');
  t.ok(jsonMount, 'orthanc.json is mounted at /etc/orthanc/orthanc.json');
  const conf = JSON.parse(read(jsonMount!.source)) as {
    DicomAet: string;
    DicomModalities: Record<string, [string, string, number]>;
    LuaScripts?: string[];
  };
  const entry = conf.DicomModalities.gateway;
  t.ok(entry, 'DicomModalities has "gateway"');
  const [ae, host, port] = entry!;
  t.ok([cfg.dicom.aeTitle, ...cfg.dicom.aliases].includes(ae), `AE ${ae} is the gateway's`);
  t.equal(host, 'gateway', 'host is the gateway service');
  t.ok(host in compose.services);
  t.equal(port, cfg.dicom.port, 'port is the gateway DICOM port');
  // The gateway must let the Orthanc in when it restricts callers.
  const allowed = cfg.dicom.allowedCallingAeTitles;
  if (allowed.length > 0) t.ok(allowed.includes(conf.DicomAet), `${conf.DicomAet} may associate`);
  const peers = cfg.dicom.peers;
  if (peers.length > 0)
    t.ok(
      peers.some((p) => p.aeTitle === conf.DicomAet),
      `${conf.DicomAet} is a peer`,
    );

  t.ok((conf.LuaScripts ?? []).length > 0, 'a Lua script is configured');
  for (const script of conf.LuaScripts ?? []) {
    const m = mounts.find((x) => x.target === script);
    t.ok(m, `${script} is mounted`);
    const lua = read(m!.source);
    t.match(lua, /function\s+OnStoredInstance\s*\(\s*instanceId/, 'OnStoredInstance is defined');
    t.match(
      lua,
      /SendToModality\s*,\s*instanceId\s*,\s*'gateway'|SendToModality\s*\(\s*instanceId\s*,\s*'gateway'/,
    );
  }
});

t.test('Prometheus scrapes the gateway with the admin token', async (t) => {
  const { cfg } = gatewayConfig();
  const prom = compose.services.prometheus!;
  t.same(prom.profiles, ['monitoring']);
  const promMount = mountsOf(prom).find((m) => m.target === '/etc/prometheus/prometheus.yml');
  t.ok(promMount, 'prometheus.yml is mounted');
  const conf = YAML.parse(read(promMount!.source)) as {
    scrape_configs: Array<{
      job_name: string;
      metrics_path?: string;
      authorization?: { type?: string; credentials_file?: string };
      static_configs: Array<{ targets: string[] }>;
    }>;
  };
  const job = conf.scrape_configs.find((j) =>
    j.static_configs.some((s) => s.targets.includes(`gateway:${cfg.admin.port}`)),
  );
  t.ok(job, `a job scrapes gateway:${cfg.admin.port}`);
  t.equal(job?.metrics_path ?? '/metrics', '/metrics');
  t.equal(job?.authorization?.type ?? 'Bearer', 'Bearer');
  const file = job?.authorization?.credentials_file;
  const cfgRef = (prom.configs ?? [])
    .map((c) => (typeof c === 'string' ? { source: c, target: `/${c}` } : c))
    .find((c) => c.target === file);
  t.ok(cfgRef, `the token file ${file} is mounted from a compose config`);
  const def = compose.configs?.[cfgRef!.source];
  const token =
    def?.content !== undefined
      ? interpolate(def.content)
      : def?.file
        ? read(def.file).trim()
        : undefined;
  t.equal(token, cfg.admin.token, 'the token file holds the gateway ADMIN_TOKEN');
});

interface Panel {
  title?: string;
  type?: string;
  datasource?: { uid?: string };
  targets?: Array<{ expr?: string; datasource?: { uid?: string } }>;
  panels?: Panel[];
}

t.test('the Grafana dashboard queries only the gateway metrics', async (t) => {
  const grafana = compose.services.grafana!;
  t.same(grafana.profiles, ['monitoring']);
  const mounts = mountsOf(grafana);
  const provisioning = mounts.find((m) => m.target === '/etc/grafana/provisioning');
  t.ok(provisioning, 'provisioning is mounted');
  const providers = YAML.parse(
    read(join(provisioning!.source, 'dashboards', 'dashboards.yml')),
  ) as {
    providers: Array<{ options: { path: string } }>;
  };
  const dashDir = providers.providers[0]!.options.path;
  const dashMount = mounts.find((m) => m.target === dashDir);
  t.ok(dashMount, `the provider path ${dashDir} is mounted`);
  const datasources = YAML.parse(
    read(join(provisioning!.source, 'datasources', 'prometheus.yml')),
  ) as {
    datasources: Array<{ uid: string; type: string; url: string }>;
  };
  const ds = datasources.datasources.find((d) => d.type === 'prometheus');
  t.ok(ds, 'a Prometheus datasource is provisioned');
  t.equal(new URL(ds!.url).hostname, 'prometheus');

  const files = readdirSync(join(ROOT, dashMount!.source)).filter((f) => f.endsWith('.json'));
  t.ok(files.includes('dicom-gateway.json'));
  for (const f of files) {
    const dash = JSON.parse(read(join(dashMount!.source, f))) as {
      panels: Panel[];
      templating?: { list: Array<{ query?: string | { query?: string } }> };
    };
    const flat = (ps: Panel[]): Panel[] => ps.flatMap((p) => [p, ...flat(p.panels ?? [])]);
    const panels = flat(dash.panels);
    const exprs = panels.flatMap((p) => (p.targets ?? []).map((x) => x.expr ?? ''));
    for (const v of dash.templating?.list ?? []) {
      exprs.push(typeof v.query === 'string' ? v.query : (v.query?.query ?? ''));
    }
    t.ok(exprs.length >= 10, `${f}: ${exprs.length} queries`);
    const used = new Set<string>();
    for (const e of exprs) {
      for (const m of e.matchAll(/\b(dicomgw_[a-z0-9_]+)/g)) {
        used.add(m[1]!.replace(/_(bucket|sum|count)$/, ''));
      }
    }
    for (const name of used) {
      t.ok(KNOWN_METRICS.has(name), `${f}: ${name} is registered by the gateway`);
    }
    for (const p of panels.filter((x) => x.type !== 'row')) {
      t.equal(
        p.datasource?.uid,
        ds!.uid,
        `${f}: panel "${p.title}" uses the provisioned datasource`,
      );
    }
    const all = exprs.join('\n');
    for (const q of ['0.5', '0.95']) {
      t.match(
        all,
        new RegExp(
          `histogram_quantile\\(${q.replace('.', '\\.')},[^\\n]*dicomgw_store_duration_seconds_bucket`,
        ),
        `p${Number(q) * 100} latency`,
      );
    }
    for (const m of [
      'dicomgw_instances_stored_total',
      'dicomgw_bytes_stored_total',
      'dicomgw_instances_failed_total',
      'dicomgw_associations_active',
      'dicomgw_outbox_pending',
    ]) {
      t.ok(used.has(m), `${f} shows ${m}`);
    }
    t.match(
      all,
      /sum by \(calling_ae\) \(rate\(dicomgw_instances_stored_total/,
      'instances/s by calling AE',
    );
    t.match(all, /sum by \(status\) \(rate\(dicomgw_instances_failed_total/, 'failures by status');
  }
});

interface OrthancJson {
  Plugins?: string[];
  PythonScript?: string;
  LuaScripts?: string[];
  DicomServerEnabled?: boolean;
  StorageDirectory?: string;
  PostgreSQL?: { EnableIndex?: boolean; ConnectionUri?: string; Lock?: boolean };
  DicomModalities?: Record<string, [string, string, number]>;
  HttpPort?: number;
  RegisteredUsers?: Record<string, string>;
}

/** A cloud Orthanc service's mounted orthanc.json, checked to be mounted with its scripts. */
function orthancService(t: Test, name: string, file: string): OrthancJson {
  const svc = compose.services[name]!;
  t.ok(svc, `${name} is a service`);
  const mounts = mountsOf(svc);
  t.equal(mounts.find((m) => m.target === '/etc/orthanc/orthanc.json')?.source, file);
  const conf = JSON.parse(read(file)) as OrthancJson;
  for (const script of [conf.PythonScript ?? [], conf.LuaScripts ?? []].flat()) {
    t.ok(
      mounts.some((m) => m.target === script && m.bind),
      `${name}: ${script} is mounted`,
    );
  }
  // Orthanc substitutes ${VAR} from its environment, and an unset one by '' (a password!).
  const env = environmentOf(svc);
  for (const [, v] of read(file).matchAll(/\$\{([A-Z0-9_]+)\}/g)) {
    t.ok(env[v!], `${name}: ${v} is set`);
  }
  return conf;
}

t.test("the cloud Orthanc reads the gateway's bucket; the viewer shares its index", async (t) => {
  const { cfg } = gatewayConfig();
  const cloud = orthancService(t, 'cloud-orthanc', './orthanc/cloud.json');
  const viewer = orthancService(t, 'cloud-viewer', './orthanc/viewer.json');
  const cloudEnv = environmentOf(compose.services['cloud-orthanc']!);
  const viewerEnv = environmentOf(compose.services['cloud-viewer']!);

  t.ok(
    cloud.Plugins?.some((p) => p.endsWith('libOrthancPython.so')),
    'cloud: Python plugin',
  );
  if (cfg.store.type === 's3') {
    t.equal(cloudEnv.S3_ENDPOINT, gatewayEnv.S3_ENDPOINT, 'the same S3 endpoint');
    t.equal(cloudEnv.S3_REGION, cfg.store.region);
    t.equal(cloudEnv.S3_ACCESS_KEY_ID, cfg.store.accessKeyId);
    t.equal(cloudEnv.S3_SECRET_ACCESS_KEY, cfg.store.secretAccessKey);
    t.equal(cloudEnv.S3_FORCE_PATH_STYLE, 'true', 'MinIO: path-style');
  }

  // One database and one set of files, the viewer read-only on both.
  for (const conf of [cloud, viewer]) {
    t.match(conf.PostgreSQL, { EnableIndex: true, ConnectionUri: '${ORTHANC_POSTGRESQL_URI}' });
    t.equal(conf.PostgreSQL?.Lock, false, 'no exclusive lock: two Orthancs share the database');
  }
  t.equal(viewerEnv.ORTHANC_POSTGRESQL_URI, cloudEnv.ORTHANC_POSTGRESQL_URI);
  const url = new URL(cloudEnv.ORTHANC_POSTGRESQL_URI!);
  const db = compose.services[url.hostname];
  t.ok(db?.healthcheck, `${url.hostname} is a service with a healthcheck`);
  const dbEnv = environmentOf(db ?? {});
  t.equal(decodeURIComponent(url.username), dbEnv.POSTGRES_USER);
  t.equal(decodeURIComponent(url.password), dbEnv.POSTGRES_PASSWORD);
  t.equal(url.pathname.slice(1), dbEnv.POSTGRES_DB);
  const storage = (name: string): string | undefined =>
    compose.services[name]!.volumes?.map((v) => (typeof v === 'string' ? v : '')).find((v) =>
      v.split(':')[1]?.startsWith(cloud.StorageDirectory!),
    );
  t.equal(storage('cloud-orthanc'), `orthanc-cloud-storage:${cloud.StorageDirectory}`);
  t.equal(storage('cloud-viewer'), `orthanc-cloud-storage:${viewer.StorageDirectory}:ro`);
  t.equal(dependsOn(compose.services['cloud-viewer']!)['cloud-orthanc'], 'service_healthy');

  t.notOk(viewer.PythonScript, 'viewer: no import plugin');
  t.equal(viewer.DicomServerEnabled, false, 'viewer: no DICOM server (no C-STORE in)');
  const filter = read('./orthanc/viewer-filter.lua');
  t.match(filter, /function\s+IncomingHttpRequestFilter\s*\(/, 'viewer: the write filter');
});

t.test('the gateway notifies the cloud Orthanc as its plugin user', async (t) => {
  const { cfg } = gatewayConfig();
  const cloud = orthancService(t, 'cloud-orthanc', './orthanc/cloud.json');
  const cloudEnv = environmentOf(compose.services['cloud-orthanc']!);
  const dest = cfg.notify.destinations.find((d) => d.type === 'orthanc-pull');
  if (!dest || dest.type !== 'orthanc-pull') return void t.fail('an orthanc-pull destination');
  const url = new URL(dest.url);
  t.equal(url.hostname, 'cloud-orthanc', 'the cloud Orthanc service');
  t.equal(Number(url.port), cloud.HttpPort ?? 8042, "on the cloud Orthanc's HTTP port");
  const users = cloud.RegisteredUsers ?? {};
  t.ok(dest.username && dest.username in users, `${dest.username} is a registered user`);
  const placeholder = /^\$\{(\w+)\}$/.exec(users[dest.username!] ?? '')?.[1];
  t.equal(
    gatewayEnv[dest.passwordEnv!],
    cloudEnv[placeholder ?? ''],
    'the gateway sends the password the cloud Orthanc expects',
  );
  const init = commandOf(compose.services['minio-init']!).join('\n');
  t.match(
    init,
    new RegExp(`mc mb [^\\n]*local/${cfg.notify.archive?.bucket}\\b`),
    'archive bucket',
  );
});

t.test("orthanc/local.json's modality entry is the gateway's AE title and port", async (t) => {
  const { cfg } = gatewayConfig();
  const conf = JSON.parse(read('orthanc/local.json')) as OrthancJson;
  const [ae, , port] = conf.DicomModalities?.gateway ?? [];
  t.ok(ae && [cfg.dicom.aeTitle, ...cfg.dicom.aliases].includes(ae), `AE ${ae}`);
  t.equal(port, cfg.dicom.port);
});

/** Dockerfile instructions of the last stage (continuation lines joined). */
function dockerfile(): { all: Array<[string, string]>; final: Array<[string, string]> } {
  const text = read('Dockerfile').replace(/\\\r?\n/g, ' ');
  const all = text
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'))
    .map((l): [string, string] => {
      const i = l.search(/\s/);
      return [l.slice(0, i).toUpperCase(), l.slice(i + 1).trim()];
    });
  const lastFrom = all.map(([k]) => k).lastIndexOf('FROM');
  return { all, final: all.slice(lastFrom) };
}

t.test(
  'the Dockerfile: non-root, the ports of the config schema, the CLI as entrypoint',
  async (t) => {
    const { all, final } = dockerfile();
    const args = Object.fromEntries(
      all.filter(([k]) => k === 'ARG').map(([, v]) => v.split('=') as [string, string]),
    );
    const froms = all
      .filter(([k]) => k === 'FROM')
      .map(([, v]) => v.split(/\s+/)[0]!.replace(/^\$\{(\w+)\}$/, (_, a: string) => args[a] ?? ''));
    t.ok(froms.length >= 2, 'multi-stage');
    for (const f of froms) t.equal(f, 'node:20-bookworm-slim');

    const user = final.filter(([k]) => k === 'USER').pop()?.[1];
    t.ok(user, 'the runtime stage sets USER');
    t.notMatch(user ?? 'root', /^(root|0)(:|$)/, 'USER is not root');
    t.match(user, /^(10001|dicomgw)(:|$)/, 'USER is dicomgw (uid 10001)');
    t.match(
      final.map(([k, v]) => `${k} ${v}`).join('\n'),
      /useradd [^\n]*--uid 10001[^\n]* dicomgw/,
    );

    const exposed = new Set(
      final
        .filter(([k]) => k === 'EXPOSE')
        .flatMap(([, v]) => v.split(/\s+/).map((p) => Number(p.split('/')[0]))),
    );
    const d = schemaDefaultPorts();
    t.same(
      [...exposed].sort(),
      [d.dicom, d.tls, d.admin].sort(),
      'EXPOSE = the schema default ports',
    );

    const get = (k: string): string | undefined => final.filter(([x]) => x === k).pop()?.[1];
    t.same(JSON.parse(get('ENTRYPOINT') ?? 'null'), ['node', '/app/dist/main.js']);
    t.same(JSON.parse(get('CMD') ?? 'null'), ['serve']);
    t.equal(get('WORKDIR'), '/var/lib/dicom-gateway');
    t.match(
      get('HEALTHCHECK'),
      new RegExp(`127\\.0\\.0\\.1:.*${d.admin}.*/healthz`),
      'HEALTHCHECK GETs /healthz',
    );
    t.equal(
      JSON.parse(read('package.json')).bin['dicom-gateway'],
      'dist/main.js',
      'the image runs the package bin',
    );

    // Every file the build stage copies from the context is let through .dockerignore.
    const ignore = read('.dockerignore')
      .split(/\r?\n/)
      .map((l) => l.trim());
    for (const [k, v] of all) {
      if (k !== 'COPY' || v.includes('--from=')) continue;
      const sources = v
        .split(/\s+/)
        .filter((x) => !x.startsWith('--'))
        .slice(0, -1);
      for (const s of sources) {
        t.ok(
          ignore.includes(`!${s}`) || ignore.includes(`!${s.replace(/\/$/, '')}`),
          `.dockerignore lets ${s} in`,
        );
        t.ok(existsSync(join(ROOT, s)), `${s} exists`);
      }
    }
    t.ok(statSync(join(ROOT, 'scripts', 'copy-migrations.mjs')).isFile());
  },
);

t.test('profile ydb: a local YDB for the YdbIndex contract suite, loopback only', async (t) => {
  const ydb = compose.services.ydb!;
  t.ok(ydb, 'a ydb service');
  t.same(ydb.profiles, ['ydb'], 'only with --profile ydb');
  t.match(ydb.image, /^(ydbplatform\/local-ydb|cr\.yandex\/yc\/yandex-docker-local-ydb):/);
  t.same(
    (ydb.ports ?? []).map(String).filter((p) => p.endsWith(':2136')),
    ['127.0.0.1:2136:2136'],
    'gRPC 2136 on loopback',
  );
  t.notOk(ydb.healthcheck, "the image's own HEALTHCHECK is kept");
  t.notOk('ydb' in dependsOn(gateway), 'the gateway does not need it');
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  t.match(readme, /docker compose --profile ydb up -d ydb/, 'the README says how to start it');
  t.match(readme, /YDB_ENDPOINT=grpc:\/\/localhost:2136 YDB_DATABASE=\/local/);
});
