/**
 * The acceptor's bound on unsent output (issue: hardening, item 2), on a socket whose peer
 * never reads: the kernel's buffers are out of the picture, so one P-DATA-TF PDU of C-ECHO-RQs
 * whose responses pass `maxUnsentBytes` must close the connection at once, and a smaller one
 * must hold further requests until the peer reads.
 */
import { once } from 'node:events';
import type { Socket } from 'node:net';
import { Duplex, Writable } from 'node:stream';
import pino from 'pino';
import t from 'tap';
import { Association } from '../../src/scp/association.js';
import { echoPdu, rawAssociateRq } from '../helpers/raw-scu.js';

/** A socket whose peer reads nothing: every write stays pending. */
class StuckSocket extends Duplex {
  readonly remoteAddress = '127.0.0.1';
  readonly remotePort = 40000;
  readonly pendingWrites: Array<() => void> = [];
  /** Bytes handed to the "kernel" so far, read by the peer or not. */
  bytes = 0;
  constructor() {
    super({ writableHighWaterMark: 16 * 1024 });
  }
  setNoDelay(): this {
    return this;
  }
  override _read(): void {}
  override _write(chunk: Buffer, _enc: BufferEncoding, done: () => void): void {
    this.bytes += chunk.length;
    this.pendingWrites.push(done);
  }
}

function start(maxUnsentBytes: number): {
  socket: StuckSocket;
  events: Array<Record<string, unknown>>;
} {
  const socket = new StuckSocket();
  const events: Array<Record<string, unknown>> = [];
  const sink = new Writable({
    write(line: Buffer, _enc, done) {
      events.push(JSON.parse(line.toString()) as Record<string, unknown>);
      done();
    },
  });
  new Association(socket as unknown as Socket, {
    id: '1',
    log: pino({ level: 'info' }, sink),
    policy: {
      aeTitle: 'DICOMGW',
      aliases: [],
      allowedCallingAeTitles: [],
      acceptUnknownSopClasses: false,
    },
    limits: {
      maxPduLength: 1024 * 1024,
      idleTimeoutMs: 60_000,
      artimMs: 60_000,
      maxUnsentBytes,
      highWaterMark: 4 * 1024 * 1024,
    },
    handler: {
      begin: () => {
        throw new Error('no C-STORE in this test');
      },
    },
    implementationClassUid: '1.2.3',
    implementationVersionName: 'TEST',
    admit: () => undefined,
  });
  socket.push(
    rawAssociateRq('FLOOD', 'DICOMGW', [
      { id: 1, abstractSyntaxUid: '1.2.840.10008.1.1', transferSyntaxUids: ['1.2.840.10008.1.2'] },
    ]),
  );
  return { socket, events };
}

t.test('responses past maxUnsentBytes close the connection', async (t) => {
  const { socket, events } = start(64 * 1024);
  const closed = once(socket, 'close', { signal: AbortSignal.timeout(5_000) });
  socket.push(echoPdu(2000)); // ~200 KiB of responses, none read
  await closed;
  t.ok(
    events.some((e) => e.event === 'association.output_overflow'),
    'logged association.output_overflow',
  );
});

t.test('below the bound, the next PDU waits until the peer reads', async (t) => {
  const { socket, events } = start(1024 * 1024);
  socket.push(echoPdu(300)); // ~30 KiB of responses: over the socket's high water mark
  socket.push(echoPdu(1));
  const written = (): number => socket.writableLength;
  // Polling with a deadline: the association handles PDUs on later ticks.
  const settled = async (): Promise<number> => {
    let last = -1;
    for (let i = 0; i < 100 && written() !== last; i++) {
      last = written();
      await new Promise((r) => setImmediate(r));
    }
    return last;
  };
  const held = await settled();
  t.ok(held > 16 * 1024, `the first PDU's responses are pending (${held} bytes)`);
  // The peer reads: every pending write completes, so the second PDU is handled.
  for (let idle = 0; idle < 10;) {
    const done = socket.pendingWrites.shift();
    if (done) done();
    idle = done ? 0 : idle + 1;
    await new Promise((r) => setImmediate(r));
  }
  // Held: the association + 300 responses; in the end one response more.
  t.ok(socket.bytes > held, `the held PDU was answered once the peer read (${socket.bytes} bytes)`);
  t.notOk(socket.destroyed, 'still open');
  t.notOk(
    events.some((e) => e.event === 'association.output_overflow'),
    'no overflow below the bound',
  );
  socket.destroy();
});
