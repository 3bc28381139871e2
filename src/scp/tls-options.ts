import { readFileSync } from 'node:fs';
import { createSecureContext, type TLSSocket, type TlsOptions } from 'node:tls';
import { GatewayError } from '../errors.js';

/** `dicom.tls` as the config schema gives it (src/config.ts). */
export interface ScpTlsConfig {
  port: number;
  certFile: string;
  keyFile: string;
  caFile?: string;
  requireClientCert: boolean;
  minVersion: 'TLSv1.2' | 'TLSv1.3';
}

/**
 * Node TLS server options for the DICOM TLS listener (PS3.15 B.1, "The Basic TLS Secure
 * Transport Connection Profile"; BCP 195 floor TLS 1.2). Files are read once, at start; an
 * unreadable or unusable file is GW_ERR_CONFIG naming the key, like the schema's errors.
 *
 * Client certificates follow DCMTK's storescp options an administrator knows:
 *  - requireClientCert (--require-peer-cert): a client without a certificate signed by the
 *    CA bundle is refused in the handshake;
 *  - otherwise, with a caFile (--verify-peer-cert): a certificate is asked for, and one that
 *    is presented must verify (see verifyOptionalPeer); a client may present none.
 * requireClientCert without a caFile would trust every public CA Node ships: refused.
 */
export function loadTlsOptions(cfg: ScpTlsConfig, handshakeTimeoutMs: number): TlsOptions {
  const key = readConfigFile('dicom.tls.keyFile', cfg.keyFile);
  const cert = readConfigFile('dicom.tls.certFile', cfg.certFile);
  const ca = cfg.caFile ? readConfigFile('dicom.tls.caFile', cfg.caFile) : undefined;
  if (cfg.requireClientCert && !ca) {
    throw configError(
      'dicom.tls.requireClientCert',
      'needs dicom.tls.caFile (the CA that signs client certificates); without it any ' +
        'certificate from a public CA would be accepted',
    );
  }
  try {
    // Parses key, certificate and CA now, and checks that the key belongs to the certificate.
    createSecureContext({ key, cert, ca, minVersion: cfg.minVersion });
  } catch (err) {
    throw configError(
      'dicom.tls',
      `${cfg.keyFile} / ${cfg.certFile}${cfg.caFile ? ` / ${cfg.caFile}` : ''}: ${(err as Error).message}`,
    );
  }
  return {
    key,
    cert,
    ca,
    minVersion: cfg.minVersion,
    requestCert: ca !== undefined,
    rejectUnauthorized: cfg.requireClientCert,
    // The handshake counts against the ARTIM time an A-ASSOCIATE-RQ may take (PS3.8 9.1.5).
    handshakeTimeout: handshakeTimeoutMs,
  };
}

/**
 * With a CA but requireClientCert off: why to refuse a presented certificate that does not
 * verify (a client without one passes), or undefined.
 */
export function verifyOptionalPeer(socket: {
  authorized: boolean;
  authorizationError?: Error | string | null;
  getPeerCertificate(): object;
}): string | undefined {
  if (socket.authorized) return undefined;
  const presented = Object.keys(socket.getPeerCertificate()).length > 0;
  return presented ? `client certificate refused: ${String(socket.authorizationError)}` : undefined;
}

/** The client certificate's subject CN, for the association log (who came over TLS). */
export function peerCommonName(socket: TLSSocket): string | undefined {
  try {
    const cn: unknown = socket.getPeerCertificate()?.subject?.CN;
    return typeof cn === 'string' && cn.length > 0 ? cn : undefined;
  } catch {
    return undefined;
  }
}

function readConfigFile(key: string, file: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    throw configError(key, `cannot read ${file}: ${(err as Error).message}`);
  }
}

function configError(key: string, message: string): GatewayError {
  return new GatewayError('GW_ERR_CONFIG', `invalid configuration:\n  ${key}: ${message}`);
}
