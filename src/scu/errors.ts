import { GatewayError } from '../errors.js';
import type { AssociateRj } from '../dimse/acse.js';

/** The peer answered A-ASSOCIATE-RJ (PS3.8 9.3.4): its result, source and reason, as sent. */
export class AssociationRejectedError extends GatewayError {
  constructor(readonly rejection: AssociateRj) {
    const { result, source, reason } = rejection;
    super(
      'GW_ERR_ASSOCIATION_REJECTED',
      `association rejected (${result === 1 ? 'permanent' : 'transient'}, source ${source}, reason ${reason})`,
    );
    this.name = 'AssociationRejectedError';
  }
}

/** The peer sent A-ABORT (PS3.8 9.3.8), or the transport closed under an association (A-P-ABORT). */
export class AssociationAbortedError extends GatewayError {
  constructor(
    message: string,
    /** PS3.8 Table 9-26, when the peer sent an A-ABORT PDU. */
    readonly abort?: { source: number; reason: number },
  ) {
    super('GW_ERR_ASSOCIATION_ABORTED', message);
    this.name = 'AssociationAbortedError';
  }
}
