import t, { type Test } from 'tap';
import { CommandField, encodeCommand } from '../../src/dimse/command.js';
import { MessageAssembler, type MessagePart } from '../../src/dimse/message-assembler.js';
import {
  AbortReason,
  fragmentPData,
  parsePDataTf,
  UpperLayerError,
  type Pdv,
} from '../../src/dimse/pdu.js';

const CT = '1.2.840.10008.5.1.4.1.1.2';
const store = encodeCommand({
  commandField: CommandField.CStoreRq,
  messageId: 1,
  affectedSopClassUid: CT,
  affectedSopInstanceUid: '1.2.3',
  priority: 0,
  hasDataset: true,
});
const echo = encodeCommand({
  commandField: CommandField.CEchoRq,
  messageId: 2,
  affectedSopClassUid: '1.2.840.10008.1.1',
  hasDataset: false,
});
const dataset = Buffer.from(Array.from({ length: 1000 }, (_, i) => i & 0xff));

function assembler(max = 1024): MessageAssembler {
  return new MessageAssembler({ isAccepted: (id) => id === 1 || id === 3, maxCommandBytes: max });
}

/** The PDVs of a message whose command and data set are cut into fragments of `size`. */
function pdvs(pcId: number, command: Buffer, ds: Buffer | undefined, size: number): Pdv[] {
  const pdus = [
    ...fragmentPData(pcId, true, command, size),
    ...(ds ? fragmentPData(pcId, false, ds, size) : []),
  ];
  return pdus.flatMap((p) => parsePDataTf(p));
}

function run(a: MessageAssembler, list: Pdv[]): MessagePart[] {
  return list.map((p) => a.push(p)).filter((p): p is MessagePart => p !== undefined);
}

t.test('a command and its data set, fragmented at every size, come out whole', async (t) => {
  for (let size = 1; size <= store.length + 1; size++) {
    const a = assembler();
    const parts = run(a, [...pdvs(1, store, dataset, size), ...pdvs(3, echo, undefined, size)]);
    const commands = parts.filter((p) => p.kind === 'command');
    const data = parts.filter((p) => p.kind === 'data');
    if (commands.length !== 2) t.fail(`size ${size}: ${commands.length} commands`);
    t.equal(
      commands[0]!.kind === 'command' && commands[0]!.command.affectedSopInstanceUid,
      '1.2.3',
    );
    t.same(
      Buffer.concat(data.map((d) => (d.kind === 'data' ? d.fragment : Buffer.alloc(0)))),
      dataset,
    );
    t.same(
      data.map((d) => d.kind === 'data' && d.last).filter(Boolean).length,
      1,
      'one last fragment',
    );
    t.equal(a.expectingData, false);
  }
});

function refuses(
  t: Test,
  list: Pdv[],
  pattern: RegExp,
  reason: number = AbortReason.NotSpecified,
): void {
  try {
    run(assembler(), list);
    t.fail(`accepted: ${String(pattern)}`);
  } catch (err) {
    t.ok(err instanceof UpperLayerError, String(pattern));
    t.match((err as Error).message, pattern);
    t.equal((err as UpperLayerError).abortReason, reason);
  }
}

t.test('refuses PDVs that break the message structure (PS3.8 9.3.5, PS3.7 9.3)', async (t) => {
  const [cmd] = pdvs(1, store, undefined, 1000);
  const [data] = pdvs(1, Buffer.alloc(0), dataset, 1000).slice(1);
  refuses(
    t,
    [{ ...cmd!, presentationContextId: 5 }],
    /not accepted/,
    AbortReason.InvalidPduParameter,
  );
  refuses(t, [data!], /without a matching command/);
  refuses(t, [cmd!, cmd!], /while a data set was expected/);
  refuses(t, [cmd!, { ...data!, presentationContextId: 3 }], /without a matching command/);
  const halves = pdvs(1, store, undefined, 20);
  refuses(t, [halves[0]!, { ...halves[1]!, presentationContextId: 3 }], /the command began on 1/);
  refuses(t, [halves[0]!, data!], /before the command set was complete/);
  refuses(t, pdvs(1, Buffer.alloc(2000), undefined, 100), /larger than 1024 bytes/);
  refuses(t, pdvs(1, store.subarray(0, 30), undefined, 100), /runs past|truncated|lacks/);
  const echoThenData = [...pdvs(3, echo, undefined, 100), { ...data!, presentationContextId: 3 }];
  refuses(t, echoThenData, /without a matching command/);
});

t.test('data fragments are views, not copies (bounded memory)', async (t) => {
  const a = assembler();
  const list = pdvs(1, store, dataset, 400);
  const parts = run(a, list);
  const first = parts.find((p) => p.kind === 'data');
  t.ok(first?.kind === 'data' && first.fragment.buffer === list[1]!.value.buffer);
});
