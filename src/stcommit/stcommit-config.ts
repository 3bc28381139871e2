/**
 * The `storageCommitment` block of the configuration (PS3.4 J.3, docs/storage-commitment.md).
 * Part of the one configuration schema (src/config.ts), kept beside the service it configures.
 */
import { z } from 'zod';

const retrySchema = z
  .object({
    initialSeconds: z.number().positive().max(3600).default(5),
    maxSeconds: z.number().positive().max(86400).default(300),
    maxAttempts: z.number().int().min(1).max(10000).default(100),
  })
  .strict();

export const storageCommitmentSchema = z
  .object({
    enabled: z.boolean().default(false),
    /** Past this, instances still not in their final store are reported as failed. */
    deadlineSeconds: z
      .number()
      .positive()
      .max(30 * 86400)
      .default(3600),
    /** An instance the index does not know may still be arriving this long; then 0112. */
    unknownGraceSeconds: z.number().min(0).max(86400).default(10),
    /** How often an undecided transaction is evaluated again. */
    recheckSeconds: z.number().positive().max(3600).default(2),
    /** Report on the requester's association when it is still open (else a new one). */
    sameAssociation: z.boolean().default(true),
    /** Connect, associate and response timeout of a report association. */
    timeoutSeconds: z.number().positive().max(3600).default(30),
    /** A claimed transaction not settled within this is claimed again (by any gateway). */
    leaseSeconds: z.number().positive().max(3600).default(120),
    retry: retrySchema.default(retrySchema.parse({})),
  })
  .strict();

export type StorageCommitmentConfig = z.infer<typeof storageCommitmentSchema>;
