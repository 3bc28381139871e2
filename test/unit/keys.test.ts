import t from 'tap';
import {
  assertValidKey,
  instanceKey,
  normalizeMetadata,
  normalizePrefix,
} from '../../src/store/keys.js';

/** tap matches a thrown error against this pattern */
const gw = (code: string) => ({ name: 'GatewayError', code });

const STUDY = '1.2.826.0.1.3680043.8.498.1';
const SERIES = '1.2.826.0.1.3680043.8.498.2';
const SOP = '1.2.826.0.1.3680043.8.498.3';

t.test('instance key layout', async (t) => {
  t.equal(
    instanceKey('archive', STUDY, SERIES, SOP),
    `archive/studies/${STUDY}/series/${SERIES}/instances/${SOP}.dcm`,
  );
  t.equal(
    instanceKey('', STUDY, SERIES, SOP),
    `studies/${STUDY}/series/${SERIES}/instances/${SOP}.dcm`,
  );
  // prefix normalized: no leading, trailing or double slash
  for (const p of ['/a/b/', 'a//b', 'a/b/', '/a/b']) {
    t.equal(instanceKey(p, '1', '2', '3'), 'a/b/studies/1/series/2/instances/3.dcm', p);
  }
  t.equal(instanceKey('/', '1', '2', '3'), 'studies/1/series/2/instances/3.dcm');
});

t.test('UIDs that could escape the prefix or are not UIDs are refused', async (t) => {
  const bad = [
    '',
    '..',
    '.',
    '1..2',
    '.1.2',
    '1.2.',
    '1/2',
    '../../etc/passwd',
    '1.2\0',
    '1.2 ',
    '1.2.a',
    '１.２', // full-width digits
    '1.' + '2'.repeat(63), // 65 characters
  ];
  for (const uid of bad) {
    for (const pos of [0, 1, 2]) {
      const uids: [string, string, string] = [STUDY, SERIES, SOP];
      uids[pos] = uid;
      t.throws(
        () => instanceKey('p', ...uids),
        gw('GW_ERR_DATASET_MALFORMED'),
        `${JSON.stringify(uid)} at ${pos}`,
      );
    }
  }
  const longest = '1.' + '2'.repeat(62);
  t.ok(instanceKey('', longest, longest, longest), '64 characters is the limit');
  t.ok(instanceKey('', STUDY, SERIES, '1.2.840.10008.05'), 'a leading zero is tolerated');
});

t.test('prefix with . or .. segments is a configuration error', async (t) => {
  for (const p of ['..', 'a/../b', './a', 'a/.']) {
    t.throws(() => normalizePrefix(p), gw('GW_ERR_CONFIG'), p);
  }
  t.equal(normalizePrefix(''), '');
  t.equal(normalizePrefix('x.y/z..w'), 'x.y/z..w', 'dots inside a segment are fine');
});

t.test('store keys: relative, no empty/./.. segments', async (t) => {
  for (const k of ['', '/a', 'a/', 'a//b', 'a/../b', '..', './a', 'a\\b', 'a\0b']) {
    t.throws(() => assertValidKey(k), gw('GW_ERR_INTERNAL'), k);
  }
  t.doesNotThrow(() => assertValidKey(instanceKey('p', STUDY, SERIES, SOP)));
});

t.test('metadata is lower-cased and limited to what S3 can carry', async (t) => {
  t.same(normalizeMetadata({ StudyUID: '1.2', 'calling-ae': 'STORESCU ' }), {
    studyuid: '1.2',
    'calling-ae': 'STORESCU ',
  });
  const bad: Record<string, string>[] = [
    { a_b: 'x' },
    { 'a b': 'x' },
    { a: 'é' },
    { a: 'x\ny' },
    { '': 'x' },
  ];
  for (const m of bad) {
    t.throws(() => normalizeMetadata(m), gw('GW_ERR_INTERNAL'));
  }
});
