import t from 'tap';
import { applyEnv, parseConfig } from '../../src/config.js';
import { namedStores } from '../../src/store/store-config.js';

const rules = (store: string) => ({
  rules: [
    { name: 'mammo', match: { modality: 'MG' }, action: 'accept', store },
    { name: 'rest', action: 'accept' },
  ],
});

t.test('the single store is the store named default', (t) => {
  const c = parseConfig({ store: { type: 'fs', root: '/x' } });
  t.same([...namedStores(c).keys()], ['default']);
  t.match(c.store, { type: 'fs', root: '/x' });
  t.match(parseConfig({}).store, { type: 'fs', root: './data/objects' });
  t.end();
});

t.test('stores: default first (else the first listed) is the primary store', (t) => {
  const c = parseConfig({
    stores: { a: { type: 'fs', root: '/a' }, default: { type: 'fs', root: '/d' } },
    routing: rules('a'),
  });
  t.same([...namedStores(c).keys()], ['default', 'a']);
  t.match(c.store, { root: '/d' });
  const d = parseConfig({ stores: { b: { type: 'fs', root: '/b' } } });
  t.match(d.store, { root: '/b' });
  t.end();
});

t.test('errors name the keys: both given, unknown store, shared spool, empty', (t) => {
  t.throws(
    () => parseConfig({ store: { type: 'fs' }, stores: { a: { type: 'fs' } } }),
    /stores: give either store .* or stores/,
  );
  t.throws(
    () => parseConfig({ stores: { default: { type: 'fs' } }, routing: rules('research') }),
    /routing\.rules\.0\(mammo\)\.store: rule "mammo": no store named "research" \(stores: default\)/,
  );
  t.throws(
    () =>
      parseConfig({
        stores: {
          default: { type: 's3', bucket: 'one' },
          other: { type: 's3', bucket: 'two' },
        },
      }),
    /stores\.other\.spool\.dir: already the spool of store "default"/,
  );
  t.throws(() => parseConfig({ stores: {} }), /stores: name at least one store/);
  t.throws(() => parseConfig({ stores: { 'a b': { type: 'fs' } } }), /stores/);
  t.end();
});

t.test('S3 credentials from the environment reach every s3 store without its own', (t) => {
  const raw = applyEnv(
    {
      stores: {
        a: { type: 's3', bucket: 'aaa', spool: { dir: '/s/a' } },
        b: { type: 's3', bucket: 'bbb', spool: { dir: '/s/b' }, accessKeyId: 'own' },
      },
    },
    { S3_ACCESS_KEY_ID: 'envkey', S3_SECRET_ACCESS_KEY: 'envsecret' },
  );
  const c = parseConfig(raw);
  t.match(c.stores, {
    a: { accessKeyId: 'envkey', secretAccessKey: 'envsecret' },
    b: { accessKeyId: 'own', secretAccessKey: 'envsecret' },
  });
  t.end();
});
