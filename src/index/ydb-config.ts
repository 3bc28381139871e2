/**
 * The `index` variant `type: ydb` (src/index/ydb-index.ts): a YDB database, local or serverless
 * (Yandex Cloud). Part of the one configuration schema (src/config.ts adds it to the `index`
 * union). Credentials: one of `auth`'s keys, or, without `auth`, the YDB SDKs' usual
 * environment variables (src/index/ydb-auth.ts).
 */
import { z } from 'zod';
import { envName } from '../config-fields.js';

export const ydbAuthSchema = z
  .object({
    /** An IAM or static access token, as written here (prefer tokenEnv). */
    token: z.string().min(1).optional(),
    /** The environment variable holding the access token. */
    tokenEnv: envName.optional(),
    /** A Yandex Cloud service account's authorized key (JSON: id, service_account_id, private_key). */
    serviceAccountKeyFile: z.string().min(1).optional(),
    /** Tokens from the cloud VM's metadata service (the VM's service account). */
    metadata: z.boolean().optional(),
  })
  .strict()
  .refine(
    (a) =>
      [a.token, a.tokenEnv, a.serviceAccountKeyFile, a.metadata ? true : undefined].filter(
        (v) => v !== undefined,
      ).length <= 1,
    'give one of token, tokenEnv, serviceAccountKeyFile, metadata',
  );

export type YdbAuthConfig = z.infer<typeof ydbAuthSchema>;

export const ydbIndexSchema = z
  .object({
    type: z.literal('ydb'),
    /** grpc://host:2136 (local) or grpcs://ydb.serverless.yandexcloud.net:2135. */
    endpoint: z
      .string()
      .regex(/^grpcs?:\/\/[^/\s]+$/, 'grpc://host:port or grpcs://host:port, without a path'),
    /** The database path, e.g. /local or /ru-central1/b1g.../etn... */
    database: z.string().regex(/^\/[^\s]*[^/\s]$/, 'a database path starting with /'),
    /** A directory inside the database holding the gateway's tables (default: the root). */
    directory: z
      .string()
      .regex(/^[A-Za-z0-9_-]+(\/[A-Za-z0-9_-]+)*$/, 'a relative path: A-Z a-z 0-9 _ - and /')
      .optional(),
    auth: ydbAuthSchema.optional(),
    /** Bound on one index call, retries of YDB's retryable statuses included. */
    timeoutSeconds: z.number().positive().max(600).default(10),
    /** Endpoint discovery (YDB's own load balancing); off for a single-node server behind NAT. */
    discovery: z.boolean().default(true),
  })
  .strict();

export type YdbIndexConfig = z.infer<typeof ydbIndexSchema>;
