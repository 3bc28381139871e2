// One extra run of a gateway mode (default (d), S3 + PG, ack spooled), one association, with the
// gateway under `node --cpu-prof`; the profile is cut to the measured send and to the drain after it.
import { copyFile, mkdir, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import {
  isGateway,
  startReceiver,
  waitDrained,
  type IngestContext,
  type ReceiverId,
} from './ingest.js';
import { summariseProfile, type ProfileSummary } from './profile.js';
import { sendFiles } from './send.js';
import { round } from './util.js';

export interface ProfileRunResult {
  id: ReceiverId;
  instPerSec: number;
  drainInstPerSec: number;
  /** From the first C-STORE of the measured study to its last response. */
  ingest: ProfileSummary;
  /** From the last response until the spool was drained (uploads only). */
  drain: ProfileSummary;
  /** The raw profile, for Chrome DevTools / speedscope (not committed). */
  profileFile: string;
}

export async function runProfile(
  ctx: IngestContext,
  id: ReceiverId,
  keepDir: string,
): Promise<ProfileRunResult> {
  const profDir = join(ctx.root, 'cpu-prof');
  await mkdir(profDir, { recursive: true });
  const r = await startReceiver(ctx, id, {
    nodeFlags: ['--cpu-prof', `--cpu-prof-dir=${profDir}`],
  });
  let t0: bigint;
  let tAck: bigint;
  let tDrain: bigint;
  try {
    if (!isGateway(r)) throw new Error('not a gateway');
    const files = (f: { files: Array<{ path: string }> }): string[] => f.files.map((x) => x.path);
    const warm = await sendFiles({
      port: r.port,
      calledAet: r.aeTitle,
      files: files(ctx.warmup),
      associations: 1,
    });
    if (warm.failures.length) throw new Error(`warm-up failed: ${warm.failures[0]}`);
    await waitDrained(r, ctx.warmup.files.length, 120_000);
    t0 = process.hrtime.bigint();
    const sent = await sendFiles({
      port: r.port,
      calledAet: r.aeTitle,
      files: files(ctx.fixture),
      associations: 1,
    });
    tAck = process.hrtime.bigint();
    if (sent.failures.length) throw new Error(`send failed: ${sent.failures[0]}`);
    await waitDrained(r, ctx.warmup.files.length + ctx.fixture.files.length, 600_000);
    tDrain = process.hrtime.bigint();
  } finally {
    await r.stop(); // SIGTERM: the gateway exits and node writes the profile
  }
  const name = (await readdir(profDir)).find((f) => f.endsWith('.cpuprofile'));
  if (!name) throw new Error(`no .cpuprofile in ${profDir}`);
  await mkdir(keepDir, { recursive: true });
  const kept = join(keepDir, `${id}.cpuprofile`);
  await copyFile(join(profDir, name), kept);
  const us = (t: bigint): number => Number(t / 1000n);
  const n = ctx.fixture.files.length;
  return {
    id,
    instPerSec: round(n / (Number(tAck - t0) / 1e9), 1),
    drainInstPerSec: round(n / (Number(tDrain - t0) / 1e9), 1),
    ingest: await summariseProfile(kept, { startUs: us(t0), endUs: us(tAck) }),
    drain: await summariseProfile(kept, { startUs: us(tAck), endUs: us(tDrain) }),
    profileFile: kept,
  };
}
