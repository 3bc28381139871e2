// The sender: DCMTK storescu (TCP_NODELAY=1 via test/helpers/dcmtk.ts), one process per
// association; with N associations each process sends its own contiguous 1/N of the files.
import { runDcmtk } from '../../test/helpers/dcmtk.js';

export interface SendResult {
  ms: number;
  /** storescu processes that did not exit 0 or logged an error, with their output. */
  failures: string[];
}

export async function sendFiles(o: {
  port: number;
  calledAet: string;
  files: string[];
  associations: number;
  timeoutMs?: number;
}): Promise<SendResult> {
  const n = Math.max(1, Math.min(o.associations, o.files.length));
  const per = Math.ceil(o.files.length / n);
  const groups = Array.from({ length: n }, (_, i) => o.files.slice(i * per, (i + 1) * per));
  const t0 = process.hrtime.bigint();
  const results = await Promise.all(
    groups.map((files, i) =>
      runDcmtk(
        'storescu',
        ['-aet', `BENCHSCU${i + 1}`, '-aec', o.calledAet, '127.0.0.1', String(o.port), ...files],
        { timeoutMs: o.timeoutMs ?? 600_000 },
      ),
    ),
  );
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  const failures = results
    .filter((r) => r.code !== 0 || /^[EF]: /m.test(r.stderr + r.stdout))
    .map(
      (r) =>
        `exit ${r.timedOut ? 'timeout' : (r.code ?? r.signal)}: ${(r.stderr + r.stdout).slice(-2000)}`,
    );
  return { ms, failures };
}
