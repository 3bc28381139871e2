/**
 * One flush shared by concurrent callers (group commit): a caller waits for a flush that began
 * after it asked, which covers everything it did before asking. While one runs, everyone who
 * asks shares the single next one. Used for directory fsyncs (DirectorySyncs) and for the
 * index's commit flush (Uploader).
 */
export class SharedFlush {
  private current: Promise<void> | undefined;
  private next: Promise<void> | undefined;

  constructor(private readonly flush: () => Promise<void>) {}

  /** True while a flush runs or waits to. */
  get busy(): boolean {
    return this.current !== undefined || this.next !== undefined;
  }

  sync(): Promise<void> {
    if (!this.current) return this.start();
    // One flush is running, which may have begun before the caller's last write: queue one
    // more after it, shared by everyone who asks meanwhile.
    this.next ??= this.current
      .catch(() => undefined)
      .then(() => {
        this.next = undefined;
        return this.start();
      });
    return this.next;
  }

  private start(): Promise<void> {
    const run: Promise<void> = this.flush().finally(() => {
      if (this.current === run) this.current = undefined;
    });
    this.current = run;
    return run;
  }
}
