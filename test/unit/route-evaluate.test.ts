/**
 * Evaluation of compiled rules: first match wins and the decisions it returns, association-time
 * refusal (couldAccept), and explain() with its text and JSON renderings.
 */
import t from 'tap';
import { compileRules, type CompiledRules } from '../../src/route/compile.js';
import { AssociateRjReason, couldAccept, route } from '../../src/route/evaluate.js';
import { explain, explanationJson, explanationText } from '../../src/route/explain.js';
import type { RouteFacts } from '../../src/route/facts.js';
import type { RouteKeyword } from '../../src/route/keywords.js';
import { routingSchema } from '../../src/route/rules-schema.js';

const SC = '1.2.840.10008.5.1.4.1.1.7';
const CT = '1.2.840.10008.5.1.4.1.1.2';
const MG = '1.2.840.10008.5.1.4.1.1.1.2';

function compile(rules: unknown[]): CompiledRules {
  return compileRules(routingSchema.parse({ rules }));
}

/** The example. */
const EXAMPLE = compile([
  {
    name: 'no-sc-from-ws',
    match: { callingAe: 'VIEWER_WS', sopClass: 'SecondaryCaptureImageStorage' },
    action: 'reject',
    status: '0122',
  },
  {
    name: 'mammo',
    match: { modality: 'MG' },
    action: 'accept',
    store: 'research',
    prefix: 'mammo/',
    labels: ['mammo'],
  },
  { name: 'everything-else', match: {}, action: 'accept', store: 'default' },
]);

function facts(
  o: { callingAe?: string; calledAe?: string; address?: string; sopClassUid?: string } = {},
  attrs: Partial<Record<RouteKeyword, string[]>> = {},
): RouteFacts {
  return {
    callingAe: o.callingAe ?? 'MODALITY',
    calledAe: o.calledAe ?? 'DICOMGW',
    address: o.address ?? '10.1.2.3',
    sopClassUid: o.sopClassUid,
    attributes: (k) => attrs[k],
  };
}

t.test("first match wins: the issue's example", async (t) => {
  t.same(route(EXAMPLE, facts({ callingAe: 'VIEWER_WS', sopClassUid: SC })), {
    rule: 'no-sc-from-ws',
    action: 'reject',
    status: 0x0122,
    reason: 'refused by routing rule "no-sc-from-ws"',
  });
  t.same(route(EXAMPLE, facts({ callingAe: 'VIEWER_WS', sopClassUid: MG }, { Modality: ['MG'] })), {
    rule: 'mammo',
    action: 'accept',
    store: 'research',
    prefix: 'mammo',
    destinations: [],
    labels: ['mammo'],
  });
  const rest = route(EXAMPLE, facts({ sopClassUid: SC }, { Modality: ['OT'] }));
  t.same(rest, {
    rule: 'everything-else',
    action: 'accept',
    store: 'default',
    prefix: '',
    destinations: [],
    labels: [],
  });
  t.equal(route(EXAMPLE, facts({ sopClassUid: CT })), rest, 'the same frozen object every time');
  t.ok(Object.isFrozen(rest));
});

t.test(
  'attributes are read only when a rule needs them, and stop at the first match',
  async (t) => {
    const asked: string[] = [];
    const f: RouteFacts = {
      ...facts({ callingAe: 'VIEWER_WS', sopClassUid: SC }),
      attributes: (k) => {
        asked.push(k);
        return undefined;
      },
    };
    t.equal(route(EXAMPLE, f).rule, 'no-sc-from-ws');
    t.same(asked, [], 'decided on the association and the command');
    route(EXAMPLE, { ...f, callingAe: 'OTHER' });
    t.same(asked, ['Modality'], 'rule 2 asked for Modality once');
  },
);

t.test('compileRules refuses a list that could fall through', async (t) => {
  t.throws(
    () => compileRules({ rules: [{ name: 'x', match: { modality: 'CT' }, action: 'accept' }] }),
    { code: 'GW_ERR_CONFIG' },
  );
});

t.test('couldAccept: refusing an association no rule could accept', async (t) => {
  const assoc = (callingAe: string, address = '10.1.2.3', calledAe = 'DICOMGW') => ({
    callingAe,
    calledAe,
    address,
  });
  // A reject rule with an instance condition does not refuse the association.
  t.same(couldAccept(EXAMPLE, assoc('VIEWER_WS')), { accept: true });

  const blocked = compile([
    { name: 'block-ws', match: { callingAe: 'VIEWER_WS' }, action: 'reject', status: 'A700' },
    { name: 'rest', match: {}, action: 'accept' },
  ]);
  t.same(couldAccept(blocked, assoc('VIEWER_WS')), {
    accept: false,
    rule: 'block-ws',
    reason: AssociateRjReason.CallingAeNotRecognized,
    why: 'routing rule "block-ws" rejects every instance from calling AE "VIEWER_WS" at 10.1.2.3 to "DICOMGW"',
  });
  t.same(couldAccept(blocked, assoc('CT1')), { accept: true });

  // Allow-list: accept from the lab network or one AE title, reject everything else.
  const allow = compile([
    { name: 'lab', match: { address: '10.0.0.0/8' }, action: 'accept' },
    { name: 'ct', match: { callingAe: 'CT1', tags: { Modality: 'CT' } }, action: 'accept' },
    { name: 'deny', match: {}, action: 'reject', status: 'A700' },
  ]);
  t.same(couldAccept(allow, assoc('X', '10.9.9.9')), { accept: true });
  t.same(couldAccept(allow, assoc('CT1', '192.168.0.1')), { accept: true }, 'rule ct might match');
  const refused = couldAccept(allow, assoc('X', '192.168.0.1'));
  t.match(refused, {
    accept: false,
    rule: 'deny',
    reason: AssociateRjReason.CallingAeNotRecognized,
  });

  // Only the called AE title keeps the accept rules from holding: reason 7.
  const byCalled = compile([
    { name: 'archive', match: { calledAe: 'ARCHIVE' }, action: 'accept' },
    { name: 'deny', match: {}, action: 'reject', status: 'A700' },
  ]);
  t.match(couldAccept(byCalled, assoc('X', '10.1.1.1', 'OTHER')), {
    accept: false,
    reason: AssociateRjReason.CalledAeNotRecognized,
  });
  const calledReject = compile([
    { name: 'old-ae', match: { calledAe: 'OLD_PACS' }, action: 'reject', status: '0124' },
    { name: 'rest', match: {}, action: 'accept' },
  ]);
  t.match(couldAccept(calledReject, assoc('X', '10.1.1.1', 'OLD_PACS')), {
    accept: false,
    rule: 'old-ae',
    reason: AssociateRjReason.CalledAeNotRecognized,
  });
  const none = compile([{ name: 'closed', match: {}, action: 'reject', status: 'A700' }]);
  t.match(couldAccept(none, assoc('X')), {
    accept: false,
    reason: AssociateRjReason.NoReasonGiven,
  });
});

t.test('couldAccept never refuses what route would accept', async (t) => {
  const rules = compile([
    {
      name: 'r1',
      match: { callingAe: ['A', 'B'], modality: 'MR' },
      action: 'reject',
      status: 'A700',
    },
    { name: 'r2', match: { address: '10.0.0.0/8', calledAe: 'GW1' }, action: 'accept' },
    { name: 'r3', match: { callingAe: 'A' }, action: 'reject', status: 'C000' },
    { name: 'r4', match: { calledAe: 'GW2', sopClass: 'CTImageStorage' }, action: 'accept' },
    { name: 'r5', match: {}, action: 'reject', status: '0124' },
  ]);
  let refusals = 0;
  for (const callingAe of ['A', 'B', 'C'])
    for (const calledAe of ['GW1', 'GW2'])
      for (const address of ['10.1.1.1', '192.168.1.1'])
        for (const sopClassUid of [CT, MG])
          for (const modality of ['MR', 'CT']) {
            const f = facts(
              { callingAe, calledAe, address, sopClassUid },
              { Modality: [modality] },
            );
            const verdict = couldAccept(rules, f);
            if (!verdict.accept) {
              refusals++;
              t.equal(route(rules, f).action, 'reject', `${JSON.stringify(f)}`);
            }
          }
  t.ok(refusals > 0, `some associations are refused (${refusals})`);
});

t.test('explain: each rule up to the match, each condition with what it saw', async (t) => {
  const f = facts({ callingAe: 'VIEWER_WS', sopClassUid: CT }, { Modality: ['CT'] });
  const e = explain(EXAMPLE, f);
  t.equal(e.decision, route(EXAMPLE, f), 'decides as route() does');
  t.same(e.rules, [
    {
      rule: 'no-sc-from-ws',
      matched: false,
      conditions: [
        { field: 'callingAe', expected: '= "VIEWER_WS"', seen: 'VIEWER_WS', ok: true },
        { field: 'sopClass', expected: '= SecondaryCaptureImageStorage', seen: CT, ok: false },
      ],
    },
    {
      rule: 'mammo',
      matched: false,
      conditions: [{ field: 'modality', expected: '= "MG"', seen: ['CT'], ok: false }],
    },
    { rule: 'everything-else', matched: true, conditions: [] },
  ]);
  const key = 'studies/1.2/series/1.3/instances/1.4.dcm';
  t.equal(
    explanationText('ct.dcm', e, key),
    [
      'ct.dcm: rule "everything-else": accept',
      `  store default, key ${key}`,
      '  destinations (none), labels (none)',
      '  rule "no-sc-from-ws": no',
      '    callingAe = "VIEWER_WS": saw "VIEWER_WS" -> yes',
      `    sopClass = SecondaryCaptureImageStorage: saw "${CT}" (CTImageStorage) -> no`,
      '  rule "mammo": no',
      '    modality = "MG": saw "CT" -> no',
      '  rule "everything-else": matches (no conditions)',
      '',
    ].join('\n'),
  );
  t.same(explanationJson('ct.dcm', e, key), {
    file: 'ct.dcm',
    rule: 'everything-else',
    action: 'accept',
    store: 'default',
    key,
    destinations: [],
    labels: [],
  });
});

t.test('explain: a reject, absent and multi-valued attributes', async (t) => {
  const rules = compile([
    {
      name: 'no-localizers',
      match: { tags: { ImageType: 'LOCALIZER', AccessionNumber: { present: false } } },
      action: 'reject',
      status: 'a700',
      reason: 'localizers without accession',
    },
    { name: 'rest', match: {}, action: 'accept', destinations: ['pacs'], labels: ['x', 'y'] },
  ]);
  const e = explain(rules, facts({}, { ImageType: ['ORIGINAL', 'PRIMARY', 'LOCALIZER'] }));
  t.equal(
    explanationText('loc.dcm', e),
    [
      'loc.dcm: rule "no-localizers": reject',
      '  status A700, reason: localizers without accession',
      '  rule "no-localizers": matches',
      '    tags.ImageType = "LOCALIZER": saw "ORIGINAL", "PRIMARY", "LOCALIZER" -> yes',
      '    tags.AccessionNumber absent: saw (absent) -> yes',
      '',
    ].join('\n'),
  );
  t.same(explanationJson('loc.dcm', e), {
    file: 'loc.dcm',
    rule: 'no-localizers',
    action: 'reject',
    status: 'A700',
    destinations: [],
    labels: [],
  });
  const accepted = explain(rules, facts({}, { AccessionNumber: ['A1'] }));
  t.match(explanationText('a.dcm', accepted), /destinations pacs, labels x, y/);
  t.same(explanationJson('a.dcm', accepted).destinations, ['pacs']);
});
