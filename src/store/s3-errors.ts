/**
 * What S3 errors mean for the gateway: which ones are worth another attempt, and which
 * GatewayError code each becomes. Shared by S3Store and its upload helpers.
 */
import { setTimeout as delay } from 'node:timers/promises';
import { GatewayError } from '../errors.js';
import { isNetworkErrorCode } from '../net/network-errors.js';

export type S3ErrorKind =
  'integrity' | 'precondition' | 'not-found' | 'conflict' | 'transient' | 'refused';

/** What an SDK error means for us; 'transient' ones are worth another attempt. */
export function classifyS3Error(err: unknown): S3ErrorKind {
  if (err instanceof GatewayError) {
    if (err.code === 'GW_ERR_STORE_INTEGRITY') return 'integrity';
    return err.code === 'GW_ERR_STORE_UNAVAILABLE' ? 'transient' : 'refused';
  }
  const e = (err ?? {}) as {
    name?: string;
    Code?: string;
    code?: string;
    message?: string;
    $metadata?: { httpStatusCode?: number };
  };
  const status = e.$metadata?.httpStatusCode;
  const name = e.Code ?? e.name;
  // BadDigest: the body did not match Content-MD5
  if (name === 'BadDigest' || name === 'InvalidDigest' || name === 'XAmzContentSHA256Mismatch') {
    return 'integrity';
  }
  if (status === 412 || name === 'PreconditionFailed') return 'precondition';
  if (name === 'NoSuchBucket') return 'refused'; // must not read as "no such key"
  if (status === 404 || name === 'NotFound' || name === 'NoSuchKey' || name === 'NoSuchUpload') {
    return 'not-found';
  }
  // 409 ConditionalRequestConflict / OperationAborted: a concurrent write to the key
  if (status === 409) return 'conflict';
  // 400 RequestTimeout: the server gave up waiting for our body (a slow or stalled link)
  if (name === 'RequestTimeout') return 'transient';
  if (status !== undefined)
    return status >= 500 || status === 429 || status === 408 ? 'transient' : 'refused';
  if (name === 'TimeoutError' || name === 'AbortError' || isNetworkErrorCode(e.code)) {
    return 'transient';
  }
  return /socket hang up|ECONNRESET|EPIPE/.test(e.message ?? '') ? 'transient' : 'refused';
}

export function isRetryable(err: unknown): boolean {
  return classifyS3Error(err) === 'transient';
}

/**
 * An SDK error as a GatewayError: BadDigest → GW_ERR_STORE_INTEGRITY, 409 →
 * GW_ERR_STORE_CONFLICT, everything else (network, timeouts, 5xx, refused credentials,
 * missing bucket) → GW_ERR_STORE_UNAVAILABLE: the sender should come back later.
 */
export function s3Error(what: string, err: unknown): GatewayError {
  if (err instanceof GatewayError) return err;
  const e = (err ?? {}) as {
    name?: string;
    message?: string;
    $metadata?: { httpStatusCode?: number };
  };
  const detail = `${e.name ?? 'Error'}${e.$metadata?.httpStatusCode ? ` ${e.$metadata.httpStatusCode}` : ''}: ${e.message ?? String(err)}`;
  const kind = classifyS3Error(err);
  const code =
    kind === 'integrity'
      ? 'GW_ERR_STORE_INTEGRITY'
      : kind === 'conflict'
        ? 'GW_ERR_STORE_CONFLICT'
        : 'GW_ERR_STORE_UNAVAILABLE';
  return new GatewayError(code, `S3 ${what}: ${detail}`, { cause: err });
}

/**
 * Full-jitter exponential backoff (a random wait below a cap that doubles with each attempt, so
 * many clients retrying at once spread out): below 200 ms, 400 ms, ... at most 5 s.
 */
export function backoffMs(attempt: number, random: () => number = Math.random): number {
  return random() * Math.min(5_000, 100 * 2 ** attempt);
}

/** Waits `backoffMs(attempt)` before attempt + 1. */
export function sleepBackoff(attempt: number): Promise<void> {
  return delay(backoffMs(attempt));
}

/** S3 quotes ETags; RGW 16 sends an empty one after CompleteMultipartUpload. */
export function stripEtag(etag: string | undefined): string | undefined {
  return etag?.replace(/^"|"$/g, '') || undefined;
}
