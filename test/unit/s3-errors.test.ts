import t from 'tap';
import { GatewayError } from '../../src/errors.js';
import {
  backoffMs,
  classifyS3Error,
  isRetryable,
  s3Error,
  type S3ErrorKind,
} from '../../src/store/s3-errors.js';

/** An SDK service error as @aws-sdk/client-s3 throws it. */
const sdk = (name: string, status?: number): unknown =>
  Object.assign(new Error(`${name} happened`), {
    name,
    ...(status === undefined ? {} : { $metadata: { httpStatusCode: status } }),
  });
/** A Node.js network error (no HTTP response). */
const net = (code: string): unknown => Object.assign(new Error(`connect ${code}`), { code });

const CASES: Array<[S3ErrorKind, string, unknown]> = [
  ['integrity', 'BadDigest (Content-MD5)', sdk('BadDigest', 400)],
  ['integrity', 'InvalidDigest', sdk('InvalidDigest', 400)],
  ['integrity', 'XAmzContentSHA256Mismatch', sdk('XAmzContentSHA256Mismatch', 400)],
  ['integrity', 'Code field (RGW)', Object.assign(new Error('x'), { Code: 'BadDigest' })],
  ['integrity', 'GW_ERR_STORE_INTEGRITY', new GatewayError('GW_ERR_STORE_INTEGRITY', 'x')],
  ['precondition', '412', sdk('Unknown', 412)],
  ['precondition', 'PreconditionFailed', sdk('PreconditionFailed')],
  ['not-found', '404', sdk('Unknown', 404)],
  ['not-found', 'NotFound (HEAD)', sdk('NotFound')],
  ['not-found', 'NoSuchKey', sdk('NoSuchKey', 404)],
  ['not-found', 'NoSuchUpload', sdk('NoSuchUpload', 404)],
  ['conflict', '409', sdk('OperationAborted', 409)],
  ['transient', 'RequestTimeout (400)', sdk('RequestTimeout', 400)],
  ['transient', '500', sdk('InternalError', 500)],
  ['transient', '503 SlowDown', sdk('SlowDown', 503)],
  ['transient', '429', sdk('TooManyRequests', 429)],
  ['transient', '408', sdk('RequestTimeout', 408)],
  ['transient', 'TimeoutError (SDK)', sdk('TimeoutError')],
  ['transient', 'AbortError', sdk('AbortError')],
  ...[
    'ECONNREFUSED',
    'ECONNRESET',
    'ECONNABORTED',
    'EPIPE',
    'ETIMEDOUT',
    'EHOSTUNREACH',
    'ENETUNREACH',
    'ENOTFOUND',
    'EAI_AGAIN',
  ].map((c): [S3ErrorKind, string, unknown] => ['transient', c, net(c)]),
  ['transient', 'socket hang up', new Error('socket hang up')],
  ['transient', 'GW_ERR_STORE_UNAVAILABLE', new GatewayError('GW_ERR_STORE_UNAVAILABLE', 'x')],
  ['refused', 'NoSuchBucket (404, but no "no such key")', sdk('NoSuchBucket', 404)],
  ['refused', '403 AccessDenied', sdk('AccessDenied', 403)],
  ['refused', '400 InvalidArgument', sdk('InvalidArgument', 400)],
  ['refused', 'another GatewayError', new GatewayError('GW_ERR_INTERNAL', 'x')],
  ['refused', 'a plain Error', new Error('what')],
  ['refused', 'undefined', undefined],
];

t.test('classifyS3Error: every kind it distinguishes', async (t) => {
  const kinds = new Set(CASES.map(([k]) => k));
  t.same(
    [...kinds].sort(),
    ['conflict', 'integrity', 'not-found', 'precondition', 'refused', 'transient'],
    'the cases cover every kind',
  );
  for (const [kind, what, err] of CASES) {
    t.equal(classifyS3Error(err), kind, `${what}: ${kind}`);
    t.equal(isRetryable(err), kind === 'transient', `${what}: retryable iff transient`);
  }
});

t.test('s3Error: the GatewayError code of each kind', async (t) => {
  const codeOf: Record<S3ErrorKind, string> = {
    integrity: 'GW_ERR_STORE_INTEGRITY',
    conflict: 'GW_ERR_STORE_CONFLICT',
    precondition: 'GW_ERR_STORE_UNAVAILABLE',
    'not-found': 'GW_ERR_STORE_UNAVAILABLE',
    transient: 'GW_ERR_STORE_UNAVAILABLE',
    refused: 'GW_ERR_STORE_UNAVAILABLE',
  };
  for (const [kind, what, err] of CASES) {
    const e = s3Error('PutObject', err);
    if (err instanceof GatewayError) {
      t.equal(e, err, `${what}: passed through unchanged`);
      continue;
    }
    t.equal(e.code, codeOf[kind], `${what}: ${e.code}`);
    t.equal(e.cause, err, `${what}: keeps the cause`);
    t.match(e.message, /^S3 PutObject: /);
  }
});

t.test('backoffMs: full jitter below a doubling cap of at most 5 s', async (t) => {
  t.equal(
    backoffMs(1, () => 0),
    0,
  );
  for (const [attempt, cap] of [
    [1, 200],
    [2, 400],
    [3, 800],
    [5, 3200],
    [6, 5000],
    [20, 5000],
  ] as const) {
    t.equal(
      backoffMs(attempt, () => 0.999999),
      cap * 0.999999,
      `attempt ${attempt}: < ${cap} ms`,
    );
    t.equal(
      backoffMs(attempt, () => 0.5),
      cap / 2,
    );
  }
});
