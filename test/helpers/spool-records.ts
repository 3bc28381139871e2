/** Index rows and spool records of made-up instances, for tests of the spool and uploader. */
import { createHash } from 'node:crypto';
import type { InstanceRecord } from '../../src/index/instance-index.js';
import type { SpoolRecord } from '../../src/ingest/spool-record.js';

/** A 'pending-upload' row of `bytes` (its size and sha256), owned by `owner`. */
export function pendingRow(uid: string, owner: string, bytes: Buffer): InstanceRecord {
  return {
    attributes: {
      studyInstanceUid: '1.2.826.0.1.1',
      seriesInstanceUid: '1.2.826.0.1.1.1',
      sopClassUid: '1.2.840.10008.5.1.4.1.1.2',
      sopInstanceUid: uid,
    },
    transferSyntaxUid: '1.2.840.10008.1.2.1',
    storeName: 'memory',
    objectKey: `p/${uid}.dcm`,
    size: bytes.length,
    sha256: createHash('sha256').update(bytes).digest('hex'),
    callingAeTitle: 'MOD',
    calledAeTitle: 'DICOMGW',
    sourceAddress: '127.0.0.1',
    receivedAt: new Date(),
    state: 'pending-upload',
    pendingOwner: owner,
  };
}

/** The spool record of `bytes` as ingest writes it (see SpoolRecord). */
export function testSpoolRecord(uid: string, bytes: Buffer, owner = 'test:spool'): SpoolRecord {
  return { rec: pendingRow(uid, owner, bytes), metadata: {} };
}
