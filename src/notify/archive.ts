/**
 * `notify.archive`: on `study.stable`, a zip of the study's objects is streamed to the archive
 * bucket as `<prefix><StudyInstanceUID>.zip`, never held in memory: each object is read from
 * the store and passed through (stored, by yazl) to a multipart upload (lib-storage's
 * Upload inside ObjectStore.put; at most its parts in flight are buffered). A destination like
 * the others: its own delivery state, retries, dead state and `notify retry`.
 *
 * The zip holds the study's objects as the index lists them when the event is delivered (so
 * a delivery repeated after a late instance writes the whole study again), named by their key
 * below `studies/<StudyInstanceUID>/`. Each object's size and sha256 are checked against the
 * index while it streams: a difference fails the upload (nothing is written) and the event is
 * retried. A late instance re-opens the study; its next study.stable rewrites the zip.
 */
import { createHash } from 'node:crypto';
import { Transform, type Readable } from 'node:stream';
import type { Logger } from 'pino';
import yazl from 'yazl';
import type { ExistingInstance, InstanceIndex } from '../index/instance-index.js';
import type { OutboxEventType } from '../index/outbox-deliveries.js';
import { STUDY_STABLE } from '../index/study-event.js';
import { getFromStore, type ObjectStore, type StoreLookup } from '../store/object-store.js';
import type { DeliveryResult, Destination, NotifyEvent } from './destination.js';
import { ok, retry } from './destination.js';

export interface ArchiveOptions {
  name: string;
  studies: Pick<InstanceIndex, 'listInstances'>;
  /** The store each instance is in (its row's storeName). */
  storeFor: StoreLookup;
  /** Where the zips go (the archive bucket). */
  target: ObjectStore;
  /** Key prefix of the zips ('' or ending in '/' for a folder). */
  prefix: string;
  log: Logger;
}

export class ArchiveDestination implements Destination {
  readonly type = 'archive';
  readonly maxBatch = 1;
  readonly events: readonly OutboxEventType[] = [STUDY_STABLE];

  constructor(private readonly o: ArchiveOptions) {}

  get name(): string {
    return this.o.name;
  }

  async deliver(events: readonly NotifyEvent[], signal: AbortSignal): Promise<DeliveryResult[]> {
    const results: DeliveryResult[] = [];
    for (const e of events) {
      if (e.type !== STUDY_STABLE) {
        results.push(ok);
        continue;
      }
      try {
        await this.archive(e.payload.studyInstanceUid, new Date(e.payload.stableAt), signal);
        results.push(ok);
      } catch (err) {
        results.push(retry(`archive ${e.payload.studyInstanceUid}: ${(err as Error).message}`));
      }
    }
    return results;
  }

  /** Archives the study's stored objects; resolves once the zip is in the bucket. */
  private async archive(studyUid: string, modified: Date, signal: AbortSignal): Promise<void> {
    const started = Date.now();
    const objects = (await this.o.studies.listInstances(studyUid)).filter(
      (i) => i.state === 'stored',
    );
    const key = `${this.o.prefix}${studyUid}.zip`;
    const { body, bytes } = zipOf(objects, studyUid, modified, this.o.storeFor);
    const abort = (): void => void body.destroy(new Error('interrupted by shutdown'));
    signal.addEventListener('abort', abort, { once: true });
    try {
      await this.o.target.put(key, body, {
        contentType: 'application/zip',
        metadata: { 'study-instance-uid': studyUid, instances: String(objects.length) },
      });
    } finally {
      signal.removeEventListener('abort', abort);
      body.destroy();
    }
    this.o.log.info(
      {
        event: 'notify.study_archived',
        destination: this.o.name,
        studyInstanceUid: studyUid,
        key,
        instances: objects.length,
        bytes: await bytes,
        ms: Date.now() - started,
      },
      `study archived as ${key}`,
    );
  }

  close(): Promise<void> {
    return this.o.target.close();
  }
}

/** The entry name of an object: its key below `studies/<uid>/` (the whole key otherwise). */
export function entryName(objectKey: string, studyUid: string): string {
  const marker = `studies/${studyUid}/`;
  const at = objectKey.indexOf(marker);
  return at >= 0 ? objectKey.slice(at + marker.length) : objectKey;
}

/**
 * The study as a zip stream (yazl): entries stored, not compressed (pixel data rarely shrinks),
 * ZIP64 where sizes or offsets need it; each object opened only when its turn comes. An object
 * whose bytes differ from its index row (size or sha256) fails the stream, and so the upload.
 */
function zipOf(
  objects: readonly ExistingInstance[],
  studyUid: string,
  modified: Date,
  storeFor: StoreLookup,
): { body: Readable; bytes: Promise<number> } {
  const zip = new yazl.ZipFile();
  // yazl's outputStream is a stream.PassThrough; @types/yazl 3.3 types it as the older
  // NodeJS.ReadableStream, without destroy().
  const body = zip.outputStream as Readable;
  const fail = (err: Error): void => void body.destroy(err);
  zip.on('error', fail);
  for (const o of objects) {
    const name = entryName(o.objectKey, studyUid);
    zip.addReadStreamLazy(name, { compress: false, size: o.size, mtime: modified }, (cb) => {
      getFromStore(storeFor, o.storeName, o.objectKey).then(
        (stream) => cb(null, checkedAgainst(o, stream, fail)),
        (err: Error) => cb(err, undefined as unknown as Readable),
      );
    });
  }
  // Stored entries of known sizes: yazl knows the zip's length before writing it.
  // @types/yazl 3.3 types the callback without its argument (yazl passes the total, or -1).
  const bytes = new Promise<number>((resolve) =>
    zip.end(undefined, ((total: number) => resolve(total)) as () => void),
  );
  return { body, bytes };
}

/** The object's bytes, passed through once their size and sha256 match the index row. */
function checkedAgainst(o: ExistingInstance, src: Readable, fail: (err: Error) => void): Transform {
  const hash = createHash('sha256');
  let size = 0;
  const check = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      hash.update(chunk);
      size += chunk.length;
      cb(null, chunk);
    },
    flush(cb) {
      cb(
        size === o.size && hash.digest('hex') === o.sha256
          ? null
          : new Error(`${o.objectKey} differs from the index (size ${size}, expected ${o.size})`),
      );
    },
  });
  // yazl pipes what it is given and listens for no errors: they end the whole zip here.
  src.on('error', fail);
  check.on('error', fail);
  return src.pipe(check);
}
