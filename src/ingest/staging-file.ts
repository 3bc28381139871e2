import { open, type FileHandle } from 'node:fs/promises';

/**
 * A file being received, written through one file descriptor from creation to fsync.
 *
 * Chunks are queued and written with one writev per turn (all that arrived while the previous
 * write ran), so a data set arriving as many PDVs costs few system calls. `sync()` fsyncs the
 * same descriptor: no reopen, and the caller may start it while other work (index lookups)
 * runs. fs.WriteStream would need a close and a second open just to fsync, two more trips
 * through the libuv thread pool on the path to the C-STORE answer.
 *
 * Errors are kept, not thrown from write(): the first one is reported by flushed()/sync().
 */
export class StagingFile {
  private readonly handle: Promise<FileHandle>;
  private fh: FileHandle | undefined;
  private queue: Buffer[] = [];
  private queuedBytes = 0;
  private position = 0;
  private writing: Promise<void> | undefined;
  private error: Error | undefined;
  private closed = false;
  private drainWaiters: Array<() => void> = [];

  /** `highWaterMark`: queued bytes above which write() asks the caller to wait. */
  constructor(
    readonly path: string,
    private readonly highWaterMark = 1024 * 1024,
  ) {
    // 'wx': a fresh name every time; an existing file means a bug, never data to overwrite.
    this.handle = open(path, 'wx');
    this.handle.then(
      (fh) => {
        this.fh = fh;
        if (this.closed) void fh.close().catch(() => undefined);
      },
      (err: Error) => {
        this.error ??= err;
      },
    );
  }

  /** Resolves once the file exists (rejects if it could not be created). */
  opened(): Promise<void> {
    return this.handle.then(() => undefined);
  }

  /** Bytes handed to write() so far. */
  get size(): number {
    return this.position + this.queuedBytes;
  }

  /**
   * Queues `chunk` (the caller must not change it afterwards). Returns a promise when more
   * than highWaterMark bytes wait, so the caller stops reading from the network until then.
   */
  write(chunk: Buffer): Promise<void> | undefined {
    if (this.error || this.closed) return undefined;
    this.queue.push(chunk);
    this.queuedBytes += chunk.length;
    // The reset runs as a promise reaction, so it never precedes this assignment.
    this.writing ??= this.pump().finally(() => {
      this.writing = undefined;
      this.wakeWriters();
    });
    if (this.queuedBytes <= this.highWaterMark) return undefined;
    return new Promise((resolve) => this.drainWaiters.push(resolve));
  }

  /** Resolves when every queued byte is written; rejects with the first write error. */
  async flushed(): Promise<void> {
    while (this.writing) await this.writing;
    if (this.error) throw this.error;
    if (!this.fh) await this.handle;
  }

  /**
   * Makes every byte durable once everything is written: fdatasync, which also writes back
   * the size and block allocation (what reading the data back needs); the name is the
   * directory's business (the spool fsyncs ready/, FsStore its directories). Flushing in the
   * background while the data set arrives was measured and did not pay here (README,
   * Performance).
   */
  async sync(): Promise<void> {
    await this.flushed();
    await this.fh!.datasync();
  }

  /** Closes the descriptor (after pending writes); the file stays. Never throws. */
  async close(): Promise<void> {
    if (this.closed) return;
    await this.flushed().catch(() => undefined);
    this.closed = true;
    this.wakeWriters();
    await this.fh?.close().catch(() => undefined);
  }

  private async pump(): Promise<void> {
    try {
      const fh = this.fh ?? (await this.handle);
      while (this.queue.length > 0 && !this.error) {
        const batch = this.queue;
        const bytes = this.queuedBytes;
        this.queue = [];
        this.queuedBytes = 0;
        const at = this.position;
        this.position += bytes;
        this.wakeWriters();
        await writeAll(fh, batch, bytes, at);
      }
    } catch (err) {
      this.error ??= err as Error;
      this.queue = [];
      this.queuedBytes = 0;
    }
  }

  private wakeWriters(): void {
    if (this.queuedBytes > this.highWaterMark && !this.error && !this.closed) return;
    const waiters = this.drainWaiters;
    this.drainWaiters = [];
    for (const w of waiters) w();
  }
}

/** writev until every byte is written (a short write continues where it stopped). */
async function writeAll(fh: FileHandle, bufs: Buffer[], total: number, at: number): Promise<void> {
  let done = 0;
  while (done < total) {
    const { bytesWritten } = await fh.writev(done === 0 ? bufs : remaining(bufs, done), at + done);
    if (bytesWritten === 0) throw new Error('writev wrote nothing');
    done += bytesWritten;
  }
}

function remaining(bufs: Buffer[], skip: number): Buffer[] {
  const out: Buffer[] = [];
  for (const b of bufs) {
    if (skip >= b.length) {
      skip -= b.length;
      continue;
    }
    out.push(skip > 0 ? b.subarray(skip) : b);
    skip = 0;
  }
  return out;
}
