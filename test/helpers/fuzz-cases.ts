/**
 * The malformed inputs of test/integration/fuzz.test.ts, made from real material (a storescu
 * A-ASSOCIATE-RQ capture, a generated instance) by a seeded PRNG: the same seed gives the
 * same inputs, so a failure can be repeated with GW_FUZZ_SEED.
 */
import { LONG_VRS } from '../../src/dicom/header-reader.js';
import { encodePDataTf } from '../../src/dimse/pdu.js';
import { RELEASE_RQ, storeCommand } from './raw-scu.js';

const CT = '1.2.840.10008.5.1.4.1.1.2';

export interface FuzzCase {
  kind: string;
  /** Raw bytes to send after connecting; or, for data set cases, a data set for RawScu.store. */
  bytes?: Buffer;
  dataset?: { uid: string; bytes: Buffer };
  /** The gateway must end this one with A-ABORT. */
  mustAbort?: boolean;
}

export interface FuzzMaterial {
  /** storescu's A-ASSOCIATE-RQ, as captured. */
  rq: Buffer;
  /** The whole captured client side of a storescu run (replayed as is). */
  captured: Buffer;
  /** The presentation context the gateway accepts CT Image Storage on, for that RQ. */
  ctId: number;
  /** A real data set (Explicit VR Little Endian). */
  dataset: Buffer;
  /** Its SOP Instance UID; case n uses a UID of the same length, unique to n. */
  uid: string;
}

/** Deterministic PRNG (mulberry32). */
export class Rng {
  constructor(private state: number) {}

  next(): number {
    this.state = (this.state + 0x6d2b79f5) | 0;
    let x = Math.imul(this.state ^ (this.state >>> 15), 1 | this.state);
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  }

  int(n: number): number {
    return Math.floor(this.next() * n);
  }

  pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)]!;
  }

  /** A copy of `b` with `count` random bytes set to random values. */
  flip(b: Buffer, count: number): Buffer {
    const out = Buffer.from(b);
    for (let i = 0; i < count; i++) out[this.int(out.length)] = this.int(256);
    return out;
  }
}

/** The P-DATA-TF PDUs of one C-STORE as storescu frames it: command, then data set fragments. */
export function storePdus(ctId: number, uid: string, dataset: Buffer, fragment = 16000): Buffer[] {
  const out = [encodePDataTf(ctId, true, true, storeCommand(1, CT, uid))];
  for (let off = 0; off < dataset.length; off += fragment) {
    const last = off + fragment >= dataset.length;
    out.push(encodePDataTf(ctId, false, last, dataset.subarray(off, off + fragment)));
  }
  return out;
}

/** Offsets of the item and sub-item headers of an A-ASSOCIATE-RQ (PS3.8 9.3.2). */
export function itemOffsets(pdu: Buffer): number[] {
  const out: number[] = [];
  const walk = (from: number, to: number, depth: number): void => {
    for (let p = from; p + 4 <= to; p += 4 + pdu.readUInt16BE(p + 2)) {
      out.push(p);
      const end = Math.min(to, p + 4 + pdu.readUInt16BE(p + 2));
      if (depth === 0 && pdu[p] === 0x20) walk(p + 8, end, 1);
      if (depth === 0 && pdu[p] === 0x50) walk(p + 4, end, 1);
    }
  };
  walk(74, pdu.length, 0);
  return out;
}

/** Top-level elements of an Explicit VR Little Endian data set: where each length field is. */
export function elements(ds: Buffer): Array<{ at: number; lengthAt: number; wide: boolean }> {
  const out: Array<{ at: number; lengthAt: number; wide: boolean }> = [];
  for (let p = 0; p + 8 <= ds.length;) {
    const wide = LONG_VRS.has(ds.toString('latin1', p + 4, p + 6));
    const length = wide ? ds.readUInt32LE(p + 8) : ds.readUInt16LE(p + 6);
    out.push({ at: p, lengthAt: wide ? p + 8 : p + 6, wide });
    if (length === 0xffffffff) break;
    p += (wide ? 12 : 8) + length;
  }
  return out;
}

function withLength(pdu: Buffer): Buffer {
  pdu.writeUInt32BE(pdu.length - 6, 2);
  return pdu;
}

/** Case n's instance: the material's data set under a SOP Instance UID unique to n. */
function instance(m: FuzzMaterial, n: number): { uid: string; dataset: Buffer } {
  const uid = m.uid.slice(0, -7) + '9' + String(n).padStart(6, '0');
  const dataset = Buffer.from(m.dataset);
  const old = Buffer.from(m.uid, 'latin1');
  for (let at = dataset.indexOf(old); at >= 0; at = dataset.indexOf(old, at + 1)) {
    dataset.write(uid, at, 'latin1');
  }
  return { uid, dataset };
}

/** About 1,040 inputs, by kind (the counts are below). */
export function makeCases(m: FuzzMaterial, rng: Rng): FuzzCase[] {
  const { rq, ctId } = m;
  const int = (n: number): number => rng.int(n);
  const pick = <T>(xs: readonly T[]): T => rng.pick(xs);
  const flip = (b: Buffer, count: number): Buffer => rng.flip(b, count);
  const instanceOf = (n: number): { uid: string; dataset: Buffer } => instance(m, n);
  const tail = (n: number): Buffer[] => {
    const { uid, dataset } = instanceOf(n);
    return storePdus(ctId, uid, dataset);
  };
  const cases: FuzzCase[] = [];
  let n = 0;
  const add = (count: number, make: (i: number) => FuzzCase): void => {
    for (let i = 0; i < count; i++) cases.push(make(n++));
  };
  const after = (head: Buffer, i: number): Buffer => Buffer.concat([head, ...tail(i), RELEASE_RQ]);
  const items = itemOffsets(rq);
  add(60, (i) => {
    const m = Buffer.from(rq);
    m.writeUInt32BE(pick([0, 1, 67, int(rq.length * 2), 0xffff, 0x7fffffff, 0xffffffff]) >>> 0, 2);
    return { kind: 'rq-pdu-length', bytes: after(m, i) };
  });
  add(60, (i) => {
    const cut = Buffer.from(rq.subarray(0, 6 + int(rq.length - 6)));
    return { kind: 'rq-truncated', bytes: after(rng.next() < 0.5 ? withLength(cut) : cut, i) };
  });
  add(80, (i) => {
    const m = Buffer.from(rq);
    m.writeUInt16BE(
      pick([0, 1, 3, 0xffff, int(0x10000), m.readUInt16BE(pick(items) + 2) + 1]),
      pick(items) + 2,
    );
    return { kind: 'rq-item-length', bytes: after(m, i) };
  });
  add(60, (i) => {
    const m = Buffer.from(rq);
    m[pick(items)] = pick([
      0x00,
      0x10,
      0x20,
      0x21,
      0x30,
      0x40,
      0x50,
      0x51,
      0x52,
      0x7f,
      0xff,
      int(256),
    ]);
    return { kind: 'rq-item-type', bytes: after(m, i) };
  });
  add(80, (i) => ({ kind: 'rq-flip', bytes: after(flip(rq, 1 + int(6)), i) }));
  const mutatePData = (
    kind: string,
    count: number,
    f: (p: Buffer[]) => void,
    mustAbort = false,
  ): void =>
    add(count, (i) => {
      const pdus = tail(i).map((b) => Buffer.from(b));
      f(pdus);
      return { kind, bytes: Buffer.concat([rq, ...pdus, RELEASE_RQ]), mustAbort };
    });
  mutatePData('pdv-length', 60, (p) => {
    const x = pick(p);
    x.writeUInt32BE(pick([0, 1, 2, x.readUInt32BE(6) + 1 + int(100), 0xffffffff]) >>> 0, 6);
  });
  mutatePData('pdv-truncated', 60, (p) => {
    const k = int(p.length);
    p[k] = withLength(Buffer.from(p[k]!.subarray(0, 6 + int(p[k]!.length - 6))));
  });
  mutatePData('pdv-unknown-context', 50, (p) => (pick(p)[10] = 2 * int(128)), true);
  mutatePData('pdv-flags', 40, (p) => {
    const x = pick(p);
    x[11] = x[11]! ^ pick([1, 2, 3]); // the command and last-fragment bits
  });
  mutatePData('bad-command', 80, (p) => {
    const cmd = Buffer.from(p[0]!.subarray(12));
    const els = [12, 12 + 8 + cmd.readUInt32LE(12 + 4)]; // the two elements after the group length
    const choice = int(4);
    if (choice === 0) cmd.writeUInt16LE(pick([0x0002, 0x0008, 0xfffe]), pick(els));
    else if (choice === 1)
      cmd.writeUInt32LE(pick([0xffffffff, 0x7fffffff, cmd.length]), pick(els) + 4);
    else if (choice === 2) p[0] = encodePDataTf(ctId, true, true, cmd.subarray(0, int(cmd.length)));
    else p[0] = encodePDataTf(ctId, true, true, flip(cmd, 1 + int(4)));
    if (choice < 2) p[0] = encodePDataTf(ctId, true, true, cmd);
  });
  add(40, (i) => {
    const { uid, dataset } = instanceOf(i);
    const pdus = storePdus(ctId, uid, dataset, 200);
    pdus.splice(2 + int(pdus.length - 3), 0, pdus[0]!);
    return {
      kind: 'command-in-data-set',
      bytes: Buffer.concat([rq, ...pdus, RELEASE_RQ]),
      mustAbort: true,
    };
  });
  const els = elements(m.dataset);
  const mutateDataset = (kind: string, count: number, f: (ds: Buffer) => Buffer): void =>
    add(count, (i) => {
      const { uid, dataset } = instanceOf(i);
      return { kind, dataset: { uid, bytes: f(dataset) } };
    });
  mutateDataset('data-set-bad-tag', 60, (ds) => {
    const e = pick(els);
    const [g, el] = pick([
      [0xfffe, 0xe000],
      [0xfffe, 0xe00d],
      [0xfffe, 0xe0dd],
      [0, 0],
      [0xffff, 0xffff],
      [int(0x10000), int(0x10000)],
    ]);
    ds.writeUInt16LE(g!, e.at);
    ds.writeUInt16LE(el!, e.at + 2);
    return ds;
  });
  mutateDataset('data-set-huge-length', 60, (ds) => {
    const e = pick(els);
    if (e.wide) ds.writeUInt32LE(pick([0xffffffff, 0xfffffff0, ds.length]) >>> 0, e.lengthAt);
    else ds.writeUInt16LE(pick([0xffff, 0xfff0, ds.readUInt16LE(e.lengthAt) + 1]), e.lengthAt);
    return ds;
  });
  mutateDataset('data-set-truncated', 60, (ds) => ds.subarray(0, int(ds.length)));
  add(150, (i) => ({ kind: 'exchange-flip', bytes: flip(after(rq, i), 1 + int(8)) }));
  add(30, () => {
    const bad = Buffer.concat([
      Buffer.from([pick([0x00, 0x08, 0xff]), 0, 0, 0, 0, 4]),
      Buffer.alloc(4),
    ]);
    return {
      kind: 'pdu-type',
      bytes: rng.next() < 0.5 ? bad : Buffer.concat([rq, bad]),
      mustAbort: true,
    };
  });
  add(10, () => ({ kind: 'replay', bytes: m.captured }));
  return cases;
}
