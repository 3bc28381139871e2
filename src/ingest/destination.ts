import { GatewayError } from '../errors.js';
import type { InstanceAttributes } from '../index/instance-index.js';
import type { HeaderSource } from '../route/facts.js';
import type { AssociationInfo } from '../scp/association.js';
import type { ObjectStore } from '../store/object-store.js';
import type { CommitStrategy } from './commit.js';

/**
 * Where one instance goes, decided once its header has been read: the store, the key prefix
 * in it, and how it is committed before the answer (direct, spooled, stored).
 *
 * Receipt and destination: the data set is received before its header is known, so it goes
 * to the process's one receipt place, which every destination shares: the spool (incoming/,
 * or in place under ready/<uid>.dcm when the configured store acknowledges from the spool)
 * when there is one, else the configured local store's staging directory. A commit takes the
 * file from there: the spool admits it by a rename (same directory tree), a local store links
 * it (or copies it when it sits on another file system), a remote store uploads it.
 */
export interface Destination {
  /** The configured store's name, recorded in the index (`default`, or a name under `stores`). */
  storeName: string;
  store: ObjectStore;
  /** S3 bucket, recorded in the index; undefined for a local store. */
  bucket?: string;
  /** Key prefix inside the store ('' for none). */
  prefix: string;
  commit: CommitStrategy;
  /** Labels recorded with the instance in the index (routing rules). */
  labels?: readonly string[];
  /** Notify destinations named by the routing rule: in the index and the outbox event. */
  destinations?: readonly string[];
}

/**
 * The instance is not taken: answered with `status` (e.g. PS3.4 B.2.3 A700, or 0122 "SOP
 * Class not supported"), logged as instance.failed with `reason`. Nothing is kept of it: no
 * object, no spool file, no index row.
 */
export interface DestinationRefusal {
  refuse: { status: number; reason: string };
}

/**
 * Chooses an instance's destination from its association and header attributes; pure and
 * synchronous (routing rules are computed, not looked up). Ingest's default answers the
 * configured store.
 */
export type DestinationResolver = (
  assoc: AssociationInfo,
  attrs: InstanceAttributes,
  /** The whole header as read (any attribute, for routing rules on tags). */
  header: HeaderSource,
) => Destination | DestinationRefusal;

/** The destination, or throws GW_ERR_DESTINATION_REFUSED carrying the refusal's status. */
export function resolveOrRefuse(
  resolve: DestinationResolver,
  assoc: AssociationInfo,
  attrs: InstanceAttributes,
  header: HeaderSource,
): Destination {
  const d = resolve(assoc, attrs, header);
  if ('refuse' in d) {
    throw new GatewayError('GW_ERR_DESTINATION_REFUSED', d.refuse.reason, {
      status: d.refuse.status,
    });
  }
  return d;
}
