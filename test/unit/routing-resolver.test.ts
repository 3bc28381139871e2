import t from 'tap';
import type { CollectedElement } from '../../src/dicom/header-reader.js';
import type { InstanceAttributes } from '../../src/index/instance-index.js';
import type { Destination } from '../../src/ingest/destination.js';
import { RoutingResolver } from '../../src/ingest/routing-resolver.js';
import { compileRules } from '../../src/route/compile.js';
import { parseRouting } from '../../src/route/rules-schema.js';
import type { AssociationInfo } from '../../src/scp/association.js';

const CT = '1.2.840.10008.5.1.4.1.1.2';
const store = (name: string, prefix: string): Destination =>
  ({ storeName: name, store: {}, prefix, commit: {} }) as unknown as Destination;
const stores = new Map([
  ['default', store('default', '')],
  ['research', store('research', 'r')],
]);
const rules = (raw: unknown[]) =>
  compileRules(parseRouting({ rules: raw }, 'test', { stores: [...stores.keys()] }));
const first = rules([
  { name: 'rogue', match: { callingAe: 'ROGUE' }, action: 'reject', status: 'A7FF' },
  { name: 'mg', match: { modality: 'MG' }, action: 'reject', status: '0122', reason: 'no MG' },
  {
    name: 'ct',
    match: { modality: 'CT', tags: { StudyDescription: { regex: '^RES' } } },
    action: 'accept',
    store: 'research',
    prefix: '/ct/',
    labels: ['ct'],
    destinations: ['cloud'],
  },
  { name: 'rest', action: 'accept' },
]);

const assoc = (callingAeTitle: string): AssociationInfo => ({
  id: '1',
  callingAeTitle,
  calledAeTitle: 'DICOMGW',
  remoteAddress: '127.0.0.1',
  remotePort: 1,
  tls: false,
});
const attrs = { sopClassUid: CT } as InstanceAttributes;
/** A header as DatasetReader offers it: Modality and StudyDescription, Explicit VR LE. */
const header = (modality: string, description = '') => {
  const el = (vr: string, v: string): CollectedElement => ({ vr, value: Buffer.from(v, 'latin1') });
  const m = new Map<number, CollectedElement>([
    [0x00080060, el('CS', modality)],
    [0x00081030, el('LO', description)],
  ]);
  return { elements: () => m, littleEndian: true };
};

t.test('accept: the store with both prefixes, labels and destinations; made once', (t) => {
  const r = new RoutingResolver(first, stores, 'default');
  const a = assoc('MOD');
  const d = r.resolve(a, attrs, header('CT', 'RESEARCH 1'));
  t.match(d, { storeName: 'research', prefix: 'r/ct', labels: ['ct'], destinations: ['cloud'] });
  t.equal(r.resolve(a, attrs, header('CT', 'RESEARCH 2')), d, 'the same object');
  t.match(r.resolve(a, attrs, header('CT', 'OTHER')), { storeName: 'default', prefix: '' });
  const rest = r.resolve(a, attrs, header('CT', 'OTHER')) as Destination;
  t.equal(rest.labels, undefined, 'no labels: none');
  t.equal(rest.destinations, undefined, 'no destinations: none');
  t.end();
});

t.test('reject: the rule status, its reason naming the rule', (t) => {
  const r = new RoutingResolver(first, stores, 'default');
  t.same(r.resolve(assoc('MOD'), attrs, header('MG')), {
    refuse: { status: 0x0122, reason: 'routing rule "mg": no MG' },
  });
  t.end();
});

t.test('association: refused when no rule could accept; new rules for new associations', (t) => {
  const r = new RoutingResolver(first, stores, 'default');
  const info = { callingAeTitle: 'ROGUE', calledAeTitle: 'DICOMGW', remoteAddress: '10.0.0.1' };
  t.match(r.admitAssociation(info), { reason: 3, why: /routing rule "rogue"/ });
  const open = assoc('MOD');
  t.equal(r.admitAssociation(open, open), undefined);
  r.replace(rules([{ name: 'all-research', action: 'accept', store: 'research' }]));
  t.equal(r.admitAssociation(info), undefined, 'ROGUE is accepted by the new rules');
  t.match(r.resolve(open, attrs, header('CT')), { storeName: 'default' }, 'open: old rules');
  const next = assoc('MOD');
  t.equal(r.admitAssociation(next, next), undefined);
  t.match(r.resolve(next, attrs, header('CT')), { storeName: 'research' }, 'next: new rules');
  t.end();
});

t.test('no rules: every instance to the primary store, every association accepted', (t) => {
  const r = new RoutingResolver(undefined, stores, 'default');
  const a = assoc('ROGUE');
  t.equal(r.admitAssociation(a, a), undefined);
  t.equal(r.resolve(a, attrs, header('MG')), stores.get('default'));
  t.end();
});
