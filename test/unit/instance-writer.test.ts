/**
 * The ingest path with an in-memory store and index: the acknowledgement rule and the
 * failure statuses, including faults that are hard to time against real servers
 * (index failing after the upload succeeded).
 */
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import t, { type Test } from 'tap';
import { readPart10Header } from '../../src/dicom/file-meta.js';
import { DimseStatus, GatewayError } from '../../src/errors.js';
import type {
  ExistingInstance,
  IngestIndex,
  InstanceRecord,
  RecordOutcome,
} from '../../src/index/instance-index.js';
import { Ingest, type IngestOptions } from '../../src/ingest/ingest.js';
import { Spool } from '../../src/ingest/spool.js';
import { DirectCommit } from '../../src/ingest/commit-direct.js';
import { Uploader } from '../../src/ingest/uploader.js';
import type { AssociationInfo } from '../../src/scp/association.js';
import { MemoryStore } from '../../src/store/memory-store.js';
import { versionKey } from '../../src/store/keys.js';

const fixture = readFileSync(
  join(dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'ct-explicit-le.dcm'),
);
const meta = readPart10Header(fixture);
const dataset = fixture.subarray(meta.datasetOffset);

/** Just enough of an index for these tests; the real contract is tested against PostgreSQL. */
class FakeIndex implements IngestIndex {
  rows = new Map<string, InstanceRecord>();
  failRecord: Error | undefined;
  /** Runs at the start of each recordInstance (tests look at the world at that moment). */
  beforeRecord: ((rec: InstanceRecord) => void) | undefined;
  async migrate(): Promise<void> {}
  async recordInstance(rec: InstanceRecord): Promise<RecordOutcome> {
    this.beforeRecord?.(rec);
    if (this.failRecord) throw this.failRecord;
    const existing = this.rows.get(rec.attributes.sopInstanceUid);
    if (existing) {
      return {
        kind: existing.sha256 === rec.sha256 ? 'identical' : 'conflict',
        existing: toExisting(existing),
      };
    }
    this.rows.set(rec.attributes.sopInstanceUid, rec);
    return { kind: 'inserted' };
  }
  async replaceInstance(rec: InstanceRecord): Promise<void> {
    const r = this.rows.get(rec.attributes.sopInstanceUid)!;
    this.rows.set(rec.attributes.sopInstanceUid, { ...rec, objectKey: r.objectKey });
  }
  versions: InstanceRecord[] = [];
  async recordVersion(rec: InstanceRecord): Promise<void> {
    if (!this.versions.some((v) => v.sha256 === rec.sha256)) this.versions.push(rec);
  }
  async markStored(uid: string): Promise<void> {
    const r = this.rows.get(uid);
    if (r) r.state = 'stored';
  }
  async flushCommits(): Promise<void> {}
  async listPending(_owner: string): Promise<ExistingInstance[]> {
    return [...this.rows.values()].filter((r) => r.state === 'pending-upload').map(toExisting);
  }
  async forgetPending(uid: string): Promise<boolean> {
    return this.rows.get(uid)?.state === 'pending-upload' && this.rows.delete(uid);
  }
  async findInstance(uid: string): Promise<ExistingInstance | undefined> {
    const r = this.rows.get(uid);
    return r && toExisting(r);
  }
  async getStudy(): Promise<undefined> {
    return undefined;
  }
  async listInstances(): Promise<ExistingInstance[]> {
    return [];
  }
  async instanceEvents(): Promise<[]> {
    return [];
  }
  async ping(): Promise<void> {}
  async close(): Promise<void> {}
}

function toExisting(r: InstanceRecord): ExistingInstance {
  return {
    sopInstanceUid: r.attributes.sopInstanceUid,
    studyInstanceUid: r.attributes.studyInstanceUid,
    seriesInstanceUid: r.attributes.seriesInstanceUid,
    storeName: r.storeName,
    objectKey: r.objectKey,
    size: r.size,
    sha256: r.sha256,
    state: r.state,
  };
}

const assoc: AssociationInfo = {
  id: '1',
  callingAeTitle: 'MOD',
  calledAeTitle: 'DICOMGW',
  remoteAddress: '127.0.0.1',
  remotePort: 1,
  tls: false,
};

/** Every MemoryStore made by setup(); closing one removes its staging dir under the temp dir. */
const stores: MemoryStore[] = [];
t.teardown(() => Promise.all(stores.map((s) => s.close())));

function setup(
  maxInstanceBytes = 1 << 30,
  duplicatePolicy: 'keep-first' | 'overwrite' | 'keep-versions' | 'reject' = 'keep-first',
  spool?: (store: MemoryStore, index: FakeIndex) => IngestOptions['spool'],
  resolveDestination?: IngestOptions['resolveDestination'],
): { store: MemoryStore; index: FakeIndex; ingest: Ingest } {
  const store = new MemoryStore();
  stores.push(store);
  const index = new FakeIndex();
  const ingest = new Ingest({
    store,
    storeName: 'memory',
    prefix: 'p',
    stagingDir: store.stagingDir(),
    index,
    implementationClassUid: '1.2.3',
    implementationVersionName: 'TEST',
    maxInstanceBytes,
    duplicatePolicy,
    sameInstanceWaitMs: 30_000,
    spool: spool?.(store, index),
    resolveDestination,
  });
  return { store, index, ingest };
}

async function send(
  ingest: Ingest,
  bytes: Buffer,
  fragment: number,
  req: Partial<{ sopClassUid: string; sopInstanceUid: string }> = {},
): Promise<{ status: number; errorComment?: string }> {
  const sink = ingest.begin(
    assoc,
    {
      messageId: 1,
      sopClassUid: req.sopClassUid ?? meta.mediaStorageSopClassUid,
      sopInstanceUid: req.sopInstanceUid ?? meta.mediaStorageSopInstanceUid,
      transferSyntaxUid: meta.transferSyntaxUid,
    },
    pino({ level: 'silent' }),
  );
  for (let i = 0; i < bytes.length; i += fragment) {
    const wait = sink.write(bytes.subarray(i, i + fragment));
    if (wait) await wait;
  }
  return sink.finish();
}

async function objectCount(store: MemoryStore): Promise<number> {
  let n = 0;
  for await (const _ of store.list('')) n++;
  return n;
}

t.test(
  'stores the data set unchanged behind our File Meta, whatever the fragment size',
  async (t) => {
    for (const fragment of [1, 7, 1000, dataset.length]) {
      const { store, index, ingest } = setup();
      const r = await send(ingest, dataset, fragment);
      t.equal(r.status, DimseStatus.Success, `fragment ${fragment}: 0000 ${r.errorComment ?? ''}`);
      const row = index.rows.get(meta.mediaStorageSopInstanceUid)!;
      const chunks: Buffer[] = [];
      for await (const c of await store.get(row.objectKey)) chunks.push(c as Buffer);
      const obj = Buffer.concat(chunks);
      t.ok(
        obj.subarray(readPart10Header(obj).datasetOffset).equals(dataset),
        'data set bytes unchanged',
      );
      t.equal(row.size, obj.length, 'size recorded');
      t.equal((await store.head(row.objectKey))?.sha256, row.sha256, 'sha256 metadata = index');
    }
  },
);

t.test('index failing after the upload: A700 and the new object removed', async (t) => {
  const { store, index, ingest } = setup();
  index.failRecord = new GatewayError('GW_ERR_INDEX_UNAVAILABLE', 'database down');
  const r = await send(ingest, dataset, 4096);
  t.equal(r.status, DimseStatus.OutOfResources);
  t.equal(await objectCount(store), 0, 'no object left without a row');
  index.failRecord = undefined;
  t.equal((await send(ingest, dataset, 4096)).status, DimseStatus.Success, 'the resend succeeds');
  t.equal(await objectCount(store), 1);
});

t.test('store failing: A700, nothing indexed', async (t) => {
  const { store, index, ingest } = setup();
  store.failNext('putFile', new GatewayError('GW_ERR_STORE_UNAVAILABLE', 'S3 down'));
  t.equal((await send(ingest, dataset, 4096)).status, DimseStatus.OutOfResources);
  t.equal(index.rows.size, 0);
  t.equal(await objectCount(store), 0);
});

t.test('refusals: truncated, mismatching UIDs, too large', async (t) => {
  const { store, index, ingest } = setup(dataset.length - 1);
  const tooLarge = await send(ingest, dataset, 4096);
  t.equal(tooLarge.status, DimseStatus.OutOfResources, 'over maxInstanceBytes: A700');
  t.match(tooLarge.errorComment, /exceeds the limit/);

  const ok = setup();
  const truncated = await send(ok.ingest, dataset.subarray(0, dataset.length - 3), 4096);
  t.equal(truncated.status, DimseStatus.CannotUnderstand, 'truncated: C000');
  const otherUid = await send(ok.ingest, dataset, 4096, { sopInstanceUid: '1.2.3.4' });
  t.equal(
    otherUid.status,
    DimseStatus.DataSetDoesNotMatchSopClass,
    'SOP Instance UID differs: A900',
  );
  const otherClass = await send(ok.ingest, dataset, 4096, {
    sopClassUid: '1.2.840.10008.5.1.4.1.1.4',
  });
  t.equal(
    otherClass.status,
    DimseStatus.DataSetDoesNotMatchSopClass,
    'SOP Class UID differs: A900',
  );
  t.equal(ok.index.rows.size + index.rows.size, 0, 'nothing indexed');
  t.equal((await objectCount(ok.store)) + (await objectCount(store)), 0, 'nothing stored');
});

t.test('duplicates: identical is idempotent, different bytes keep the first', async (t) => {
  const { store, index, ingest } = setup();
  t.equal((await send(ingest, dataset, 4096)).status, DimseStatus.Success);
  const first = index.rows.get(meta.mediaStorageSopInstanceUid)!;
  t.equal(
    (await send(ingest, dataset, 4096)).status,
    DimseStatus.Success,
    'identical resend: 0000',
  );
  // Same UIDs, other bytes: change one pixel byte at the end.
  const other = Buffer.from(dataset);
  other[other.length - 1] = other[other.length - 1]! ^ 0xff;
  t.equal(
    (await send(ingest, other, 4096)).status,
    DimseStatus.Success,
    'different bytes: 0000 (keep-first)',
  );
  t.equal(
    index.rows.get(meta.mediaStorageSopInstanceUid)!.sha256,
    first.sha256,
    'first kept in the index',
  );
  t.equal(await objectCount(store), 1, 'one object');
  t.equal(ingest.stats.duplicates, 2);
});

t.test('an early lookup made stale by a commit of the same instance is asked again', async (t) => {
  const { store, index, ingest } = setup();
  const log = pino({ level: 'silent' });
  const req = {
    messageId: 1,
    sopClassUid: meta.mediaStorageSopClassUid,
    sopInstanceUid: meta.mediaStorageSopInstanceUid,
    transferSyntaxUid: meta.transferSyntaxUid,
  };
  let lookups = 0;
  const find = index.findInstance.bind(index);
  index.findInstance = (uid) => {
    lookups++;
    return find(uid);
  };
  // B's request arrives first (its lookup finds nothing), then A arrives and is committed
  // whole, then B's data set (other bytes) ends: B must see A's row, not its own old lookup.
  const b = ingest.begin(assoc, req, log);
  await new Promise((r) => setImmediate(r));
  t.equal((await send(ingest, dataset, 4096)).status, DimseStatus.Success, 'A stored');
  const first = index.rows.get(meta.mediaStorageSopInstanceUid)!;
  const other = Buffer.from(dataset);
  other[other.length - 1] = other[other.length - 1]! ^ 0xff;
  await b.write(other);
  t.equal((await b.finish()).status, DimseStatus.Success, 'B: 0000 (keep-first)');
  t.equal(lookups, 3, 'B looked up again at commit');
  t.equal(
    (await store.head(first.objectKey))?.sha256,
    first.sha256,
    "A's object was not replaced by B's bytes",
  );
  t.equal(index.rows.get(meta.mediaStorageSopInstanceUid)!.sha256, first.sha256);
  t.equal(ingest.stats.duplicates, 1);
  // Without a commit in between, the early lookup is used as it is: one lookup per instance.
  lookups = 0;
  t.equal((await send(ingest, dataset, 4096)).status, DimseStatus.Success);
  t.equal(lookups, 1, 'no second lookup');
});

t.test('duplicate policies for other bytes under a known SOP Instance UID', async (t) => {
  const other = Buffer.from(dataset);
  other[other.length - 1] = other[other.length - 1]! ^ 0xff;

  const reject = setup(1 << 30, 'reject');
  t.equal((await send(reject.ingest, dataset, 4096)).status, DimseStatus.Success);
  t.equal(
    (await send(reject.ingest, dataset, 4096)).status,
    DimseStatus.Success,
    'identical: still 0000',
  );
  t.equal(
    (await send(reject.ingest, other, 4096)).status,
    DimseStatus.DuplicateSopInstance,
    'reject: 0111',
  );
  t.equal(await objectCount(reject.store), 1);

  const overwrite = setup(1 << 30, 'overwrite');
  await send(overwrite.ingest, dataset, 4096);
  t.equal(
    (await send(overwrite.ingest, other, 4096)).status,
    DimseStatus.Success,
    'overwrite: 0000',
  );
  const row = overwrite.index.rows.get(meta.mediaStorageSopInstanceUid)!;
  const chunks: Buffer[] = [];
  for await (const c of await overwrite.store.get(row.objectKey)) chunks.push(c as Buffer);
  const obj = Buffer.concat(chunks);
  t.ok(
    obj.subarray(readPart10Header(obj).datasetOffset).equals(other),
    'the object holds the new bytes',
  );
  t.equal(
    (await overwrite.store.head(row.objectKey))?.sha256,
    row.sha256,
    'index follows the new bytes',
  );
  t.equal(await objectCount(overwrite.store), 1);

  const versions = setup(1 << 30, 'keep-versions');
  await send(versions.ingest, dataset, 4096);
  const first = versions.index.rows.get(meta.mediaStorageSopInstanceUid)!.sha256;
  t.equal(
    (await send(versions.ingest, other, 4096)).status,
    DimseStatus.Success,
    'keep-versions: 0000',
  );
  t.equal(await objectCount(versions.store), 2, 'both contents kept');
  t.equal(
    versions.index.rows.get(meta.mediaStorageSopInstanceUid)!.sha256,
    first,
    'the index keeps the first',
  );
  const kept = versions.index.versions;
  t.equal(kept.length, 1, 'the other content is indexed as a version');
  t.equal(
    kept[0]?.objectKey,
    versionKey(
      versions.index.rows.get(meta.mediaStorageSopInstanceUid)!.objectKey,
      kept[0]!.sha256,
    ),
    'under its own key',
  );
  t.equal(
    (await versions.store.head(kept[0]!.objectKey))?.sha256,
    kept[0]!.sha256,
    'which holds that content',
  );
  t.not(kept[0]!.sha256, first);
});

t.test(
  'the same instance on two associations at once: one object, one row, both 0000',
  async (t) => {
    const { store, index, ingest } = setup();
    const results = await Promise.all([send(ingest, dataset, 1000), send(ingest, dataset, 777)]);
    t.same(
      results.map((r) => r.status),
      [DimseStatus.Success, DimseStatus.Success],
    );
    t.equal(index.rows.size, 1);
    t.equal(await objectCount(store), 1);
    t.equal(ingest.stats.duplicates, 1, 'the second was seen as a duplicate');
  },
);

/** ack: spooled with a real Spool in a temp dir; the uploader waits until told otherwise. */
async function setupSpooled(t: Test): Promise<{
  index: FakeIndex;
  ingest: Ingest;
  spool: Spool;
  store: MemoryStore;
  uploader: Uploader;
}> {
  const dir = t.testdir();
  const log = pino({ level: 'silent' });
  const spool = new Spool(dir, 1 << 30, log);
  await spool.open();
  let uploader!: Uploader;
  const { store, index, ingest } = setup(undefined, undefined, (store, index) => {
    // While "receiving", nothing is uploaded below burstBytes: the tests look at the spool.
    uploader = new Uploader({ store, index, spool, concurrency: 1, burstBytes: 1 << 30, log });
    uploader.yieldTo(() => true);
    return { spool, uploader, ack: 'spooled', uploadDeadlineMs: 1000 };
  });
  t.teardown(() => uploader.close(100));
  return { index, ingest, spool, store, uploader };
}

const delay = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function datasetOf(part10: Buffer): Buffer {
  return part10.subarray(readPart10Header(part10).datasetOffset);
}

const req = {
  messageId: 1,
  sopClassUid: meta.mediaStorageSopClassUid,
  sopInstanceUid: meta.mediaStorageSopInstanceUid,
  transferSyntaxUid: meta.transferSyntaxUid,
};

t.test('ack spooled: received in place in ready/, nothing in incoming/', async (t) => {
  const { ingest, spool, index } = await setupSpooled(t);
  const uid = meta.mediaStorageSopInstanceUid;
  const sink = ingest.begin(assoc, req, pino({ level: 'silent' }));
  await sink.write(dataset.subarray(0, 1000));
  for (let i = 0; i < 100 && !existsSync(spool.pathFor(uid)); i++) await delay(10);
  t.ok(existsSync(spool.pathFor(uid)), 'the file is created under its ready/ name at once');
  t.notOk(spool.has(uid), 'but not admitted before the answer');
  await sink.write(dataset.subarray(1000));
  t.equal((await sink.finish()).status, DimseStatus.Success);
  t.ok(spool.has(uid), 'admitted');
  t.equal(index.rows.get(uid)?.state, 'pending-upload');
  t.same(readdirSync(spool.incomingDir), [], 'incoming/ is empty');
  t.ok(datasetOf(await spoolPart10(spool, uid)).equals(dataset), 'data set bytes as sent');
});

t.test('ack spooled: the row is recorded only once every byte is in the file', async (t) => {
  // A process killed after the row's commit must leave the whole file beside the row.
  const { ingest, spool, index } = await setupSpooled(t);
  const uid = meta.mediaStorageSopInstanceUid;
  // PS3.5 7.6 Data Set Trailing Padding (FFFC,FFFC) OB, 4 MiB (explicit VR little endian).
  const padding = Buffer.alloc(12 + 4 * 1024 * 1024);
  padding.writeUInt32LE(0xfffcfffc, 0);
  padding.write('OB', 4, 'latin1');
  padding.writeUInt32LE(4 * 1024 * 1024, 8);
  const big = Buffer.concat([dataset, padding]);
  const seen: number[] = [];
  index.beforeRecord = () => seen.push(statSync(spool.pathFor(uid)).size);
  const sink = ingest.begin(assoc, req, pino({ level: 'silent' }));
  // One large last chunk: its write is still running when finish() is called.
  void sink.write(big.subarray(0, 1000));
  void sink.write(big.subarray(1000));
  await sink.finish();
  t.equal(seen.length, 1, 'one record');
  t.equal(seen[0], statSync(spool.pathFor(uid)).size, 'the file was complete at that moment');
});

t.test('ack spooled: an aborted in-place receipt leaves no file', async (t) => {
  const { ingest, spool, index } = await setupSpooled(t);
  const uid = meta.mediaStorageSopInstanceUid;
  const sink = ingest.begin(assoc, req, pino({ level: 'silent' }));
  await sink.write(dataset.subarray(0, 1000));
  await sink.abort('test');
  t.notOk(existsSync(spool.pathFor(uid)), 'partial file removed');
  t.equal(index.rows.size, 0);
  // The UID can be received in place again.
  t.equal((await send(ingest, dataset, 4096)).status, DimseStatus.Success);
  t.ok(spool.has(uid));
});

t.test('ack spooled: a truncated data set received in place is refused and removed', async (t) => {
  const { ingest, spool, index } = await setupSpooled(t);
  const r = await send(ingest, dataset.subarray(0, dataset.length - 100), 4096);
  t.not(r.status, DimseStatus.Success);
  t.notOk(existsSync(spool.pathFor(meta.mediaStorageSopInstanceUid)), 'no file left in ready/');
  t.equal(index.rows.size, 0);
});

t.test(
  'ack spooled: the same UID on two associations at once never clobbers the file in place',
  async (t) => {
    const { ingest, spool, index } = await setupSpooled(t);
    const uid = meta.mediaStorageSopInstanceUid;
    const log = pino({ level: 'silent' });
    // What happens to the spool, in order: B's rename into ready/ must follow A's claim.
    const events: string[] = [];
    const admit = spool.admit.bind(spool);
    spool.admit = (path, ...rest) => {
      events.push(path === spool.pathFor(uid) ? 'admit in place' : 'admit from incoming');
      return admit(path, ...rest);
    };
    const endReceiving = spool.endReceiving.bind(spool);
    spool.endReceiving = (u, inPlace) => {
      if (inPlace) events.push('claim ended');
      endReceiving(u, inPlace);
    };
    let bWaits!: () => void;
    const bWaiting = new Promise<void>((r) => (bWaits = r));
    const claimEnded = spool.claimEnded.bind(spool);
    spool.claimEnded = (u) => {
      bWaits();
      return claimEnded(u);
    };
    // A claims ready/<uid>.dcm and stalls mid-way; B (other bytes) arrives whole meanwhile.
    const a = ingest.begin(assoc, req, log);
    await a.write(dataset.subarray(0, 1000));
    const other = Buffer.from(dataset);
    other[other.length - 1] = other[other.length - 1]! ^ 0xff;
    const b = ingest.begin(assoc, req, log);
    await b.write(other);
    const bFinished = b.finish();
    await bWaiting;
    t.pass('B waits for the in-place receipt of the same UID to end');
    await a.write(dataset.subarray(1000));
    t.equal((await a.finish()).status, DimseStatus.Success, 'A stored');
    t.equal((await bFinished).status, DimseStatus.Success, 'B: duplicate, keep-first');
    const row = index.rows.get(uid)!;
    const onDisk = await spoolPart10(spool, uid);
    t.ok(datasetOf(onDisk).equals(dataset), "the spool holds A's bytes");
    t.equal(ingest.stats.duplicates, 1);
    t.equal(row.size, onDisk.length);
    t.same(readdirSync(spool.incomingDir), [], "B's copy removed");
    t.same(events, ['admit in place', 'claim ended'], "A admitted in place; B's copy never was");

    // A aborted instead: B's copy is the one kept.
    const uid2 = uid.slice(0, -1) + (uid.endsWith('1') ? '2' : '1');
    const req2 = { ...req, sopInstanceUid: uid2 };
    // Same length, so the element's length field stays right.
    const ds2 = Buffer.from(dataset.toString('latin1').replace(uid, uid2), 'latin1');
    const a2 = ingest.begin(assoc, req2, log);
    await a2.write(ds2.subarray(0, 1000));
    const b2 = ingest.begin(assoc, req2, log);
    await b2.write(ds2);
    const b2Finished = b2.finish();
    await a2.abort('test');
    t.equal((await b2Finished).status, DimseStatus.Success, 'B stored after A aborted');
    t.ok(datasetOf(await spoolPart10(spool, uid2)).equals(ds2), "B's bytes");
  },
);

t.test(
  'uploader: a spool file that lost its acknowledged bytes is held, not uploaded',
  async (t) => {
    const { ingest, spool, store, uploader, index } = await setupSpooled(t);
    const uid = meta.mediaStorageSopInstanceUid;
    t.equal((await send(ingest, dataset, 4096)).status, DimseStatus.Success);
    const path = spool.pathFor(uid);
    const bytes = readFileSync(path);
    const last = index.rows.get(uid)!.size - 1; // the last Part-10 byte (its record follows)
    bytes[last] = bytes[last]! ^ 0xff;
    writeFileSync(path, bytes);
    uploader.yieldTo(() => false);
    uploader.enqueue({
      sopInstanceUid: uid,
      key: index.rows.get(uid)!.objectKey,
      size: index.rows.get(uid)!.size,
      sha256: index.rows.get(uid)!.sha256,
    });
    await uploader.idle(5000);
    t.equal(uploader.stats.held, 1, 'held');
    t.equal(await objectCount(store), 0, 'nothing uploaded');
    t.ok(existsSync(path), 'the file stays for an operator');
    t.equal(index.rows.get(uid)!.state, 'pending-upload');
  },
);

t.test('a destination resolver that refuses: its status, and nothing kept', async (t) => {
  const log = pino({ level: 'silent' });
  for (const spooled of [false, true]) {
    const dir = t.testdir();
    const spool = new Spool(dir, 1 << 30, log);
    await spool.open();
    const seen: string[] = [];
    const { store, index, ingest } = setup(
      undefined,
      undefined,
      spooled
        ? (store, index) => {
            const uploader = new Uploader({ store, index, spool, concurrency: 1, log });
            t.teardown(() => uploader.close(100));
            return { spool, uploader, ack: 'spooled', uploadDeadlineMs: 1000 };
          }
        : undefined,
      (a, attrs) => {
        seen.push(`${a.callingAeTitle} ${attrs.modality}`);
        return { refuse: { status: 0xa7fe, reason: 'no route for this modality' } };
      },
    );
    const r = await send(ingest, dataset, 4096);
    const mode = spooled ? 'ack spooled' : 'direct';
    t.equal(r.status, 0xa7fe, `${mode}: the resolver's status`);
    t.equal(r.errorComment, 'no route for this modality', `${mode}: its reason`);
    t.same(seen, ['MOD CT'], `${mode}: asked with the association and the header`);
    t.equal(index.rows.size, 0, `${mode}: no row`);
    t.equal(await objectCount(store), 0, `${mode}: no object`);
    t.same(readdirSync(join(dir, 'ready')), [], `${mode}: no spool file`);
    t.same(readdirSync(join(dir, 'incoming')), [], `${mode}: nothing in incoming/`);
    t.same(readdirSync(store.stagingDir()), [], `${mode}: nothing in staging`);
    t.equal(ingest.stats.failed, 1);
  }
});

t.test('a routed destination: its store, prefix and bucket in the row', async (t) => {
  const other = new MemoryStore();
  stores.push(other);
  const routed = () => ({
    storeName: 's3:archive',
    store: other,
    bucket: 'archive',
    prefix: 'ct',
    commit: new DirectCommit(),
  });
  const { index, store, ingest } = setup(undefined, undefined, undefined, routed);
  t.equal((await send(ingest, dataset, 4096)).status, DimseStatus.Success);
  const row = index.rows.get(meta.mediaStorageSopInstanceUid)!;
  t.equal(row.storeName, 's3:archive');
  t.equal(row.bucket, 'archive');
  t.match(row.objectKey, /^ct\//);
  t.equal(await objectCount(other), 1, 'the object is in the routed store');
  t.equal(await objectCount(store), 0, 'not in the configured one');
});

t.test(
  'ack spooled, overwrite or keep-versions: other bytes while the first copy waits for upload get A700, nothing dropped',
  async (t) => {
    for (const policy of ['overwrite', 'keep-versions'] as const) {
      const dir = t.testdir();
      const log = pino({ level: 'silent' });
      const spool = new Spool(dir, 1 << 30, log);
      await spool.open();
      let uploader!: Uploader;
      const { index, ingest } = setup(undefined, policy, (store, index) => {
        uploader = new Uploader({ store, index, spool, concurrency: 1, burstBytes: 1 << 30, log });
        uploader.yieldTo(() => true); // the first copy stays pending
        return { spool, uploader, ack: 'spooled', uploadDeadlineMs: 1000 };
      });
      t.teardown(() => uploader.close(100));
      const uid = meta.mediaStorageSopInstanceUid;
      t.equal((await send(ingest, dataset, 4096)).status, DimseStatus.Success, `${policy}: first`);
      t.equal(index.rows.get(uid)?.state, 'pending-upload');
      const other = Buffer.from(dataset);
      other[other.length - 1] = other[other.length - 1]! ^ 0xff;
      const r = await send(ingest, other, 4096);
      t.equal(r.status, DimseStatus.OutOfResources, `${policy}: A700, the sender retries`);
      t.match(r.errorComment, /pending upload/);
      t.ok(datasetOf(await spoolPart10(spool, uid)).equals(dataset), 'the first copy stays');
      t.same(index.versions, [], 'no version recorded');
    }
  },
);

/** A spool file's Part-10 bytes: its spool record (the file's trailer) says how many. */
async function spoolPart10(spool: Spool, uid: string): Promise<Buffer> {
  const record = await spool.readRecord(uid);
  if (!record) throw new Error(`${uid}: a spool file without its record`);
  return readFileSync(spool.pathFor(uid)).subarray(0, record.rec.size);
}
