/**
 * Schema fields more than one part of the configuration uses (src/config.ts, the notify block in
 * src/notify/notify-config.ts).
 */
import { z } from 'zod';
import { AE_TITLE_MAX_LENGTH, AE_TITLE_PATTERN, isValidAeTitle } from './dicom/ae-title.js';
import { STRICT_UID_PATTERN, UID_MAX_LENGTH } from './dicom/uid.js';

// The rules live in src/dicom/ae-title.ts and uid.ts; min, max and regex are spelled out here
// too so the generated docs/configuration.md can state them.
export const aeTitle = z
  .string()
  .min(1)
  .max(AE_TITLE_MAX_LENGTH)
  .regex(AE_TITLE_PATTERN, 'AE title: 1-16 printable ASCII characters, no backslash')
  .refine(isValidAeTitle, {
    message: 'AE title must not be only spaces',
    when: (payload) => payload.issues.length === 0,
  });

// The gateway's own UIDs follow the whole PS3.5 9.1 rule (no leading zeros in a component).
export const uid = z
  .string()
  .regex(STRICT_UID_PATTERN, 'a UID: digits and dots, no leading zero in a component')
  .max(UID_MAX_LENGTH);

/** Name of an environment variable that holds a secret (the secret never goes in the file). */
export const envName = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'an environment variable name');
