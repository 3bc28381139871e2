import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import YAML from 'yaml';
import { z } from 'zod';
import { aeTitle, uid } from './config-fields.js';
import { GatewayError } from './errors.js';
import { checkNotifyStore, notifySchema } from './notify/notify-config.js';
import { routingPathLabel, routingReferenceIssues, routingSchema } from './route/rules-schema.js';
import { checkSourcePeers, reconcileSchema } from './scu/reconcile-config.js';
import { ydbIndexSchema } from './index/ydb-config.js';
import { storageCommitmentSchema } from './stcommit/stcommit-config.js';
import {
  DEFAULT_STORE,
  namedStores,
  spoolDirOf,
  storeSchema,
  storesSchema,
} from './store/store-config.js';

export type { NotifyConfig, NotifyDestinationConfig } from './notify/notify-config.js';

/**
 * The gateway's configuration: one YAML or JSON file (optional) plus environment
 * overrides, validated once against this schema at start, then frozen. Every
 * error names the exact key and what was expected.
 */

const dicomSchema = z
  .object({
    aeTitle: aeTitle.default('DICOMGW'),
    aliases: z.array(aeTitle).default([]),
    host: z.string().default('0.0.0.0'),
    port: z.number().int().min(0).max(65535).default(11112),
    /** Calling AE titles allowed to associate; empty = any (unless `peers` is set). */
    allowedCallingAeTitles: z.array(aeTitle).default([]),
    /**
     * Known peers: a calling AE title and the source addresses (IPs or CIDRs) it may
     * come from. When non-empty, only these AE titles may associate, each only from
     * its addresses (an empty list = any address). A peer with `host` and `port` is also
     * callable: the gateway can open associations to it (backfill, storage commitment reports).
     */
    peers: z
      .array(
        z
          .object({
            aeTitle,
            addresses: z.array(z.string().min(1)).default([]),
            /** Where the peer listens, for the associations the gateway opens to it. */
            host: z.string().min(1).optional(),
            port: z.number().int().min(1).max(65535).optional(),
            /** DICOM TLS to this peer; `caFile` trusts a private CA, cert/key present a client certificate. */
            tls: z
              .object({
                caFile: z.string().min(1).optional(),
                certFile: z.string().min(1).optional(),
                keyFile: z.string().min(1).optional(),
                servername: z.string().min(1).optional(),
              })
              .strict()
              .optional(),
            /** Associations the gateway opens to this peer at once (hospital PACSs are often strict). */
            maxAssociations: z.number().int().min(1).default(1),
          })
          .strict()
          .refine((p) => (p.host === undefined) === (p.port === undefined), {
            message: 'a callable peer needs both host and port',
            path: ['port'],
          }),
      )
      .default([]),
    /** DICOM TLS (PS3.15 B.1): a second listener on its own port (2762 is IANA's dicom-tls). */
    tls: z
      .object({
        port: z.number().int().min(0).max(65535).default(2762),
        certFile: z.string().min(1),
        keyFile: z.string().min(1),
        /** CA bundle for client certificates; with requireClientCert, unknown clients are refused. */
        caFile: z.string().min(1).optional(),
        requireClientCert: z.boolean().default(false),
        minVersion: z.enum(['TLSv1.2', 'TLSv1.3']).default('TLSv1.2'),
      })
      .strict()
      .optional(),
    /** Same SOP Instance UID with different bytes: keep the first (default), overwrite, keep both as versions, or reject (0111). */
    duplicatePolicy: z
      .enum(['keep-first', 'overwrite', 'keep-versions', 'reject'])
      .default('keep-first'),
    /**
     * How long a C-STORE waits for another association receiving the same SOP Instance UID
     * before it is answered A700 (transient: the sender retries).
     */
    sameInstanceWaitSeconds: z.number().positive().default(30),
    acceptUnknownSopClasses: z.boolean().default(false),
    /** Our Maximum Length Received (PS3.8 D.1), in bytes. */
    maxPduLength: z
      .number()
      .int()
      .min(4096)
      .max(16 * 1024 * 1024)
      .default(256 * 1024),
    maxAssociations: z.number().int().min(1).default(64),
    maxAssociationsPerAe: z.number().int().min(1).default(16),
    idleTimeoutSeconds: z.number().positive().default(120),
    /**
     * ARTIM (PS3.8 9.1.5): seconds from the transport connection (and from the end of the TLS
     * handshake, which has the same limit) to the A-ASSOCIATE-RQ; never more than idleTimeoutSeconds.
     */
    associationRequestTimeoutSeconds: z.number().positive().default(30),
    /** Connections not yet associated (TLS handshakes included) held at once; more are closed at once. */
    maxPendingConnections: z.number().int().min(1).default(32),
    /** Connections not yet associated held at once from one source address. */
    maxPendingConnectionsPerAddress: z.number().int().min(1).default(4),
    /** Response bytes a peer has not read yet; beyond this its association is aborted. */
    maxUnsentBytes: z
      .number()
      .int()
      .min(64 * 1024)
      .default(4 * 1024 * 1024),
    /** Largest instance accepted (data set bytes). */
    maxInstanceBytes: z
      .number()
      .int()
      .positive()
      .default(4 * 1024 * 1024 * 1024),
    implementationClassUid: uid.default('2.25.277795835720665511339390118808545271789'),
    implementationVersionName: z.string().min(1).max(16).default('DICOMGW_0_1'),
  })
  .strict();

const embeddedRestartSchema = z
  .object({
    maxAttempts: z.number().int().min(1).max(1000).default(10),
    maxDelaySeconds: z.number().positive().max(3600).default(30),
  })
  .strict();

const indexSchema = z.discriminatedUnion('type', [
  z
    .object({
      type: z.literal('postgres'),
      url: z.string().min(1),
      poolSize: z.number().int().min(1).max(200).default(10),
    })
    .strict(),
  z
    .object({
      type: z.literal('embedded'),
      dataDir: z.string().min(1).default('./data/pg'),
      port: z.number().int().min(0).max(65535).default(0),
      /** Restarts after the embedded PostgreSQL exits on its own (src/index/embedded-pg-supervisor.ts). */
      restart: embeddedRestartSchema.default(embeddedRestartSchema.parse({})),
    })
    .strict(),
  ydbIndexSchema,
]);

/** How long the index keeps history it no longer needs (src/index/retention-job.ts); 0: for good. */
const retentionSchema = z
  .object({
    /** Outbox events every notify destination has taken, with their deliveries. */
    outboxDays: z.number().int().min(0).max(36500).default(30),
    /** Backfill and reconcile runs that ended, with their study outcomes. */
    backfillRunsDays: z.number().int().min(0).max(36500).default(90),
    /** Storage commitment transactions reported or abandoned. */
    commitmentsDays: z.number().int().min(0).max(36500).default(90),
  })
  .strict();
export type RetentionConfig = z.infer<typeof retentionSchema>;

export const configSchema = z
  .object({
    dicom: dicomSchema.default(dicomSchema.parse({})),
    /** The one object store (the store named `default`); or several under `stores`. */
    store: storeSchema.optional(),
    stores: storesSchema.optional(),
    index: indexSchema.default({
      type: 'embedded',
      dataDir: './data/pg',
      port: 0,
      restart: embeddedRestartSchema.parse({}),
    }),
    admin: z
      .object({
        enabled: z.boolean().default(true),
        /** Localhost by default: metrics and status are for the operator, not the network. */
        host: z.string().default('127.0.0.1'),
        port: z.number().int().min(0).max(65535).default(8080),
        /** Bearer token for every endpoint but /healthz (env ADMIN_TOKEN); without it only loopback clients are served. */
        token: z.string().min(16).optional(),
      })
      .strict()
      .default({ enabled: true, host: '127.0.0.1', port: 8080 }),
    shutdown: z
      .object({
        /** On SIGTERM, how long open associations may take to finish before they are cut. */
        graceSeconds: z.number().min(0).default(30),
      })
      .strict()
      .default({ graceSeconds: 30 }),
    log: z
      .object({
        level: z
          .enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'])
          .default('info'),
        /** Log patient-identifying values (names, IDs, birth dates). Off unless a site needs it. */
        phi: z.boolean().default(false),
        /** `auto`: readable lines when stdout is a terminal, JSON lines otherwise. */
        format: z.enum(['auto', 'json', 'pretty']).default('auto'),
      })
      .strict()
      .default({ level: 'info', phi: false, format: 'auto' }),
    notify: notifySchema.default(notifySchema.parse({})),
    routing: routingSchema.optional(),
    storageCommitment: storageCommitmentSchema.default(storageCommitmentSchema.parse({})),
    reconcile: reconcileSchema.default(reconcileSchema.parse({})),
    retention: retentionSchema.default(retentionSchema.parse({})),
  })
  .strict()
  .superRefine((c, ctx) => {
    if (c.store !== undefined && c.stores !== undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['stores'],
        message:
          'give either store (one store, named "default") or stores (named stores), not both',
      });
    }
    if (c.stores !== undefined && Object.keys(c.stores).length === 0) {
      ctx.addIssue({ code: 'custom', path: ['stores'], message: 'name at least one store' });
    }
    const stores = [...namedStores({ store: c.store ?? DEFAULT_STORE, stores: c.stores })];
    // A spool belongs to one store: its files are uploaded to that store's bucket.
    const spoolOf = new Map<string, string>();
    for (const [name, s] of stores) {
      const dir = spoolDirOf(s);
      if (dir === undefined) continue;
      const other = spoolOf.get(dir);
      if (other !== undefined) {
        ctx.addIssue({
          code: 'custom',
          path: ['stores', name, 'spool', 'dir'],
          message: `already the spool of store "${other}"; give each store its own spool.dir`,
        });
      }
      spoolOf.set(dir, name);
    }
    // The plugin and the archive read the bucket: they need an S3 store.
    checkNotifyStore(c.notify, stores.some(([, s]) => s.type === 's3') ? 's3' : 'fs', ctx);
    checkSourcePeers(c, ctx);
    if (c.routing) {
      const known = {
        stores: stores.map(([n]) => n),
        destinations: c.notify.destinations.map((d) => d.name),
      };
      for (const p of routingReferenceIssues(c.routing.rules, known)) {
        ctx.addIssue({ code: 'custom', path: ['routing', ...p.path], message: p.message });
      }
    }
  })
  // `store` is always the primary store (the one without routing): `stores.default`, else the
  // first of `stores`, else the single `store`, else the embedded default.
  .transform((c) => {
    const stores = namedStores({ store: c.store ?? DEFAULT_STORE, stores: c.stores });
    return { ...c, store: stores.values().next().value ?? DEFAULT_STORE };
  });

export type Config = Readonly<z.infer<typeof configSchema>>;

/** Environment variables that override the file (secrets and endpoints belong here). */
export function applyEnv(
  raw: Record<string, unknown>,
  env: NodeJS.ProcessEnv,
): Record<string, unknown> {
  const out = structuredClone(raw);
  const section = (k: string): Record<string, unknown> => {
    const v = out[k];
    if (v && typeof v === 'object') return v as Record<string, unknown>;
    const fresh: Record<string, unknown> = {};
    out[k] = fresh;
    return fresh;
  };
  if (env.DICOM_AE_TITLE) section('dicom').aeTitle = env.DICOM_AE_TITLE;
  if (env.DICOM_HOST) section('dicom').host = env.DICOM_HOST;
  if (env.DICOM_PORT) section('dicom').port = toNumber(env.DICOM_PORT, 'DICOM_PORT');
  if (env.LOG_LEVEL) section('log').level = env.LOG_LEVEL;
  if (env.LOG_FORMAT) section('log').format = env.LOG_FORMAT;
  if (env.ADMIN_TOKEN) section('admin').token = env.ADMIN_TOKEN;
  if (env.ADMIN_PORT) section('admin').port = toNumber(env.ADMIN_PORT, 'ADMIN_PORT');
  if (env.DATABASE_URL) {
    // Keeps the file's other postgres settings (poolSize); only the URL comes from the env.
    const current = out.index as Record<string, unknown> | undefined;
    out.index = {
      ...(current?.type === 'postgres' ? current : {}),
      type: 'postgres',
      url: env.DATABASE_URL,
    };
  }
  if (env.S3_ENDPOINT || env.S3_BUCKET) {
    const current = out.store as Record<string, unknown> | undefined;
    const s3: Record<string, unknown> = current?.type === 's3' ? { ...current } : { type: 's3' };
    if (env.S3_ENDPOINT) s3.endpoint = env.S3_ENDPOINT;
    if (env.S3_BUCKET) s3.bucket = env.S3_BUCKET;
    out.store = s3;
  }
  const store = out.store as Record<string, unknown> | undefined;
  if (store?.type === 's3') {
    const region = env.S3_REGION ?? env.AWS_REGION;
    if (region) store.region = region;
    if (env.S3_PREFIX !== undefined) store.prefix = env.S3_PREFIX;
    const key = env.S3_ACCESS_KEY_ID ?? env.AWS_ACCESS_KEY_ID;
    const secret = env.S3_SECRET_ACCESS_KEY ?? env.AWS_SECRET_ACCESS_KEY;
    if (key) store.accessKeyId = key;
    if (secret) store.secretAccessKey = secret;
    if (env.S3_FORCE_PATH_STYLE) {
      store.forcePathStyle = toBoolean(env.S3_FORCE_PATH_STYLE, 'S3_FORCE_PATH_STYLE');
    }
  }
  // Named stores take the credentials from the environment too, unless the entry has its own.
  const stores = out.stores;
  if (stores && typeof stores === 'object') {
    const key = env.S3_ACCESS_KEY_ID ?? env.AWS_ACCESS_KEY_ID;
    const secret = env.S3_SECRET_ACCESS_KEY ?? env.AWS_SECRET_ACCESS_KEY;
    for (const s of Object.values(stores as Record<string, Record<string, unknown> | null>)) {
      if (s?.type !== 's3') continue;
      if (key && s.accessKeyId === undefined) s.accessKeyId = key;
      if (secret && s.secretAccessKey === undefined) s.secretAccessKey = secret;
    }
  }
  return out;
}

/** Validates a raw config object; throws GW_ERR_CONFIG listing every problem by key path. */
export function parseConfig(raw: unknown, source = 'configuration'): Config {
  const result = configSchema.safeParse(raw);
  if (!result.success) {
    const routing = (raw as { routing?: unknown } | null)?.routing;
    const lines = result.error.issues.map((i) => {
      // A rule is known by its name too: routing.rules.1(mammo).match
      const key = i.path.length > 0 ? routingPathLabel(i.path, routing) : '(top level)';
      return `  ${key}: ${i.message}`;
    });
    throw new GatewayError('GW_ERR_CONFIG', `invalid ${source}:\n${lines.join('\n')}`);
  }
  return deepFreeze(result.data);
}

/** Reads the file (if any), applies the environment, validates, freezes. */
export function loadConfig(file: string | undefined, env: NodeJS.ProcessEnv = process.env): Config {
  let raw: Record<string, unknown> = {};
  if (file) {
    let text: string;
    try {
      text = readFileSync(resolve(file), 'utf8');
    } catch (err) {
      throw new GatewayError(
        'GW_ERR_CONFIG',
        `cannot read config file ${file}: ${(err as Error).message}`,
      );
    }
    try {
      const parsed: unknown = file.endsWith('.json') ? JSON.parse(text) : YAML.parse(text);
      raw = (parsed ?? {}) as Record<string, unknown>;
    } catch (err) {
      throw new GatewayError(
        'GW_ERR_CONFIG',
        `cannot parse config file ${file}: ${(err as Error).message}`,
      );
    }
    if (typeof raw !== 'object' || Array.isArray(raw)) {
      throw new GatewayError(
        'GW_ERR_CONFIG',
        `config file ${file} must hold a mapping at the top level`,
      );
    }
  }
  return parseConfig(applyEnv(raw, env), file ?? 'configuration');
}

function toNumber(s: string, name: string): number {
  const n = Number(s);
  if (!Number.isFinite(n))
    throw new GatewayError('GW_ERR_CONFIG', `${name}: expected a number, got "${s}"`);
  return n;
}

const TRUE_WORDS = ['true', '1', 'yes', 'on'];
const FALSE_WORDS = ['false', '0', 'no', 'off'];

/** The one meaning of a boolean environment variable; anything else names the variable. */
function toBoolean(s: string, name: string): boolean {
  const v = s.trim().toLowerCase();
  if (TRUE_WORDS.includes(v)) return true;
  if (FALSE_WORDS.includes(v)) return false;
  throw new GatewayError(
    'GW_ERR_CONFIG',
    `${name}: expected true/false (or 1/0, yes/no, on/off), got "${s}"`,
  );
}

function deepFreeze<T>(o: T): T {
  if (o && typeof o === 'object') {
    for (const v of Object.values(o)) deepFreeze(v);
    Object.freeze(o);
  }
  return o;
}
