/**
 * One condition on the values of one attribute, as the rule language writes it, checked
 * (`conditionProblem`) and compiled once into a predicate on a single decoded value
 * (`compileValueCondition`). Pure; the schema and the compiler share these so a condition the
 * schema accepts always compiles.
 *
 *   CT                      equals (numbers compare as numbers for numeric VRs)
 *   [CT, MR]                one of
 *   {regex: '^A', ignoreCase: true}
 *   {min: 10, max: 20}      numeric VRs (IS, DS, US...), bounds included
 *   {from: 20240101, to: 20241231}   DA, TM, DT; bounds included
 *   {present: true|false}   the attribute has a value / has none
 */
import { NUMERIC_VRS, temporalKind } from './keywords.js';

export type Scalar = string | number;

export interface OperatorCondition {
  regex?: string | undefined;
  ignoreCase?: boolean | undefined;
  min?: number | undefined;
  max?: number | undefined;
  from?: Scalar | undefined;
  to?: Scalar | undefined;
  present?: boolean | undefined;
}

export type ValueCondition = Scalar | readonly Scalar[] | OperatorCondition;

export interface CompiledValue {
  /** How the condition reads in `route test` output: `= "CT"`, `one of "CT", "MR"`, `~ /^A/i`. */
  expected: string;
  /** `{present}`: whether the attribute must have a value; the predicate is then unused. */
  presence?: boolean;
  /** Whether one decoded value satisfies the condition. */
  test: (value: string) => boolean;
}

/** Why a condition cannot be used on an attribute of this VR, or undefined when it can. */
export function conditionProblem(cond: ValueCondition, vr: string): string | undefined {
  if (typeof cond !== 'object' || Array.isArray(cond)) return undefined;
  const c = cond as OperatorCondition;
  const groups = [
    c.regex !== undefined || c.ignoreCase !== undefined,
    c.min !== undefined || c.max !== undefined,
    c.from !== undefined || c.to !== undefined,
    c.present !== undefined,
  ].filter(Boolean).length;
  if (groups !== 1) {
    return 'a condition object takes exactly one of {regex}, {min, max}, {from, to}, {present}';
  }
  if (c.ignoreCase !== undefined && c.regex === undefined) return 'ignoreCase goes with regex';
  if (c.regex !== undefined) {
    try {
      new RegExp(c.regex, 'u');
    } catch (err) {
      return `regex ${JSON.stringify(c.regex)} does not compile: ${(err as Error).message}`;
    }
  }
  if (c.min !== undefined || c.max !== undefined) {
    if (!NUMERIC_VRS.has(vr)) return `{min, max} applies to numbers; this attribute is ${vr}`;
    if (c.min !== undefined && c.max !== undefined && c.min > c.max) return 'min is above max';
  }
  if (c.from !== undefined || c.to !== undefined) {
    const kind = temporalKind(vr);
    if (!kind) return `{from, to} applies to dates and times; this attribute is ${vr}`;
    for (const [key, bound] of [
      ['from', c.from],
      ['to', c.to],
    ] as const) {
      if (bound !== undefined && !validBound(kind, String(bound))) {
        return `${key} ${JSON.stringify(String(bound))} is not a ${KIND_FORMAT[kind]}`;
      }
    }
    const lo = c.from !== undefined ? normalizeTemporal(kind, String(c.from), '0') : undefined;
    const hi = c.to !== undefined ? normalizeTemporal(kind, String(c.to), '9') : undefined;
    if (lo !== undefined && hi !== undefined && lo > hi) return 'from is after to';
  }
  return undefined;
}

/** Compiles a condition conditionProblem() accepted, for an attribute of VR `vr`. */
export function compileValueCondition(cond: ValueCondition, vr: string): CompiledValue {
  if (typeof cond !== 'object') return compileEquals([cond], vr);
  if (Array.isArray(cond)) return compileEquals(cond as readonly Scalar[], vr);
  const c = cond as OperatorCondition;
  if (c.present !== undefined) {
    return { expected: c.present ? 'present' : 'absent', presence: c.present, test: () => true };
  }
  if (c.regex !== undefined) {
    // 'u': Cyrillic and other non-ASCII text is compared as characters, not UTF-16 halves.
    const re = new RegExp(c.regex, c.ignoreCase ? 'iu' : 'u');
    return { expected: `~ ${String(re)}`, test: (v) => re.test(v) };
  }
  if (c.min !== undefined || c.max !== undefined) {
    const min = c.min ?? -Infinity;
    const max = c.max ?? Infinity;
    return {
      expected: `in ${c.min ?? ''}..${c.max ?? ''}`,
      test: (v) => {
        const n = v === '' ? NaN : Number(v);
        return n >= min && n <= max;
      },
    };
  }
  const kind = temporalKind(vr) ?? 'DA';
  const from = c.from !== undefined ? normalizeTemporal(kind, String(c.from), '0') : undefined;
  const to = c.to !== undefined ? normalizeTemporal(kind, String(c.to), '9') : undefined;
  return {
    expected: `from ${c.from ?? '(any)'} to ${c.to ?? '(any)'}`,
    test: (v) => {
      const t = normalizeTemporal(kind, v, '0');
      return t !== undefined && (from === undefined || t >= from) && (to === undefined || t <= to);
    },
  };
}

function compileEquals(items: readonly Scalar[], vr: string): CompiledValue {
  const expected =
    items.length === 1
      ? `= ${JSON.stringify(items[0])}`
      : `one of ${items.map((i) => JSON.stringify(i)).join(', ')}`;
  if (NUMERIC_VRS.has(vr)) {
    // IS "007" equals 7: numeric VRs compare as numbers whenever the item is one.
    const numbers = items.map((i) => Number(i)).filter((n) => Number.isFinite(n));
    const strings = new Set(items.filter((i) => !Number.isFinite(Number(i))).map(String));
    return {
      expected,
      test: (v) => {
        if (strings.has(v)) return true;
        const n = v === '' ? NaN : Number(v);
        for (let i = 0; i < numbers.length; i++) if (numbers[i] === n) return true;
        return false;
      },
    };
  }
  if (items.length === 1) {
    const only = String(items[0]);
    return { expected, test: (v) => v === only };
  }
  const set = new Set(items.map(String));
  return { expected, test: (v) => set.has(v) };
}

const KIND_FORMAT = {
  DA: 'date YYYYMMDD',
  TM: 'time HH[MM[SS[.FFFFFF]]]',
  DT: 'date-time YYYYMMDD[HH[MM[SS[.FFFFFF]]]]',
} as const;

/** PS3.5 Table 6.2-1 DA / TM / DT, as a rule's bound is written (no offsets, no ranges). */
function validBound(kind: 'DA' | 'TM' | 'DT', s: string): boolean {
  if (kind === 'DA') return validDate(s);
  if (kind === 'TM') return validTime(s);
  return validDate(s.slice(0, 8)) && (s.length === 8 || validTime(s.slice(8)));
}

function validDate(s: string): boolean {
  const m = /^(\d{4})(\d{2})(\d{2})$/.exec(s);
  if (!m) return false;
  const [y, mo, d] = [Number(m[1]), Number(m[2]), Number(m[3])];
  const date = new Date(Date.UTC(y, mo - 1, d));
  return date.getUTCFullYear() === y && date.getUTCMonth() === mo - 1 && date.getUTCDate() === d;
}

function validTime(s: string): boolean {
  const m = /^(\d{2})(\d{2})?(\d{2})?(\.\d{1,6})?$/.exec(s);
  if (!m || (m[4] !== undefined && m[3] === undefined)) return false;
  // PS3.5 Table 6.2-1, TM: SS may be 60 for a leap second.
  return Number(m[1]) < 24 && Number(m[2] ?? 0) < 60 && Number(m[3] ?? 0) < 61;
}

/**
 * A DA/TM/DT value as fixed-width digits, so that values and bounds compare as strings:
 * DA -> YYYYMMDD; TM -> HHMMSSFFFFFF; DT -> YYYYMMDDHHMMSSFFFFFF. Missing trailing
 * components are filled with `pad`: '0' for a value and a lower bound, '9' for an upper
 * bound (`to: "12"` includes 12:59). ACR-NEMA forms (`2024.01.31`, `12:30:00`) are accepted,
 * and a DT's UTC offset is ignored (PS3.5 6.2: local time is what a modality writes).
 * Undefined when the value is not of that form.
 */
export function normalizeTemporal(
  kind: 'DA' | 'TM' | 'DT',
  value: string,
  pad: '0' | '9',
): string | undefined {
  if (kind === 'DA') {
    const v = value.length === 10 ? value.replace(/\./g, '') : value;
    return /^\d{8}$/.test(v) ? v : undefined;
  }
  const v = kind === 'TM' ? value.replace(/:/g, '') : value.replace(/[+-]\d{4}$/, '');
  const width = kind === 'TM' ? 6 : 14;
  const m = /^(\d+)(?:\.(\d{1,6}))?$/.exec(v);
  if (!m || m[1]!.length > width || m[1]!.length < (kind === 'TM' ? 2 : 4)) return undefined;
  return m[1]!.padEnd(width, pad) + (m[2] ?? '').padEnd(6, pad);
}
