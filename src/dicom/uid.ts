/**
 * What a UID is (PS3.5 9.1), in one place: every check of a UID in the gateway (negotiation,
 * File Meta, object keys, configuration, command line) uses these.
 *
 * PS3.5 9.1: components of digits separated by '.', at most 64 characters, and "the first digit
 * of each component shall not be zero unless the component is a single digit". The rule for
 * received UIDs leaves out the last part: real modalities send components such as "05", and
 * refusing their images would lose data the gateway can store safely (such a UID is still
 * digits and dots, so it cannot form any path segment but itself in an object key). UIDs the
 * gateway itself writes (its Implementation Class UID) follow the whole rule: `strict`.
 */

/** PS3.5 9.1: a UID is at most 64 characters. */
export const UID_MAX_LENGTH = 64;

/**
 * A UID as received: one or more digit components separated by single dots (no empty
 * component, so no '..' and no leading or trailing dot), at most 64 characters.
 */
export const UID_PATTERN = /^(?=[0-9.]{1,64}$)[0-9]+(?:\.[0-9]+)*$/;

/** The whole PS3.5 9.1 rule: also no leading zero in a component other than "0" itself. */
export const STRICT_UID_PATTERN = /^(?=[0-9.]{1,64}$)(?:0|[1-9][0-9]*)(?:\.(?:0|[1-9][0-9]*))*$/;

/** Whether `uid` is a UID; `strict` also refuses leading zeros (for UIDs the gateway writes). */
export function isValidUid(uid: string, opts: { strict?: boolean } = {}): boolean {
  return (opts.strict ? STRICT_UID_PATTERN : UID_PATTERN).test(uid);
}
