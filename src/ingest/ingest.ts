import { randomUUID } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { IngestObserver } from '../admin/observer.js';
import type { InstanceIndex } from '../index/instance-index.js';
import type {
  AssociationInfo,
  InstanceSink,
  StoreHandler,
  StoreRequest,
} from '../scp/association.js';
import type { ObjectStore } from '../store/object-store.js';
import { InstanceWriter } from './instance-writer.js';
import type { Spool } from './spool.js';
import type { Uploader } from './uploader.js';

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
  /** Told of every outcome (metrics); synchronous, never throws. */
  observer?: IngestObserver;
  /** Same SOP Instance UID with other bytes (identical bytes are always idempotent success). */
  duplicatePolicy: 'keep-first' | 'overwrite' | 'keep-versions' | 'reject';
  /**
   * With a spool (S3 stores): every instance is indexed 'pending-upload' first. 'spooled'
   * answers once the file is fsynced in the spool; 'stored' once it is in the bucket, falling
   * back to the spool when the upload fails or takes longer than `uploadDeadlineMs`.
   */
  spool?: { spool: Spool; uploader: Uploader; ack: 'stored' | 'spooled'; uploadDeadlineMs: number };
}

/** Counters for the admin endpoint and the shutdown summary. */
export interface IngestStats {
  received: number;
  stored: number;
  /** Acknowledged from the spool, waiting for (or past) their upload. */
  spooled: number;
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
  readonly stats: IngestStats = {
    received: 0,
    stored: 0,
    spooled: 0,
    duplicates: 0,
    failed: 0,
    bytes: 0,
  };
  private readonly staging: string;
  /** SOP Instance UIDs being committed, with the promise of that commit (see withUidLock). */
  private readonly inFlight = new Map<string, Promise<unknown>>();

  constructor(private readonly opts: IngestOptions) {
    // With a spool, files are received into it, so admitting one is a rename, not a copy.
    this.staging = opts.spool ? opts.spool.spool.incomingDir : opts.store.stagingDir();
    mkdirSync(this.staging, { recursive: true });
  }

  /**
   * Runs `fn` once no other commit of the same SOP Instance UID is in progress in this process:
   * two associations delivering one instance at once must not share a spool path or both upload.
   * (Across processes the index's unique key and create-only writes decide.)
   */
  async withUidLock<T>(uid: string, fn: () => Promise<T>): Promise<T> {
    for (;;) {
      const busy = this.inFlight.get(uid);
      if (!busy) break;
      await busy.catch(() => {});
    }
    const run = fn();
    this.inFlight.set(uid, run);
    try {
      return await run;
    } finally {
      this.inFlight.delete(uid);
    }
  }

  begin(assoc: AssociationInfo, req: StoreRequest, log: Logger): InstanceSink {
    this.stats.received++;
    // PS3.4 B.2.3: A700 "out of resources" before a byte is kept, so the sender retries later.
    if (this.opts.spool?.ack === 'spooled') this.opts.spool.spool.checkRoom();
    return new InstanceWriter({
      ...this.opts,
      assoc,
      req,
      log,
      stagingPath: join(this.staging, `${randomUUID()}.part`),
      stats: this.stats,
      lock: (uid, fn) => this.withUidLock(uid, fn),
    });
  }
}
