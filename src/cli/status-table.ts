/**
 * The status report as text for a terminal. Pure: a StatusReport in, lines out.
 */
import type { StatusReport } from '../admin/status-report.js';
import type { IndexSummary } from '../index/index-reports.js';

export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${Math.round(n)} B` : `${v.toFixed(1)} ${units[u]}`;
}

export function formatDuration(seconds: number): string {
  const s = Math.floor(seconds);
  const d = Math.floor(s / 86400);
  const h = Math.floor((s % 86400) / 3600);
  const m = Math.floor((s % 3600) / 60);
  if (d > 0) return `${d}d ${h}h`;
  if (h > 0) return `${h}h ${m}m`;
  if (m > 0) return `${m}m ${s % 60}s`;
  return `${s}s`;
}

/** Columns padded to their widest cell; the last column is not padded. */
export function table(rows: string[][]): string[] {
  const widths: number[] = [];
  for (const r of rows) r.forEach((c, i) => (widths[i] = Math.max(widths[i] ?? 0, c.length)));
  return rows.map((r) =>
    r
      .map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd(),
  );
}

function n(v: number): string {
  return v.toLocaleString('en-US');
}

export function formatStatus(r: StatusReport): string {
  const rows: string[][] = [
    ['version', r.version],
    ['AE title', `${r.dicom.aeTitle} on ${r.dicom.host}:${r.dicom.port}`],
    ['store', r.store],
  ];
  if (r.gateway) {
    const g = r.gateway;
    const i = g.ingest;
    rows.push(
      ['uptime', `${formatDuration(g.uptimeSeconds)} (pid ${g.pid}, since ${g.startedAt})`],
      ['associations', `${g.activeAssociations} open`],
      [
        'ingest',
        `${n(i.received)} received, ${n(i.stored)} stored, ${n(i.duplicates)} duplicates, ` +
          `${n(i.failed)} failed, ${formatBytes(i.bytes)}`,
      ],
    );
  }
  if (r.spool) {
    const age = r.spool.files ? `, oldest ${formatDuration(r.spool.oldestAgeSeconds)}` : '';
    rows.push([
      'spool',
      `${n(r.spool.files)} files, ${formatBytes(r.spool.bytes)}${age} (${r.spool.dir})`,
    ]);
  }
  const ix: IndexSummary | { error: string } = r.index;
  if ('error' in ix) {
    rows.push(['index', `unavailable: ${ix.error}`]);
    return table(rows).join('\n') + '\n';
  }
  const outbox = `${ix.outboxPendingCapped ? 'at least ' : ''}${n(ix.outboxPending)}`;
  rows.push(
    [
      'index',
      `${n(ix.studies)} studies, ${n(ix.series)} series, ${n(ix.instances)} instances, ` +
        formatBytes(ix.bytes),
    ],
    [
      'backlog',
      `${n(ix.pendingUpload)} instances awaiting upload, ${outbox} notify deliveries pending`,
    ],
  );
  rows.push(
    ...notifyRows(r.notify),
    ...commitmentRows(r.storageCommitment),
    ...reconcileRows(r.reconcile),
  );
  const lines = [...table(rows), ''];
  if (ix.lastStudyByCallingAe.length === 0) {
    lines.push('No studies received yet.');
  } else {
    lines.push('Last study per calling AE:');
    const header = ['CALLING AE', 'STUDY INSTANCE UID', 'STUDY DATE', 'MODALITIES', 'INSTANCES'];
    const body = ix.lastStudyByCallingAe.map((s) => [
      s.callingAeTitle,
      s.studyInstanceUid,
      s.studyDate ?? '-',
      s.modalities.join(',') || '-',
      n(s.instances),
      new Date(s.receivedAt).toISOString(),
    ]);
    lines.push(...table([[...header, 'RECEIVED'], ...body]).map((l) => `  ${l}`));
  }
  return lines.join('\n') + '\n';
}

/** One row per notify destination: pending and dead deliveries. */
function notifyRows(notify: StatusReport['notify']): string[][] {
  if (!notify) return [];
  if ('error' in notify) return [['notify', `unavailable: ${notify.error}`]];
  return notify.map((d) => [
    `notify ${d.destination}`,
    `${d.pendingCapped ? 'at least ' : ''}${n(d.pending)} pending, ${n(d.dead)} dead` +
      (d.dead > 0 ? ' (dicom-gateway notify retry)' : ''),
  ]);
}

/** The reconcile job's source and its latest run, when the job is enabled (docs/backfill.md). */
function reconcileRows(c: StatusReport['reconcile']): string[][] {
  if (!c) return [];
  if ('error' in c) return [['reconcile', `unavailable: ${c.error}`]];
  const run = c.lastRun;
  if (!run) return [['reconcile', `${c.source}: no run yet`]];
  const when = (run.finishedAt ?? run.updatedAt).toISOString();
  const s = run.studies;
  return [
    [
      'reconcile',
      `${c.source}: last run ${run.state} at ${when} (${run.scope}): ${n(s.complete)} studies ` +
        `complete, ${n(s.backfilled)} backfilled, ${n(s.failed)} failed` +
        (run.error ? ` (${run.error})` : ''),
    ],
  ];
}

/** Storage Commitment transactions, once there are any (docs/storage-commitment.md). */
function commitmentRows(c: StatusReport['storageCommitment']): string[][] {
  if (!c) return [];
  if ('error' in c) return [['commitment', `unavailable: ${c.error}`]];
  if (c.pending + c.committed + c.failed + c.abandoned === 0) return [];
  return [
    [
      'commitment',
      `${n(c.pending)} pending, ${n(c.committed)} committed, ${n(c.failed)} with failures` +
        (c.abandoned > 0 ? `, ${n(c.abandoned)} abandoned (requester unreachable)` : ''),
    ],
  ];
}
