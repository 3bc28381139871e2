/** Command-line values of `backfill` (pure): a bad one is a usage error naming it (exit 2). */
import { InvalidArgumentError } from 'commander';
import { parseDicomDate } from './options.js';

/** YYYY-MM-DD (or YYYYMMDD) to ISO YYYY-MM-DD. */
export function parseIsoDate(value: string): string {
  return parseDicomDate(value.trim().replace(/^(\d{4})-(\d{2})-(\d{2})$/, '$1$2$3'));
}

export function parsePositiveInt(max: number): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < 1 || n > max) {
      throw new InvalidArgumentError(`expected a whole number from 1 to ${max}, got "${value}"`);
    }
    return n;
  };
}

/** A modality code (PS3.3 C.7.3.1.1.1: CS, upper case, at most 16 characters). */
export function parseModality(value: string): string {
  const v = value.trim().toUpperCase();
  if (!/^[A-Z0-9_ ]{1,16}$/.test(v)) {
    throw new InvalidArgumentError(`expected a modality code such as CT, got "${value}"`);
  }
  return v;
}
