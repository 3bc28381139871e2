/**
 * The uploader yields to senders: while C-STOREs arrive it uploads nothing until the spool
 * holds burstBytes, then at most concurrencyWhileReceiving uploads, and takes up its full
 * concurrency once they pause.
 */
import { createHash } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import t, { type Test } from 'tap';
import type { InstanceIndex } from '../../src/index/instance-index.js';
import { Spool } from '../../src/ingest/spool.js';
import { Uploader } from '../../src/ingest/uploader.js';
import { MemoryStore } from '../../src/store/memory-store.js';
import type { PutFileOptions, PutResult } from '../../src/store/object-store.js';

/** Counts uploads running at once; each waits until the test lets it finish (or opens it). */
class GatedStore extends MemoryStore {
  running = 0;
  peak = 0;
  started = 0;
  private open = false;
  private gates: Array<() => void> = [];
  override async putFile(key: string, src: string, opts: PutFileOptions): Promise<PutResult> {
    this.running++;
    this.started++;
    this.peak = Math.max(this.peak, this.running);
    if (!this.open) await new Promise<void>((r) => this.gates.push(r));
    this.running--;
    return super.putFile(key, src, opts);
  }
  release(): void {
    const g = this.gates;
    this.gates = [];
    g.forEach((f) => f());
  }
  /** Every upload, waiting or to come, goes through. */
  openGates(): void {
    this.open = true;
    this.release();
  }
}

/** Polls `cond` until it holds (the uploader's work is asynchronous file I/O); fails after `ms`. */
async function until(cond: () => boolean, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${ms} ms`);
    await new Promise((r) => setImmediate(r));
  }
}

async function setup(
  t: Test,
  burstBytes: number,
  maxBytes = 1 << 30,
): Promise<{
  store: GatedStore;
  uploader: Uploader;
  spool: Spool;
  stored: string[];
  add: (i: number) => Promise<void>;
  setReceiving: (v: boolean) => void;
}> {
  const dir = await mkdtemp(join(tmpdir(), 'uploader-yield-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const log = pino({ level: 'silent' });
  const spool = new Spool(dir, maxBytes, log);
  await spool.open();
  const store = new GatedStore();
  const stored: string[] = [];
  const index = {
    markStored: async (uid: string) => void stored.push(uid),
  } as unknown as InstanceIndex;
  const uploader = new Uploader({
    store,
    index,
    spool,
    concurrency: 6,
    concurrencyWhileReceiving: 2,
    burstBytes,
    log,
  });
  let receiving = true;
  uploader.yieldTo(() => receiving);
  t.teardown(() => uploader.close(100));
  const add = async (i: number): Promise<void> => {
    const uid = `1.2.${i}`;
    const data = Buffer.from(`instance ${i}`.padEnd(100, '.'));
    const p = join(spool.incomingDir, `${i}.part`);
    await writeFile(p, data);
    await spool.admit(p, uid, data.length);
    uploader.enqueue({
      sopInstanceUid: uid,
      key: `k/${uid}.dcm`,
      size: data.length,
      sha256: createHash('sha256').update(data).digest('hex'),
      metadata: {},
      fresh: true, // admitted (fsynced) just now, as ingest enqueues them
    });
  };
  return { store, uploader, spool, stored, add, setReceiving: (v) => (receiving = v) };
}

// An upload starts synchronously in enqueue() (pump), so counts right after add() are exact.
t.test(
  'runs at most concurrencyWhileReceiving uploads while receiving, all once idle',
  async (t) => {
    const { store, uploader, spool, stored, add, setReceiving } = await setup(t, 0);
    for (let i = 0; i < 10; i++) await add(i);
    t.equal(store.running, 2, 'two uploads while senders are active');
    store.release();
    await until(() => store.started === 4);
    t.equal(store.running, 2, 'still two: the next ones start as those end');
    t.equal(store.peak, 2);
    setReceiving(false);
    // The uploader looks again within 250 ms of its last decision.
    await until(() => store.running === 6);
    t.equal(store.running, 6, 'full concurrency once nothing arrives');
    store.openGates();
    t.ok(await uploader.idle(2000), 'drained');
    t.equal(stored.length, 10, 'every instance marked stored');
    t.equal(store.peak, 6);
    t.equal(spool.stats().files, 0, 'spool empty');
  },
);

t.test('a burst below burstBytes is spooled whole before uploads start', async (t) => {
  const { store, uploader, stored, add, setReceiving } = await setup(t, 1000);
  for (let i = 0; i < 9; i++) await add(i); // 900 bytes < 1000
  t.equal(store.running, 0, 'no upload while the backlog is under burstBytes');
  await add(9); // 1000 bytes: the burst is over its budget
  t.equal(store.running, 2, 'concurrencyWhileReceiving beyond it');
  setReceiving(false);
  await until(() => store.running === 6);
  t.equal(store.running, 6, 'full concurrency once nothing arrives');
  store.openGates();
  t.ok(await uploader.idle(2000), 'drained');
  t.equal(stored.length, 10);
});

t.test('the fuller the spool, the more uploads, senders or not', async (t) => {
  // maxBytes 2000: burstBytes is capped at 500, every worker runs from 1000.
  const { store, uploader, add, setReceiving } = await setup(t, 10_000, 2000);
  for (let i = 0; i < 4; i++) await add(i); // 400 bytes
  t.equal(store.running, 0, 'under a quarter of maxBytes: none');
  await add(4); // 500
  t.equal(store.running, 2, 'from a quarter: concurrencyWhileReceiving');
  for (let i = 5; i < 10; i++) await add(i); // 1000: half full
  t.equal(store.running, 6, 'from half: all workers, though senders are active');
  setReceiving(false);
  store.openGates();
  t.ok(await uploader.idle(2000), 'drained');
});
