/**
 * The `reconcile` block (the periodic backfill inside `serve`, src/scu/reconcile.ts) and
 * `notify.stableRequireComplete` (study.stable waits until the study is complete against a
 * source, src/notify/stable-gate.ts). Part of the one configuration schema (src/config.ts);
 * both name a callable peer of `dicom.peers`, checked by checkSourcePeers().
 */
import { z } from 'zod';
import { aeTitle } from '../config-fields.js';

export const reconcileSchema = z
  .object({
    /** Off by default: a round queries and moves from the hospital PACS. */
    enabled: z.boolean().default(false),
    /** The AE title of a callable peer (dicom.peers with host and port) to reconcile against. */
    source: aeTitle.optional(),
    /** Minutes from the start of one round to the start of the next. */
    intervalMinutes: z
      .number()
      .positive()
      .max(7 * 24 * 60)
      .default(60),
    /** Each round covers the Study Dates of the last this many days, today included. */
    windowDays: z.number().int().min(1).max(36_500).default(7),
    /** Compare SOP Instance UIDs even when the study-level instance counts agree. */
    deep: z.boolean().default(false),
    /** Seconds from the start of serve to the first round. */
    firstRunAfterSeconds: z.number().min(0).max(86_400).default(60),
    /** Connect, associate and C-FIND timeout (a C-MOVE's responses may take 10 minutes). */
    timeoutSeconds: z.number().positive().max(3600).default(30),
    /** A STUDY-level C-FIND returning this many matches is split (as `backfill --max-results`). */
    maxResults: z.number().int().min(1).max(1_000_000).default(1000),
  })
  .strict();

export type ReconcileConfig = z.infer<typeof reconcileSchema>;

export const stableRequireCompleteSchema = z
  .object({
    /** The callable peer a quiet study is compared with before its study.stable is written. */
    source: aeTitle,
    /** A study found incomplete, or not checked (source unreachable), is checked again after this. */
    recheckSeconds: z.number().positive().max(86_400).default(60),
    /** Connect, associate and C-FIND timeout of a check. */
    timeoutSeconds: z.number().positive().max(3600).default(30),
  })
  .strict();

export type StableRequireCompleteConfig = z.infer<typeof stableRequireCompleteSchema>;

interface PeerShape {
  aeTitle: string;
  host?: string | undefined;
  port?: number | undefined;
}

/** Issues for `reconcile.source` and `notify.stableRequireComplete.source` (callable peers). */
export function checkSourcePeers(
  c: {
    dicom: { peers: readonly PeerShape[] };
    reconcile: ReconcileConfig;
    notify: { stableRequireComplete?: StableRequireCompleteConfig | undefined };
  },
  ctx: z.RefinementCtx,
): void {
  const check = (ae: string | undefined, path: string[]): void => {
    const problem = sourceProblem(c.dicom.peers, ae);
    if (problem) ctx.addIssue({ code: 'custom', path, message: problem });
  };
  if (c.reconcile.enabled) check(c.reconcile.source, ['reconcile', 'source']);
  const gate = c.notify.stableRequireComplete;
  if (gate) check(gate.source, ['notify', 'stableRequireComplete', 'source']);
}

function sourceProblem(peers: readonly PeerShape[], ae: string | undefined): string | undefined {
  if (ae === undefined) return 'required when reconcile.enabled: the AE title of a callable peer';
  const p = peers.find((x) => x.aeTitle === ae);
  if (!p) return `no peer ${ae} in dicom.peers (a callable peer needs aeTitle, host and port)`;
  if (p.host === undefined || p.port === undefined)
    return `peer ${ae} in dicom.peers has no host and port: it cannot be called`;
  return undefined;
}
