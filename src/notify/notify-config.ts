/**
 * The `notify` block of the configuration: destinations, attempts, batching, backoff. Part of
 * the one configuration schema (src/config.ts), kept beside the worker it configures.
 */
import { z } from 'zod';
import { aeTitle, envName } from '../config-fields.js';
import { stableRequireCompleteSchema } from '../scu/reconcile-config.js';

/**
 * The events a destination is given. Instance events announce objects; `study.stable` (a study
 * quiet for notify.stableAfterSeconds) goes only to webhooks: an Orthanc or a DICOM peer has
 * nothing to do with it (the cloud Orthanc's own StableAge covers its study-level hooks).
 */
const eventTypes = z
  .array(z.enum(['instance.stored', 'instance.replaced', 'study.stable']))
  .min(1)
  .refine((a) => new Set(a).size === a.length, 'an event type is listed twice');
const instanceEvents = eventTypes.default(['instance.stored', 'instance.replaced']);

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
  events: instanceEvents,
};

const destinationUnion = z.discriminatedUnion('type', [
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
      events: instanceEvents,
    })
    .strict(),
]);

/** `type` may be left out: orthanc-pull, the design's default (it needs an s3 store). */
const notifyDestinationSchema = z.preprocess(
  (d) =>
    typeof d === 'object' && d !== null && !Array.isArray(d) && !('type' in d)
      ? { type: 'orthanc-pull', ...d }
      : d,
  destinationUnion.superRefine((d, ctx) => {
    if (d.type !== 'webhook' && d.events.includes('study.stable')) {
      ctx.addIssue({
        code: 'custom',
        path: ['events'],
        message: `study.stable goes to webhook destinations (and notify.archive); ${d.type} takes instance events only`,
      });
    }
  }),
);

/** `notify.archive`: on study.stable, a zip of the study streamed to a bucket. */
const archiveSchema = z
  .object({
    /** The bucket (on the store's endpoint, with its credentials); default store.bucket. */
    bucket: z.string().min(3).optional(),
    /** Key prefix; the zip is `<prefix><StudyInstanceUID>.zip`. */
    prefix: z.string().default('archive/'),
    /** Its name as a notify destination (delivery state, status, metrics, notify retry). */
    name: httpDestination.name.default('archive'),
  })
  .strict();

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
    /** A study with no new instance in the store for this long gets a study.stable event. */
    stableAfterSeconds: z
      .number()
      .positive()
      .max(86400 * 7)
      .default(60),
    archive: archiveSchema.optional(),
    /** study.stable waits until the study is complete against this source (src/notify/stable-gate.ts). */
    stableRequireComplete: stableRequireCompleteSchema.optional(),
  })
  .strict()
  .superRefine((n, ctx) => {
    const seen = new Set<string>(n.archive ? [n.archive.name] : []);
    for (const [i, d] of n.destinations.entries()) {
      if (seen.has(d.name)) {
        ctx.addIssue({
          code: 'custom',
          path: ['destinations', i, 'name'],
          message: `destination name "${d.name}" is used twice (notify.archive.name counts)`,
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
export type NotifyDestinationConfig = z.infer<typeof destinationUnion>;
export type NotifyArchiveConfig = z.infer<typeof archiveSchema>;

/** Checks that need the store's type: orthanc-pull and the archive read the bucket. */
export function checkNotifyStore(n: NotifyConfig, storeType: string, ctx: z.RefinementCtx): void {
  for (const [i, d] of n.destinations.entries()) {
    if (d.type === 'orthanc-pull' && storeType !== 's3') {
      ctx.addIssue({
        code: 'custom',
        path: ['notify', 'destinations', i, 'type'],
        message: `orthanc-pull (the default type) needs an s3 store (the plugin reads the bucket), and no store is s3: use orthanc-push`,
      });
    }
  }
  if (n.archive && storeType !== 's3') {
    const path = ['notify', 'archive'];
    ctx.addIssue({ code: 'custom', path, message: 'the study archive needs an s3 store' });
  }
}
