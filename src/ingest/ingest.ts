import { randomUUID } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { GatewayError } from '../errors.js';
import type { ObjectStore } from '../store/object-store.js';
import type {
  AssociationInfo,
  InstanceSink,
  StoreHandler,
  StoreRequest,
} from '../scp/association.js';
import type { CommitStrategy, ReceiptHints } from './commit.js';
import { DirectCommit } from './commit-direct.js';
import { SpooledCommit } from './commit-spooled.js';
import { StoredCommit } from './commit-stored.js';
import type { Destination, DestinationResolver } from './destination.js';
import type { IngestOptions, SpoolOptions } from './ingest-options.js';
import type { IngestStats } from './outcome-reporter.js';
import { InstanceWriter } from './instance-writer.js';
import { MoveLinks } from './move-links.js';
import { Receiver } from './receiver.js';
import { SameUidWait } from './same-uid-wait.js';
import { UidCommits } from './uid-commits.js';

export type { IngestOptions } from './ingest-options.js';
export type { IngestStats } from './outcome-reporter.js';

/**
 * The C-STORE path: the SCP hands each instance's data set bytes to an InstanceWriter, whose
 * Receiver stages them as a Part-10 file and parses the header on the fly; then the instance's
 * destination (resolveDestination) commits it: the file to the store, the row to the index,
 * in that order, before the association answers.
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
  /** Sub-operations of C-MOVEs, counted per move originator (AE title, message ID). */
  readonly moves = new MoveLinks();
  /** Where files are received (see Destination: one place that every destination shares). */
  private readonly staging: string;
  private readonly commits = new UidCommits();
  /** What receipt does before the destination is known: the default destination's wishes. */
  private readonly receipt: ReceiptHints;
  private readonly resolveDestination: DestinationResolver;
  /** Instances being received or committed now, and when the last one ended (receiving). */
  private activeInstances = 0;
  private lastInstanceEnd = 0;

  constructor(private readonly opts: IngestOptions) {
    const configured = defaultDestination(opts);
    this.resolveDestination = opts.resolveDestination ?? (() => configured);
    const { inPlace: _inPlace, ...notInPlace } = configured.commit.receipt;
    this.receipt = opts.otherDestinations ? notInPlace : configured.commit.receipt;
    // With a spool, files are received into it, so admitting one is a rename, not a copy.
    const staging = opts.spool ? opts.spool.spool.incomingDir : opts.stagingDir;
    if (staging === undefined) {
      throw new GatewayError('GW_ERR_CONFIG', 'ingest needs a spool or a staging directory');
    }
    this.staging = staging;
    mkdirSync(this.staging, { recursive: true });
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
    // ack: spooled receives into the spool's ready/ directly when it can (see Spool), and
    // refuses with A700 (PS3.4 B.2.3) before a byte is kept when it is full: the sender retries.
    const inPlaceSpool = this.receipt.inPlace;
    inPlaceSpool?.checkRoom();
    this.activeInstances++;
    const inPlace = inPlaceSpool?.beginReceiving(req.sopInstanceUid);
    let ended = false;
    const end = (): void => {
      if (ended) return;
      ended = true;
      inPlaceSpool?.endReceiving(req.sopInstanceUid, inPlace !== undefined);
      this.activeInstances--;
      this.lastInstanceEnd = Date.now();
    };
    const o = this.opts;
    const sameUidWait = new SameUidWait(o.sameInstanceWaitMs, req.sopInstanceUid, log);
    const writer = new InstanceWriter({
      assoc,
      req,
      log,
      receiver: new Receiver({
        assoc,
        req,
        path: inPlace ?? join(this.staging, `${randomUUID()}.part`),
        inPlace: inPlace !== undefined ? inPlaceSpool : undefined,
        md5: this.receipt.md5,
        maxInstanceBytes: o.maxInstanceBytes,
        implementationClassUid: o.implementationClassUid,
        implementationVersionName: o.implementationVersionName,
        lastTag: o.headerLastTag,
      }),
      spool: o.spool?.spool,
      resolveDestination: this.resolveDestination,
      index: o.index,
      duplicatePolicy: o.duplicatePolicy,
      commits: this.commits,
      sameUidWait,
      stats: this.stats,
      observer: o.observer,
    });
    return {
      write: (chunk) => writer.write(chunk),
      finish: () =>
        writer
          .finish()
          .then((r) => (this.moves.count(req, r.status), r))
          .finally(end),
      abort: (reason) => writer.abort(reason).finally(end),
      peerGone: () => sameUidWait.peerGone(),
    };
  }
}

/**
 * The configured store as every instance's destination: a local store commits directly, a
 * store with a spool (S3) as its ack mode says.
 */
export function defaultDestination(
  opts: Pick<IngestOptions, 'storeName' | 'store' | 'bucket' | 'prefix' | 'spool'>,
): Destination {
  return {
    storeName: opts.storeName,
    store: opts.store,
    bucket: opts.bucket,
    prefix: opts.prefix,
    commit: opts.spool ? spoolCommit(opts.spool, opts.store) : new DirectCommit(),
  };
}

function spoolCommit(s: SpoolOptions, store: ObjectStore): CommitStrategy {
  return s.ack === 'spooled'
    ? new SpooledCommit(s.spool, s.uploader)
    : new StoredCommit(s.spool, s.uploader, s.uploadDeadlineMs, store);
}
