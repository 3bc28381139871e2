/**
 * Storage Commitment Push Model SCP (PS3.4 J.3): the N-ACTION handler the acceptor calls, and the
 * worker that decides pending transactions and delivers their reports.
 *
 * - N-ACTION-RQ: checked (check-request.ts), recorded in the index, answered 0000 at once.
 * - The worker claims due transactions (SKIP LOCKED, with a lease: one gateway at a time holds
 *   one), decides them (decide.ts) against the instances' index rows, defers the undecided ones by
 *   `recheckSeconds` (no report while anything is still in the spool), fixes the report once
 *   decided, and sends it: on the requester's association when it is still open, else on a new
 *   association to the requester (report-sender.ts). A failed delivery is retried with backoff.
 * - Everything lives in the database: a restart resumes; another gateway may take over.
 */
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { Logger } from 'pino';
import { DimseStatus } from '../errors.js';
import type {
  CommitmentTransaction,
  CommitmentTransactions,
} from '../index/commitment-transactions.js';
import { backoffDelayMs } from '../notify/backoff.js';
import type {
  CommitmentHandler,
  NActionRequest,
  ReportChannel,
} from '../scp/commitment-handler.js';
import type { AssociationInfo } from '../scp/store-handler.js';
import { checkCommitmentRequest, NActionStatus } from './check-request.js';
import { encodeCommitmentReport, type CommitmentReport } from './commitment-dataset.js';
import { decideTransaction } from './decide.js';
import { reportCommand, type ReportSender } from './report-sender.js';
import type { StorageCommitmentConfig } from './stcommit-config.js';

export interface CommitmentServiceOptions {
  config: StorageCommitmentConfig;
  store: CommitmentTransactions;
  sender: Pick<ReportSender, 'send'>;
  log: Logger;
  /** Who claims (default host:pid:random). */
  owner?: string;
  /** Transactions claimed per round. */
  batch?: number;
  /**
   * A count that grows when instances reach their final store (the uploader's); watched
   * (no I/O) so undecided transactions are evaluated again at once, not at the next recheck.
   */
  progress?: () => number;
}

/** How often `progress` is looked at. */
const PROGRESS_WATCH_MS = 100;

/** What the worker did in its life (tests, logs). */
export interface CommitmentStats {
  requested: number;
  refused: number;
  reported: number;
  deliveryFailures: number;
}

export class CommitmentService implements CommitmentHandler {
  readonly owner: string;
  readonly stats: CommitmentStats = { requested: 0, refused: 0, reported: 0, deliveryFailures: 0 };
  /** Open associations transactions arrived on, by transaction id (this process only). */
  private readonly channels = new Map<number, ReportChannel>();
  private timer: NodeJS.Timeout | undefined;
  private wakeNow: (() => void) | undefined;
  private running: Promise<void> | undefined;
  private closed = false;
  /** `progress` moved since the last round: undecided transactions are worth another look. */
  private progressed = false;
  private watcher: NodeJS.Timeout | undefined;

  constructor(private readonly o: CommitmentServiceOptions) {
    this.owner = o.owner ?? `${hostname()}:${process.pid}:${randomBytes(3).toString('hex')}`;
  }

  async nAction(
    assoc: AssociationInfo,
    rq: NActionRequest,
    channel: ReportChannel,
    log: Logger,
  ): Promise<{ status: number; errorComment?: string }> {
    const checked = checkCommitmentRequest(rq.command, rq.dataset, rq.transferSyntaxUid);
    if (!checked.ok) {
      this.stats.refused++;
      log.warn(
        {
          event: 'commitment.refused',
          status: '0x' + checked.status.toString(16).padStart(4, '0'),
          why: checked.comment,
        },
        `storage commitment request refused: ${checked.comment}`,
      );
      return { status: checked.status, errorComment: checked.comment };
    }
    const c = this.o.config;
    let recorded;
    try {
      recorded = await this.o.store.recordCommitment({
        transactionUid: checked.transactionUid,
        requesterAeTitle: assoc.callingAeTitle,
        calledAeTitle: assoc.calledAeTitle,
        references: checked.references,
        deadlineAt: new Date(Date.now() + c.deadlineSeconds * 1000),
      });
    } catch (err) {
      // PS3.7 10.1.4.1.10: nothing durable, so no promise: 0110 and the requester tries again.
      log.error(
        { event: 'commitment.record_failed', err: String(err) },
        'storage commitment not recorded',
      );
      return { status: NActionStatus.ProcessingFailure, errorComment: 'index unavailable' };
    }
    this.stats.requested++;
    if (c.sameAssociation) this.channels.set(recorded.id, channel);
    log.info(
      {
        event: 'commitment.requested',
        transactionUid: checked.transactionUid,
        instances: checked.references.length,
        repeated: !recorded.created,
      },
      'storage commitment requested',
    );
    // After the N-ACTION-RSP is written (it goes out as soon as this returns): a report on the
    // same association must never overtake it (PS3.4 J.3.3 follows J.3.2).
    setImmediate(() => this.wake());
    return { status: DimseStatus.Success };
  }

  /** Starts the worker loop. */
  start(): void {
    const progress = this.o.progress;
    if (progress && !this.watcher) {
      let last = progress();
      this.watcher = setInterval(() => {
        const now = progress();
        if (now === last) return;
        last = now;
        this.progressed = true;
        this.wake();
      }, PROGRESS_WATCH_MS);
      this.watcher.unref();
    }
    this.running ??= this.loop();
  }

  /** Evaluate due transactions now (a new request, an upload finished). */
  wake(): void {
    this.wakeNow?.();
  }

  /** Stops the loop after the round in progress and gives this process's claims back. */
  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.watcher);
    this.wake();
    await this.running;
    await this.o.store.releaseCommitments(this.owner).catch(() => 0);
  }

  private async loop(): Promise<void> {
    const pollMs = Math.min(1000, this.o.config.recheckSeconds * 1000);
    while (!this.closed) {
      let busy = false;
      try {
        busy = await this.round();
      } catch (err) {
        this.o.log.warn(
          { event: 'commitment.round_failed', err: String(err) },
          'commitment round failed',
        );
      }
      if (busy || this.closed) continue;
      await new Promise<void>((resolve) => {
        this.wakeNow = resolve;
        this.timer = setTimeout(resolve, pollMs);
      });
      clearTimeout(this.timer);
      this.wakeNow = undefined;
    }
  }

  /**
   * One claim and its transactions, one after the other; true when the claim was full (more
   * are due). A round after progress also takes undecided transactions deferred to later; it
   * never asks for an immediate next round (those it deferred again would come straight back).
   */
  private async round(): Promise<boolean> {
    const limit = this.o.batch ?? 16;
    const undecidedToo = this.progressed;
    this.progressed = false;
    // Associations that ended (their transactions are reported on new ones, by any gateway).
    for (const [id, ch] of this.channels) if (!ch.open) this.channels.delete(id);
    const claimed = await this.o.store.claimCommitments({
      limit,
      leaseMs: this.o.config.leaseSeconds * 1000,
      owner: this.owner,
      undecidedToo,
    });
    for (const t of claimed) {
      if (this.closed) break;
      await this.settle(t).catch((err: unknown) =>
        this.o.log.warn(
          { event: 'commitment.settle_failed', transactionUid: t.transactionUid, err: String(err) },
          'commitment transaction not settled; its lease will run out',
        ),
      );
    }
    return !undecidedToo && claimed.length === limit;
  }

  private async settle(t: CommitmentTransaction): Promise<void> {
    const c = this.o.config;
    let report = t.report;
    if (!report) {
      const now = Date.now();
      const found = await this.o.store.lookupInstances(t.references.map((r) => r.sopInstanceUid));
      const decision = decideTransaction(t.references, found, {
        ageMs: now - t.receivedAt.getTime(),
        unknownGraceMs: c.unknownGraceSeconds * 1000,
        pastDeadline: now >= t.deadlineAt.getTime(),
      });
      if (decision.kind === 'pending') {
        const next = Math.min(now + c.recheckSeconds * 1000, t.deadlineAt.getTime());
        await this.o.store.deferCommitment(t.id, this.owner, new Date(next));
        return;
      }
      report = { committed: decision.committed, failed: decision.failed };
      if (!(await this.o.store.decideCommitment(t.id, this.owner, report))) return;
      this.o.log.info(
        {
          event: 'commitment.decided',
          transactionUid: t.transactionUid,
          committed: report.committed.length,
          failed: report.failed.length,
        },
        'storage commitment decided',
      );
    }
    await this.deliver(t, { transactionUid: t.transactionUid, ...report });
  }

  private async deliver(t: CommitmentTransaction, report: CommitmentReport): Promise<void> {
    const channel = this.channels.get(t.id);
    const started = Date.now();
    let via: 'same-association' | 'new-association' = 'new-association';
    try {
      if (channel?.open) {
        via = 'same-association';
        const status = await channel.eventReport(
          { ...reportCommand(report), hasDataset: true },
          encodeCommitmentReport(report, channel.transferSyntaxUid),
        );
        if (status !== DimseStatus.Success) {
          throw new Error(`requester answered the N-EVENT-REPORT-RQ with 0x${status.toString(16)}`);
        }
      } else {
        await this.o.sender.send(
          { requesterAeTitle: t.requesterAeTitle, callingAeTitle: t.calledAeTitle },
          report,
        );
      }
    } catch (err) {
      this.channels.delete(t.id);
      this.stats.deliveryFailures++;
      const attempts = t.attempts + 1;
      const delay = backoffDelayMs(attempts, {
        initialMs: this.o.config.retry.initialSeconds * 1000,
        maxMs: this.o.config.retry.maxSeconds * 1000,
      });
      const state = await this.o.store.commitmentAttemptFailed({
        id: t.id,
        owner: this.owner,
        error: err instanceof Error ? err.message : String(err),
        retryAt: new Date(Date.now() + delay),
        maxAttempts: this.o.config.retry.maxAttempts,
      });
      this.o.log.warn(
        {
          event: state === 'abandoned' ? 'commitment.abandoned' : 'commitment.report_failed',
          transactionUid: t.transactionUid,
          requester: t.requesterAeTitle,
          via,
          attempts,
          retryInMs: state === 'pending' ? delay : undefined,
          err: err instanceof Error ? err.message : String(err),
        },
        state === 'abandoned'
          ? 'storage commitment report abandoned after its last attempt'
          : 'storage commitment report not delivered; will retry',
      );
      return;
    }
    this.channels.delete(t.id);
    await this.o.store.commitmentReported(t.id, this.owner);
    this.stats.reported++;
    this.o.log.info(
      {
        event: 'commitment.reported',
        transactionUid: t.transactionUid,
        requester: t.requesterAeTitle,
        via,
        eventType: report.failed.length > 0 ? 2 : 1,
        committed: report.committed.length,
        failed: report.failed.length,
        ms: Date.now() - started,
      },
      'storage commitment reported',
    );
  }
}
