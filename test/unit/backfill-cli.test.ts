import t from 'tap';
import { parseIsoDate, parseModality, parsePositiveInt } from '../../src/cli/backfill-options.js';
import { formatReport, totals } from '../../src/cli/backfill-report.js';
import { resolveScope } from '../../src/cli/backfill.js';
import { formatStudyStatus } from '../../src/cli/study-status.js';
import { scopeText } from '../../src/index/backfill-runs.js';
import { isGatewayError } from '../../src/errors.js';

const base = { source: 'PACS', maxResults: 1000, timeout: 30 };

t.test('options: dates, modality, numbers', async (t) => {
  t.equal(parseIsoDate('2024-02-29'), '2024-02-29');
  t.equal(parseIsoDate('20240229'), '2024-02-29');
  t.throws(() => parseIsoDate('2023-02-29'), /YYYYMMDD/);
  t.equal(parseModality(' ct '), 'CT');
  t.throws(() => parseModality('C*'));
  t.equal(parsePositiveInt(10)('3'), 3);
  t.throws(() => parsePositiveInt(10)('11'));
});

t.test('resolveScope: one of --from/--to, --days, --study', async (t) => {
  t.same(resolveScope({ ...base, from: '2024-01-01', to: '2024-01-31', modality: 'CT' }), {
    from: '2024-01-01',
    to: '2024-01-31',
    modality: 'CT',
  });
  t.same(resolveScope({ ...base, study: '1.2.3' }), { studyUid: '1.2.3' });
  const days = resolveScope({ ...base, days: 1 });
  t.equal(days.from, days.to, '--days 1 is today');
  for (const bad of [
    {},
    { from: '2024-01-01' },
    { from: '2024-02-01', to: '2024-01-01' },
    { days: 3, from: '2024-01-01' },
    { study: '1.2', days: 3 },
  ]) {
    const err = (() => {
      try {
        resolveScope({ ...base, ...bad });
      } catch (e) {
        return e;
      }
    })();
    t.ok(isGatewayError(err, 'GW_ERR_CONFIG'), JSON.stringify(bad));
  }
});

t.test('scope text: what a resumed run is found by', async (t) => {
  t.equal(
    scopeText({ sourceAe: 'P', from: '2024-01-01', to: '2024-01-02' }),
    'dates:2024-01-01..2024-01-02',
  );
  t.equal(scopeText({ sourceAe: 'P', from: 'a', to: 'b', modality: 'CT' }), 'dates:a..b:CT');
  t.equal(scopeText({ sourceAe: 'P', studyUid: '1.2' }), 'study:1.2');
});

t.test('report and study status text', async (t) => {
  const studies = [
    {
      studyUid: '1',
      outcome: 'complete' as const,
      missingBefore: 0,
      moved: 0,
      failedSuboperations: 0,
    },
    {
      studyUid: '2',
      outcome: 'backfilled' as const,
      missingBefore: 3,
      moved: 3,
      failedSuboperations: 0,
    },
    {
      studyUid: '3',
      outcome: 'failed' as const,
      missingBefore: 2,
      moved: 1,
      failedSuboperations: 1,
      error: '1 of 4 instances still missing',
    },
  ];
  const tot = totals(studies);
  t.match(tot, {
    checked: 3,
    complete: 1,
    backfilled: 1,
    failed: 1,
    instancesMoved: 4,
    failedSuboperations: 1,
  });
  const text = formatReport({
    source: 'PACS', resumed: false, dryRun: false, from: '2024-01-01', to: '2024-01-31',
    complete: false, seconds: 2, totals: tot, unlistedWindows: [], studies, run: 7,
  }); // prettier-ignore
  t.match(text, /studies checked\s+3/);
  t.match(text, /instances moved\s+4/);
  t.match(text, /3\s+-\s+1 of 4 instances still missing/);
  t.match(text, /NOT every study in range is complete/);
  t.match(
    formatStudyStatus({
      studyInstanceUid: 'S', source: 'PACS', complete: false, sourceInstances: 3, indexedInstances: 1,
      missing: [{ seriesInstanceUid: 'X', sopInstanceUids: ['a', 'b'] }],
    }), // prettier-ignore
    /S: 2 of 3 instances missing against PACS\n {2}series X: 2 missing\n {4}a\n {4}b\n/,
  );
});
