/**
 * `dicom-gateway status --study UID --source AE`: is the study complete in the index against
 * the source? Lists what the source holds (SERIES and IMAGE level C-FIND) and compares the SOP
 * Instance UIDs with the index (src/scu/completeness.ts); prints "complete" or what is missing.
 * Exit 0 complete, 4 incomplete.
 */
import type { Logger } from 'pino';
import type { Config } from '../config.js';
import { GatewayError } from '../errors.js';
import { connectIndex } from '../index/open.js';
import { listSource } from '../scu/backfill-study.js';
import { diffStudy } from '../scu/completeness.js';
import { callablePeer } from '../scu/peer.js';
import { sourceOptions } from '../scu/source-access.js';
import { SourcePool } from '../scu/source-pool.js';
import { ExitCode } from './exit-codes.js';

export interface StudyStatus {
  studyInstanceUid: string;
  source: string;
  complete: boolean;
  sourceInstances: number;
  indexedInstances: number;
  missing: Array<{ seriesInstanceUid: string; sopInstanceUids: string[] }>;
}

export async function studyStatusCommand(
  cfg: Config,
  opts: { study: string; source?: string; json?: boolean },
  log: Logger,
  out: NodeJS.WritableStream = process.stdout,
): Promise<number> {
  const source = opts.source ?? onlyCallablePeer(cfg);
  const peer = callablePeer(cfg, source);
  const { index, close } = await connectIndex(cfg, log, { existingOnly: true });
  const pool = new SourcePool(sourceOptions(cfg, peer, 60_000), 1, log);
  try {
    const listed = await pool.use((a) => listSource(a, opts.study, 60_000));
    if (listed.length === 0) {
      throw new GatewayError('GW_ERR_PROTOCOL', `the source ${source} has no study ${opts.study}`);
    }
    const indexed = new Set((await index.listInstances(opts.study)).map((r) => r.sopInstanceUid));
    const diff = diffStudy(opts.study, listed, indexed);
    const missing = new Set(diff.missing);
    const status: StudyStatus = {
      studyInstanceUid: opts.study,
      source,
      complete: diff.missing.length === 0,
      sourceInstances: diff.total,
      indexedInstances: diff.total - diff.missing.length,
      missing: listed
        .map((s) => ({
          seriesInstanceUid: s.seriesUid,
          sopInstanceUids: s.instances.filter((u) => missing.has(u)),
        }))
        .filter((s) => s.sopInstanceUids.length > 0),
    };
    out.write(opts.json ? JSON.stringify(status, null, 2) + '\n' : formatStudyStatus(status));
    return status.complete ? ExitCode.Ok : ExitCode.Incomplete;
  } finally {
    await pool.close();
    await close();
  }
}

export function formatStudyStatus(s: StudyStatus): string {
  if (s.complete) {
    return `study ${s.studyInstanceUid}: complete against ${s.source} (${s.sourceInstances} instances)\n`;
  }
  const lines = [
    `study ${s.studyInstanceUid}: ${s.sourceInstances - s.indexedInstances} of ${s.sourceInstances} instances missing against ${s.source}`,
  ];
  for (const series of s.missing) {
    lines.push(`  series ${series.seriesInstanceUid}: ${series.sopInstanceUids.length} missing`);
    for (const uid of series.sopInstanceUids) lines.push(`    ${uid}`);
  }
  return lines.join('\n') + '\n';
}

function onlyCallablePeer(cfg: Config): string {
  const callable = cfg.dicom.peers.filter((p) => p.host !== undefined);
  if (callable.length !== 1) {
    throw new GatewayError(
      'GW_ERR_CONFIG',
      `--source is needed: ${callable.length} callable peers in dicom.peers`,
    );
  }
  return callable[0]!.aeTitle;
}
