/**
 * Label values for metrics. They come off the network (a calling AE title, a data set's
 * Modality), so each label gets a bounded set of values: past the limit new values are folded
 * into `_other`, or one misconfigured or hostile sender could create a time series per request
 * and exhaust Prometheus (https://prometheus.io/docs/practices/naming/#labels).
 */

export const OTHER = '_other';
export const NONE = '_none';

/** Remembers the first `max` distinct values; later new ones become OTHER. */
export class BoundedLabel {
  private readonly seen = new Set<string>();

  constructor(private readonly max: number) {}

  value(raw: string): string {
    if (this.seen.has(raw)) return raw;
    if (this.seen.size >= this.max) return OTHER;
    this.seen.add(raw);
    return raw;
  }
}

/**
 * A calling AE title as a label value: trimmed, '' → `_none`. PS3.5 Table 6.2-1 allows any
 * printable ASCII but backslash; anything else (the association accepted it as given) is
 * replaced, so label values stay printable.
 */
export function aeLabel(ae: string): string {
  const s = ae.trim().replace(/[^\x20-\x7e]/g, '?');
  return s === '' ? NONE : s;
}

/**
 * A Modality (0008,0060) as a label value. PS3.3 C.7.3.1.1.1 defined terms are upper-case
 * letters and digits of up to 16 characters (CS); anything else becomes `unknown`.
 */
export function modalityLabel(modality: string | undefined): string {
  const m = modality?.trim().toUpperCase() ?? '';
  return /^[A-Z0-9_]{1,16}$/.test(m) ? m : 'unknown';
}

/** A DIMSE status as a label value: four lower-case hex digits ("a700"), as the logs write it. */
export function statusLabel(status: number): string {
  return (status & 0xffff).toString(16).padStart(4, '0');
}

/**
 * The modality a Storage SOP Class implies (PS3.4 Annex B.5, Table B.5-1), for events that
 * carry no parsed Modality (a refused instance, the log bridge). Only classes whose modality is
 * unambiguous are listed; the rest are `unknown`.
 */
const SOP_CLASS_MODALITY: Readonly<Record<string, string>> = {
  '1.2.840.10008.5.1.4.1.1.1': 'CR',
  '1.2.840.10008.5.1.4.1.1.1.1': 'DX',
  '1.2.840.10008.5.1.4.1.1.1.1.1': 'DX',
  '1.2.840.10008.5.1.4.1.1.1.2': 'MG',
  '1.2.840.10008.5.1.4.1.1.1.2.1': 'MG',
  '1.2.840.10008.5.1.4.1.1.1.3': 'IO',
  '1.2.840.10008.5.1.4.1.1.1.3.1': 'IO',
  '1.2.840.10008.5.1.4.1.1.2': 'CT',
  '1.2.840.10008.5.1.4.1.1.2.1': 'CT',
  '1.2.840.10008.5.1.4.1.1.2.2': 'CT',
  '1.2.840.10008.5.1.4.1.1.3.1': 'US',
  '1.2.840.10008.5.1.4.1.1.4': 'MR',
  '1.2.840.10008.5.1.4.1.1.4.1': 'MR',
  '1.2.840.10008.5.1.4.1.1.4.2': 'MR',
  '1.2.840.10008.5.1.4.1.1.4.3': 'MR',
  '1.2.840.10008.5.1.4.1.1.4.4': 'MR',
  '1.2.840.10008.5.1.4.1.1.6.1': 'US',
  '1.2.840.10008.5.1.4.1.1.6.2': 'US',
  '1.2.840.10008.5.1.4.1.1.12.1': 'XA',
  '1.2.840.10008.5.1.4.1.1.12.1.1': 'XA',
  '1.2.840.10008.5.1.4.1.1.12.2': 'RF',
  '1.2.840.10008.5.1.4.1.1.12.2.1': 'RF',
  '1.2.840.10008.5.1.4.1.1.13.1.1': 'XA',
  '1.2.840.10008.5.1.4.1.1.13.1.3': 'MG',
  '1.2.840.10008.5.1.4.1.1.20': 'NM',
  '1.2.840.10008.5.1.4.1.1.128': 'PT',
  '1.2.840.10008.5.1.4.1.1.130': 'PT',
  '1.2.840.10008.5.1.4.1.1.481.1': 'RTIMAGE',
  '1.2.840.10008.5.1.4.1.1.481.2': 'RTDOSE',
  '1.2.840.10008.5.1.4.1.1.481.3': 'RTSTRUCT',
  '1.2.840.10008.5.1.4.1.1.481.5': 'RTPLAN',
  '1.2.840.10008.5.1.4.1.1.66.4': 'SEG',
  '1.2.840.10008.5.1.4.1.1.11.1': 'PR',
  '1.2.840.10008.5.1.4.1.1.104.1': 'DOC',
};

export function modalityOfSopClass(sopClassUid: string | undefined): string {
  return (sopClassUid && SOP_CLASS_MODALITY[sopClassUid]) || 'unknown';
}
