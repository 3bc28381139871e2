/**
 * Incremental raw inflate (RFC 1951) for Deflated transfer syntaxes (PS3.5 A.5).
 *
 * Each compressed chunk is handed to one node:zlib InflateRaw stream exactly once, so the
 * work is linear in the bytes received, and it runs on libuv's thread pool, off the event
 * loop: a deflated data set cannot stall other associations. (A synchronous re-inflate of
 * the prefix received so far, the only synchronous form node:zlib offers, is quadratic.)
 * The output reaches `onData` asynchronously, in order; stop() ends the work at once.
 */
import zlib from 'node:zlib';

/**
 * Input is handed to zlib in batches of this size: each write is a thread-pool job, whose
 * fixed cost made 512-byte PDVs cost twice the CPU of the same data set not deflated.
 */
const BATCH_BYTES = 16 * 1024;

export type InflateOutcome =
  /** The deflate stream ended with its final block. */
  | { kind: 'ended' }
  /** stop() was called: nothing more was wanted. */
  | { kind: 'stopped' }
  /** The input ended before the final block (zlib: "unexpected end of file"). */
  | { kind: 'truncated' }
  /** end() waited longer than its timeout. */
  | { kind: 'timeout' }
  | { kind: 'failed'; error: Error };

export class Inflater {
  /** Compressed bytes handed to zlib: each received byte once. */
  inputBytes = 0;
  /** Inflated bytes handed to onData. */
  outputBytes = 0;

  private readonly z: zlib.InflateRaw;
  /** Input not yet handed to zlib: a copy, since the caller may reuse its buffers. */
  private batch = Buffer.alloc(0);
  private batchBytes = 0;
  private outcome: InflateOutcome | undefined;
  private readonly settled: Promise<InflateOutcome>;
  private settle: (o: InflateOutcome) => void = () => {};

  constructor(onData: (chunk: Buffer) => void) {
    this.settled = new Promise((resolve) => (this.settle = resolve));
    this.z = zlib.createInflateRaw();
    this.z.on('data', (chunk: Buffer) => {
      if (this.outcome) return;
      this.outputBytes += chunk.length;
      onData(chunk);
    });
    this.z.on('end', () => this.finish({ kind: 'ended' }));
    this.z.on('error', (error: Error & { code?: string }) => {
      // node:zlib reports input that stops before the final block as Z_BUF_ERROR.
      const truncated = error.code === 'Z_BUF_ERROR' || /unexpected end/i.test(error.message);
      this.finish(truncated ? { kind: 'truncated' } : { kind: 'failed', error });
    });
  }

  /** Set once the stream ended, failed or was stopped: later input is ignored. */
  get result(): InflateOutcome | undefined {
    return this.outcome;
  }

  write(chunk: Buffer): void {
    if (this.outcome || this.z.writableEnded) return;
    this.inputBytes += chunk.length;
    // The caller bounds inputBytes (DatasetReader: maxHeaderBytes).
    for (let pos = 0; pos < chunk.length;) {
      if (this.batch.length === 0) this.batch = Buffer.allocUnsafe(BATCH_BYTES);
      const k = chunk.copy(this.batch, this.batchBytes, pos);
      this.batchBytes += k;
      pos += k;
      if (this.batchBytes === BATCH_BYTES) this.flushBatch();
    }
  }

  /** Hands the batch to zlib, which keeps it until processed: a new one is allocated. */
  private flushBatch(): void {
    if (this.batchBytes === 0) return;
    this.z.write(this.batch.subarray(0, this.batchBytes));
    this.batch = Buffer.alloc(0);
    this.batchBytes = 0;
  }

  /** No more output is wanted: frees the zlib context now, whatever is still queued. */
  stop(): void {
    this.finish({ kind: 'stopped' });
  }

  /**
   * Signals the end of the input and resolves once zlib has produced the rest of the output
   * (or stopped); after `timeoutMs` it stops and resolves 'timeout'.
   */
  async end(timeoutMs: number): Promise<InflateOutcome> {
    if (!this.outcome && !this.z.writableEnded) {
      this.flushBatch();
      this.z.end();
    }
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<InflateOutcome>((resolve) => {
      timer = setTimeout(() => {
        this.finish({ kind: 'timeout' });
        resolve({ kind: 'timeout' });
      }, timeoutMs);
    });
    try {
      return await Promise.race([this.settled, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  private finish(o: InflateOutcome): void {
    if (this.outcome) return;
    this.outcome = o;
    this.batch = Buffer.alloc(0);
    this.batchBytes = 0;
    if (o.kind !== 'ended') this.z.destroy();
    this.settle(o);
  }
}
