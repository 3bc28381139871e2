/**
 * A minimal DICOM SCU that sends exactly the bytes it is given: for data sets no
 * toolkit will send (truncated, malformed) and for protocol-level tests. Built on
 * the gateway's own PDU codec plus a hand-encoded A-ASSOCIATE-RQ (PS3.8 9.3.2).
 */
import net from 'node:net';
import { CommandField, parseCommand } from '../../src/scp/command.js';
import { encodePDataTf, parsePDataTf, PduFramer, PduType, type Pdu } from '../../src/scp/pdu.js';

export interface ProposedContext {
  id: number;
  abstractSyntax: string;
  transferSyntaxes: string[];
}

export type AssociateResult =
  | {
      kind: 'accepted';
      contexts: Map<number, { result: number; transferSyntax: string }>;
      maxPdu: number;
    }
  | { kind: 'rejected'; result: number; source: number; reason: number }
  | { kind: 'aborted'; source: number; reason: number }
  | { kind: 'closed' };

function item(type: number, body: Buffer): Buffer {
  const h = Buffer.alloc(4);
  h[0] = type;
  h.writeUInt16BE(body.length, 2);
  return Buffer.concat([h, body]);
}

function ae(s: string): Buffer {
  return Buffer.from(s.padEnd(16, ' ').slice(0, 16), 'latin1');
}

export function encodeAssociateRq(
  calling: string,
  called: string,
  contexts: ProposedContext[],
  maxPdu = 16384,
): Buffer {
  const fixed = Buffer.alloc(68);
  fixed.writeUInt16BE(1, 0); // PS3.8 9.3.2: protocol version bit 0
  ae(called).copy(fixed, 4);
  ae(calling).copy(fixed, 20);
  const items = [item(0x10, Buffer.from('1.2.840.10008.3.1.1.1'))];
  for (const pc of contexts) {
    const subs = [
      item(0x30, Buffer.from(pc.abstractSyntax)),
      ...pc.transferSyntaxes.map((ts) => item(0x40, Buffer.from(ts))),
    ];
    items.push(item(0x20, Buffer.concat([Buffer.from([pc.id, 0, 0, 0]), ...subs])));
  }
  const max = Buffer.alloc(4);
  max.writeUInt32BE(maxPdu);
  items.push(
    item(0x50, Buffer.concat([item(0x51, max), item(0x52, Buffer.from('1.2.3.4.5.6.7'))])),
  );
  const body = Buffer.concat([fixed, ...items]);
  const head = Buffer.alloc(6);
  head[0] = PduType.AssociateRq;
  head.writeUInt32BE(body.length, 2);
  return Buffer.concat([head, body]);
}

function parseAssociateAc(raw: Buffer): AssociateResult {
  const contexts = new Map<number, { result: number; transferSyntax: string }>();
  let maxPdu = 0;
  let pos = 6 + 68;
  while (pos + 4 <= raw.length) {
    const type = raw[pos]!;
    const len = raw.readUInt16BE(pos + 2);
    const body = raw.subarray(pos + 4, pos + 4 + len);
    if (type === 0x21) {
      const ts =
        body.length > 8 ? body.subarray(8, 8 + body.readUInt16BE(6)).toString('latin1') : '';
      contexts.set(body[0]!, { result: body[2]!, transferSyntax: ts });
    } else if (type === 0x50) {
      let p = 0;
      while (p + 4 <= body.length) {
        const st = body[p]!;
        const sl = body.readUInt16BE(p + 2);
        if (st === 0x51) maxPdu = body.readUInt32BE(p + 4);
        p += 4 + sl;
      }
    }
    pos += 4 + len;
  }
  return { kind: 'accepted', contexts, maxPdu };
}

/** PS3.8 9.3.6: A-RELEASE-RQ. */
export const RELEASE_RQ = Buffer.from([PduType.ReleaseRq, 0, 0, 0, 0, 4, 0, 0, 0, 0]);

export class RawScu {
  private readonly framer = new PduFramer({ maxPDataLength: 1 << 26, maxOtherLength: 1 << 20 });
  private readonly pdus: Pdu[] = [];
  private waiter: (() => void) | undefined;
  private ended = false;
  private messageId = 1;

  private constructor(readonly socket: net.Socket) {
    socket.setNoDelay(true);
    socket.on('data', (c: Buffer) => {
      try {
        this.pdus.push(...this.framer.push(c));
      } catch {
        this.ended = true;
      }
      this.waiter?.();
    });
    const end = (): void => {
      this.ended = true;
      this.waiter?.();
    };
    socket.on('close', end);
    socket.on('error', end);
    this.closedAt = new Promise((resolve) => socket.once('close', () => resolve()));
  }

  /** Resolves when the socket has closed (either side). */
  private readonly closedAt: Promise<void>;

  static connect(host: string, port: number): Promise<RawScu> {
    return new Promise((resolve, reject) => {
      const s = net.connect({ host, port }, () => {
        s.off('error', reject);
        resolve(new RawScu(s));
      });
      s.once('error', reject);
    });
  }

  /** Waits until the peer (or we) closed the connection; throws after `timeoutMs`. */
  async waitClosed(timeoutMs = 10_000): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`still open after ${timeoutMs} ms`)), timeoutMs);
    });
    try {
      await Promise.race([this.closedAt, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  get closed(): boolean {
    return this.ended;
  }

  /** Next PDU, or undefined when the peer closed; throws after `timeoutMs`. */
  async next(timeoutMs = 10_000): Promise<Pdu | undefined> {
    const deadline = Date.now() + timeoutMs;
    while (this.pdus.length === 0 && !this.ended) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no PDU within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiter = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.waiter = undefined;
    }
    return this.pdus.shift();
  }

  async associate(
    calling: string,
    called: string,
    contexts: ProposedContext[],
  ): Promise<AssociateResult> {
    return this.associateRaw(encodeAssociateRq(calling, called, contexts));
  }

  /** Sends the given bytes as the A-ASSOCIATE-RQ and decodes the answer. */
  async associateRaw(rq: Buffer): Promise<AssociateResult> {
    this.socket.write(rq);
    const pdu = await this.next();
    return decodeAnswer(pdu);
  }

  write(bytes: Buffer): void {
    this.socket.write(bytes);
  }

  /**
   * Sends a C-STORE-RQ and `dataset` exactly as given, in PDVs of `fragment` bytes, and
   * returns the response status; undefined when the association ended instead.
   */
  async store(
    pcId: number,
    sopClassUid: string,
    sopInstanceUid: string,
    dataset: Buffer,
    fragment = 16_000,
  ): Promise<{ status?: number; abort: boolean }> {
    const cmd = storeCommand(this.messageId++, sopClassUid, sopInstanceUid);
    this.socket.write(encodePDataTf(pcId, true, true, cmd));
    for (let off = 0; off < dataset.length || off === 0; off += fragment) {
      const part = dataset.subarray(off, off + fragment);
      this.socket.write(encodePDataTf(pcId, false, off + fragment >= dataset.length, part));
      if (dataset.length === 0) break;
    }
    return this.readResponse();
  }

  /** Sends a C-ECHO-RQ and returns the response status (undefined: the association ended). */
  async echo(pcId: number): Promise<{ status?: number; abort: boolean }> {
    this.socket.write(encodePDataTf(pcId, true, true, echoCommand(this.messageId++)));
    return this.readResponse();
  }

  async readResponse(): Promise<{ status?: number; abort: boolean }> {
    const pdu = await this.next();
    if (!pdu) return { abort: false };
    if (pdu.type === PduType.Abort) return { abort: true };
    if (pdu.type !== PduType.PDataTf) return { abort: false };
    const rsp = parseCommand(Buffer.concat(parsePDataTf(pdu.raw).map((p) => p.value)));
    return { status: rsp.status, abort: false };
  }

  async release(): Promise<void> {
    this.socket.write(RELEASE_RQ);
    await this.next().catch(() => undefined);
    this.socket.destroy();
  }

  destroy(): void {
    this.socket.destroy();
  }
}

/** The answer to an A-ASSOCIATE-RQ: AC, RJ, A-ABORT or nothing (closed). */
export function decodeAnswer(pdu: Pdu | undefined): AssociateResult {
  if (!pdu) return { kind: 'closed' };
  if (pdu.type === PduType.AssociateAc) return parseAssociateAc(pdu.raw);
  if (pdu.type === PduType.AssociateRj) {
    return { kind: 'rejected', result: pdu.raw[7]!, source: pdu.raw[8]!, reason: pdu.raw[9]! };
  }
  return { kind: 'aborted', source: pdu.raw[8] ?? -1, reason: pdu.raw[9] ?? -1 };
}

/** A C-ECHO-RQ command set (PS3.7 9.3.5.1). */
export function echoCommand(messageId: number): Buffer {
  return commandSet([
    [0x0002, uidValue('1.2.840.10008.1.1')],
    [0x0100, usValue(CommandField.CEchoRq)],
    [0x0110, usValue(messageId)],
    [0x0800, usValue(0x0101)],
  ]);
}

/** A command set from (element, value) pairs of group 0000, group length first (PS3.7 E.1). */
export function commandSet(elements: Array<[number, Buffer]>): Buffer {
  const body = Buffer.concat(
    elements.map(([e, v]) => {
      const h = Buffer.alloc(8);
      h.writeUInt16LE(e, 2);
      h.writeUInt32LE(v.length, 4);
      return Buffer.concat([h, v]);
    }),
  );
  const gl = Buffer.alloc(12);
  gl.writeUInt32LE(4, 4);
  gl.writeUInt32LE(body.length, 8);
  return Buffer.concat([gl, body]);
}

export function uidValue(s: string): Buffer {
  return Buffer.from(s.length % 2 ? s + '\0' : s, 'latin1');
}

export function usValue(n: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16LE(n);
  return b;
}

/** A C-STORE-RQ command set (PS3.7 9.3.1.1), Implicit VR LE. */
export function storeCommand(
  messageId: number,
  sopClassUid: string,
  sopInstanceUid: string,
): Buffer {
  return commandSet([
    [0x0002, uidValue(sopClassUid)],
    [0x0100, usValue(CommandField.CStoreRq)],
    [0x0110, usValue(messageId)],
    [0x0700, usValue(0)],
    [0x0800, usValue(0x0000)],
    [0x1000, uidValue(sopInstanceUid)],
  ]);
}
