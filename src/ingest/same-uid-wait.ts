import type { Logger } from 'pino';
import { GatewayError } from '../errors.js';

/**
 * A writer's waits for other associations delivering the same SOP Instance UID (the spool's
 * in-place claim, the UID's commit lock), bounded together: after `ms` in all, or once this
 * writer's peer has gone (`peerGone`), the writer stops waiting and fails with GW_ERR_TIMEOUT
 * (A700, PS3.4 B.2.3: transient, the sender retries) or GW_ERR_ASSOCIATION_ABORTED. The other
 * association's receipt can take as long as its sender trickles; this one must not hang with it.
 */
export class SameUidWait {
  private deadline: number | undefined;
  private readonly gone = new AbortController();

  constructor(
    private readonly ms: number,
    private readonly sopInstanceUid: string,
    private readonly log: Logger,
  ) {}

  /** The association's transport closed: whatever this writer waits for, nobody hears the answer. */
  peerGone(): void {
    this.gone.abort();
  }

  /** What `other` settles to, unless the deadline passes or the peer goes first. */
  async wait<T>(other: Promise<T>): Promise<T> {
    if (this.deadline === undefined) {
      this.deadline = Date.now() + this.ms;
      this.log.info(
        { event: 'instance.waiting_for_same_uid', sopInstanceUid: this.sopInstanceUid },
        'another association is delivering this SOP Instance UID; waiting for it',
      );
    }
    const signal = this.gone.signal;
    let timer: NodeJS.Timeout | undefined;
    let onAbort: (() => void) | undefined;
    const stop = new Promise<never>((_, reject) => {
      if (signal.aborted) reject(gone(this.sopInstanceUid));
      onAbort = () => reject(gone(this.sopInstanceUid));
      signal.addEventListener('abort', onAbort, { once: true });
      timer = setTimeout(
        () =>
          reject(
            new GatewayError(
              'GW_ERR_TIMEOUT',
              `SOP Instance ${this.sopInstanceUid} is being received on another association; retry later`,
            ),
          ),
        Math.max(0, this.deadline! - Date.now()),
      );
    });
    try {
      return await Promise.race([other, stop]);
    } finally {
      clearTimeout(timer);
      if (onAbort) signal.removeEventListener('abort', onAbort);
    }
  }
}

function gone(uid: string): GatewayError {
  return new GatewayError(
    'GW_ERR_ASSOCIATION_ABORTED',
    `the peer went away while SOP Instance ${uid} waited for another association`,
  );
}
