/**
 * The mapping between the gateway's values and YDB's types, both ways, in one place
 * (docs/ydb.md lists it). Parameters are always typed explicitly (never @ydbjs/value's fromJs
 * guesses: a JS integer would become Int32, a Date a Datetime with seconds only):
 * - text: Utf8 (NUL removed: DICOM pads with it; UTF-8 of any script round-trips);
 * - counts, ids and sizes: Int64 (read back as bigint, converted to number only when it is a
 *   safe integer, else GW_ERR_INTERNAL rather than a silently rounded size);
 * - instants: Timestamp (microseconds; JS Dates carry milliseconds, so they round-trip);
 * - calendar dates (Study Date, birth date): Utf8 'YYYY-MM-DD', since YDB's Date starts in 1970
 *   and patients are born earlier; ISO text sorts like the date, so ranges still work;
 * - absent values: Optional(NULL) of the column's type.
 */
import { List } from '@ydbjs/value/list';
import { Optional } from '@ydbjs/value/optional';
import {
  Bool,
  BoolType,
  Int32,
  Int32Type,
  Int64,
  Int64Type,
  Timestamp,
  TimestampType,
  Uint64,
  Utf8,
  Utf8Type,
} from '@ydbjs/value/primitive';
import type { Value } from '@ydbjs/value';
import { GatewayError } from '../errors.js';

export type Params = Record<string, Value>;
export type Row = Record<string, unknown>;

const clean = (s: string): string => s.replace(/\0/g, '');

export const ydb = {
  text: (s: string): Value => new Utf8(clean(s)),
  optText: (s: string | null | undefined): Value =>
    s === null || s === undefined
      ? new Optional(null, new Utf8Type())
      : new Optional(new Utf8(clean(s))),
  int32: (n: number): Value => new Int32(n),
  optInt32: (n: number | null | undefined): Value =>
    n === null || n === undefined
      ? new Optional(null, new Int32Type())
      : new Optional(new Int32(n)),
  int64: (n: number | bigint): Value => new Int64(BigInt(n)),
  optInt64: (n: number | bigint | null | undefined): Value =>
    n === null || n === undefined
      ? new Optional(null, new Int64Type())
      : new Optional(new Int64(BigInt(n))),
  /** LIMIT takes a Uint64. */
  limit: (n: number): Value => new Uint64(BigInt(Math.max(0, Math.floor(n)))),
  bool: (b: boolean): Value => new Bool(b),
  optBool: (b: boolean | null | undefined): Value =>
    b === null || b === undefined ? new Optional(null, new BoolType()) : new Optional(new Bool(b)),
  ts: (d: Date): Value => new Timestamp(d),
  optTs: (d: Date | null | undefined): Value =>
    d === null || d === undefined
      ? new Optional(null, new TimestampType())
      : new Optional(new Timestamp(d)),
  /** A non-empty list (YDB needs the item type, which an empty JS array cannot tell). */
  textList: (items: readonly string[]): Value => new List(...items.map((s) => new Utf8(clean(s)))),
  int64List: (items: readonly number[]): Value =>
    new List(...items.map((n) => new Int64(BigInt(n)))),
};

/** DICOM text: trimmed, NUL removed; empty means absent. */
export function dicomText(v: string | undefined): string | null {
  const s = v?.replace(/\0/g, '').trim();
  return s ? s : null;
}

/** An IS/US value that fits Int32, else absent. */
export function dicomInt32(v: number | undefined): number | null {
  return v !== undefined && Number.isInteger(v) && v >= -2147483648 && v <= 2147483647 ? v : null;
}

/** DA (YYYYMMDD, or the old YYYY.MM.DD) as 'YYYY-MM-DD'; anything that is not a real date: null. */
export function isoDate(v: string | undefined): string | null {
  const m = /^(\d{4})\.?(\d{2})\.?(\d{2})$/.exec(v?.trim() ?? '');
  if (!m) return null;
  const [y, mo, d] = [Number(m[1]), Number(m[2]), Number(m[3])];
  const date = new Date(Date.UTC(y, mo - 1, d));
  const ok = y >= 1 && date.getUTCMonth() === mo - 1 && date.getUTCDate() === d;
  return ok ? `${m[1]}-${m[2]}-${m[3]}` : null;
}

// ---- reading rows (values as @ydbjs/value's toJs gives them) --------------------------------

/** An Int64/Uint64/Int32 column as a number; a value beyond 2^53 is an error, not rounded. */
export function num(v: unknown, what = 'value'): number {
  if (typeof v === 'number') return v;
  if (typeof v === 'bigint') {
    if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < BigInt(Number.MIN_SAFE_INTEGER)) {
      throw new GatewayError('GW_ERR_INTERNAL', `YDB ${what} ${v} is beyond 2^53`);
    }
    return Number(v);
  }
  if (v === null || v === undefined) return 0;
  throw new GatewayError('GW_ERR_INTERNAL', `YDB ${what}: not a number (${typeof v})`);
}

export function optNum(v: unknown, what?: string): number | undefined {
  return v === null || v === undefined ? undefined : num(v, what);
}

export function str(v: unknown): string {
  if (typeof v === 'string') return v;
  if (v instanceof Uint8Array) return Buffer.from(v).toString('utf8');
  throw new GatewayError('GW_ERR_INTERNAL', `YDB value: not a string (${typeof v})`);
}

export function optStr(v: unknown): string | undefined {
  return v === null || v === undefined ? undefined : str(v);
}

export function date(v: unknown): Date {
  if (v instanceof Date) return v;
  throw new GatewayError('GW_ERR_INTERNAL', `YDB value: not a timestamp (${typeof v})`);
}

export function optDate(v: unknown): Date | undefined {
  return v === null || v === undefined ? undefined : date(v);
}

/** A JSON text column (payloads, labels) parsed; null stays undefined. */
export function json(v: unknown): unknown {
  return v === null || v === undefined ? undefined : JSON.parse(str(v));
}
