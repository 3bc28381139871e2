/**
 * Keeps the embedded PostgreSQL running. When the postmaster exits without being asked to (kill -9,
 * the OOM killer, a PANIC), nothing else would start it again: every C-STORE would get A700 for
 * ever. The supervisor restarts it, with exponential backoff and jitter between attempts (crash
 * recovery replays the WAL at each start), and gives up after `maxAttempts` attempts (a crash
 * loop included: see RestartPolicy.stableAfterMs).
 * Then the index cannot come back by itself: health() says so, /healthz answers 503, and an
 * orchestrator restarts the whole process.
 *
 * Clients need no part in it: the pg.Pool drops connections the crash broke and opens new ones,
 * on the same port, once the server is back.
 */
import { setTimeout as delay } from 'node:timers/promises';
import type { Logger } from 'pino';
import type { PostmasterExit } from './embedded-pg.js';

/** What is supervised: src/index/embedded-pg.ts's handle. */
export interface SupervisedServer {
  start(): Promise<void>;
  stop(): Promise<void>;
  /** Calls `listener` when the server exits without stop(); returns the unsubscribe. */
  onExit(listener: (exit: PostmasterExit) => void): () => void;
}

export interface RestartPolicy {
  /** Restart attempts before giving up. */
  maxAttempts: number;
  /** Cap of the delay before an attempt. */
  maxDelayMs: number;
  /** Delay before the first attempt (doubled for each further one, up to the cap); default 250 ms. */
  initialDelayMs?: number;
  /**
   * A server that ran this long since its last restart starts a new count of attempts; one that
   * dies sooner continues the old count, so a crash loop still ends. Default 60 s.
   */
  stableAfterMs?: number;
}

export type SupervisorState = 'running' | 'restarting' | 'failed' | 'stopped';

export interface SupervisorHealth {
  state: SupervisorState;
  /** Restarts that brought the server back, since the gateway started. */
  restarts: number;
  /** Why it gave up (state 'failed'). */
  error?: string;
}

/**
 * Delay before restart attempt `attempt` (1-based): initial * 2^(attempt-1), capped, times a
 * random factor in [0.5, 1) ("equal jitter": never zero, never in lockstep with anything).
 */
export function restartDelayMs(
  attempt: number,
  policy: Pick<RestartPolicy, 'maxDelayMs' | 'initialDelayMs'>,
  random: () => number = Math.random,
): number {
  const initial = Math.min(policy.initialDelayMs ?? 250, policy.maxDelayMs);
  const capped = Math.min(policy.maxDelayMs, initial * 2 ** Math.min(attempt - 1, 30));
  return Math.round(capped * (0.5 + random() / 2));
}

export class EmbeddedPgSupervisor {
  private state: SupervisorState = 'running';
  private restarts = 0;
  private attempts = 0;
  private upSince = Date.now();
  private error: string | undefined;
  private loop: Promise<void> | undefined;
  private readonly abort = new AbortController();
  private readonly unsubscribe: () => void;

  constructor(
    private readonly server: SupervisedServer,
    private readonly policy: RestartPolicy,
    private readonly log?: Logger,
  ) {
    this.unsubscribe = server.onExit((exit) => this.exited(exit));
  }

  health(): SupervisorHealth {
    return { state: this.state, restarts: this.restarts, error: this.error };
  }

  /** Stops supervising (an attempt under way finishes first), then stops the server. */
  async stop(): Promise<void> {
    if (this.state === 'stopped') return;
    this.state = 'stopped';
    this.unsubscribe();
    this.abort.abort();
    await this.loop;
    await this.server.stop();
  }

  private exited(exit: PostmasterExit): void {
    if (this.state !== 'running') return;
    const downSince = Date.now();
    if (downSince - this.upSince >= (this.policy.stableAfterMs ?? 60_000)) this.attempts = 0;
    this.state = 'restarting';
    const how = exit.signal ?? `code ${exit.code}`;
    this.log?.error(
      { event: 'index.embedded_exited', ...exit },
      `the embedded PostgreSQL exited (${how}); restarting it`,
    );
    this.loop = this.restart(downSince, `it exited (${how}) again soon after a restart`);
  }

  /** `lastError`: what to report when no attempt is left to make (a crash loop). */
  private async restart(downSince: number, lastError: string): Promise<void> {
    const { maxAttempts } = this.policy;
    while (this.attempts < maxAttempts) {
      const attempt = ++this.attempts;
      const delayMs = restartDelayMs(attempt, this.policy);
      this.log?.warn(
        { event: 'index.embedded_restarting', attempt, maxAttempts, delayMs },
        `restarting the embedded PostgreSQL in ${delayMs} ms (attempt ${attempt} of ${maxAttempts})`,
      );
      try {
        await delay(delayMs, undefined, { signal: this.abort.signal });
      } catch {
        return; // stop(): the gateway is shutting down
      }
      try {
        await this.server.start();
      } catch (err) {
        lastError = err instanceof Error ? err.message : String(err);
        this.log?.warn(
          { event: 'index.embedded_restart_failed', attempt, err: lastError },
          'the embedded PostgreSQL did not start',
        );
        if (this.abort.signal.aborted) return;
        continue;
      }
      if (this.abort.signal.aborted) return; // stop() stops what just started
      this.state = 'running';
      this.restarts++;
      this.upSince = Date.now();
      this.log?.info(
        { event: 'index.embedded_restarted', attempt, downtimeMs: this.upSince - downSince },
        `the embedded PostgreSQL is back after ${this.upSince - downSince} ms`,
      );
      return;
    }
    this.state = 'failed';
    this.error = `the embedded PostgreSQL did not start again after ${maxAttempts} attempts`;
    this.log?.error(
      {
        event: 'index.embedded_gave_up',
        attempts: maxAttempts,
        downtimeMs: Date.now() - downSince,
        err: lastError,
      },
      `${this.error}; giving up: the index is down until the gateway is restarted (/healthz answers 503)`,
    );
  }
}
