import { isValidAeTitle } from '../dicom/ae-title.js';
import { GatewayError } from '../errors.js';
import { AddressSet } from '../net/cidr.js';

/**
 * Who may associate: the calling AE title, and the source address it comes from. Pure: the
 * association asks `checkAccess` with what it knows once an A-ASSOCIATE-RQ has arrived.
 *
 * Two lists, each a restriction when non-empty, both applied:
 *  - `dicom.allowedCallingAeTitles`: a plain allow-list of AE titles;
 *  - `dicom.peers`: AE titles each with the addresses (IPs, CIDRs) it may come from;
 *    no addresses = any address. The same AE title may be listed more than once.
 * A refusal is A-ASSOCIATE-RJ permanent, source service-user, reason 3
 * "calling-AE-title-not-recognized" (PS3.8 9.3.4, Table 9-21), also for a known AE title at
 * the wrong address: the table has no reason for addresses, and reason 3 tells the sender's
 * administrator where to look. The log line says which rule refused it.
 */

export interface PeerConfig {
  aeTitle: string;
  addresses: readonly string[];
}

export interface AccessPolicy {
  /** Empty: any calling AE title (unless `peers` restricts). */
  allowedCallingAeTitles: readonly string[];
  /** AE title -> where it may come from; `undefined` value = any address. Empty map: no restriction. */
  peers: ReadonlyMap<string, AddressSet | undefined>;
}

/** Why a calling AE is refused (for the log), or undefined when it may associate. */
export function checkAccess(
  callingAeTitle: string,
  remoteAddress: string,
  policy: AccessPolicy,
): string | undefined {
  if (callingAeTitle.length === 0) {
    // PS3.8 9.3.2: a calling AE title of 16 spaces ("no name") shall not be used.
    return 'calling AE title is empty';
  }
  if (!isValidAeTitle(callingAeTitle)) {
    // PS3.5 6.2 (VR AE): default repertoire without backslash and control characters. It is
    // written to File Meta (0002,0016) and the index, so it must be a valid AE title.
    return `calling AE title ${JSON.stringify(callingAeTitle)} has characters an AE title cannot have`;
  }
  const allowed = policy.allowedCallingAeTitles;
  if (allowed.length > 0 && !allowed.includes(callingAeTitle)) {
    return `calling AE title "${callingAeTitle}" is not in dicom.allowedCallingAeTitles`;
  }
  if (policy.peers.size === 0) return undefined;
  if (!policy.peers.has(callingAeTitle)) {
    return `calling AE title "${callingAeTitle}" is not a configured peer (dicom.peers)`;
  }
  const addresses = policy.peers.get(callingAeTitle);
  if (addresses && !addresses.has(remoteAddress)) {
    return `peer "${callingAeTitle}" is not allowed from address ${remoteAddress} (dicom.peers)`;
  }
  return undefined;
}

/**
 * Compiles `dicom.peers` once at start. A bad address is a GW_ERR_CONFIG naming its key,
 * like the schema's own errors (the schema checks only that it is a non-empty string).
 */
export function compilePeers(peers: readonly PeerConfig[]): Map<string, AddressSet | undefined> {
  const out = new Map<string, AddressSet | undefined>();
  peers.forEach((peer, i) => {
    const ae = peer.aeTitle.trim();
    const known = out.get(ae);
    // An entry without addresses opens the AE title to every address, whatever the others say.
    if (out.has(ae) && known === undefined) return;
    if (peer.addresses.length === 0) {
      out.set(ae, undefined);
      return;
    }
    const set = known ?? new AddressSet();
    peer.addresses.forEach((entry, j) => {
      try {
        set.add(entry);
      } catch (err) {
        throw new GatewayError(
          'GW_ERR_CONFIG',
          `invalid configuration:\n  dicom.peers.${i}.addresses.${j}: ${(err as Error).message}`,
        );
      }
    });
    out.set(ae, set);
  });
  return out;
}
