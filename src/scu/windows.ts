/**
 * Date windows of a backfill (pure). A window is a Study Date range, optionally one modality.
 * When the source caps a window's results (or refuses a broad query), the window is split: in
 * two halves of days down to single days, then one day into one window per modality
 * (ModalitiesInStudy), and no further.
 */
import type { QueryKeys } from './query-keys.js';

export interface Window {
  /** ISO dates, inclusive. */
  from: string;
  to: string;
  modality?: string;
}

/** Modalities a single day is split by when it is still capped (PS3.3 C.7.3.1.1.1, the usual ones). */
export const SPLIT_MODALITIES = [
  'CT', 'MR', 'CR', 'DX', 'US', 'MG', 'NM', 'PT', 'XA', 'RF', 'SC', 'OT', 'IO', 'PX', 'ES',
  'XC', 'SR', 'DOC', 'KO', 'PR', 'SEG', 'RTSTRUCT', 'RTPLAN', 'RTDOSE', 'RTIMAGE', 'ECG',
] as const; // prettier-ignore

const DAY_MS = 86_400_000;

export function addDays(iso: string, days: number): string {
  return new Date(Date.parse(`${iso}T00:00:00Z`) + days * DAY_MS).toISOString().slice(0, 10);
}

export function daysIn(w: Window): number {
  return Math.round((Date.parse(w.to) - Date.parse(w.from)) / DAY_MS) + 1;
}

/** The range of the last `days` days ending today (UTC), both inclusive. */
export function lastDays(days: number, today = new Date()): Window {
  const to = today.toISOString().slice(0, 10);
  return { from: addDays(to, -(days - 1)), to };
}

/**
 * The windows that replace a capped one, in date order; undefined when it cannot be split
 * (a single day already restricted to a modality).
 */
export function splitWindow(
  w: Window,
  modalities: readonly string[] = SPLIT_MODALITIES,
): Window[] | undefined {
  const days = daysIn(w);
  if (days > 1) {
    const mid = addDays(w.from, Math.floor(days / 2) - 1);
    return [
      { ...w, to: mid },
      { ...w, from: addDays(mid, 1) },
    ];
  }
  if (w.modality !== undefined) return undefined;
  return modalities.map((m) => ({ ...w, modality: m }));
}

/** The STUDY-level matching keys of a window (PS3.4 C.2.2.2.5: a DA range). */
export function windowKeys(w: Window): QueryKeys {
  const da = (iso: string): string => iso.replaceAll('-', '');
  const range = w.from === w.to ? da(w.from) : `${da(w.from)}-${da(w.to)}`;
  return {
    StudyDate: range,
    ...(w.modality !== undefined ? { ModalitiesInStudy: w.modality } : {}),
  };
}

/** The study's date as ISO, from a DA value (dcmqrscp pads it; some sources send none). */
export function isoDate(da: string | undefined): string | undefined {
  const m = /^(\d{4})(\d{2})(\d{2})$/.exec((da ?? '').trim());
  return m ? `${m[1]}-${m[2]}-${m[3]}` : undefined;
}
