/**
 * Credentials for the YDB driver, from `index.auth` or, without it, the environment variables
 * the YDB SDKs share: YDB_ACCESS_TOKEN_CREDENTIALS (a token), YDB_SERVICE_ACCOUNT_KEY_FILE_CREDENTIALS
 * (a key file), YDB_METADATA_CREDENTIALS=1 (the cloud VM's metadata service); none of them:
 * anonymous (a local YDB).
 *
 * @ydbjs/auth 6.0.4 has no service-account key provider, so ServiceAccountKeyProvider below
 * does what the other SDKs do: a PS256 JWT signed with the key, exchanged at Yandex Cloud IAM
 * for an IAM token (valid 12 h; renewed an hour before it runs out).
 */
import { createSign, constants } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { CredentialsProvider } from '@ydbjs/auth';
import { AccessTokenCredentialsProvider } from '@ydbjs/auth/access-token';
import { AnonymousCredentialsProvider } from '@ydbjs/auth/anonymous';
import { MetadataCredentialsProvider } from '@ydbjs/auth/metadata';
import { GatewayError } from '../errors.js';
import type { YdbAuthConfig } from './ydb-config.js';

export const IAM_TOKEN_URL = 'https://iam.api.cloud.yandex.net/iam/v1/tokens';

/** Which credentials, decided from config and environment (no I/O: testable, printable). */
export type YdbAuthChoice =
  | { kind: 'token'; token: string; from: string }
  | { kind: 'serviceAccountKey'; file: string }
  | { kind: 'metadata' }
  | { kind: 'anonymous' };

export function chooseYdbAuth(
  auth: YdbAuthConfig | undefined,
  env: NodeJS.ProcessEnv = process.env,
): YdbAuthChoice {
  if (auth?.token !== undefined)
    return { kind: 'token', token: auth.token, from: 'index.auth.token' };
  if (auth?.tokenEnv !== undefined) {
    const token = env[auth.tokenEnv];
    if (!token) {
      throw new GatewayError(
        'GW_ERR_CONFIG',
        `index.auth.tokenEnv: environment variable ${auth.tokenEnv} is not set`,
      );
    }
    return { kind: 'token', token, from: auth.tokenEnv };
  }
  if (auth?.serviceAccountKeyFile !== undefined) {
    return { kind: 'serviceAccountKey', file: auth.serviceAccountKeyFile };
  }
  if (auth?.metadata) return { kind: 'metadata' };
  if (auth !== undefined) return { kind: 'anonymous' };
  if (env.YDB_ACCESS_TOKEN_CREDENTIALS) {
    return {
      kind: 'token',
      token: env.YDB_ACCESS_TOKEN_CREDENTIALS,
      from: 'YDB_ACCESS_TOKEN_CREDENTIALS',
    };
  }
  if (env.YDB_SERVICE_ACCOUNT_KEY_FILE_CREDENTIALS) {
    return { kind: 'serviceAccountKey', file: env.YDB_SERVICE_ACCOUNT_KEY_FILE_CREDENTIALS };
  }
  if (env.YDB_METADATA_CREDENTIALS === '1') return { kind: 'metadata' };
  return { kind: 'anonymous' };
}

export async function credentialsProvider(choice: YdbAuthChoice): Promise<CredentialsProvider> {
  switch (choice.kind) {
    case 'token':
      return new AccessTokenCredentialsProvider({ token: choice.token });
    case 'metadata':
      return new MetadataCredentialsProvider({});
    case 'anonymous':
      return new AnonymousCredentialsProvider();
    case 'serviceAccountKey':
      return new ServiceAccountKeyProvider(await readServiceAccountKey(choice.file));
  }
}

export interface ServiceAccountKey {
  id: string;
  serviceAccountId: string;
  privateKey: string;
}

export async function readServiceAccountKey(file: string): Promise<ServiceAccountKey> {
  let json: Record<string, unknown>;
  try {
    json = JSON.parse(await readFile(file, 'utf8')) as Record<string, unknown>;
  } catch (err) {
    throw new GatewayError(
      'GW_ERR_CONFIG',
      `index.auth.serviceAccountKeyFile ${file}: ${(err as Error).message}`,
    );
  }
  const { id, service_account_id: sa, private_key: key } = json;
  if (typeof id !== 'string' || typeof sa !== 'string' || typeof key !== 'string') {
    throw new GatewayError(
      'GW_ERR_CONFIG',
      `index.auth.serviceAccountKeyFile ${file}: needs id, service_account_id and private_key`,
    );
  }
  return { id, serviceAccountId: sa, privateKey: key };
}

const b64url = (v: string | Buffer): string => Buffer.from(v).toString('base64url');

/** The JWT Yandex Cloud IAM exchanges for an IAM token (PS256, audience the token URL). */
export function serviceAccountJwt(key: ServiceAccountKey, nowMs = Date.now()): string {
  const iat = Math.floor(nowMs / 1000);
  const header = b64url(JSON.stringify({ typ: 'JWT', alg: 'PS256', kid: key.id }));
  const body = b64url(
    JSON.stringify({ aud: IAM_TOKEN_URL, iss: key.serviceAccountId, iat, exp: iat + 3600 }),
  );
  const signature = createSign('RSA-SHA256').update(`${header}.${body}`).sign({
    key: key.privateKey,
    padding: constants.RSA_PKCS1_PSS_PADDING,
    saltLength: constants.RSA_PSS_SALTLEN_DIGEST,
  });
  return `${header}.${body}.${b64url(signature)}`;
}

export class ServiceAccountKeyProvider extends CredentialsProvider {
  private token: { value: string; renewAt: number } | undefined;
  private pending: Promise<string> | undefined;

  constructor(
    private readonly key: ServiceAccountKey,
    private readonly fetchFn: typeof fetch = fetch,
  ) {
    super();
  }

  getToken(force = false, signal?: AbortSignal): Promise<string> {
    if (!force && this.token && Date.now() < this.token.renewAt) {
      return Promise.resolve(this.token.value);
    }
    this.pending ??= this.exchange(signal).finally(() => (this.pending = undefined));
    return this.pending;
  }

  private async exchange(signal: AbortSignal | undefined): Promise<string> {
    const res = await this.fetchFn(IAM_TOKEN_URL, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ jwt: serviceAccountJwt(this.key) }),
      signal: signal ?? AbortSignal.timeout(10_000),
    });
    if (!res.ok) {
      throw new GatewayError('GW_ERR_INDEX_UNAVAILABLE', `YDB IAM token: HTTP ${res.status}`);
    }
    const json = (await res.json()) as { iamToken?: unknown; expiresAt?: unknown };
    if (typeof json.iamToken !== 'string') {
      throw new GatewayError('GW_ERR_INDEX_UNAVAILABLE', 'YDB IAM token: no iamToken in answer');
    }
    const expires = typeof json.expiresAt === 'string' ? Date.parse(json.expiresAt) : NaN;
    const renewAt = Number.isFinite(expires) ? expires - 3_600_000 : Date.now() + 3_600_000;
    this.token = { value: json.iamToken, renewAt };
    return json.iamToken;
  }
}
