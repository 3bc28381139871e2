/**
 * Validation of `routing.rules`: the issue's example is valid, and every mistake is reported
 * with the key path and the rule's name.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import YAML from 'yaml';
import { formatTag } from '../../src/dicom/header-reader.js';
import { STORAGE_SOP_CLASSES } from '../../src/dicom/sop-classes.js';
import { isGatewayError } from '../../src/errors.js';
import { ROUTE_KEYWORDS } from '../../src/route/keywords.js';
import {
  parseRouting,
  routingPathLabel,
  routingReferenceIssues,
  routingSchema,
} from '../../src/route/rules-schema.js';

const EXAMPLE = `
stores:
  default: { type: fs, root: ./data/objects }
  research: { type: fs, root: ./data/research }
routing:
  rules:
    - name: no-sc-from-ws
      match: { callingAe: VIEWER_WS, sopClass: SecondaryCaptureImageStorage }
      action: reject
      status: "0122"
    - name: mammo
      match: { modality: MG }
      action: accept
      store: research
      prefix: mammo/
      labels: [mammo]
    - name: everything-else
      match: {}
      action: accept
      store: default
`;

const CATCH_ALL = { name: 'rest', match: {}, action: 'accept' };

/** The error message parseRouting throws for these rules (a catch-all appended unless `last`). */
function problems(rules: unknown[], opts: { last?: boolean; stores?: string[] } = {}): string {
  const list = opts.last ? rules : [...rules, CATCH_ALL];
  try {
    parseRouting({ rules: list }, 'test rules', { stores: opts.stores ?? ['default'] });
  } catch (err) {
    if (isGatewayError(err, 'GW_ERR_CONFIG')) return err.message;
    throw err;
  }
  return '';
}

t.test("the issue's example validates, with its stores", async (t) => {
  const doc = YAML.parse(EXAMPLE) as { stores: Record<string, unknown>; routing: unknown };
  const routing = parseRouting(doc.routing, 'example', { stores: Object.keys(doc.stores) });
  t.equal(routing.rules.length, 3);
  t.same(routing.rules[0]!.match, {
    callingAe: 'VIEWER_WS',
    sopClass: 'SecondaryCaptureImageStorage',
  });
  t.match(
    problems((doc.routing as { rules: unknown[] }).rules, { last: true, stores: ['default'] }),
    /rules\.1\(mammo\)\.store: rule "mammo": no store named "research"/,
  );
});

t.test('the last rule must match everything; the message names it', async (t) => {
  const msg = problems([{ name: 'only-ct', match: { modality: 'CT' }, action: 'accept' }], {
    last: true,
  });
  t.match(
    msg,
    /routing\.rules\.0\(only-ct\)\.match: rule "only-ct" is the last rule but does not match everything/,
  );
  t.match(msg, /it tests modality/);
  t.match(problems([], { last: true }), /routing\.rules: at least one rule/);
  t.match(
    problems([{ name: 't', match: { tags: {} }, action: 'reject', status: 'A700' }], {
      last: true,
    }),
    '',
    'empty tags match everything',
  );
  t.equal(
    problems([{ name: 't', match: { tags: {} }, action: 'reject', status: 'A700' }], {
      last: true,
    }),
    '',
  );
});

t.test('rule names are unique', async (t) => {
  const msg = problems([
    { name: 'a', match: { modality: 'CT' }, action: 'accept' },
    { name: 'a', match: { modality: 'MR' }, action: 'accept' },
  ]);
  t.match(msg, /rules\.1\(a\)\.name: rule "a": the name is already used by rule 0/);
});

t.test('conditions: regexes, keywords, operators per VR, dates', async (t) => {
  const cases: Array<[Record<string, unknown>, RegExp]> = [
    [
      { tags: { PatientName: { regex: '(' } } },
      /match\.tags\.PatientName: rule "r": regex "\(" does not compile/,
    ],
    [{ callingAe: { regex: '[' } }, /match\.callingAe: rule "r": regex/],
    [
      { tags: { PatientsName: 'X' } },
      /match\.tags\.PatientsName: rule "r": "PatientsName" is not a keyword routing can test/,
    ],
    [
      { tags: { PatientName: { min: 1 } } },
      /rule "r": \{min, max\} applies to numbers; this attribute is PN/,
    ],
    [
      { tags: { Modality: { from: 20240101 } } },
      /rule "r": \{from, to\} applies to dates and times; this attribute is CS/,
    ],
    [
      { tags: { StudyDate: { from: 20240230 } } },
      /rule "r": from "20240230" is not a date YYYYMMDD/,
    ],
    [{ tags: { StudyDate: { to: '2024-01-01' } } }, /to "2024-01-01" is not a date YYYYMMDD/],
    [{ tags: { StudyDate: { from: 20240201, to: 20240101 } } }, /from is after to/],
    [{ tags: { StudyTime: { from: '2500' } } }, /from "2500" is not a time/],
    [{ tags: { Rows: { min: 10, max: 5 } } }, /min is above max/],
    [
      { tags: { Modality: { regex: 'CT', present: true } } },
      /exactly one of \{regex\}, \{min, max\}, \{from, to\}, \{present\}/,
    ],
    [{ tags: { Modality: { ignoreCase: true } } }, /ignoreCase goes with regex/],
    [{ tags: { Modality: { equals: 'CT' } } }, /match\.tags\.Modality: Unrecognized key: "equals"/],
    [{ tags: { Modality: [] } }, /match\.tags\.Modality/],
    [
      { address: ['10.0.0.0/33'] },
      /match\.address: rule "r": "10\.0\.0\.0\/33": prefix length must be 0\.\.32/,
    ],
    [{ address: 'example.org' }, /"example\.org" is not an IP address or CIDR range/],
    [
      { sopClass: 'CTImage' },
      /match\.sopClass: rule "r": "CTImage" is neither a UID nor a Storage SOP Class keyword/,
    ],
    [{ modalities: 'CT' }, /rules\.0\(r\)\.match: Unrecognized key: "modalities"/],
  ];
  for (const [match, expected] of cases) {
    t.match(problems([{ name: 'r', match, action: 'accept' }]), expected, JSON.stringify(match));
  }
});

t.test('actions: statuses, keys that belong to the other action, prefixes, stores', async (t) => {
  const reject = (status: unknown) =>
    problems([{ name: 'r', match: { modality: 'CT' }, action: 'reject', status }]);
  for (const ok of ['0122', 'A700', 'a7ff', 'A900', 'C000', 'CFFF', '0111', '0124']) {
    t.equal(reject(ok), '', `${ok} is a C-STORE failure`);
  }
  t.match(
    reject('B000'),
    /status: rule "r": status "B000" is a warning; a reject answers a failure/,
  );
  t.match(reject('0000'), /status "0000" is success/);
  t.match(reject('A800'), /status "A800" is not a C-STORE failure/);
  t.match(reject('A7'), /status "A7" is not four hex digits/);
  t.match(reject(122), /status: expected the status as a quoted string/);
  t.match(reject(undefined), /rule "r": action reject needs a status/);
  t.match(
    problems([
      { name: 'r', match: { modality: 'CT' }, action: 'reject', status: 'A700', store: 'default' },
    ]),
    /rules\.0\(r\)\.store: rule "r": store is only for action: accept/,
  );
  t.match(
    problems([{ name: 'r', match: { modality: 'CT' }, action: 'accept', status: 'A700' }]),
    /status is only for action: reject/,
  );
  t.match(
    problems([{ name: 'r', match: { modality: 'CT' }, action: 'accept', prefix: 'a/../b' }]),
    /prefix: rule "r": invalid key prefix/,
  );
  t.match(
    problems([{ name: 'r', match: { modality: 'CT' }, action: 'accept', labels: ['has space'] }]),
    /labels\.0: printable ASCII without spaces/,
  );
  t.match(problems([{ name: 'r', action: 'forward' }]), /rules\.0\(r\)\.action/);
  t.match(
    problems([{ name: 'r', match: {}, action: 'accept', store: 'archive' }], { last: true }),
    /rule "r": no store named "archive" \(stores: default\)/,
  );
});

t.test('reference checks: stores, and destinations once they exist', async (t) => {
  const rules = routingSchema.parse({
    rules: [{ name: 'x', match: {}, action: 'accept', destinations: ['orthanc'] }],
  }).rules;
  t.same(routingReferenceIssues(rules, { stores: ['default'] }), [], 'destinations unchecked');
  t.same(routingReferenceIssues(rules, { stores: ['default'], destinations: ['pacs'] }), [
    { path: ['rules', 0, 'destinations'], message: 'rule "x": no destination named "orthanc"' },
  ]);
  t.equal(
    routingPathLabel(['routing', 'rules', 0, 'match'], { rules: [{ name: 'x' }] }),
    'routing.rules.0(x).match',
  );
  t.equal(
    routingPathLabel(['routing', 'rules', 3], { rules: [] }),
    'routing.rules.3',
    'no such rule',
  );
});

t.test('docs/routing.md lists every keyword and SOP Class keyword', async (t) => {
  const doc = readFileSync(join(import.meta.dirname, '..', '..', 'docs', 'routing.md'), 'utf8');
  /** A table row starting with these cells (prettier pads cells with spaces). */
  const row = (...cells: string[]) =>
    new RegExp(`^\\| ${cells.map((c) => `${c.replace(/[.()]/g, '\\$&')} +\\|`).join(' ')}`, 'm');
  for (const [k, [tag, vr]] of Object.entries(ROUTE_KEYWORDS)) {
    t.match(doc, row(`\`${k}\``, formatTag(tag), vr), k);
  }
  for (const [k, uid] of Object.entries(STORAGE_SOP_CLASSES)) {
    t.match(doc, row(`\`${k}\``, `\`${uid}\``), k);
  }
});
