import t from 'tap';
import {
  chooseTransferSyntax,
  ContextResult,
  negotiate,
  negotiateRequest,
  Reject,
} from '../../src/scp/negotiation.js';

const policy = {
  aeTitle: 'DICOMGW',
  aliases: ['GW2'],
  allowedCallingAeTitles: [],
  acceptUnknownSopClasses: false,
};
const CT = '1.2.840.10008.5.1.4.1.1.2';

t.test('accepts storage and verification, refuses the rest', async (t) => {
  const d = negotiate(
    'MOD',
    'DICOMGW',
    [
      {
        id: 1,
        abstractSyntaxUid: CT,
        transferSyntaxUids: ['1.2.840.10008.1.2', '1.2.840.10008.1.2.1'],
      },
      { id: 3, abstractSyntaxUid: '1.2.840.10008.1.1', transferSyntaxUids: ['1.2.840.10008.1.2'] },
      {
        id: 5,
        abstractSyntaxUid: '1.2.840.10008.5.1.4.1.2.2.1',
        transferSyntaxUids: ['1.2.840.10008.1.2'],
      },
      { id: 7, abstractSyntaxUid: CT, transferSyntaxUids: ['1.2.840.10008.1.2.4.70'] },
      { id: 9, abstractSyntaxUid: CT, transferSyntaxUids: ['not a uid'] },
      {
        id: 11,
        abstractSyntaxUid: '1.3.12.2.1107.5.9.1',
        transferSyntaxUids: ['1.2.840.10008.1.2'],
      },
    ],
    policy,
  );
  t.ok(d.accept);
  if (!d.accept) return;
  t.same(d.contexts, [
    { id: 1, result: ContextResult.Accept, transferSyntaxUid: '1.2.840.10008.1.2.1' },
    { id: 3, result: ContextResult.Accept, transferSyntaxUid: '1.2.840.10008.1.2' },
    { id: 5, result: ContextResult.AbstractSyntaxNotSupported },
    { id: 7, result: ContextResult.Accept, transferSyntaxUid: '1.2.840.10008.1.2.4.70' },
    { id: 9, result: ContextResult.TransferSyntaxesNotSupported },
    { id: 11, result: ContextResult.AbstractSyntaxNotSupported },
  ]);
  const promiscuous = negotiate(
    'MOD',
    'GW2',
    [
      {
        id: 11,
        abstractSyntaxUid: '1.3.12.2.1107.5.9.1',
        transferSyntaxUids: ['1.2.840.10008.1.2'],
      },
    ],
    { ...policy, acceptUnknownSopClasses: true },
  );
  t.ok(
    promiscuous.accept && promiscuous.contexts[0]!.result === ContextResult.Accept,
    'private class with acceptUnknownSopClasses, via alias',
  );
});

t.test('rejects with PS3.8 9.3.4 reasons', async (t) => {
  const wrongCalled = negotiate('MOD', 'OTHER', [], policy);
  t.match(wrongCalled, { accept: false, result: Reject.Permanent, source: 1, reason: 7 });
  const notAllowed = negotiate('EVIL', 'DICOMGW', [], {
    ...policy,
    allowedCallingAeTitles: ['MOD'],
  });
  t.match(notAllowed, { accept: false, result: Reject.Permanent, source: 1, reason: 3 });
  t.ok(negotiate('MOD', 'DICOMGW', [], { ...policy, allowedCallingAeTitles: ['MOD'] }).accept);
});

t.test('transfer syntax choice', async (t) => {
  t.equal(
    chooseTransferSyntax(['1.2.840.10008.1.2.2', '1.2.840.10008.1.2.1']),
    '1.2.840.10008.1.2.1',
  );
  t.equal(chooseTransferSyntax(['1.2.840.10008.1.2.1.99']), '1.2.840.10008.1.2.1.99');
  t.equal(chooseTransferSyntax(['1.2.840.10008.1.2\0']), '1.2.840.10008.1.2');
  t.equal(chooseTransferSyntax([]), undefined);
});

t.test('negotiateRequest: protocol version and application context (PS3.8 9.3.4)', async (t) => {
  const rq = {
    protocolVersion: 1,
    calledAeTitle: 'DICOMGW',
    callingAeTitle: 'MOD',
    echo: Buffer.alloc(64),
    applicationContextName: '1.2.840.10008.3.1.1.1',
    contexts: [{ id: 1, abstractSyntaxUid: CT, transferSyntaxUids: ['1.2.840.10008.1.2'] }],
    maxPduLength: 0,
  };
  t.ok(negotiateRequest(rq, '127.0.0.1', policy).accept);
  t.ok(negotiateRequest({ ...rq, protocolVersion: 3 }, '', policy).accept, 'bit 0 set suffices');
  t.match(negotiateRequest({ ...rq, protocolVersion: 2 }, '', policy), {
    accept: false,
    result: Reject.Permanent,
    source: Reject.SourceProviderAcse,
    reason: Reject.ReasonProtocolVersionNotSupported,
  });
  t.match(negotiateRequest({ ...rq, applicationContextName: '1.2.3' }, '', policy), {
    accept: false,
    result: Reject.Permanent,
    source: Reject.SourceServiceUser,
    reason: Reject.ReasonApplicationContextNotSupported,
  });
});
