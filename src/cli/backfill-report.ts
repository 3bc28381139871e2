/**
 * What `dicom-gateway backfill` prints: the summary table (studies checked / complete /
 * backfilled / failed, instances moved), the studies not complete, and the same as JSON with
 * --json; and its progress on stderr (a cli-progress bar on a terminal, plain lines otherwise).
 */
import cliProgress from 'cli-progress';
import type { BackfillOutcome } from '../scu/backfill.js';
import type { StudyResult } from '../scu/backfill-study.js';
import { formatDuration, table } from './status-table.js';

export interface BackfillTotals {
  checked: number;
  complete: number;
  backfilled: number;
  failed: number;
  instancesMoved: number;
  instancesMissingBefore: number;
  failedSuboperations: number;
}

export function totals(studies: readonly StudyResult[]): BackfillTotals {
  const t: BackfillTotals = {
    checked: studies.length,
    complete: 0,
    backfilled: 0,
    failed: 0,
    instancesMoved: 0,
    instancesMissingBefore: 0,
    failedSuboperations: 0,
  };
  for (const s of studies) {
    t[s.outcome]++;
    t.instancesMoved += s.moved;
    t.instancesMissingBefore += s.missingBefore;
    t.failedSuboperations += s.failedSuboperations;
  }
  return t;
}

export interface BackfillReport {
  source: string;
  run?: number;
  resumed: boolean;
  dryRun: boolean;
  from?: string;
  to?: string;
  modality?: string;
  study?: string;
  /** Every study in range is complete in the index now. */
  complete: boolean;
  seconds: number;
  totals: BackfillTotals;
  unlistedWindows: BackfillOutcome['unlisted'];
  studies: StudyResult[];
}

export function formatReport(r: BackfillReport): string {
  const t = r.totals;
  const scope = r.study
    ? `study ${r.study}`
    : `${r.from} to ${r.to}${r.modality ? ` (${r.modality})` : ''}`;
  const lines = [
    `backfill from ${r.source}, ${scope}${r.dryRun ? ' (dry run: nothing moved)' : ''}` +
      (r.run !== undefined ? `, run ${r.run}${r.resumed ? ' (resumed)' : ''}` : ''),
    '',
    ...table([
      ['studies checked', String(t.checked)],
      ['complete', String(t.complete)],
      ['backfilled', String(t.backfilled)],
      [r.dryRun ? 'incomplete' : 'failed', String(t.failed)],
      ['instances missing before', String(t.instancesMissingBefore)],
      ['instances moved', String(t.instancesMoved)],
      ['failed sub-operations', String(t.failedSuboperations)],
      ['time', formatDuration(r.seconds)],
    ]),
  ];
  const bad = r.studies.filter((s) => s.outcome === 'failed');
  if (bad.length > 0) {
    lines.push(
      '',
      ...table([
        ['study', 'date', 'problem'],
        ...bad.map((s) => [s.studyUid, s.studyDate ?? '-', s.error ?? '']),
      ]),
    );
  }
  for (const u of r.unlistedWindows) {
    lines.push(
      `window ${u.window.from}..${u.window.to}${u.window.modality ? ` ${u.window.modality}` : ''} not fully listed: ${u.reason}`,
    );
  }
  lines.push(
    '',
    r.complete ? 'every study in range is complete' : 'NOT every study in range is complete',
  );
  return lines.join('\n') + '\n';
}

export interface BackfillProgress {
  found(n: number): void;
  study(r: StudyResult): void;
  stop(): void;
}

export function createBackfillProgress(
  stream: NodeJS.WritableStream,
  tty: boolean,
): BackfillProgress {
  let total = 0;
  let done = 0;
  if (tty) {
    const bar = new cliProgress.SingleBar(
      {
        stream: stream as NodeJS.WriteStream,
        format:
          'backfill [{bar}] {value}/{total} studies | {moved} instances moved | {failed} failed',
        hideCursor: true,
        clearOnComplete: false,
      },
      cliProgress.Presets.shades_classic,
    );
    let moved = 0;
    let failed = 0;
    bar.start(0, 0, { moved, failed });
    let stopped = false;
    return {
      found: (n) => bar.setTotal((total += n)),
      study: (r) => {
        moved += r.moved;
        if (r.outcome === 'failed') failed++;
        bar.update(++done, { moved, failed });
      },
      stop: () => {
        if (!stopped) bar.stop();
        stopped = true;
      },
    };
  }
  return {
    found: (n) => {
      total += n;
    },
    study: (r) => {
      done++;
      stream.write(
        `backfill: ${done}/${total} study ${r.studyUid} ${r.outcome}` +
          (r.moved ? `, ${r.moved} moved` : '') +
          (r.error ? `: ${r.error}` : '') +
          '\n',
      );
    },
    stop: () => {},
  };
}
