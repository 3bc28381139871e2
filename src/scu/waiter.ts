import { GatewayError } from '../errors.js';

/**
 * Condition waits for a driver fed by socket events: each wait names what it waits for, has
 * a deadline, and ends early with the driver's failure (the association ended). Pure
 * bookkeeping; the driver calls notify() whenever something it waits on may have changed.
 */
export class Waiter {
  private readonly waiting = new Set<() => void>();
  private failure: Error | undefined;

  /** Every current and later wait rejects with `err` (the first one given wins). */
  fail(err: Error): void {
    this.failure ??= err;
    this.notify();
  }

  get failed(): Error | undefined {
    return this.failure;
  }

  notify(): void {
    for (const w of [...this.waiting]) w();
  }

  /**
   * Resolves with check()'s first defined value; checks again on every notify(). A value
   * wins over a failure that came after it (a final response read before the peer closed).
   */
  until<T>(check: () => T | undefined, ms: number, what: string): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const done = (): void => {
        clearTimeout(timer);
        this.waiting.delete(attempt);
      };
      const timer = setTimeout(() => {
        done();
        reject(new GatewayError('GW_ERR_TIMEOUT', `${what}: nothing within ${ms} ms`));
      }, ms);
      const attempt = (): void => {
        let value: T | undefined;
        try {
          value = check();
        } catch (err) {
          done();
          reject(err as Error);
          return;
        }
        if (value !== undefined) {
          done();
          resolve(value);
        } else if (this.failure) {
          done();
          reject(this.failure);
        }
      };
      this.waiting.add(attempt);
      attempt();
    });
  }
}
