import t from 'tap';
import { isGatewayError } from '../../src/errors.js';
import { AddressSet, normalize } from '../../src/net/cidr.js';
import { checkAccess, compilePeers } from '../../src/scp/access.js';
import { negotiate, Reject } from '../../src/scp/negotiation.js';

t.test('AddressSet: addresses and CIDRs, IPv4 and IPv6, IPv4-mapped IPv6', async (t) => {
  const s = AddressSet.parse(['127.0.0.0/8', '10.1.2.3', 'fd00::/8', '2001:db8::1']);
  t.ok(s.has('127.0.0.1'));
  t.ok(s.has('::ffff:127.0.0.1'), 'dual-stack form of an IPv4 client matches 127.0.0.0/8');
  t.ok(s.has('::FFFF:127.1.2.3'));
  t.ok(s.has('0:0:0:0:0:ffff:7f00:1') || s.has('::ffff:7f00:1'), 'hex mapped form');
  t.ok(s.has('10.1.2.3'));
  t.notOk(s.has('10.1.2.4'));
  t.ok(s.has('fd12:3456::1'));
  t.ok(s.has('2001:db8:0:0:0:0:0:1'), 'IPv6 written out in full');
  t.notOk(s.has('2001:db8::2'));
  t.notOk(s.has('::1'));
  t.notOk(s.has('not-an-ip'));
  t.notOk(s.has(''));

  const mapped = AddressSet.parse(['::ffff:192.168.0.0/112']);
  t.ok(mapped.has('192.168.7.9'), 'an entry in mapped form matches the IPv4 client');
  t.notOk(mapped.has('192.169.0.1'));
  t.ok(AddressSet.parse(['0.0.0.0/0']).has('203.0.113.5'));
  t.ok(AddressSet.parse(['::/0']).has('2001:db8::5'));

  t.equal(normalize('::ffff:10.0.0.1'), '10.0.0.1');
  t.equal(normalize('::ffff:0a00:0001'), '10.0.0.1');
  t.equal(normalize('::1'), '::1');
  t.equal(normalize('fe80::ffff:10.0.0.1'), 'fe80::ffff:10.0.0.1', 'only ::ffff:0:0/96 is mapped');

  for (const bad of ['10.0.0.0/33', 'fd00::/129', '10.0.0/8', 'host.example', '10.0.0.0/x', '']) {
    t.throws(() => AddressSet.parse([bad]), TypeError, `"${bad}" refused`);
  }
});

t.test('checkAccess: allow-list and peers, both applied', async (t) => {
  const peers = compilePeers([
    { aeTitle: 'CT1', addresses: ['10.0.0.0/8'] },
    { aeTitle: 'CT1', addresses: ['192.168.1.10'] },
    { aeTitle: 'PACS', addresses: [] },
  ]);
  const policy = { allowedCallingAeTitles: [], peers };
  t.equal(checkAccess('CT1', '10.9.8.7', policy), undefined);
  t.equal(checkAccess('CT1', '::ffff:192.168.1.10', policy), undefined, 'second entry, mapped');
  t.match(checkAccess('CT1', '192.168.1.11', policy), /not allowed from address 192\.168\.1\.11/);
  t.equal(checkAccess('PACS', '203.0.113.9', policy), undefined, 'no addresses = any address');
  t.match(checkAccess('EVIL', '10.0.0.1', policy), /not a configured peer/);
  t.match(checkAccess('', '10.0.0.1', policy), /empty/);
  const open0 = { allowedCallingAeTitles: [], peers: new Map() };
  t.match(
    checkAccess('FUZ\u0001', '10.0.0.1', open0),
    /characters/,
    'control character (PS3.5 AE)',
  );
  t.match(
    checkAccess('FUZZ  \u00fb', '10.0.0.1', open0),
    /characters/,
    'outside the default repertoire',
  );
  t.match(checkAccess('A\\B', '10.0.0.1', open0), /characters/, 'backslash');
  t.equal(checkAccess('MR 3T', '10.0.0.1', open0), undefined, 'inner space is fine');
  t.equal(
    checkAccess('ANY', '1.2.3.4', { allowedCallingAeTitles: [], peers: new Map() }),
    undefined,
  );
  const both = { allowedCallingAeTitles: ['PACS'], peers };
  t.equal(checkAccess('PACS', '1.2.3.4', both), undefined);
  t.match(checkAccess('CT1', '10.0.0.1', both), /allowedCallingAeTitles/, 'both lists apply');
  const open = compilePeers([
    { aeTitle: 'X', addresses: ['10.0.0.1'] },
    { aeTitle: 'X', addresses: [] },
  ]);
  t.equal(open.get('X'), undefined, 'an entry without addresses opens the AE title');
});

t.test('compilePeers: a bad address is GW_ERR_CONFIG naming its key', async (t) => {
  try {
    compilePeers([
      { aeTitle: 'A', addresses: ['10.0.0.1'] },
      { aeTitle: 'B', addresses: ['10.0.0.1', '10.0.0.300'] },
    ]);
    t.fail('accepted');
  } catch (err) {
    t.ok(isGatewayError(err, 'GW_ERR_CONFIG'));
    t.match((err as Error).message, /dicom\.peers\.1\.addresses\.1: "10\.0\.0\.300"/);
  }
});

t.test('negotiate: PS3.8 Table 9-21 reasons for peers', async (t) => {
  const policy = {
    aeTitle: 'DICOMGW',
    aliases: [],
    allowedCallingAeTitles: [],
    acceptUnknownSopClasses: false,
    peers: compilePeers([{ aeTitle: 'CT1', addresses: ['127.0.0.0/8'] }]),
  };
  t.ok(negotiate('CT1', 'DICOMGW', [], policy, '::ffff:127.0.0.1').accept);
  const unknown = negotiate('MR1', 'DICOMGW', [], policy, '127.0.0.1');
  t.match(unknown, {
    accept: false,
    result: Reject.Permanent,
    source: Reject.SourceServiceUser,
    reason: Reject.ReasonCallingAeNotRecognized,
  });
  const wrongAddress = negotiate('CT1', 'DICOMGW', [], policy, '10.0.0.1');
  t.match(wrongAddress, { accept: false, result: 1, source: 1, reason: 3, why: /10\.0\.0\.1/ });
  const wrongCalled = negotiate('CT1', 'OTHER', [], policy, '127.0.0.1');
  t.match(wrongCalled, { accept: false, result: 1, source: 1, reason: 7 }, 'called AE first');
});
