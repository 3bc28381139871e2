/**
 * Object key layout and the rules every store applies to keys and metadata.
 * Pure functions: no I/O, so both the ingest path and tools compute the same keys.
 */
import { isValidUid } from '../dicom/uid.js';
import { GatewayError } from '../errors.js';

/**
 * `a/b/` and `/a//b` both become `a/b`; '' stays ''. A '.' or '..' segment is a
 * configuration error: a prefix must not point outside itself either.
 */
export function normalizePrefix(prefix: string): string {
  const segments = prefix.split('/').filter((s) => s !== '');
  for (const s of segments) {
    if (s === '.' || s === '..' || s.includes('\0') || s.includes('\\')) {
      throw new GatewayError('GW_ERR_CONFIG', `invalid key prefix ${JSON.stringify(prefix)}`);
    }
  }
  return segments.join('/');
}

/** `<prefix>/studies/<Study>/series/<Series>/instances/<SOP>.dcm` (no leading slash). */
export function instanceKey(
  prefix: string,
  studyUid: string,
  seriesUid: string,
  sopUid: string,
): string {
  const uids: [string, string][] = [
    ['Study Instance UID', studyUid],
    ['Series Instance UID', seriesUid],
    ['SOP Instance UID', sopUid],
  ];
  for (const [name, uid] of uids) {
    // The received-UID rule: no empty component, so a UID is never '.', '..' or a path.
    if (!isValidUid(uid)) {
      // Quoted and cut: the value came off the network and goes into logs.
      throw new GatewayError(
        'GW_ERR_DATASET_MALFORMED',
        `${name} is not a valid UID: ${JSON.stringify(uid.slice(0, 80))}`,
      );
    }
  }
  const p = normalizePrefix(prefix);
  const rest = `studies/${studyUid}/series/${seriesUid}/instances/${sopUid}.dcm`;
  return p === '' ? rest : `${p}/${rest}`;
}

/**
 * Duplicate policy keep-versions: `.../instances/<SOP>.dcm` -> `.../instances/<SOP>.<first 16
 * hex digits of the sha256>.dcm`, beside the first content (still a `.dcm` Part-10 file).
 */
export function versionKey(key: string, sha256: string): string {
  return key.replace(/\.dcm$/, `.${sha256.slice(0, 16)}.dcm`);
}

/**
 * Checks a key handed to a store: relative, '/'-separated, no empty, '.' or '..'
 * segment, no backslash or NUL. Every store enforces the same rule so a key that works
 * on one works on all (S3 itself would accept nearly anything; a file system would not).
 */
export function assertValidKey(key: string): void {
  const bad =
    key === '' ||
    key.length > 1024 ||
    key.includes('\0') ||
    key.includes('\\') ||
    key.split('/').some((s) => s === '' || s === '.' || s === '..');
  if (bad) {
    throw new GatewayError('GW_ERR_INTERNAL', `invalid object key ${JSON.stringify(key)}`);
  }
}

/** Same rule for list prefixes, which may be '' or end with '/'. */
export function assertValidListPrefix(prefix: string): void {
  if (prefix === '') return;
  assertValidKey(prefix.endsWith('/') ? prefix.slice(0, -1) : prefix);
}

const META_KEY = /^[a-z0-9][a-z0-9-]*$/;
const META_VALUE = /^[\x20-\x7e]*$/;

/**
 * User metadata as every store keeps it: keys lower-cased (S3 sends them as HTTP headers
 * and returns them lower-cased, so the file store does the same to behave alike), keys
 * limited to [a-z0-9-] (proxies drop headers with '_'), values printable ASCII (S3 would
 * mangle anything else). A bad entry is a programming error, not the sender's fault.
 */
export function normalizeMetadata(metadata: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(metadata)) {
    const key = k.toLowerCase();
    if (!META_KEY.test(key) || typeof v !== 'string' || !META_VALUE.test(v)) {
      throw new GatewayError(
        'GW_ERR_INTERNAL',
        `invalid object metadata entry ${JSON.stringify(k)}: keys [a-z0-9-], values printable ASCII`,
      );
    }
    out[key] = v;
  }
  return out;
}
