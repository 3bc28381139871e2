/**
 * `notify.archive`: on `study.stable`, a zip of the study's objects is streamed to the archive
 * bucket as `<prefix><StudyInstanceUID>.zip`, never held in memory: each object is read from
 * the store and passed through (stored, ./zip-writer.ts) to a multipart upload (lib-storage's
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
import { Readable } from 'node:stream';
import { crc32 } from 'node:zlib';
import type { Logger } from 'pino';
import type { ExistingInstance, InstanceIndex } from '../index/instance-index.js';
import type { OutboxEventType } from '../index/outbox-deliveries.js';
import { STUDY_STABLE } from '../index/study-event.js';
import type { ObjectStore } from '../store/object-store.js';
import type { DeliveryResult, Destination, NotifyEvent } from './destination.js';
import { ok, retry } from './destination.js';
import { ZipWriter } from './zip-writer.js';

export interface ArchiveOptions {
  name: string;
  studies: Pick<InstanceIndex, 'listInstances'>;
  /** Where the instances are. */
  source: ObjectStore;
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
    const zip = new ZipWriter();
    const body = Readable.from(zipStream(zip, objects, studyUid, modified, this.o.source));
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
        bytes: zip.length,
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

async function* zipStream(
  zip: ZipWriter,
  objects: readonly ExistingInstance[],
  studyUid: string,
  modified: Date,
  source: ObjectStore,
): AsyncGenerator<Buffer> {
  for (const o of objects) {
    yield zip.begin({ name: entryName(o.objectKey, studyUid), size: o.size, modified });
    const hash = createHash('sha256');
    let crc = 0;
    let size = 0;
    for await (const chunk of await source.get(o.objectKey)) {
      const b = chunk as Buffer;
      crc = crc32(b, crc);
      hash.update(b);
      size += b.length;
      yield b;
    }
    if (size !== o.size || hash.digest('hex') !== o.sha256) {
      throw new Error(`${o.objectKey} differs from the index (size ${size}, expected ${o.size})`);
    }
    yield zip.end(crc, size);
  }
  yield zip.finish();
}
