import { randomUUID } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { InstanceIndex } from '../index/instance-index.js';
import type {
  AssociationInfo,
  InstanceSink,
  StoreHandler,
  StoreRequest,
} from '../scp/association.js';
import type { ObjectStore } from '../store/object-store.js';
import { InstanceWriter } from './instance-writer.js';

export interface IngestOptions {
  store: ObjectStore;
  /** Name recorded in the index for this store (`fs`, `s3:<bucket>`). */
  storeName: string;
  /** Key prefix inside the store ('' for none). */
  prefix: string;
  index: InstanceIndex;
  implementationClassUid: string;
  implementationVersionName: string;
  /** Largest data set accepted, in bytes; larger ones are refused with A700. */
  maxInstanceBytes: number;
}

/** Counters for the admin endpoint and the shutdown summary. */
export interface IngestStats {
  received: number;
  stored: number;
  duplicates: number;
  failed: number;
  bytes: number;
}

/**
 * The C-STORE path: the SCP hands each instance's data set bytes to an
 * InstanceWriter, which stages them as a Part-10 file, parses the header on the
 * fly, then puts the file in the store and records it in the index, in that order,
 * before the association answers.
 */
export class Ingest implements StoreHandler {
  readonly stats: IngestStats = { received: 0, stored: 0, duplicates: 0, failed: 0, bytes: 0 };
  private readonly staging: string;

  constructor(private readonly opts: IngestOptions) {
    this.staging = opts.store.stagingDir();
    mkdirSync(this.staging, { recursive: true });
  }

  begin(assoc: AssociationInfo, req: StoreRequest, log: Logger): InstanceSink {
    this.stats.received++;
    return new InstanceWriter({
      ...this.opts,
      assoc,
      req,
      log,
      stagingPath: join(this.staging, `${randomUUID()}.part`),
      stats: this.stats,
    });
  }
}
