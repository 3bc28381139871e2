import t from 'tap';
import { completeByCount, diffStudy } from '../../src/scu/completeness.js';
import {
  addDays,
  daysIn,
  isoDate,
  lastDays,
  splitWindow,
  windowKeys,
} from '../../src/scu/windows.js';

const source = [
  { seriesUid: 's1', instances: ['a1', 'a2', 'a3'] },
  { seriesUid: 's2', instances: ['b1', 'b2'] },
  { seriesUid: 's3', instances: ['c1'] },
];

t.test('diffStudy: complete, absent, missing series, missing instances', async (t) => {
  const all = new Set(['a1', 'a2', 'a3', 'b1', 'b2', 'c1']);
  t.same(diffStudy('S', source, all), { total: 6, missing: [], plan: [] });

  const none = diffStudy('S', source, new Set(['x']));
  t.same(none.plan, [{ level: 'STUDY', keys: { StudyInstanceUID: 'S' }, instances: 6 }]);
  t.equal(none.missing.length, 6);

  const partial = diffStudy('S', source, new Set(['a1', 'c1']));
  t.same(partial.missing, ['a2', 'a3', 'b1', 'b2']);
  t.same(partial.plan, [
    {
      level: 'IMAGE',
      keys: { StudyInstanceUID: 'S', SeriesInstanceUID: 's1', SOPInstanceUID: 'a2\\a3' },
      instances: 2,
    },
    { level: 'SERIES', keys: { StudyInstanceUID: 'S', SeriesInstanceUID: 's2' }, instances: 2 },
  ]);
  const moved = partial.plan.reduce((n, p) => n + p.instances, 0);
  t.equal(moved, partial.missing.length, 'the plan moves exactly what is missing');
});

t.test('diffStudy: UID lists are batched', async (t) => {
  const many = Array.from({ length: 250 }, (_, i) => `u${i}`);
  const d = diffStudy('S', [{ seriesUid: 's', instances: many }], new Set(['u0']), 100);
  t.same(
    d.plan.map((p) => [p.level, p.instances]),
    [
      ['IMAGE', 100],
      ['IMAGE', 100],
      ['IMAGE', 49],
    ],
  );
});

t.test('completeByCount: only an equal count skips, never with --deep or no count', async (t) => {
  t.equal(completeByCount('6', 6, false), true);
  t.equal(completeByCount(6, 6, true), false, '--deep');
  t.equal(completeByCount(undefined, 6, false), false, 'dcmqrscp returns no count');
  t.equal(completeByCount('', 0, false), false);
  t.equal(completeByCount('6', 7, false), false, 'more in the index than the source');
  t.equal(completeByCount('6', 5, false), false);
  t.equal(completeByCount('0', 0, false), false);
});

t.test('windows: halves down to single days, then modalities, then no further', async (t) => {
  const w = { from: '2024-01-01', to: '2024-01-10' };
  t.equal(daysIn(w), 10);
  const halves = splitWindow(w)!;
  t.same(halves, [
    { from: '2024-01-01', to: '2024-01-05' },
    { from: '2024-01-06', to: '2024-01-10' },
  ]);
  t.same(splitWindow({ from: '2024-02-28', to: '2024-03-01' }), [
    { from: '2024-02-28', to: '2024-02-28' },
    { from: '2024-02-29', to: '2024-03-01' },
  ]);
  // splitting repeatedly covers every day exactly once
  const days: string[] = [];
  const stack = [w];
  while (stack.length) {
    const x = stack.shift()!;
    if (daysIn(x) === 1) days.push(x.from);
    else stack.unshift(...splitWindow(x)!);
  }
  t.same(
    days,
    Array.from({ length: 10 }, (_, i) => addDays('2024-01-01', i)),
  );
  const day = { from: '2024-01-03', to: '2024-01-03' };
  t.same(splitWindow(day, ['CT', 'MR']), [
    { ...day, modality: 'CT' },
    { ...day, modality: 'MR' },
  ]);
  t.equal(splitWindow({ ...day, modality: 'CT' }), undefined);
  t.same(
    splitWindow({ from: '2024-01-01', to: '2024-01-02', modality: 'CT' }),
    [
      { from: '2024-01-01', to: '2024-01-01', modality: 'CT' },
      { from: '2024-01-02', to: '2024-01-02', modality: 'CT' },
    ],
    'a --modality window keeps its modality',
  );
});

t.test('window keys, dates', async (t) => {
  t.same(windowKeys({ from: '2024-01-01', to: '2024-01-10' }), { StudyDate: '20240101-20240110' });
  t.same(windowKeys({ from: '2024-01-01', to: '2024-01-01', modality: 'CT' }), {
    StudyDate: '20240101',
    ModalitiesInStudy: 'CT',
  });
  t.same(lastDays(3, new Date('2024-03-01T12:00:00Z')), { from: '2024-02-28', to: '2024-03-01' });
  t.equal(isoDate(' 20240105 '), '2024-01-05');
  t.equal(isoDate(undefined), undefined);
  t.equal(isoDate('2024'), undefined);
});
