/**
 * Progress of `verify` on stderr (stdout carries the results): a cli-progress bar on a
 * terminal, otherwise one line every `intervalMs` (journald, a cron mail, CI logs).
 */
import cliProgress from 'cli-progress';
import { formatBytes } from './status-table.js';
import type { VerifyCounts } from './verify-objects.js';

export interface Progress {
  update(c: VerifyCounts): void;
  /** Clears the bar / stops the timer; safe to call twice. */
  stop(): void;
}

export function createProgress(o: {
  total: number;
  totalBytes: number;
  stream: NodeJS.WriteStream;
  tty: boolean;
  intervalMs?: number;
}): Progress {
  if (o.tty) {
    const bar = new cliProgress.SingleBar(
      {
        stream: o.stream,
        format:
          'verify [{bar}] {percentage}% {value}/{total} | {problems} problems | {rate} | ETA {eta_formatted}',
        hideCursor: true,
        clearOnComplete: false,
        etaBuffer: 200,
      },
      cliProgress.Presets.shades_classic,
    );
    const t0 = Date.now();
    bar.start(o.total, 0, { problems: 0, rate: '-' });
    let stopped = false;
    return {
      update: (c) =>
        bar.update(c.checked + c.skipped, { problems: problems(c), rate: rate(c.bytes, t0) }),
      stop: () => {
        if (stopped) return;
        stopped = true;
        bar.stop();
      },
    };
  }
  const t0 = Date.now();
  let last: VerifyCounts | undefined;
  const line = (): void => {
    if (!last) return;
    const done = last.checked + last.skipped;
    const pct = o.total > 0 ? ` (${Math.floor((100 * done) / o.total)}%)` : '';
    o.stream.write(
      `verify: ${done}/${o.total}${pct}, ${last.ok} ok, ${last.mismatched} mismatched, ` +
        `${last.missing} missing, ${last.errors} errors, ${rate(last.bytes, t0)}\n`,
    );
  };
  const timer = setInterval(line, o.intervalMs ?? 10_000);
  timer.unref();
  o.stream.write(`verify: ${o.total} objects, ${formatBytes(o.totalBytes)} to check\n`);
  return {
    update: (c) => {
      last = { ...c };
    },
    stop: () => clearInterval(timer),
  };
}

function problems(c: VerifyCounts): number {
  return c.mismatched + c.missing + c.errors;
}

function rate(bytes: number, t0: number): string {
  const s = (Date.now() - t0) / 1000;
  return s > 0 ? `${formatBytes(bytes / s)}/s` : '-';
}
