/**
 * The uploader yields to senders: while C-STOREs arrive it runs at most
 * concurrencyWhileReceiving uploads, and takes up its full concurrency once they pause.
 */
import { createHash } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import t from 'tap';
import type { InstanceIndex } from '../../src/index/instance-index.js';
import { Spool } from '../../src/ingest/spool.js';
import { Uploader } from '../../src/ingest/uploader.js';
import { MemoryStore } from '../../src/store/memory-store.js';
import type { PutFileOptions, PutResult } from '../../src/store/object-store.js';

/** Counts uploads running at once; each waits until the test lets it finish. */
class GatedStore extends MemoryStore {
  running = 0;
  peak = 0;
  private gates: Array<() => void> = [];
  override async putFile(key: string, src: string, opts: PutFileOptions): Promise<PutResult> {
    this.running++;
    this.peak = Math.max(this.peak, this.running);
    await new Promise<void>((r) => this.gates.push(r));
    this.running--;
    return super.putFile(key, src, opts);
  }
  release(): void {
    const g = this.gates;
    this.gates = [];
    g.forEach((f) => f());
  }
}

const tick = (ms = 20): Promise<void> => new Promise((r) => setTimeout(r, ms));

t.test(
  'runs at most concurrencyWhileReceiving uploads while receiving, all once idle',
  async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'uploader-yield-'));
    t.teardown(() => rm(dir, { recursive: true, force: true }));
    const log = pino({ level: 'silent' });
    const spool = new Spool(dir, 1 << 30, log);
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
      log,
    });
    let receiving = true;
    uploader.yieldTo(() => receiving);
    for (let i = 0; i < 10; i++) {
      const uid = `1.2.${i}`;
      const data = Buffer.from(`instance ${i}`);
      const p = join(spool.incomingDir, `${i}.part`);
      await writeFile(p, data);
      await spool.admit(p, uid, data.length);
      uploader.enqueue({
        sopInstanceUid: uid,
        key: `k/${uid}.dcm`,
        size: data.length,
        sha256: createHash('sha256').update(data).digest('hex'),
        md5: createHash('md5').update(data).digest('base64'),
        metadata: {},
      });
    }
    await tick();
    t.equal(store.running, 2, 'two uploads while senders are active');
    store.release();
    await tick();
    t.equal(store.running, 2, 'still two: the next ones start as those end');
    receiving = false;
    await tick(400); // the uploader looks again within 250 ms
    t.equal(store.running, 6, 'full concurrency once nothing arrives');
    store.release();
    await tick();
    store.release();
    t.ok(await uploader.idle(2000), 'drained');
    t.equal(stored.length, 10, 'every instance marked stored');
    t.equal(store.peak, 6);
    t.equal(spool.stats().files, 0, 'spool empty');
    await uploader.close();
  },
);
