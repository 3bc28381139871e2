/**
 * `dicom-gateway route test` as an administrator runs it (src/main.ts through tap's TypeScript
 * loader) on the fixture files: text and JSON output, Cyrillic names in both character sets,
 * bad rules (exit 2, naming the rule) and unreadable files (exit 1, the others still shown).
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { runCli } from '../helpers/gateway-process.js';

const FIXTURES = join(import.meta.dirname, '..', 'fixtures');
const CT = join(FIXTURES, 'ct-explicit-le.dcm');
const CT_BE = join(FIXTURES, 'ct-explicit-be.dcm');
const MR_144 = join(FIXTURES, 'mr-cyrillic-iso-ir-144.dcm');
const MR_192 = join(FIXTURES, 'mr-cyrillic-iso-ir-192.dcm');

const cli = runCli;

const work = await mkdtemp(join(tmpdir(), 'gw-route-'));
t.teardown(() => rm(work, { recursive: true, force: true }));

const RULES = join(work, 'rules.yaml');
await writeFile(
  RULES,
  `stores:
  default: { type: fs, root: ./data/objects, prefix: site-a }
  research: { type: fs, root: ./data/research }
routing:
  rules:
    - name: no-mr-from-ws
      match: { callingAe: VIEWER_WS, sopClass: MRImageStorage }
      action: reject
      status: "0122"
      reason: viewers do not send MR
    - name: ivanov
      match: { tags: { PatientName: { regex: '^Иванов\\^' } } }
      action: accept
      store: research
      prefix: cyrillic/
      destinations: [orthanc]
      labels: [ru]
    - name: everything-else
      match: {}
      action: accept
`,
);

t.test('text: the rule, why, and what would happen', async (t) => {
  const r = await cli(['route', 'test', '--rules', RULES, '--address', '10.1.2.3', CT, MR_144]);
  t.equal(r.code, 0, r.stderr);
  t.match(r.stdout, `${CT}: rule "everything-else": accept\n  store default, key site-a/studies/`);
  t.match(r.stdout, /tags\.PatientName ~ \/\^Иванов\\\^\/u: saw "[A-Z]+\^[A-Z]+" -> no/);
  t.match(r.stdout, `${MR_144}: rule "ivanov": accept\n  store research, key cyrillic/studies/`);
  t.match(r.stdout, 'saw "Иванов^Иван" -> yes');
  t.match(r.stdout, '  destinations orthanc, labels ru');
  t.match(r.stdout, /callingAe = "VIEWER_WS": saw "GENSTUDY" -> no/, "the file's Source AE Title");
});

t.test('--json: one object per file, in the documented shape', async (t) => {
  const r = await cli(['route', 'test', '--rules', RULES, '--json', CT_BE, MR_144, MR_192]);
  t.equal(r.code, 0, r.stderr);
  const rows = r.stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
  t.equal(rows.length, 3);
  t.match(rows[0], { file: CT_BE, rule: 'everything-else', action: 'accept', store: 'default' });
  t.match(rows[0]!.key, /^site-a\/studies\/[0-9.]+\/series\/[0-9.]+\/instances\/[0-9.]+\.dcm$/);
  for (const row of rows.slice(1)) {
    t.same(Object.keys(row), ['file', 'rule', 'action', 'store', 'key', 'destinations', 'labels']);
    t.match(row, { rule: 'ivanov', store: 'research', destinations: ['orthanc'], labels: ['ru'] });
  }
  const ws = await cli([
    'route',
    'test',
    '--rules',
    RULES,
    '--json',
    '--calling-ae',
    'VIEWER_WS',
    MR_192,
  ]);
  t.equal(ws.code, 0, ws.stderr);
  t.same(JSON.parse(ws.stdout), {
    file: MR_192,
    rule: 'no-mr-from-ws',
    action: 'reject',
    status: '0122',
    destinations: [],
    labels: [],
  });
});

t.test(
  'bad rules exit 2 naming the rule; a bad file exits 1 and the others are shown',
  async (t) => {
    const bad = join(work, 'bad.yaml');
    await writeFile(
      bad,
      'rules:\n  - name: ct\n    match: { tags: { Modaliti: CT } }\n    action: accept\n',
    );
    const notDicom = join(work, 'not-dicom.dcm');
    await writeFile(notDicom, 'hello');
    const [rules, file, none, address] = await Promise.all([
      cli(['route', 'test', '--rules', bad, CT]),
      cli(['route', 'test', '--rules', RULES, notDicom, join(work, 'missing.dcm'), CT]),
      cli(['route', 'test', CT]),
      cli(['route', 'test', '--rules', RULES, '--address', 'host.example', CT]),
    ]);
    t.equal(rules.code, 2);
    t.match(
      rules.stderr,
      /routing\.rules\.0\(ct\)\.match\.tags\.Modaliti: rule "ct": "Modaliti" is not a keyword/,
    );
    t.match(rules.stderr, /rule "ct" is the last rule but does not match everything/);
    t.equal(rules.stdout, '');
    t.equal(file.code, 1);
    t.match(file.stderr, `${notDicom}: no "DICM" prefix`);
    t.match(file.stderr, 'missing.dcm: ENOENT');
    t.match(file.stdout, `${CT}: rule "everything-else": accept`);
    t.equal(none.code, 2);
    t.match(none.stderr, 'the configuration has no routing section; pass --rules FILE');
    t.equal(address.code, 2);
    t.match(address.stderr, '--address: "host.example" is not an IP address');
  },
);
