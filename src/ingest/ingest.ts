import { randomUUID } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { IngestObserver } from '../admin/observer.js';
import type { IngestIndex } from '../index/instance-index.js';
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
  index: IngestIndex;
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
  /** Counts commits that ended; with `endedAt`, tells a writer whether its early lookup is stale. */
  private commitSeq = 0;
  /** SOP Instance UID -> commitSeq when its last commit ended (pruned, see noteCommitEnd). */
  private readonly endedAt = new Map<string, number>();
  /** Instances being received or committed now, and when the last one ended (receiving). */
  private activeInstances = 0;
  private lastInstanceEnd = 0;
  /** commitSeq at the start of each writer's early lookup, while that writer lives. */
  private readonly lookupSince = new Map<object, number>();

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
      this.noteCommitEnd(uid);
    }
  }

  /**
   * For the early index lookup a writer starts when the C-STORE request arrives (it runs
   * while the data set is received): the lookup is only trusted when no commit of the same
   * SOP Instance UID ended in this process since it began; otherwise the writer asks again.
   */
  startLookup(owner: object): { changedSince: (uid: string) => boolean; done: () => void } {
    const since = this.commitSeq;
    this.lookupSince.set(owner, since);
    return {
      changedSince: (uid) => (this.endedAt.get(uid) ?? -1) >= since,
      done: () => this.lookupSince.delete(owner),
    };
  }

  private noteCommitEnd(uid: string): void {
    this.endedAt.set(uid, this.commitSeq++);
    if (this.endedAt.size < 1024) return;
    // Only lookups still alive can be stale: forget commits older than the oldest of them.
    let oldest = this.commitSeq;
    for (const since of this.lookupSince.values()) oldest = Math.min(oldest, since);
    for (const [k, at] of this.endedAt) if (at < oldest) this.endedAt.delete(k);
  }

  /**
   * Whether C-STOREs are arriving: one is under way, or one ended within the last second
   * (a sender's next instance follows its answer within milliseconds). The uploader yields.
   */
  get receiving(): boolean {
    return this.activeInstances > 0 || Date.now() - this.lastInstanceEnd < 1000;
  }

  begin(assoc: AssociationInfo, req: StoreRequest, log: Logger): InstanceSink {
    this.stats.received++;
    // PS3.4 B.2.3: A700 "out of resources" before a byte is kept, so the sender retries later.
    if (this.opts.spool?.ack === 'spooled') this.opts.spool.spool.checkRoom();
    this.activeInstances++;
    // ack: spooled receives into the spool's ready/ directly when it can (see Spool).
    const spool = this.opts.spool?.ack === 'spooled' ? this.opts.spool.spool : undefined;
    const inPlace = spool?.beginReceiving(req.sopInstanceUid);
    let ended = false;
    const end = (): void => {
      if (ended) return;
      ended = true;
      spool?.endReceiving(req.sopInstanceUid, inPlace !== undefined);
      this.activeInstances--;
      this.lastInstanceEnd = Date.now();
    };
    const writer = new InstanceWriter({
      ...this.opts,
      assoc,
      req,
      log,
      stagingPath: inPlace ?? join(this.staging, `${randomUUID()}.part`),
      inPlace: inPlace !== undefined,
      stats: this.stats,
      lock: (uid, fn) => this.withUidLock(uid, fn),
      startLookup: (owner) => this.startLookup(owner),
    });
    return {
      write: (chunk) => writer.write(chunk),
      finish: () => writer.finish().finally(end),
      abort: (reason) => writer.abort(reason).finally(end),
    };
  }
}
