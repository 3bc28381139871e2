import { GatewayError } from '../errors.js';

/** A destination resolver's refusal on its way to the answer, with the status it chose. */
export class DestinationRefusedError extends GatewayError {
  constructor(
    readonly status: number,
    reason: string,
  ) {
    super('GW_ERR_DESTINATION_REFUSED', reason);
  }
}
