/**
 * The outbox payload of `study.stable`: a study had no new instance in the object store for
 * `notify.stableAfterSeconds` (src/index/stable-studies.ts writes it). A later instance re-opens
 * the study and a new `study.stable` follows, with `stableCount` one higher. Counts are the
 * index's at the moment the event was written.
 */
import { GatewayError } from '../errors.js';

export const STUDY_STABLE = 'study.stable';

export interface StudyStableEvent {
  studyInstanceUid: string;
  patientId?: string;
  numberOfSeries: number;
  numberOfInstances: number;
  totalBytes: number;
  /** When its latest instance event was committed (ISO 8601, UTC, milliseconds). */
  lastInstanceAt: string;
  /** When it was found stable (the same format). */
  stableAt: string;
  /** 1 for the study's first study.stable, 2 after a late instance re-opened it, ... */
  stableCount: number;
}

/** Checks a payload read back from the outbox; throws GW_ERR_INTERNAL naming the bad field. */
export function parseStudyStableEvent(payload: unknown, eventId: number): StudyStableEvent {
  const p = (typeof payload === 'object' && payload !== null ? payload : {}) as Record<
    string,
    unknown
  >;
  const bad = (field: string): GatewayError =>
    new GatewayError('GW_ERR_INTERNAL', `outbox event ${eventId}: payload field ${field} invalid`);
  for (const f of ['studyInstanceUid', 'lastInstanceAt', 'stableAt'] as const) {
    if (typeof p[f] !== 'string') throw bad(f);
  }
  if (p.patientId !== undefined && typeof p.patientId !== 'string') throw bad('patientId');
  for (const f of ['numberOfSeries', 'numberOfInstances', 'totalBytes', 'stableCount'] as const) {
    const v = p[f];
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) throw bad(f);
  }
  return p as unknown as StudyStableEvent;
}
