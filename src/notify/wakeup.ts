/**
 * A wake-up for idle loops: `wait(ms)` ends on `ring()`, after `ms` (the slow poll), or when
 * `signal` aborts, whichever comes first. A ring while nobody waits is kept, so a commit
 * notified while a loop was busy is not slept through.
 */
import { setTimeout as delay } from 'node:timers/promises';

export class Wakeup {
  private rung = false;
  private waiters = new Set<() => void>();

  ring(): void {
    this.rung = true;
    for (const w of this.waiters) w();
    this.waiters.clear();
  }

  async wait(ms: number, signal: AbortSignal): Promise<void> {
    if (this.rung || signal.aborted) {
      this.rung = false;
      return;
    }
    const cancel = new AbortController();
    const rang = new Promise<void>((resolve) => this.waiters.add(resolve));
    try {
      await Promise.race([
        rang,
        delay(ms, undefined, { signal: AbortSignal.any([signal, cancel.signal]) }).catch(() => {}),
      ]);
    } finally {
      cancel.abort();
      this.rung = false;
    }
  }
}
