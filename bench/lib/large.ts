// One ~1 GiB multi-frame instance into the gateway (S3 + PG, ack spooled): time to the
// C-STORE-RSP, time until it is in the bucket, and the gateway process's peak RSS (VmHWM).
import type { GeneratedFile } from '../../test/helpers/gen-study.js';
import { isGateway, startReceiver, waitDrained, type IngestContext } from './ingest.js';
import { sendFiles } from './send.js';
import { procStatusKb, round } from './util.js';

export interface LargeResult {
  ok: boolean;
  error?: string;
  bytes: number;
  frames: number;
  ackSeconds?: number;
  drainSeconds?: number;
  mbPerSec?: number;
  peakRssMb?: number;
  /** Largest VmRSS seen by sampling every 100 ms (VmHWM is the kernel's exact peak). */
  sampledMaxRssMb?: number;
}

export async function runLarge(
  ctx: IngestContext,
  file: GeneratedFile,
  frames: number,
): Promise<LargeResult> {
  const base: LargeResult = { ok: false, bytes: file.bytes, frames };
  await ctx.rgw.stop(); // a fresh cluster: the memstore OSD holds ~2x the bytes in RAM
  const r = await startReceiver(ctx, 'gw-s3-spooled', { bytes: file.bytes + ctx.warmup.bytes });
  let maxRssKb = 0;
  const sampler = setInterval(() => {
    maxRssKb = Math.max(maxRssKb, procStatusKb(r.pid, 'VmRSS') ?? 0);
  }, 100);
  try {
    if (!isGateway(r)) throw new Error('not a gateway');
    const warm = await sendFiles({
      port: r.port,
      calledAet: r.aeTitle,
      files: ctx.warmup.files.map((f) => f.path),
      associations: 1,
    });
    if (warm.failures.length) throw new Error(`warm-up failed: ${warm.failures[0]}`);
    await waitDrained(r, ctx.warmup.files.length, 120_000);
    const t0 = process.hrtime.bigint();
    const sent = await sendFiles({
      port: r.port,
      calledAet: r.aeTitle,
      files: [file.path],
      associations: 1,
      timeoutMs: 900_000,
    });
    if (sent.failures.length) throw new Error(`send failed: ${sent.failures[0]}`);
    await waitDrained(r, ctx.warmup.files.length + 1, 900_000);
    const drainMs = Number(process.hrtime.bigint() - t0) / 1e6;
    return {
      ...base,
      ok: true,
      ackSeconds: round(sent.ms / 1000, 2),
      drainSeconds: round(drainMs / 1000, 2),
      mbPerSec: round(file.bytes / 1e6 / (sent.ms / 1000), 1),
      peakRssMb: round(r.peakRssMb() ?? NaN, 1),
      sampledMaxRssMb: round(maxRssKb / 1024, 1),
    };
  } catch (err) {
    return { ...base, error: err instanceof Error ? err.message : String(err) };
  } finally {
    clearInterval(sampler);
    await r.stop().catch(() => undefined);
    await ctx.rgw.stop();
  }
}
