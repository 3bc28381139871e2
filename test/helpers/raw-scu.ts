/**
 * A raw DICOM connection for tests: it sends exactly the bytes it is given and hands back
 * every PDU the peer sends. Only for what a correct requestor must never do (malformed or
 * out-of-order PDUs, an A-ASSOCIATE-RQ with a wrong version or 129 contexts, data set bytes
 * cut into arbitrary fragments) and for watching the acceptor's answers PDU by PDU.
 * Everything else in the tests uses the real requestor, src/scu/association.ts. The bytes
 * come from the src/dimse codecs; nothing here is a second codec.
 */
import net from 'node:net';
import { VERIFICATION_SOP_CLASS } from '../../src/dicom/uids.js';
import {
  encodeAssociateRq,
  parseAssociateAc,
  parseAssociateRj,
  type AcceptedContext,
  type ProposedContextRq,
} from '../../src/dimse/acse.js';
import { CommandField, encodeCommand, parseCommand } from '../../src/dimse/command.js';
import {
  encodePDataTf,
  encodeReleaseRq,
  parseAbort,
  parsePDataTf,
  PduFramer,
  PduType,
  type Pdu,
} from '../../src/dimse/pdu.js';

export type AssociateResult =
  | { kind: 'accepted'; contexts: Map<number, AcceptedContext>; maxPdu: number }
  | { kind: 'rejected'; result: number; source: number; reason: number }
  | { kind: 'aborted'; source: number; reason: number }
  | { kind: 'closed' };

/** PS3.8 9.3.6: A-RELEASE-RQ. */
export const RELEASE_RQ = encodeReleaseRq();

/** An A-ASSOCIATE-RQ as the real requestor would send it, as bytes to mutate. */
export function rawAssociateRq(
  calling: string,
  called: string,
  contexts: readonly ProposedContextRq[],
  maxPdu = 16384,
): Buffer {
  return encodeAssociateRq({
    callingAeTitle: calling,
    calledAeTitle: called,
    contexts,
    maxPduLength: maxPdu,
    implementationClassUid: '1.2.3.4.5.6.7',
  });
}

export class RawScu {
  private readonly framer = new PduFramer({ maxPDataLength: 1 << 26, maxOtherLength: 1 << 20 });
  private readonly pdus: Pdu[] = [];
  private waiter: (() => void) | undefined;
  private ended = false;
  /** Resolves when the socket has closed (either side). */
  private readonly closedAt: Promise<void>;

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
    contexts: readonly ProposedContextRq[],
  ): Promise<AssociateResult> {
    return this.associateRaw(rawAssociateRq(calling, called, contexts));
  }

  /** Sends the given bytes as the A-ASSOCIATE-RQ and decodes the answer. */
  async associateRaw(rq: Buffer): Promise<AssociateResult> {
    this.socket.write(rq);
    return decodeAnswer(await this.next());
  }

  write(bytes: Buffer): void {
    this.socket.write(bytes);
  }

  /** The status of the next PDU if it is a DIMSE response; `abort` if it is an A-ABORT. */
  async readResponse(): Promise<{ status?: number; abort: boolean }> {
    const pdu = await this.next();
    if (!pdu) return { abort: false };
    if (pdu.type === PduType.Abort) return { abort: true };
    if (pdu.type !== PduType.PDataTf) return { abort: false };
    const rsp = parseCommand(Buffer.concat(parsePDataTf(pdu.raw).map((p) => p.value)));
    return { status: rsp.status, abort: false };
  }

  /** A C-ECHO on context `pcId`, in one PDV; returns the response status. */
  async echo(pcId: number): Promise<{ status?: number; abort: boolean }> {
    this.socket.write(encodePDataTf(pcId, true, true, echoCommand(1)));
    return this.readResponse();
  }

  destroy(): void {
    this.socket.destroy();
  }
}

/** The answer to an A-ASSOCIATE-RQ: AC, RJ, A-ABORT or nothing (closed). */
function decodeAnswer(pdu: Pdu | undefined): AssociateResult {
  if (!pdu) return { kind: 'closed' };
  if (pdu.type === PduType.AssociateAc) {
    const ac = parseAssociateAc(pdu.raw);
    return {
      kind: 'accepted',
      contexts: new Map(ac.contexts.map((c) => [c.id, c])),
      maxPdu: ac.maxPduLength,
    };
  }
  if (pdu.type === PduType.AssociateRj) return { kind: 'rejected', ...parseAssociateRj(pdu.raw) };
  return { kind: 'aborted', ...parseAbort(pdu.raw) };
}

/** A C-ECHO-RQ command set (PS3.7 9.3.5.1). */
export function echoCommand(messageId: number): Buffer {
  return encodeCommand({
    commandField: CommandField.CEchoRq,
    affectedSopClassUid: VERIFICATION_SOP_CLASS,
    messageId,
    hasDataset: false,
  });
}

/** One P-DATA-TF PDU holding `count` C-ECHO-RQ PDVs (PS3.8 9.3.5). */
export function echoPdu(count: number): Buffer {
  const pdvs = Buffer.concat(
    Array.from({ length: count }, (_, i) =>
      encodePDataTf(1, true, true, echoCommand(i + 1)).subarray(6),
    ),
  );
  const header = Buffer.alloc(6);
  header[0] = 0x04;
  header.writeUInt32BE(pdvs.length, 2);
  return Buffer.concat([header, pdvs]);
}

/** A C-STORE-RQ command set (PS3.7 9.3.1.1). */
export function storeCommand(
  messageId: number,
  sopClassUid: string,
  sopInstanceUid: string,
): Buffer {
  return encodeCommand({
    commandField: CommandField.CStoreRq,
    affectedSopClassUid: sopClassUid,
    messageId,
    priority: 0,
    affectedSopInstanceUid: sopInstanceUid,
    hasDataset: true,
  });
}
