/**
 * Sends a Storage Commitment report (N-EVENT-REPORT-RQ, PS3.4 J.3.3) on a new association to the
 * requester, a callable `dicom.peers` entry found by its AE title. The gateway is the association
 * requestor but the SCP of the SOP class, so it proposes the SCP role (PS3.4 J.3.3, PS3.7
 * D.3.3.4: SCU role 0, SCP role 1).
 */
import { DimseStatus, GatewayError } from '../errors.js';
import { EXPLICIT_VR_LE, IMPLICIT_VR_LE } from '../dicom/uids.js';
import { CommandField, type DimseCommand } from '../dimse/command.js';
import { RequestorAssociation } from '../scu/association.js';
import { callableAmong, type PeerConfig } from '../scu/peer.js';
import type { RequestorTimeouts } from '../scu/options.js';
import { encodeCommitmentReport, type CommitmentReport } from './commitment-dataset.js';
import { EventType, STORAGE_COMMITMENT_SOP_CLASS, STORAGE_COMMITMENT_SOP_INSTANCE } from './sop.js';

export interface ReportTarget {
  /** The requester's AE title (called AE of the report association). */
  requesterAeTitle: string;
  /** Ours, as the requester called us (calling AE of the report association). */
  callingAeTitle: string;
}

/** The N-EVENT-REPORT-RQ command fields of a report (PS3.4 J.3.3.1, PS3.7 10.3.1). */
export function reportCommand(report: CommitmentReport): Omit<DimseCommand, 'hasDataset'> {
  return {
    commandField: CommandField.NEventReportRq,
    affectedSopClassUid: STORAGE_COMMITMENT_SOP_CLASS,
    affectedSopInstanceUid: STORAGE_COMMITMENT_SOP_INSTANCE,
    eventTypeId: report.failed.length > 0 ? EventType.Failures : EventType.AllCommitted,
  };
}

export interface ReportSenderOptions {
  /** `dicom.peers`: the requester must be a callable one (host and port). */
  peers: readonly PeerConfig[];
  timeoutMs: number;
  implementationClassUid: string;
  implementationVersionName?: string;
}

export class ReportSender {
  constructor(private readonly o: ReportSenderOptions) {}

  /** Resolves once the requester answered 0000; rejects with a GatewayError otherwise. */
  async send(target: ReportTarget, report: CommitmentReport): Promise<void> {
    // GW_ERR_CONFIG when the requester is not a callable peer (dicom.peers with host and port).
    const peer = callableAmong(this.o.peers, target.requesterAeTitle);
    const timeouts: Partial<RequestorTimeouts> = {
      connectMs: this.o.timeoutMs,
      associateMs: this.o.timeoutMs,
      responseMs: this.o.timeoutMs,
      releaseMs: this.o.timeoutMs,
    };
    const assoc = await RequestorAssociation.open({
      host: peer.host,
      port: peer.port,
      callingAeTitle: target.callingAeTitle,
      calledAeTitle: peer.aeTitle,
      contexts: [
        {
          abstractSyntaxUid: STORAGE_COMMITMENT_SOP_CLASS,
          transferSyntaxUids: [EXPLICIT_VR_LE, IMPLICIT_VR_LE],
        },
      ],
      roleSelections: [{ sopClassUid: STORAGE_COMMITMENT_SOP_CLASS, scu: false, scp: true }],
      tls: peer.tls,
      implementationClassUid: this.o.implementationClassUid,
      implementationVersionName: this.o.implementationVersionName,
      timeouts,
    });
    try {
      const pc = assoc.contextFor(STORAGE_COMMITMENT_SOP_CLASS);
      if (!pc) {
        throw new GatewayError(
          'GW_ERR_ASSOCIATION_REJECTED',
          `${peer.aeTitle} accepted no Storage Commitment presentation context`,
        );
      }
      const dataset = encodeCommitmentReport(report, pc.transferSyntaxUid);
      const rsp = await assoc.send(pc, reportCommand(report), dataset);
      const status = rsp.command.status ?? 0xffff;
      if (status !== DimseStatus.Success) {
        throw new GatewayError(
          'GW_ERR_DESTINATION_REFUSED',
          `${peer.aeTitle} answered the N-EVENT-REPORT-RQ with status 0x${status.toString(16).padStart(4, '0')}`,
        );
      }
      await assoc.release().catch(() => assoc.abort());
    } catch (err) {
      assoc.abort();
      throw err;
    }
  }
}
