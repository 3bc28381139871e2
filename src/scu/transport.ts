import net from 'node:net';
import tls from 'node:tls';
import { GatewayError } from '../errors.js';

/**
 * Opens the transport connection of a requestor (PS3.8 9.1.1, AE-1): TCP, or DICOM TLS
 * (PS3.15 B.1) when `tlsOptions` is given. Resolves once connected (for TLS: once the
 * handshake is done); GW_ERR_PEER_UNREACHABLE or GW_ERR_TIMEOUT otherwise.
 */
export function openTransport(
  host: string,
  port: number,
  tlsOptions: tls.ConnectionOptions | undefined,
  timeoutMs: number,
): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const onConnected = (): void => {
      clearTimeout(timer);
      socket.off('error', onError);
      // Without TCP_NODELAY each request waits for the peer's delayed ACK (~40 ms).
      socket.setNoDelay(true);
      resolve(socket);
    };
    const socket = tlsOptions
      ? tls.connect({ host, port, ...tlsOptions }, onConnected)
      : net.connect({ host, port }, onConnected);
    const onError = (err: Error): void => {
      clearTimeout(timer);
      reject(
        new GatewayError(
          'GW_ERR_PEER_UNREACHABLE',
          `cannot connect to ${host}:${port}: ${err.message}`,
          {
            cause: err,
          },
        ),
      );
    };
    const timer = setTimeout(() => {
      socket.destroy();
      reject(
        new GatewayError(
          'GW_ERR_TIMEOUT',
          `connect to ${host}:${port}: nothing within ${timeoutMs} ms`,
        ),
      );
    }, timeoutMs);
    socket.once('error', onError);
  });
}
