/**
 * Socket and resolver errno codes (Node's `err.code`) that mean "the peer or the network is
 * away", not "the request was wrong": a retry later may succeed. One list for every client
 * (S3, PostgreSQL, DICOM peers).
 */
const NETWORK_CODES: ReadonlySet<string> = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
]);

export function isNetworkErrorCode(code: string | undefined): boolean {
  return code !== undefined && NETWORK_CODES.has(code);
}
