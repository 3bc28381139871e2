/**
 * Storage Commitment transactions in the index (PS3.4 J.3), for src/stcommit/. A transaction is
 * recorded before the N-ACTION-RSP is sent, so a success answer always means it is durable; the
 * report worker claims due transactions (FOR UPDATE SKIP LOCKED, with a lease: several gateway
 * processes on one database never hold the same transaction at once), decides them against the
 * instances' rows, fixes the report once decided, and records its delivery.
 */

export interface CommitmentRef {
  sopClassUid: string;
  sopInstanceUid: string;
}

export interface CommitmentFailure extends CommitmentRef {
  failureReason: number;
}

export interface CommitmentReportRecord {
  committed: CommitmentRef[];
  failed: CommitmentFailure[];
}

export interface NewCommitmentTransaction {
  transactionUid: string;
  requesterAeTitle: string;
  calledAeTitle: string;
  references: readonly CommitmentRef[];
  deadlineAt: Date;
}

export interface CommitmentTransaction extends NewCommitmentTransaction {
  id: number;
  receivedAt: Date;
  /** Delivery attempts started before this claim. */
  attempts: number;
  /** Set once decided: the report every attempt sends. */
  report?: CommitmentReportRecord;
  lastError?: string;
}

export interface CommitmentCounts {
  pending: number;
  /** Reported, Event Type 1. */
  committed: number;
  /** Reported, Event Type 2. */
  failed: number;
  abandoned: number;
}

export interface CommitmentTransactions {
  /**
   * Records a transaction, due at once. Idempotent on (requester, Transaction UID): a repeat
   * returns the existing id with created false and changes nothing. Durable.
   */
  recordCommitment(t: NewCommitmentTransaction): Promise<{ id: number; created: boolean }>;
  /**
   * Claims up to `limit` due pending transactions for `leaseMs`, oldest due first. With
   * `undecidedToo`, also undecided ones deferred to later and not claimed by anyone (some
   * instances just reached their final store).
   */
  claimCommitments(req: {
    limit: number;
    leaseMs: number;
    owner: string;
    undecidedToo?: boolean;
  }): Promise<CommitmentTransaction[]>;
  /** The index rows of these SOP Instance UIDs (class and state), by UID. */
  lookupInstances(
    uids: readonly string[],
  ): Promise<Map<string, { sopClassUid: string; state: 'stored' | 'pending-upload' }>>;
  /** Still undecided: due again at `at`, claim released. False when no longer this owner's claim. */
  deferCommitment(id: number, owner: string, at: Date): Promise<boolean>;
  /** Fixes the decided report (Event Type from its failures). False when no longer this owner's claim. */
  decideCommitment(id: number, owner: string, report: CommitmentReportRecord): Promise<boolean>;
  /** The report was answered 0000: 'reported'. */
  commitmentReported(id: number, owner: string): Promise<boolean>;
  /**
   * A delivery attempt failed: due again at `retryAt`, or 'abandoned' once `maxAttempts` were made.
   * Returns the new state, undefined when no longer this owner's claim.
   */
  commitmentAttemptFailed(f: {
    id: number;
    owner: string;
    error: string;
    retryAt: Date;
    maxAttempts: number;
  }): Promise<'pending' | 'abandoned' | undefined>;
  /** Claims of `owner` given back now (shutdown), due at once for whoever claims next. */
  releaseCommitments(owner: string): Promise<number>;
  commitmentCounts(): Promise<CommitmentCounts>;
  /**
   * Retention: deletes the transactions received before `before` that are no longer pending
   * (reported or abandoned); returns how many. A request repeated after that is a new
   * transaction, decided and reported again. Absent: the backend does not prune. Durable.
   */
  pruneCommitments?(before: Date): Promise<number>;
}
