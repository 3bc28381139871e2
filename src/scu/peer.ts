/**
 * A callable peer of the configuration (dicom.peers with host and port) as requestor options:
 * where it listens, its AE title, and DICOM TLS (PS3.15 B.1) with its files read here.
 */
import { readFileSync } from 'node:fs';
import type tls from 'node:tls';
import type { Config } from '../config.js';
import { GatewayError } from '../errors.js';

export type PeerConfig = Config['dicom']['peers'][number];

export interface CallablePeer {
  aeTitle: string;
  host: string;
  port: number;
  tls?: tls.ConnectionOptions;
  maxAssociations: number;
}

/** The callable peer with this AE title; GW_ERR_CONFIG naming what is wrong otherwise. */
export function callablePeer(cfg: Config, aeTitle: string): CallablePeer {
  return callableAmong(cfg.dicom.peers, aeTitle);
}

/** callablePeer() over a list of `dicom.peers` entries. */
export function callableAmong(peers: readonly PeerConfig[], aeTitle: string): CallablePeer {
  const p = peers.find((x) => x.aeTitle === aeTitle);
  if (!p) {
    throw new GatewayError('GW_ERR_CONFIG', `no peer ${aeTitle} in dicom.peers`);
  }
  if (p.host === undefined || p.port === undefined) {
    throw new GatewayError(
      'GW_ERR_CONFIG',
      `peer ${aeTitle} has no host and port in dicom.peers: it cannot be called`,
    );
  }
  return {
    aeTitle,
    host: p.host,
    port: p.port,
    tls: tlsOptions(p),
    maxAssociations: p.maxAssociations,
  };
}

function tlsOptions(p: PeerConfig): tls.ConnectionOptions | undefined {
  if (!p.tls) return undefined;
  const read = (file: string | undefined, key: string): string | undefined => {
    if (file === undefined) return undefined;
    try {
      return readFileSync(file, 'utf8');
    } catch (err) {
      throw new GatewayError(
        'GW_ERR_CONFIG',
        `peer ${p.aeTitle}: cannot read tls.${key} ${file}: ${(err as Error).message}`,
      );
    }
  };
  return {
    ca: read(p.tls.caFile, 'caFile'),
    cert: read(p.tls.certFile, 'certFile'),
    key: read(p.tls.keyFile, 'keyFile'),
    servername: p.tls.servername ?? p.host,
  };
}
