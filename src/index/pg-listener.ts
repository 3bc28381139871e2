/**
 * LISTEN on one PostgreSQL channel for PgIndex.onOutbox: one dedicated connection, opened with
 * the first subscriber and closed with the last. A lost connection is opened again with capped
 * exponential backoff; subscribers are called once it listens again, because notifications sent
 * meanwhile are lost (PostgreSQL queues them only for sessions that are listening).
 */
import pg from 'pg';
import type { Logger } from 'pino';
import { describe } from './pg-exec.js';

const RETRY_MIN_MS = 250;
const RETRY_MAX_MS = 30_000;

export class PgListener {
  private readonly listeners = new Set<() => void>();
  private client: pg.Client | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private failures = 0;
  private closed = false;

  constructor(
    private readonly connectionString: string,
    /** A fixed identifier (not quoted): LISTEN takes no parameter. */
    private readonly channel: string,
    private readonly connectionTimeoutMs: number,
    private readonly log?: Logger,
  ) {}

  subscribe(listener: () => void): () => void {
    if (this.closed) throw new Error('index closed');
    this.listeners.add(listener);
    if (!this.client && !this.retryTimer) this.connect();
    return () => {
      this.listeners.delete(listener);
      if (this.listeners.size === 0) this.disconnect();
    };
  }

  close(): void {
    this.closed = true;
    this.listeners.clear();
    this.disconnect();
  }

  private connect(): void {
    const client = new pg.Client({
      connectionString: this.connectionString,
      connectionTimeoutMillis: this.connectionTimeoutMs,
      // Bounds the LISTEN statement; keepAlive notices a peer that vanished while idle.
      query_timeout: this.connectionTimeoutMs,
      keepAlive: true,
      application_name: 'dicom-gateway-listen',
    });
    this.client = client;
    client.on('notification', (msg) => {
      if (msg.channel === this.channel) this.emit();
    });
    const lost = (err?: unknown): void => {
      if (this.client !== client) return; // already replaced or closed
      this.client = undefined;
      client.end().catch(() => undefined);
      if (this.listeners.size === 0 || this.closed) return;
      const delay = Math.min(RETRY_MAX_MS, RETRY_MIN_MS * 2 ** this.failures++);
      this.log?.warn(
        { err: err === undefined ? undefined : describe(err), retryInMs: delay },
        'outbox listen connection lost; reconnecting',
      );
      this.retryTimer = setTimeout(() => {
        this.retryTimer = undefined;
        if (this.listeners.size > 0 && !this.closed) this.connect();
      }, delay);
      this.retryTimer.unref();
    };
    client.on('error', lost);
    client.on('end', () => lost());
    client
      .connect()
      .then(() => client.query(`LISTEN ${this.channel}`))
      .then(() => {
        if (this.client !== client) return;
        this.failures = 0;
        this.emit();
      }, lost);
  }

  private disconnect(): void {
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    const client = this.client;
    this.client = undefined;
    client?.end().catch(() => undefined);
  }

  private emit(): void {
    for (const listener of [...this.listeners]) {
      try {
        listener();
      } catch (err) {
        this.log?.error({ err: describe(err) }, 'outbox listener threw');
      }
    }
  }
}
