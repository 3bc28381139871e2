/**
 * `dicom-gateway backfill --source AE (--from/--to | --days N) [--modality] [--study UID]
 * [--dry-run] [--json] [--deep]`: makes the index complete against a callable peer (the engine:
 * src/scu/backfill.ts). The moved instances arrive at the running `serve`, so its SCP is checked
 * with a C-ECHO first. Exit 0 only when every study in range is complete afterwards.
 */
import type { Logger } from 'pino';
import type { Config } from '../config.js';
import { VERIFICATION_SOP_CLASS, IMPLICIT_VR_LE } from '../dicom/uids.js';
import { CommandField } from '../dimse/command.js';
import { GatewayError, isGatewayError } from '../errors.js';
import { connectIndex } from '../index/open.js';
import { RequestorAssociation } from '../scu/association.js';
import { runBackfill } from '../scu/backfill.js';
import { callablePeer } from '../scu/peer.js';
import { sourceOptions } from '../scu/source-access.js';
import { SourcePool } from '../scu/source-pool.js';
import { lastDays } from '../scu/windows.js';
import {
  createBackfillProgress,
  formatReport,
  totals,
  type BackfillReport,
} from './backfill-report.js';
import { ExitCode } from './exit-codes.js';

export interface BackfillCliOptions {
  source: string;
  from?: string;
  to?: string;
  days?: number;
  modality?: string;
  study?: string;
  dryRun?: boolean;
  json?: boolean;
  deep?: boolean;
  maxResults: number;
  timeout: number;
}

export interface BackfillIo {
  out: NodeJS.WritableStream;
  err: NodeJS.WritableStream;
  tty: boolean;
  signal?: AbortSignal;
}

export async function backfillCommand(
  cfg: Config,
  opts: BackfillCliOptions,
  log: Logger,
  io: BackfillIo,
): Promise<number> {
  const scope = resolveScope(opts);
  const peer = callablePeer(cfg, opts.source);
  const timeoutMs = opts.timeout * 1000;
  await echoOwnScp(cfg, timeoutMs);
  const { index, close } = await connectIndex(cfg, log, { existingOnly: true });
  const engineLog = io.tty ? log.child({}, { level: 'warn' }) : log;
  const pool = new SourcePool(sourceOptions(cfg, peer, timeoutMs), peer.maxAssociations, engineLog);
  const progress = createBackfillProgress(io.err, io.tty);
  const t0 = Date.now();
  try {
    const outcome = await runBackfill({
      ...scope,
      sourceAe: peer.aeTitle,
      pool,
      index,
      destination: cfg.dicom.aeTitle,
      deep: opts.deep === true,
      dryRun: opts.dryRun === true,
      maxResults: opts.maxResults,
      findTimeoutMs: timeoutMs,
      signal: io.signal,
      log: engineLog,
      onFound: (n) => progress.found(n),
      onStudy: (r) => progress.study(r),
    });
    progress.stop();
    const t = totals(outcome.studies);
    const report: BackfillReport = {
      source: peer.aeTitle,
      run: outcome.run?.id,
      resumed: outcome.resumed,
      dryRun: opts.dryRun === true,
      from: scope.from,
      to: scope.to,
      modality: scope.modality,
      study: scope.studyUid,
      complete: t.failed === 0 && outcome.unlisted.length === 0,
      seconds: (Date.now() - t0) / 1000,
      totals: t,
      unlistedWindows: outcome.unlisted,
      studies: outcome.studies,
    };
    io.out.write(opts.json ? JSON.stringify(report, null, 2) + '\n' : formatReport(report));
    return report.complete ? ExitCode.Ok : ExitCode.Incomplete;
  } catch (err) {
    progress.stop();
    if (io.signal?.aborted) {
      throw new GatewayError(
        'GW_ERR_INTERNAL',
        'backfill interrupted; run it again with the same options to resume',
        { cause: err },
      );
    }
    throw err;
  } finally {
    await pool.close();
    await close();
  }
}

/** ISO from/to from --from/--to or --days, or a single study; usage errors name the option. */
export function resolveScope(o: BackfillCliOptions): {
  from?: string;
  to?: string;
  modality?: string;
  studyUid?: string;
} {
  if (o.study !== undefined) {
    if (o.from || o.to || o.days)
      throw usage('--study cannot be combined with --from, --to or --days');
    return { studyUid: o.study };
  }
  if (o.days !== undefined) {
    if (o.from || o.to) throw usage('--days cannot be combined with --from or --to');
    return { ...lastDays(o.days), modality: o.modality };
  }
  if (!o.from || !o.to) throw usage('give --from and --to, or --days, or --study');
  if (o.from > o.to) throw usage(`--from ${o.from} is after --to ${o.to}`);
  return { from: o.from, to: o.to, modality: o.modality };
}

function usage(message: string): GatewayError {
  return new GatewayError('GW_ERR_CONFIG', message);
}

/**
 * C-ECHO our own SCP: the moved instances go there, so a backfill without a running `serve`
 * would only wait for the source's sub-operations to fail. A connection that fails is fatal;
 * an association refused (our own AE not in the allow-list) still proves serve is up.
 */
async function echoOwnScp(cfg: Config, timeoutMs: number): Promise<void> {
  const host = ['0.0.0.0', '::', ''].includes(cfg.dicom.host) ? '127.0.0.1' : cfg.dicom.host;
  const where = `${cfg.dicom.aeTitle} at ${host}:${cfg.dicom.port}`;
  let assoc: RequestorAssociation;
  try {
    assoc = await RequestorAssociation.open({
      host,
      port: cfg.dicom.port,
      callingAeTitle: cfg.dicom.aeTitle,
      calledAeTitle: cfg.dicom.aeTitle,
      contexts: [
        { abstractSyntaxUid: VERIFICATION_SOP_CLASS, transferSyntaxUids: [IMPLICIT_VR_LE] },
      ],
      timeouts: {
        connectMs: timeoutMs,
        associateMs: timeoutMs,
        responseMs: timeoutMs,
        releaseMs: timeoutMs,
      },
    });
  } catch (err) {
    if (isGatewayError(err, 'GW_ERR_ASSOCIATION_REJECTED')) return;
    throw new GatewayError(
      'GW_ERR_PEER_UNREACHABLE',
      `the gateway's serve is not reachable (${where}): ${(err as Error).message}. ` +
        'Start `dicom-gateway serve` first: the moved instances are received by it.',
      { cause: err },
    );
  }
  try {
    const pc = assoc.contextFor(VERIFICATION_SOP_CLASS);
    if (pc)
      await assoc.send(pc, {
        commandField: CommandField.CEchoRq,
        affectedSopClassUid: VERIFICATION_SOP_CLASS,
      });
    await assoc.release();
  } catch {
    assoc.abort();
  }
}
