// The printed report and the target checks (ratios within the same run).
import { backfillTargets, type BackfillResult } from './backfill-format.js';
import type { FloorResult } from './floor.js';
import type { IndexResult } from './index-bench.js';
import type { IngestResult, ReceiverId } from './ingest.js';
import type { LargeResult } from './large.js';
import type { ProfileSummary } from './profile.js';
import type { CeilingResult } from './upload-ceiling.js';

export interface Target {
  name: string;
  want: string;
  got: string;
  /** undefined: not measured in this run. */
  met?: boolean;
}

export interface ReportInput {
  ingest: IngestResult[];
  floor: { lan?: FloorResult; wan?: FloorResult };
  large?: LargeResult;
  index?: IndexResult;
  sustained?: { ceilings: CeilingResult[] };
  backfill?: BackfillResult;
}

function ips(ingest: IngestResult[], id: ReceiverId, a: number): number | undefined {
  return ingest.find((r) => r.id === id && r.associations === a)?.median?.instPerSec;
}

const f1 = (x: number | undefined, d = 1): string => (x === undefined ? '—' : x.toFixed(d));

/**
 * What the storescp targets allow a receiver that answers only after a durable write: storescp's
 * own time per instance (it never fsyncs) plus one durable write of the same file, measured
 * on this disk in this run. No software on top can beat that with one association. The second
 * figure adds what `ack: spooled` promises besides: the index row committed beside the file.
 */
export function durableCeiling(x: ReportInput): string {
  const scp = ips(x.ingest, 'storescp', 1);
  const durableMs = x.floor.lan?.durableWriteMs;
  if (scp === undefined || durableMs === undefined) return 'Durable-answer ceiling: not measured';
  const orthanc = ips(x.ingest, 'orthanc', 1);
  const ceiling = (ms: number): string => {
    const c = 1000 / (1000 / scp + ms);
    return (
      `${c.toFixed(0)} inst/s = ${(c / scp).toFixed(2)}× storescp` +
      (orthanc ? `, ${(c / orthanc).toFixed(2)}× Orthanc` : '')
    );
  };
  const indexedMs = x.floor.lan?.durableIndexedMs;
  return (
    `Durable-answer ceiling (1 assoc): storescp's ${(1000 / scp).toFixed(2)} ms/instance + one durable write ${durableMs} ms` +
    ` -> ${ceiling(durableMs)}` +
    (indexedMs === undefined
      ? ''
      : `; + the file and its index row durable side by side ${indexedMs} ms -> ${ceiling(indexedMs)}` +
        reached(ips(x.ingest, 'gw-s3-spooled', 1), 1000 / (1000 / scp + indexedMs))) +
    `; ≥ 0.6× storescp would need a durable write of at most ${((1000 / scp) * (1 / 0.6 - 1)).toFixed(2)} ms` +
    durableCeiling4(x)
  );
}

/** With four associations: the disk's rate of durable files + index rows, four at a time. */
function durableCeiling4(x: ReportInput): string {
  const disk = x.floor.lan?.durableIndexed4InstPerSec;
  if (disk === undefined) return '';
  const scp = ips(x.ingest, 'storescp', 4);
  const gw = ips(x.ingest, 'gw-s3-spooled', 4);
  return (
    `\n  4 assoc: files and index rows made durable four at a time, nothing received: ${disk.toFixed(0)} inst/s` +
    (scp ? ` = ${(disk / scp).toFixed(2)}× storescp` : '') +
    reached(gw, disk)
  );
}

const reached = (gw: number | undefined, ceiling: number): string =>
  gw === undefined ? '' : ` (ack spooled reached ${((gw / ceiling) * 100).toFixed(0)} % of it)`;

export function evaluateTargets(x: ReportInput): Target[] {
  const t: Target[] = [];
  const ratio = (
    name: string,
    a: number | undefined,
    b: number | undefined,
    min: number,
    want: string,
  ): void => {
    if (a === undefined || b === undefined) return void t.push({ name, want, got: 'not measured' });
    const r = a / b;
    t.push({ name, want, got: `${r.toFixed(2)}× (${f1(a)} vs ${f1(b)} inst/s)`, met: r >= min });
  };
  const I = x.ingest;
  // The speed targets of issue 18 (round two), as ratios within this run.
  ratio(
    '(c) embedded default fs+PG, 1 assoc vs Orthanc',
    ips(I, 'gw-fs', 1),
    ips(I, 'orthanc', 1),
    2.0,
    '≥ 2.0×',
  );
  ratio(
    '(c) embedded default fs+PG, 4 assoc vs Orthanc',
    ips(I, 'gw-fs', 4),
    ips(I, 'orthanc', 4),
    1.0,
    '≥ 1.0×',
  );
  ratio(
    '(d) S3+PG spooled, 1 assoc vs storescp',
    ips(I, 'gw-s3-spooled', 1),
    ips(I, 'storescp', 1),
    0.6,
    '≥ 0.6×',
  );
  ratio(
    '(d) S3+PG spooled, 4 assoc vs storescp',
    ips(I, 'gw-s3-spooled', 4),
    ips(I, 'storescp', 4),
    0.6,
    '≥ 0.6×',
  );
  ratio(
    '(d) 1 assoc, 40 ms RTT vs none',
    ips(I, 'gw-s3-spooled-wan', 1),
    ips(I, 'gw-s3-spooled', 1),
    0.9,
    '≥ 0.9× (within 10%)',
  );
  ratio(
    '(d) 4 assoc, 40 ms RTT vs none',
    ips(I, 'gw-s3-spooled-wan', 4),
    ips(I, 'gw-s3-spooled', 4),
    0.9,
    '≥ 0.9× (within 10%)',
  );
  ratio(
    '(e) S3+PG stored, 1 assoc vs floor 1/(PUT+commit)',
    ips(I, 'gw-s3-stored', 1),
    x.floor.lan?.floorInstPerSec,
    0.8,
    '≥ 0.8×',
  );
  ratio(
    '(e) 1 assoc, 40 ms RTT vs its floor',
    ips(I, 'gw-s3-stored-wan', 1),
    x.floor.wan?.floorInstPerSec,
    0.8,
    '≥ 0.8×',
  );
  // While senders send, the uploader runs store.spool.uploadConcurrencyWhileReceiving (2)
  // uploads at once: the ceiling at that concurrency is the like-for-like one.
  const sustained = I.find((r) => r.id === 'gw-s3-sustained')?.median?.drainInstPerSec;
  ratio(
    '(d) sustained S3 rate vs bare PutObject, 2 at once',
    sustained,
    x.sustained?.ceilings.find((c) => c.concurrency === 2)?.instPerSec,
    0.8,
    '≥ 0.8×',
  );
  ratio(
    '(d) sustained S3 rate vs Orthanc, 1 assoc',
    sustained,
    ips(I, 'orthanc', 1),
    1.0,
    '≥ 1.0×',
  );
  const cpu = (id: ReceiverId): number | undefined =>
    I.find((r) => r.id === id && r.associations === 1)?.median?.cpuMsPerInstance;
  for (const id of ['gw-fs', 'gw-s3-spooled'] as const) {
    const [gw, scp] = [cpu(id), cpu('storescp')];
    const name = `CPU per instance, ${id === 'gw-fs' ? 'embedded default' : 'S3 spooled'} vs storescp`;
    t.push(
      gw === undefined || scp === undefined
        ? { name, want: '≤ 1.5×', got: 'not measured' }
        : {
            name,
            want: '≤ 1.5×',
            got: `${(gw / scp).toFixed(2)}× (${gw} vs ${scp} ms)`,
            met: gw / scp <= 1.5,
          },
    );
  }
  const L = x.large;
  t.push(
    L?.ok && L.peakRssMb !== undefined
      ? {
          name: `${(L.bytes / 1e9).toFixed(2)} GB instance: gateway peak RSS`,
          want: '< 200 MB',
          got: `${L.peakRssMb} MiB`,
          met: L.peakRssMb < 200,
        }
      : {
          name: '1 GB instance: gateway peak RSS',
          want: '< 200 MB',
          got: L ? `failed: ${L.error}` : 'not measured',
          met: L ? false : undefined,
        },
  );
  const X = x.index;
  const scale = X ? `${X.instances.toLocaleString('en-US')} rows` : '1,000,000 rows';
  const p95 = (name: string, v: number | undefined): void =>
    void t.push({
      name: `${name} p95 (${scale})`,
      want: '< 5 ms',
      got: v === undefined ? 'not measured' : `${v} ms`,
      met: v === undefined ? undefined : v < 5,
    });
  p95('study by UID (PgIndex.getStudy)', X?.studyByUid.p95Ms);
  p95('patient by ID (patients JOIN studies)', X?.patientById.p95Ms);
  t.push({
    name: `index bytes per instance (${scale})`,
    want: '< 1 KB (1000 B)',
    got: X ? `${X.bytesPerInstance} B (+ outbox ${X.outboxBytesPerInstance} B)` : 'not measured',
    met: X ? X.bytesPerInstance < 1000 : undefined,
  });
  t.push(...backfillTargets(x.backfill));
  return t;
}

function pad(s: string, n: number, right = false): string {
  return right ? s.padStart(n) : s.padEnd(n);
}

export function formatIngest(ingest: IngestResult[], rounds: number): string {
  const lines: string[] = [];
  const head =
    pad('receiver', 36) +
    pad('assoc', 6, true) +
    pad('inst/s', 8, true) +
    pad('min–max', 13, true) +
    pad('MB/s', 7, true) +
    pad('×scp', 6, true) +
    pad('×Orth', 6, true) +
    pad('drained/s', 10, true) +
    pad('CPU ms/i main', 14, true) +
    pad('RSS MiB', 8, true) +
    pad('load', 5, true) +
    '  phases ms recv/store/index';
  lines.push(head, '-'.repeat(head.length + 4));
  for (const a of [...new Set(ingest.map((r) => r.associations))]) {
    for (const r of ingest.filter((x) => x.associations === a)) {
      const m = r.median;
      const failed = r.runs.filter((x) => !x.ok).length;
      if (!m) {
        lines.push(
          pad(r.label, 36) + pad(String(a), 6, true) + `  FAILED: ${r.runs[0]?.error ?? '?'}`,
        );
        continue;
      }
      const scp = ips(ingest, 'storescp', a);
      const orth = ips(ingest, 'orthanc', a);
      const isGw = r.id.startsWith('gw-');
      const ph = m.phases;
      lines.push(
        pad(r.label, 36) +
          pad(String(a), 6, true) +
          pad(f1(m.instPerSec), 8, true) +
          pad(`${f1(m.minInstPerSec, 0)}–${f1(m.maxInstPerSec, 0)}`, 13, true) +
          pad(f1(m.mbPerSec), 7, true) +
          pad(isGw && scp ? (m.instPerSec / scp).toFixed(2) : '', 6, true) +
          pad(isGw && orth ? (m.instPerSec / orth).toFixed(2) : '', 6, true) +
          pad(m.drainInstPerSec !== undefined ? f1(m.drainInstPerSec) : '', 10, true) +
          pad(`${f1(m.cpuMsPerInstance, 2)} ${f1(m.mainCpuMsPerInstance, 2)}`, 14, true) +
          pad(f1(m.peakRssMb, 0), 8, true) +
          pad(f1(m.load1, 1), 5, true) +
          (ph ? `  ${ph.receiveMs}/${ph.storeMs}/${ph.indexMs}` : '') +
          (ph?.durableMs !== undefined ? ` (file ${ph.durableMs}, row ${ph.commitMs})` : '') +
          (failed ? `  (${failed}/${rounds} runs failed)` : ''),
      );
    }
  }
  return lines.join('\n');
}

export function formatTargets(targets: Target[]): string {
  return targets
    .map((t) => {
      const status = t.met === undefined ? '[ n/a   ]' : t.met ? '[ met   ]' : '[NOT met]';
      return `${status} ${pad(t.name, 52)} want ${pad(t.want, 20)} got ${t.got}`;
    })
    .join('\n');
}

export function formatProfile(title: string, p: ProfileSummary, top = 15): string {
  const lines = [
    `${title}: window ${p.windowMs} ms, gateway busy ${p.busyMs} ms (${(p.cpuShare * 100).toFixed(0)}% of one core)`,
    '  self ms    %  function (file:line)',
  ];
  for (const e of p.top.slice(0, top)) {
    lines.push(
      `  ${pad(String(e.selfMs), 7, true)} ${pad(e.pct.toFixed(1), 5, true)}  ${e.name} ${e.where}`,
    );
  }
  lines.push('  gateway functions by inclusive time (themselves + what they call):');
  for (const e of p.gatewayInclusive.slice(0, top)) {
    lines.push(
      `  ${pad(String(e.selfMs), 7, true)} ${pad(e.pct.toFixed(1), 5, true)}  ${e.name} ${e.where}`,
    );
  }
  lines.push(
    '  by package: ' +
      p.byPackage
        .slice(0, 10)
        .map((b) => `${b.name} ${b.pct}%`)
        .join(', '),
  );
  return lines.join('\n');
}
