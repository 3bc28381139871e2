/**
 * A streaming, chunk-safe reader of a DICOM data set (the bytes after the File
 * Meta Information, exactly as a C-STORE carries them), in the style of
 * node-postgres' pg-protocol parser: it is fed Buffer chunks, keeps at most an
 * element header (12 bytes) of them, copies only the values it collects and
 * skips every other value by counting bytes. It never does I/O.
 *
 * It walks the whole structure to the end (not only the header) so that a data
 * set cut short anywhere, even inside Pixel Data, is detected at end(). A deflated
 * data set is the exception: it is inflated (incrementally, see Inflater) only up
 * to the end of its header, and at most maxHeaderBytes of it.
 *
 * Longer than the house's ~400 lines on purpose: it is one state machine over one byte
 * stream (element header, value, item and sequence frames, the deflated path feeding the
 * same walk), and splitting it would spread that state over files that each see only half.
 */
import { GatewayError } from '../errors.js';
import {
  DEFLATED_TRANSFER_SYNTAXES as TS_DEFLATED,
  EXPLICIT_VR_BE as TS_EXPLICIT_BE,
  IMPLICIT_VR_LE as TS_IMPLICIT_LE,
} from './uids.js';
import { Inflater } from './inflater.js';

export interface CollectedElement {
  /** Explicit VR as encoded; for Implicit VR, looked up in a small table, else 'UN'. */
  vr: string;
  /** A copy of the value bytes, in the transfer syntax's byte order. */
  value: Buffer;
}

export interface DatasetReaderOptions {
  transferSyntaxUid: string;
  /** Values longer than this are skipped, not collected. Default 64 KiB. */
  maxValueBytes?: number;
  /** Total of collected value bytes; once reached, further values are skipped. Default 1 MiB. */
  maxCollectBytes?: number;
  /**
   * The last top-level tag wanted: the header is complete at the first top-level element
   * after it. Default: every element before Pixel Data (7FE0,0010).
   */
  lastTag?: number;
  /**
   * Deflated data sets: the header must be complete within this many compressed bytes and
   * this many inflated bytes, else the data set is refused (GW_ERR_DATASET_HEADER_TOO_LARGE).
   * Default DEFAULT_MAX_HEADER_BYTES.
   */
  maxHeaderBytes?: number;
}

/** Deflated data sets: the default bound of a header, compressed and inflated (8 MiB). */
export const DEFAULT_MAX_HEADER_BYTES = 8 * 1024 * 1024;
/** end() of a deflated data set waits at most this long for zlib (a few MiB take milliseconds). */
const INFLATE_TIMEOUT_MS = 30_000;

const PIXEL_DATA = 0x7fe00010;
const ITEM = 0xfffee000;
const ITEM_DELIMITER = 0xfffee00d;
const SEQUENCE_DELIMITER = 0xfffee0dd;
const UNDEFINED_LENGTH = 0xffffffff;
/** Bounds the frame stack: real files nest a few levels (SR trees maybe 20). */
const MAX_DEPTH = 128;

/** PS3.5 7.1.2: in Explicit VR, these VRs have 2 reserved bytes and a 32-bit length. */
// prettier-ignore
export const LONG_VRS: ReadonlySet<string> = new Set([
  'OB', 'OD', 'OF', 'OL', 'OV', 'OW', 'SQ', 'SV', 'UC', 'UN', 'UR', 'UT', 'UV',
]);
/** PS3.5 7.1.2: in Explicit VR, these VRs have a 16-bit length. */
// prettier-ignore
export const SHORT_VRS: ReadonlySet<string> = new Set([
  'AE', 'AS', 'AT', 'CS', 'DA', 'DS', 'DT', 'FD', 'FL', 'IS', 'LO', 'LT',
  'PN', 'SH', 'SL', 'SS', 'ST', 'TM', 'UI', 'UL', 'US',
]);

/** PS3.6 VRs of the top-level attributes the index reads, for Implicit VR data sets. */
// prettier-ignore
const IMPLICIT_VRS = new Map<number, string>([
  [0x00080005, 'CS'], [0x00080016, 'UI'], [0x00080018, 'UI'], [0x00080020, 'DA'],
  [0x00080030, 'TM'], [0x00080050, 'SH'], [0x00080060, 'CS'], [0x00080080, 'LO'],
  [0x00080090, 'PN'], [0x00081030, 'LO'], [0x0008103e, 'LO'], [0x00100010, 'PN'],
  [0x00100020, 'LO'], [0x00100021, 'LO'], [0x00100030, 'DA'], [0x00100040, 'CS'],
  [0x00180015, 'CS'], [0x0020000d, 'UI'], [0x0020000e, 'UI'], [0x00200010, 'SH'],
  [0x00200011, 'IS'], [0x00200013, 'IS'], [0x00280008, 'IS'], [0x00280010, 'US'],
  [0x00280011, 'US'],
]);

/** `(0010,0010)`: the usual notation of a tag, `(group<<16 | element) >>> 0`. */
export function formatTag(tag: number): string {
  const hex = (tag >>> 0).toString(16).toUpperCase().padStart(8, '0');
  return `(${hex.slice(0, 4)},${hex.slice(4)})`;
}

/** What the parser is inside of: each undefined-length container is a frame. */
interface Frame {
  kind: 'dataset' | 'item' | 'sequence' | 'fragments';
  implicit: boolean;
  littleEndian: boolean;
  tag: number;
  start: number;
}

/** The value (or defined-length item, or fragment) being collected or skipped. */
interface PendingValue {
  kind: 'value' | 'item' | 'fragment';
  /** The element's tag; for an item or fragment, its sequence's tag. */
  tag: number;
  vr: string;
  start: number;
  length: number;
  /** Where a collected value goes; undefined when skipped. */
  buf: Buffer | undefined;
  filled: number;
}

const PENDING_LABELS = {
  value: 'the value of',
  item: 'an item of',
  fragment: 'a pixel data fragment of',
};

export class DatasetReader {
  readonly transferSyntaxUid: string;
  /** False only for Explicit VR Big Endian: numeric values must be decoded big-endian. */
  readonly littleEndian: boolean;
  readonly explicitVr: boolean;
  readonly deflated: boolean;

  private readonly maxValueBytes: number;
  private readonly maxCollectBytes: number;
  private readonly lastTag: number;
  private readonly maxHeaderBytes: number;
  private readonly collected = new Map<number, CollectedElement>();
  private collectedBytes = 0;
  private complete = false;
  private seen = 0;
  private ended = false;
  private failure: GatewayError | undefined;

  /** Offset in the (inflated) data set of the next byte the parser sees. */
  private offset = 0;
  private readonly stack: Frame[];
  /** Set while inside a value; otherwise the next bytes are a header. */
  private pending: PendingValue | undefined;
  private readonly scratch = Buffer.alloc(12);
  private scratchLength = 0;

  /** Deflated transfer syntaxes only. */
  private readonly inflater: Inflater | undefined;
  /** maxHeaderBytes of compressed input were given to the inflater: later ones are not. */
  private inputCapped = false;

  constructor(opts: DatasetReaderOptions) {
    const ts = opts.transferSyntaxUid.replace(/[\0 ]+$/, '').trim();
    this.transferSyntaxUid = ts;
    this.maxValueBytes = opts.maxValueBytes ?? 64 * 1024;
    this.maxCollectBytes = opts.maxCollectBytes ?? 1024 * 1024;
    this.lastTag = opts.lastTag ?? PIXEL_DATA - 1;
    this.maxHeaderBytes = opts.maxHeaderBytes ?? DEFAULT_MAX_HEADER_BYTES;
    // PS3.5 A.1: Implicit VR LE; A.2 (retired): Explicit VR BE; every other
    // transfer syntax, native or encapsulated, is Explicit VR LE (A.3, A.4).
    this.explicitVr = ts !== TS_IMPLICIT_LE;
    this.littleEndian = ts !== TS_EXPLICIT_BE;
    this.deflated = TS_DEFLATED.has(ts);
    if (this.deflated) this.inflater = new Inflater((out) => this.onInflated(out));
    const implicit = !this.explicitVr;
    this.stack = [{ kind: 'dataset', implicit, littleEndian: this.littleEndian, tag: 0, start: 0 }];
  }

  /**
   * True once a top-level tag after lastTag (by default Pixel Data or later) was reached, or
   * the data set ended. A deflated data set is parsed as zlib's output arrives, asynchronously:
   * after end() resolved, this is settled.
   */
  get headerComplete(): boolean {
    return this.complete;
  }

  /** Bytes pushed so far (compressed bytes for deflated transfer syntaxes). */
  get bytesSeen(): number {
    return this.seen;
  }

  /** Deflated data sets: compressed bytes given to zlib (each once) and inflated bytes parsed. */
  get inflateWork(): { input: number; output: number } {
    return { input: this.inflater?.inputBytes ?? 0, output: this.inflater?.outputBytes ?? 0 };
  }

  /** Top-level elements before Pixel Data, by tag; values are copies. */
  elements(): ReadonlyMap<number, CollectedElement> {
    return this.collected;
  }

  push(chunk: Buffer): void {
    if (this.failure) throw this.failure;
    if (this.ended) throw new GatewayError('GW_ERR_INTERNAL', 'DatasetReader.push() after end()');
    if (chunk.length === 0) return;
    this.seen += chunk.length;
    try {
      if (this.inflater) this.pushDeflated(this.inflater, chunk);
      else this.feed(chunk);
    } catch (err) {
      throw this.fail(err);
    }
  }

  /**
   * Rejects with GW_ERR_DATASET_TRUNCATED when the data set stops inside a structure. For a
   * deflated data set it first waits for zlib's remaining output.
   */
  async end(): Promise<void> {
    if (this.failure) throw this.failure;
    if (this.ended) return;
    this.ended = true;
    try {
      if (!this.inflater) {
        this.checkEnd();
      } else {
        const outcome = await this.inflater.end(INFLATE_TIMEOUT_MS);
        if (this.failure) throw this.failure;
        // Only the head of a deflated data set is read; it is checked only if
        // the inflated stream ended before the head was complete.
        if (!this.complete) {
          this.checkInflateOutcome();
          if (this.inputCapped) throw this.headerTooLarge('compressed');
          this.checkEnd();
          if (outcome.kind === 'truncated') {
            throw this.truncated('inside the deflated stream (it has no final block)');
          }
          if (outcome.kind === 'timeout') {
            throw new GatewayError(
              'GW_ERR_TIMEOUT',
              `inflating the data set took longer than ${INFLATE_TIMEOUT_MS} ms`,
            );
          }
        }
      }
    } catch (err) {
      throw this.fail(err);
    }
    this.complete = true;
  }

  /** Frees the inflater of a data set that will not be ended (aborted, refused); idempotent. */
  close(): void {
    this.inflater?.stop();
  }

  private fail(err: unknown): GatewayError {
    this.inflater?.stop();
    this.failure =
      err instanceof GatewayError
        ? err
        : new GatewayError('GW_ERR_INTERNAL', `data set reader failed: ${String(err)}`, {
            cause: err,
          });
    return this.failure;
  }

  private malformed(what: string, start: number): GatewayError {
    const where = this.deflated ? 'of the inflated data set' : 'of the data set';
    return new GatewayError('GW_ERR_DATASET_MALFORMED', `${what} at byte offset ${start} ${where}`);
  }

  private truncated(what: string): GatewayError {
    return new GatewayError('GW_ERR_DATASET_TRUNCATED', `data set ends ${what}`);
  }

  private checkEnd(): void {
    const p = this.pending;
    if (p) {
      const what = `${PENDING_LABELS[p.kind]} ${formatTag(p.tag)}`;
      const missing = `${p.length - p.filled} of ${p.length} bytes missing`;
      throw this.truncated(`inside ${what} started at byte offset ${p.start} (${missing})`);
    }
    if (this.scratchLength > 0) {
      throw this.truncated(`inside an element header at byte offset ${this.offset}`);
    }
    const f = this.stack[this.stack.length - 1];
    if (f && f.kind !== 'dataset') {
      const what =
        f.kind === 'item'
          ? 'an undefined-length item of the sequence'
          : f.kind === 'fragments'
            ? 'the encapsulated pixel data'
            : 'the undefined-length sequence';
      throw this.truncated(
        `inside ${what} ${formatTag(f.tag)} started at byte offset ${f.start} ` +
          '(no delimitation item)',
      );
    }
  }

  /** zlib found the compressed bytes invalid (reported asynchronously). */
  private checkInflateOutcome(): void {
    const o = this.inflater?.result;
    if (o?.kind !== 'failed') return;
    throw new GatewayError(
      'GW_ERR_DATASET_MALFORMED',
      `deflated data set cannot be inflated: ${o.error.message}`,
      { cause: o.error },
    );
  }

  private headerTooLarge(what: string): GatewayError {
    return new GatewayError(
      'GW_ERR_DATASET_HEADER_TOO_LARGE',
      `the header of the deflated data set (up to ${formatTag(this.lastTag)}) is not complete ` +
        `within ${this.maxHeaderBytes} ${what} bytes`,
    );
  }

  /**
   * PS3.5 A.5: the bytes are raw-deflated. Each chunk goes to the inflater once, until the
   * header is complete; its output is parsed in onInflated(), asynchronously.
   */
  private pushDeflated(inflater: Inflater, chunk: Buffer): void {
    if (this.complete || this.inputCapped) return;
    this.checkInflateOutcome();
    if (inflater.result) return;
    const room = this.maxHeaderBytes - inflater.inputBytes;
    if (chunk.length > room) {
      // Not refused yet: zlib may lag behind (it runs on the thread pool), and the header may
      // still complete from input it has not processed. end() decides.
      this.inputCapped = true;
      inflater.write(chunk.subarray(0, room));
      return;
    }
    inflater.write(chunk);
  }

  /** Inflated bytes, in order; a failure is kept for the next push() or end(). */
  private onInflated(out: Buffer): void {
    if (this.failure || this.complete) return;
    try {
      const inflater = this.inflater as Inflater;
      const room = this.maxHeaderBytes - (inflater.outputBytes - out.length);
      this.feed(room < out.length ? out.subarray(0, room) : out);
      if (!this.complete && inflater.outputBytes > this.maxHeaderBytes) {
        throw this.headerTooLarge('inflated');
      }
      // The header is read: nothing more is inflated (the stored bytes are the received ones).
      if (this.complete) inflater.stop();
    } catch (err) {
      this.fail(err);
    }
  }

  private feed(chunk: Buffer): void {
    let pos = 0;
    const n = chunk.length;
    while (pos < n) {
      // A deflated data set is not inflated past its header.
      if (this.deflated && this.complete) return;
      if (this.pending) {
        pos += this.consumeValue(chunk, this.pending, pos);
        continue;
      }
      if (this.scratchLength === 0) {
        const used = this.parseHeader(chunk, pos, n - pos);
        if (used > 0) {
          pos += used;
          continue;
        }
      }
      // The header straddles chunks: gather it in the 12-byte scratch buffer.
      const before = this.scratchLength;
      const k = Math.min(this.scratch.length - before, n - pos);
      chunk.copy(this.scratch, before, pos, pos + k);
      this.scratchLength += k;
      const used = this.parseHeader(this.scratch, 0, this.scratchLength);
      if (used === 0) {
        pos += k;
      } else {
        pos += used - before;
        this.scratchLength = 0;
      }
    }
  }

  private consumeValue(chunk: Buffer, p: PendingValue, pos: number): number {
    const k = Math.min(p.length - p.filled, chunk.length - pos);
    if (p.buf) chunk.copy(p.buf, p.filled, pos, pos + k);
    p.filled += k;
    this.offset += k;
    if (p.filled === p.length) this.finishValue(p);
    return k;
  }

  private finishValue(p: PendingValue): void {
    if (p.buf) this.collected.set(p.tag, { vr: p.vr, value: p.buf });
    this.pending = undefined;
  }

  /**
   * Parses one header at b[at, at+avail): returns its size, or 0 (without any
   * effect) when more bytes are needed. PS3.5 7.1.1-7.1.3 (element headers)
   * and 7.5 (items and delimiters: tag and 32-bit length, never a VR).
   */
  private parseHeader(b: Buffer, at: number, avail: number): number {
    if (avail < 8) return 0;
    const f = this.stack[this.stack.length - 1] as Frame;
    const le = f.littleEndian;
    const group = le ? b.readUInt16LE(at) : b.readUInt16BE(at);
    const element = le ? b.readUInt16LE(at + 2) : b.readUInt16BE(at + 2);
    const tag = ((group << 16) | element) >>> 0;
    const start = this.offset;
    if (group === 0xfffe) {
      const length = le ? b.readUInt32LE(at + 4) : b.readUInt32BE(at + 4);
      this.offset += 8;
      this.onItemTag(f, tag, length, start);
      return 8;
    }
    if (f.kind === 'sequence' || f.kind === 'fragments') {
      throw this.malformed(
        `expected an item in ${formatTag(f.tag)}, found ${formatTag(tag)}`,
        start,
      );
    }
    let vr: string;
    let length: number;
    let size = 8;
    if (f.implicit) {
      length = le ? b.readUInt32LE(at + 4) : b.readUInt32BE(at + 4);
      vr = length === UNDEFINED_LENGTH ? 'SQ' : (IMPLICIT_VRS.get(tag) ?? 'UN');
      if (element === 0 && vr === 'UN') vr = 'UL'; // PS3.5 7.2: group length
    } else {
      vr = b.toString('latin1', at + 4, at + 6);
      if (LONG_VRS.has(vr)) {
        if (avail < 12) return 0;
        length = le ? b.readUInt32LE(at + 8) : b.readUInt32BE(at + 8);
        size = 12;
      } else if (SHORT_VRS.has(vr)) {
        length = le ? b.readUInt16LE(at + 6) : b.readUInt16BE(at + 6);
      } else {
        const hex = b.subarray(at + 4, at + 6).toString('hex');
        throw this.malformed(`invalid VR 0x${hex} for ${formatTag(tag)}`, start);
      }
    }
    this.offset += size;
    this.onElement(f, tag, vr, length, start);
    return size;
  }

  private onItemTag(f: Frame, tag: number, length: number, start: number): void {
    const delimiter = tag === ITEM_DELIMITER || tag === SEQUENCE_DELIMITER;
    // PS3.5 7.5.1 / 7.5.2: delimitation items have a zero length.
    if (delimiter && length !== 0) {
      throw this.malformed(`${formatTag(tag)} with non-zero length ${length}`, start);
    }
    if (f.kind === 'sequence' && tag === ITEM) {
      if (length !== UNDEFINED_LENGTH) this.skipValue('item', f.tag, length, start);
      else this.pushFrame({ ...f, kind: 'item', start });
    } else if (f.kind === 'fragments' && tag === ITEM) {
      // PS3.5 A.4: each fragment is an item of defined length.
      if (length === UNDEFINED_LENGTH) {
        throw this.malformed(
          `pixel data fragment of undefined length in ${formatTag(f.tag)}`,
          start,
        );
      }
      this.skipValue('fragment', f.tag, length, start);
    } else if ((f.kind === 'sequence' || f.kind === 'fragments') && tag === SEQUENCE_DELIMITER) {
      this.stack.pop();
    } else if (f.kind === 'item' && tag === ITEM_DELIMITER) {
      this.stack.pop();
    } else {
      const where =
        f.kind === 'dataset' ? 'the top-level data set' : `${f.kind} ${formatTag(f.tag)}`;
      throw this.malformed(`unexpected ${formatTag(tag)} in ${where}`, start);
    }
  }

  private onElement(f: Frame, tag: number, vr: string, length: number, start: number): void {
    const topLevel = f.kind === 'dataset';
    if (topLevel && tag > this.lastTag) this.complete = true;
    if (length === UNDEFINED_LENGTH) {
      if (f.implicit || vr === 'SQ') {
        this.pushFrame({ ...f, kind: 'sequence', tag, start });
      } else if (vr === 'UN') {
        // PS3.5 6.2.2: UN of undefined length holds an Implicit VR LE sequence.
        this.pushFrame({ kind: 'sequence', implicit: true, littleEndian: true, tag, start });
      } else if (vr === 'OB' || vr === 'OW') {
        // PS3.5 A.4: encapsulated pixel data (also in icon image sequences).
        this.pushFrame({ ...f, kind: 'fragments', tag, start });
      } else {
        throw this.malformed(`undefined length for ${formatTag(tag)} with VR ${vr}`, start);
      }
      return;
    }
    const collect =
      topLevel &&
      !this.complete &&
      vr !== 'SQ' &&
      length <= this.maxValueBytes &&
      this.collectedBytes + length <= this.maxCollectBytes &&
      !this.collected.has(tag); // PS3.5 7.1: a tag occurs once; keep the first
    if (!collect) {
      this.skipValue('value', tag, length, start);
      return;
    }
    this.collectedBytes += length;
    const p: PendingValue = {
      kind: 'value',
      tag,
      vr,
      start,
      length,
      buf: Buffer.alloc(length),
      filled: 0,
    };
    if (length === 0) this.finishValue(p);
    else this.pending = p;
  }

  private skipValue(kind: PendingValue['kind'], tag: number, length: number, start: number): void {
    if (length > 0) this.pending = { kind, tag, vr: '', start, length, buf: undefined, filled: 0 };
  }

  private pushFrame(frame: Frame): void {
    if (this.stack.length > MAX_DEPTH) {
      throw this.malformed(`sequences nested deeper than ${MAX_DEPTH} levels`, frame.start);
    }
    this.stack.push(frame);
  }
}
