/**
 * Who may use the admin endpoints. Pure: the HTTP server passes the request's path, peer
 * address and Authorization header, and answers what this returns.
 *
 * - /healthz is open to all: liveness probes come from anywhere and it reveals nothing.
 * - With a token configured, everything else needs `Authorization: Bearer <token>`
 *   (RFC 6750 2.1); otherwise 401 with a WWW-Authenticate challenge (RFC 6750 3).
 * - Without a token, only loopback peers are served (403 otherwise): exposing the port by
 *   mistake must not publish study UIDs and AE titles to the network.
 */
import { createHash, timingSafeEqual } from 'node:crypto';

export const OPEN_PATHS: ReadonlySet<string> = new Set(['/healthz']);

export type AuthDecision =
  { ok: true } | { ok: false; status: 401 | 403; headers: Record<string, string>; message: string };

export interface AuthRequest {
  path: string;
  remoteAddress: string | undefined;
  authorization: string | undefined;
}

export function authorize(req: AuthRequest, token: string | undefined): AuthDecision {
  if (OPEN_PATHS.has(req.path)) return { ok: true };
  if (token !== undefined) {
    const m = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(req.authorization ?? '');
    if (m && tokenEquals(m[1]!, token)) return { ok: true };
    return {
      ok: false,
      status: 401,
      headers: {
        'www-authenticate': m
          ? 'Bearer realm="dicom-gateway", error="invalid_token"'
          : 'Bearer realm="dicom-gateway"',
      },
      message: 'a bearer token is required',
    };
  }
  if (isLoopback(req.remoteAddress)) return { ok: true };
  return {
    ok: false,
    status: 403,
    headers: {},
    message:
      'no admin token is configured (admin.token / ADMIN_TOKEN): only loopback clients are served',
  };
}

/**
 * Constant-time comparison. Both sides are hashed first so that the comparison time does not
 * depend on the length of the secret either (timingSafeEqual needs equal lengths).
 */
export function tokenEquals(given: string, expected: string): boolean {
  const a = createHash('sha256').update(given, 'utf8').digest();
  const b = createHash('sha256').update(expected, 'utf8').digest();
  return timingSafeEqual(a, b);
}

/** 127.0.0.0/8 (RFC 1122 3.2.1.3), ::1 (RFC 4291 2.5.3), and 127/8 mapped into IPv6. */
export function isLoopback(address: string | undefined): boolean {
  if (!address) return false;
  const a = address.toLowerCase();
  if (a === '::1') return true;
  const v4 = a.startsWith('::ffff:') ? a.slice(7) : a;
  return /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(v4);
}
