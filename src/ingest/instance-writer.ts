import type { Logger } from 'pino';
import type { IngestObserver } from '../admin/observer.js';
import type {
  ExistingInstance,
  InstanceAttributes,
  IngestIndex,
  InstanceRecord,
} from '../index/instance-index.js';
import type { AssociationInfo, InstanceSink, StoreRequest } from '../scp/association.js';
import { instanceKey } from '../store/keys.js';
import type { CommitContext } from './commit.js';
import { resolveOrRefuse, type Destination, type DestinationResolver } from './destination.js';
import { answerDuplicate, type DuplicatePolicy } from './duplicate-policy.js';
import { objectMetadata } from './object-metadata.js';
import { asGatewayError, OutcomeReporter, type IngestStats } from './outcome-reporter.js';
import type { Receiver } from './receiver.js';
import type { SameUidWait } from './same-uid-wait.js';
import type { Spool } from './spool.js';
import type { LookupState, UidCommits } from './uid-commits.js';

export interface InstanceWriterOptions {
  assoc: AssociationInfo;
  req: StoreRequest;
  log: Logger;
  /** Receives the data set (bytes -> staged file + hashes + header). */
  receiver: Receiver;
  /** The process's spool, when it has one: a writer not received in place waits for the claim. */
  spool: Spool | undefined;
  resolveDestination: DestinationResolver;
  index: IngestIndex;
  duplicatePolicy: DuplicatePolicy;
  commits: UidCommits;
  /** Bounds this writer's waits for other associations delivering the same UID. */
  sameUidWait: SameUidWait;
  stats: IngestStats;
  observer: IngestObserver | undefined;
}

/**
 * One C-STORE from its data set to its answer. The Receiver stages the bytes; at the end the
 * header's attributes choose the destination (resolveDestination: routing plugs in there),
 * the early index lookup or the index decides whether the UID is new (else the duplicate
 * policy answers), and the destination's commit strategy stores and indexes it, in that
 * order, before success is answered.
 */
export class InstanceWriter implements InstanceSink {
  private readonly lookup: Promise<ExistingInstance | undefined>;
  private readonly lookupState: LookupState;
  private readonly report: OutcomeReporter;

  constructor(private readonly o: InstanceWriterOptions) {
    this.report = new OutcomeReporter(o);
    // The index lookup for duplicates runs while the data set arrives, off the answer's path.
    this.lookupState = o.commits.startLookup(this);
    this.lookup = o.index.findInstance(o.req.sopInstanceUid);
    this.lookup.catch(() => undefined); // awaited, or asked again, in commit()
  }

  write(chunk: Buffer): Promise<void> | undefined {
    return this.o.receiver.write(chunk);
  }

  async finish(): Promise<{ status: number; errorComment?: string }> {
    const { receiver, req, assoc } = this.o;
    try {
      // A malformed or oversized data set was refused while it arrived (Receiver.write).
      const attrs = await receiver.end();
      // Refused by the resolver: nothing was kept (the staged file goes in release()).
      const dest = resolveOrRefuse(this.o.resolveDestination, assoc, attrs, receiver.header);
      // The last writes may still run: the lock and the index work go on meanwhile.
      if (dest.commit.receipt.syncEarly) receiver.startSync();
      // Outside the commit lock: the claim's holder needs that lock to end its claim. Both
      // waits are bounded (SameUidWait): another sender may trickle its copy for hours.
      const { sameUidWait } = this.o;
      const claim = receiver.inPlace ? undefined : this.o.spool?.claimEnded(req.sopInstanceUid);
      if (claim) await sameUidWait.wait(claim);
      const status = await this.o.commits.withUidLock(
        attrs.sopInstanceUid,
        () => this.commit(attrs, dest),
        (other) => sameUidWait.wait(other),
      );
      return { status };
    } catch (err) {
      const e = asGatewayError(err, 'GW_ERR_INTERNAL');
      const status = this.report.failed(e, receiver.datasetBytes);
      return { status, errorComment: e.message };
    } finally {
      this.lookupState.done();
      await receiver.release();
    }
  }

  async abort(_reason: string): Promise<void> {
    this.lookupState.done();
    await this.o.receiver.abort();
  }

  /** Store and index; answers success only once both are done (see the README's guarantees). */
  private async commit(attrs: InstanceAttributes, dest: Destination): Promise<number> {
    const { index, assoc, req, log, receiver } = this.o;
    const { sha256 } = receiver.digest();
    const rec: InstanceRecord = {
      attributes: attrs,
      transferSyntaxUid: req.transferSyntaxUid,
      storeName: dest.storeName,
      objectKey: instanceKey(
        dest.prefix,
        attrs.studyInstanceUid,
        attrs.seriesInstanceUid,
        attrs.sopInstanceUid,
      ),
      bucket: dest.bucket,
      labels: dest.labels,
      destinations: dest.destinations,
      size: receiver.size,
      sha256,
      callingAeTitle: assoc.callingAeTitle,
      calledAeTitle: assoc.calledAeTitle,
      sourceAddress: assoc.remoteAddress,
      receivedAt: new Date(),
      state: 'stored',
    };
    const metadata = objectMetadata({
      transferSyntaxUid: req.transferSyntaxUid,
      sopClassUid: attrs.sopClassUid,
      callingAeTitle: assoc.callingAeTitle,
      receivedAt: rec.receivedAt,
    });
    const logFields = this.report.commitStarted(attrs, receiver.size);
    const c: CommitContext = {
      rec,
      store: dest.store,
      file: receiver,
      index,
      log,
      metadata,
      report: this.report,
      duplicate: (known) => answerDuplicate(c, this.o.duplicatePolicy, logFields, known),
    };
    // A known SOP Instance UID is never uploaded again: the index decides. The lookup began
    // with the request (Receiver.end: same UID); a commit of this UID that ended in this
    // process since then (we hold its lock now) makes us ask again. A failed early lookup
    // (index briefly away while receiving) is also asked again.
    const uid = attrs.sopInstanceUid;
    const early = this.lookupState.changedSince(uid)
      ? undefined
      : await this.lookup.then(
          (r) => ({ r }),
          () => undefined,
        );
    this.lookupState.done();
    const existing = early ? early.r : await index.findInstance(uid);
    if (existing) return answerDuplicate(c, this.o.duplicatePolicy, logFields, undefined, existing);
    return dest.commit.commit(c);
  }
}
