/**
 * Command-line values: parsed and checked here, pure, so a bad value is a usage error (exit 2)
 * that names the option, before anything connects anywhere.
 */
import { InvalidArgumentError } from 'commander';
import { isValidUid } from '../dicom/uid.js';

/** YYYYMMDD (a DICOM DA, PS3.5 Table 6.2-1) to ISO YYYY-MM-DD; throws unless a real date. */
export function parseDicomDate(value: string): string {
  const m = /^(\d{4})(\d{2})(\d{2})$/.exec(value.trim());
  if (m) {
    const [y, mo, d] = [Number(m[1]), Number(m[2]), Number(m[3])];
    const date = new Date(Date.UTC(y, mo - 1, d));
    if (y >= 1 && date.getUTCMonth() === mo - 1 && date.getUTCDate() === d) {
      return `${m[1]}-${m[2]}-${m[3]}`;
    }
  }
  throw new InvalidArgumentError(`expected a date as YYYYMMDD, got "${value}"`);
}

export function parseConcurrency(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 64) {
    throw new InvalidArgumentError(`expected a whole number from 1 to 64, got "${value}"`);
  }
  return n;
}

/** A UID (PS3.5 9.1), as received: it selects stored data, so leading zeros are allowed. */
export function parseUid(value: string): string {
  const v = value.trim();
  if (!isValidUid(v)) {
    throw new InvalidArgumentError(`expected a UID (digits and dots, at most 64), got "${value}"`);
  }
  return v;
}
