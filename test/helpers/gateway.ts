import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { parseConfig, type Config } from '../../src/config.js';
import { startGateway, type Gateway } from '../../src/gateway.js';
import { createLogger } from '../../src/log.js';

export interface S3Target {
  endpoint: string;
  accessKeyId: string;
  secretAccessKey: string;
  region: string;
  bucket: string;
}

export interface TestGateway {
  gw: Gateway;
  port: number;
  aeTitle: string;
  /** Every log line the gateway wrote, parsed. */
  logs: Array<Record<string, unknown>>;
  /** The raw log text (for "no PHI in logs" checks). */
  logText(): string;
  dir: string;
  close(): Promise<void>;
}

/**
 * Starts a gateway in this process on 127.0.0.1 and a free port, against the given
 * PostgreSQL and either a temp FsStore or the given S3 bucket. Logs are captured.
 */
export async function startTestGateway(opts: {
  databaseUrl: string;
  s3?: S3Target;
  dicom?: Record<string, unknown>;
  /** Extra keys for the s3 store section (ack, spool, ...). */
  s3Options?: Record<string, unknown>;
  /**
   * Extra keys for the fs store section. Default `ack: stored` (objects under their keys at
   * the answer, which most tests read at once); `{ ack: 'spooled' }` is the config default.
   */
  fsOptions?: Record<string, unknown>;
  /** Reuse a directory (spool, staging) across restarts of a gateway. */
  dir?: string;
  /** The `notify` section (destinations, ...). */
  notify?: Record<string, unknown>;
  /** Other top-level sections (storageCommitment, shutdown, ...). */
  extra?: Record<string, unknown>;
}): Promise<TestGateway> {
  const dir = opts.dir ?? (await mkdtemp(join(tmpdir(), 'gw-test-')));
  const raw: Record<string, unknown> = {
    dicom: { aeTitle: 'DICOMGW', host: '127.0.0.1', port: 0, ...opts.dicom },
    index: { type: 'postgres', url: opts.databaseUrl, poolSize: 8 },
    store: opts.s3
      ? {
          type: 's3',
          endpoint: opts.s3.endpoint,
          region: opts.s3.region,
          bucket: opts.s3.bucket,
          accessKeyId: opts.s3.accessKeyId,
          secretAccessKey: opts.s3.secretAccessKey,
          requestTimeoutSeconds: 10,
          spool: { dir: join(dir, 'spool') },
          abortIncompleteUploadsAfterSeconds: 0,
          ...opts.s3Options,
        }
      : { type: 'fs', root: join(dir, 'objects'), ack: 'stored', ...opts.fsOptions },
    admin: { enabled: false },
    log: { level: 'debug', phi: false },
    ...(opts.notify ? { notify: opts.notify } : {}),
    ...opts.extra,
  };
  const cfg: Config = parseConfig(raw);
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      lines.push(
        ...chunk
          .toString('utf8')
          .split('\n')
          .filter((l) => l.length > 0),
      );
      cb();
    },
  });
  const log = createLogger(cfg.log, sink);
  const gw = await startGateway(cfg, log);
  return {
    gw,
    port: gw.port,
    aeTitle: cfg.dicom.aeTitle,
    get logs() {
      return lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    },
    logText: () => lines.join('\n'),
    dir,
    close: async () => {
      await gw.close();
      if (!opts.dir) await rm(dir, { recursive: true, force: true });
    },
  };
}
