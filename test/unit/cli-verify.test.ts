import { createHash } from 'node:crypto';
import t from 'tap';
import { problemLine, exitCodeFor, summaryLine } from '../../src/cli/verify.js';
import {
  count,
  emptyCounts,
  verifyAll,
  type IndexedObject,
  type VerifyOutcome,
} from '../../src/cli/verify-objects.js';
import { MemoryStore } from '../../src/store/memory-store.js';

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

async function* rowsOf(rows: IndexedObject[]): AsyncGenerator<IndexedObject> {
  for (const r of rows) yield r;
}

t.test('ok, mismatch (size, sha256), missing, other store, unreadable', async (t) => {
  const store = new MemoryStore();
  t.teardown(() => store.close());
  const a = Buffer.from('intact object');
  const b = Buffer.from('changed object');
  await store.put('k/a', a, {});
  await store.put('k/b', b, {});
  await store.put('k/c', Buffer.from('short'), {});
  await store.put('k/e', a, {});
  const row = (key: string, size: number, sha256: string, storeName = 'memory'): IndexedObject => ({
    sopInstanceUid: `1.${key.length}.${key.charCodeAt(2)}`,
    storeName,
    objectKey: key,
    size,
    sha256,
  });
  const rows = [
    row('k/a', a.length, sha(a)),
    row('k/b', b.length, sha(Buffer.from('chanGed object'))),
    row('k/c', 99, sha(Buffer.from('short'))),
    row('k/d', 1, sha(a)),
    row('k/a', a.length, sha(a), 's3:other'),
    row('k/e', a.length, sha(a)),
  ];
  store.failNext('get'); // the first get fails as if the store were unreachable
  const seen = new Map<string, VerifyOutcome['kind']>();
  const counts = emptyCounts();
  await verifyAll({
    rows: rowsOf(rows),
    storeFor: (name) => (name === 'memory' ? store : undefined),
    concurrency: 1,
    idleTimeoutMs: 1_000,
    onResult: (r, o) => {
      count(counts, o);
      seen.set(`${r.objectKey}@${r.storeName}`, o.kind);
      const line = problemLine(r, o);
      if (o.kind === 'mismatch' && r.objectKey === 'k/c') t.match(line, /size 5, index says 99/);
      if (o.kind === 'mismatch' && r.objectKey === 'k/b') t.match(line, /^MISMATCH .* sha256 /);
    },
  });
  t.same(Object.fromEntries(seen), {
    'k/a@memory': 'error',
    'k/b@memory': 'mismatch',
    'k/c@memory': 'mismatch',
    'k/d@memory': 'missing',
    'k/a@s3:other': 'skipped',
    'k/e@memory': 'ok',
  });
  t.same(counts, {
    checked: 5,
    ok: 1,
    mismatched: 2,
    missing: 1,
    errors: 1,
    skipped: 1,
    bytes: b.length + 5 + a.length,
  });
  t.equal(exitCodeFor(counts), 3);
  t.match(summaryLine(counts, 1), /^checked 5, ok 1, mismatched 2, missing 1, errors 1, skipped 1/);
});

t.test('exit codes', async (t) => {
  t.equal(exitCodeFor(emptyCounts()), 0, 'nothing to check is not a failure');
  t.equal(
    exitCodeFor({ ...emptyCounts(), checked: 2, ok: 1, errors: 1 }),
    1,
    'unreadable only: runtime',
  );
  t.equal(exitCodeFor({ ...emptyCounts(), checked: 2, missing: 1, errors: 1 }), 3);
});

t.test('every row is checked once with many workers', async (t) => {
  const store = new MemoryStore();
  t.teardown(() => store.close());
  const rows: IndexedObject[] = [];
  for (let i = 0; i < 50; i++) {
    const data = Buffer.from(`object ${i}`);
    await store.put(`o/${i}`, data, {});
    rows.push({
      sopInstanceUid: `1.${i}`,
      storeName: 'memory',
      objectKey: `o/${i}`,
      size: data.length,
      sha256: sha(data),
    });
  }
  const keys: string[] = [];
  await verifyAll({
    rows: rowsOf(rows),
    storeFor: (name) => (name === 'memory' ? store : undefined),
    concurrency: 8,
    idleTimeoutMs: 1_000,
    onResult: (r, o) => {
      t.equal(o.kind, 'ok');
      keys.push(r.objectKey);
    },
  });
  t.same(keys.sort(), rows.map((r) => r.objectKey).sort());
});
