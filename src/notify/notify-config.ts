/**
 * The `notify` block of the configuration: destinations, attempts, batching, backoff. Part of
 * the one configuration schema (src/config.ts), kept beside the worker it configures.
 */
import { z } from 'zod';
import { aeTitle, envName } from '../config-fields.js';

/** What every HTTP destination shares: where, how long to wait, which CA, whose password. */
const httpDestination = {
  name: z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, 'a name: 1-64 of A-Z a-z 0-9 _ . -'),
  url: z.string().url(),
  /** Basic auth user; the password is read from the environment variable `passwordEnv`. */
  username: z.string().min(1).optional(),
  passwordEnv: envName.optional(),
  /** PEM CA bundle trusted for an https url (a private CA), besides the system's. */
  caFile: z.string().min(1).optional(),
  timeoutSeconds: z.number().positive().max(3600).default(30),
};

const notifyDestinationSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('orthanc-pull'), ...httpDestination }).strict(),
  z.object({ type: z.literal('orthanc-push'), ...httpDestination }).strict(),
  z
    .object({
      type: z.literal('webhook'),
      ...httpDestination,
      /** Sent as `Authorization: Bearer <value of tokenEnv>`. */
      tokenEnv: envName.optional(),
    })
    .strict(),
  z
    .object({
      type: z.literal('dicom'),
      name: httpDestination.name,
      /** The peer's (called) AE title, host and port. */
      aeTitle,
      host: z.string().min(1),
      port: z.number().int().min(1).max(65535),
      /** Our calling AE title; default dicom.aeTitle. */
      callingAeTitle: aeTitle.optional(),
      timeoutSeconds: z.number().positive().max(3600).default(30),
    })
    .strict(),
]);

const notifyBackoffSchema = z
  .object({
    initialSeconds: z.number().positive().max(3600).default(1),
    maxSeconds: z.number().positive().max(86400).default(300),
  })
  .strict();

export const notifySchema = z
  .object({
    destinations: z.array(notifyDestinationSchema).default([]),
    /** Attempts per event and destination before the delivery is dead (`notify retry` revives it). */
    maxAttempts: z.number().int().min(1).max(1000).default(10),
    /** Events delivered in one request where the destination allows it. */
    batchSize: z.number().int().min(1).max(1000).default(100),
    /** Batches in flight per destination. */
    concurrency: z.number().int().min(1).max(16).default(2),
    /** A claimed batch not answered within this is claimed again (by this or another gateway). */
    leaseSeconds: z.number().positive().max(3600).default(120),
    /** The slow poll behind the LISTEN/NOTIFY wake-up. */
    pollSeconds: z.number().positive().max(3600).default(5),
    backoff: notifyBackoffSchema.default(notifyBackoffSchema.parse({})),
  })
  .strict()
  .superRefine((n, ctx) => {
    const seen = new Set<string>();
    for (const [i, d] of n.destinations.entries()) {
      if (seen.has(d.name)) {
        ctx.addIssue({
          code: 'custom',
          path: ['destinations', i, 'name'],
          message: `destination name "${d.name}" is used twice`,
        });
      }
      seen.add(d.name);
    }
    if (n.backoff.maxSeconds < n.backoff.initialSeconds) {
      ctx.addIssue({
        code: 'custom',
        path: ['backoff', 'maxSeconds'],
        message: 'must be at least backoff.initialSeconds',
      });
    }
  });

export type NotifyConfig = z.infer<typeof notifySchema>;
export type NotifyDestinationConfig = z.infer<typeof notifyDestinationSchema>;
