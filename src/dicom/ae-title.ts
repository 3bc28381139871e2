/**
 * What an AE title is (PS3.5 6.2, VR AE), in one place: the configuration, the calling AE
 * titles the gateway admits and the Source Application Entity Title it writes to File Meta all
 * use these.
 *
 * PS3.5 Table 6.2-1, AE: at most 16 characters of the default character repertoire, without
 * backslash and control characters; leading and trailing spaces are not significant, and a
 * value of only spaces shall not be used.
 */

/** PS3.5 Table 6.2-1: an AE title is at most 16 characters. */
export const AE_TITLE_MAX_LENGTH = 16;

/** The characters an AE title may have: printable ASCII (space included), no backslash. */
export const AE_TITLE_PATTERN = /^[\x20-\x5b\x5d-\x7e]+$/;

/** Whether `ae` is an AE title as written (its padding spaces count towards the 16). */
export function isValidAeTitle(ae: string): boolean {
  return ae.length <= AE_TITLE_MAX_LENGTH && AE_TITLE_PATTERN.test(ae) && ae.trim() !== '';
}
