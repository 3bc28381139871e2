import t from 'tap';
import { DimseStatus, GatewayError, toDimseStatus } from '../../src/errors.js';

t.test('maps gateway errors to DIMSE statuses', async (t) => {
  t.equal(
    toDimseStatus(new GatewayError('GW_ERR_DATASET_TRUNCATED', 'x')),
    DimseStatus.CannotUnderstand,
  );
  t.equal(
    toDimseStatus(new GatewayError('GW_ERR_INDEX_UNAVAILABLE', 'x')),
    DimseStatus.OutOfResources,
  );
  t.equal(toDimseStatus(new GatewayError('GW_ERR_DATASET_MISMATCH', 'x')), 0xa900);
  t.equal(toDimseStatus(new Error('boom')), DimseStatus.ProcessingFailure);
});
